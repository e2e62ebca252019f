"""SelectedMailbox: the sequence-number map and when pending changes may be announced,
checked without a store: views are fed the Change stream the store would publish."""

from __future__ import annotations

import pytest

from pymta.imap.command import SeqRange, SequenceSet
from pymta.imap.errors import BadCommand
from pymta.imap.selected import SelectedMailbox
from pymta.store import Change


def view(*uids: int) -> SelectedMailbox:
    return SelectedMailbox("INBOX", readonly=False, uidvalidity=7, uids=uids)


def seqset(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(tuple(SeqRange(a, b) for a, b in ranges))


def test_sequence_sets_resolve_to_seq_uid_pairs() -> None:
    v = view(3, 5, 9, 12)
    assert v.resolve(seqset((2, None)), uid=False) == [(2, 5), (3, 9), (4, 12)]
    assert v.resolve(seqset((4, 2), (1, 1)), uid=False) == [(1, 3), (2, 5), (3, 9), (4, 12)]
    # RFC 9051 §9: UID ranges include the last UID even when "*" is below the start.
    assert v.resolve(seqset((100, None)), uid=True) == [(4, 12)]
    assert v.resolve(seqset((6, 10)), uid=True) == [(3, 9)]
    with pytest.raises(BadCommand):
        v.resolve(seqset((5, 5)), uid=False)
    with pytest.raises(BadCommand):
        view().resolve(seqset((None, None)), uid=False)
    assert v.resolve(SequenceSet(saved=True), uid=False, saved=[12, 4, 3]) == [(1, 3), (4, 12)]
    assert v.resolve(SequenceSet(saved=True), uid=True, saved=None) == []


def test_two_views_fed_the_same_changes_agree_and_expunges_wait() -> None:
    a, b = view(1, 2, 3, 4), view(1, 2, 3, 4)
    changes = [
        Change("INBOX", "expunge", (2, 3), 10),
        Change("INBOX", "exists", (5,), 11),
        Change("INBOX", "flags", (4,), 12),
    ]
    for ch in changes:
        a.apply(ch)
        b.apply(ch)
    # During FETCH/STORE/SEARCH: EXISTS and flags, no EXPUNGE; numbers do not move.
    during = a.take_updates(allow_expunge=False)
    assert during.expunged_seqs == [] and during.exists == 5
    assert during.flag_changes == [(4, 4)]
    assert a.is_expunged(2) and a.seq_of(5) == 5
    later = a.take_updates(allow_expunge=True)
    assert later.expunged_seqs == [3, 2]  # highest first: no renumbering between them
    assert list(a.uids) == [1, 4, 5]
    # The other view announces everything at once and ends the same.
    now = b.take_updates(allow_expunge=True)
    assert now.expunged_seqs == [3, 2] and now.exists == 3
    assert now.flag_changes == [(2, 4)]
    assert list(b.uids) == list(a.uids)


def test_vanished_and_messages_that_came_and_went_unseen() -> None:
    v = view(1, 2)
    v.apply(Change("INBOX", "exists", (3,), 5))
    v.apply(Change("INBOX", "expunge", (3, 1), 6))
    up = v.take_updates(allow_expunge=True, vanished=True)
    assert up.vanished_uids == [1] and up.exists is None and up.expunged_seqs == []
    assert list(v.uids) == [2]


def test_own_store_is_not_announced_again() -> None:
    v = view(1, 2)
    v.apply(Change("INBOX", "flags", (1, 2), 9))
    v.shown(1, 9)
    assert v.take_updates(allow_expunge=True).flag_changes == [(2, 2)]


def test_folder_deleted_or_reindexed() -> None:
    v = view(1, 2, 3)
    v.apply(Change("INBOX", "folders", uidvalidity=7))
    assert v.needs_resync and not v.gone
    v.resync([1, 3, 4])
    up = v.take_updates(allow_expunge=True)
    assert up.expunged_seqs == [2] and up.exists == 3
    v.apply(Change("INBOX", "folders", renamed_to="Old"))
    assert v.gone


def test_resolve_uids_is_resolve_without_the_numbers() -> None:
    v = view(*range(10, 60, 10), *range(100, 110))  # 15 messages, UIDs with a gap
    for seqs, uid in [
        (seqset((1, None)), False),
        (seqset((3, 5), (4, 8), (14, 2)), False),
        (seqset((15, 15), (1, 1)), False),
        (seqset((25, 104)), True),
        (seqset((None, 105), (1, 12)), True),
        (seqset((200, 300)), True),
    ]:
        assert v.resolve_uids(seqs, uid=uid) == [u for _, u in v.resolve(seqs, uid=uid)]
    assert v.resolve_uids(SequenceSet(saved=True), uid=True, saved=[104, 10, 7]) == [10, 104]
    with pytest.raises(BadCommand):
        v.resolve_uids(seqset((16, 16)), uid=False)


def test_seqs_for_runs_gaps_and_strangers() -> None:
    v = view(3, 5, 9, 12, 20)
    assert v.seqs_for([3, 5, 9, 12, 20]) == [1, 2, 3, 4, 5]
    assert v.seqs_for([9, 12]) == [3, 4]
    assert v.seqs_for([5, 12, 20]) == [2, 4, 5]  # one expunged meanwhile: not a run
    assert v.seqs_for([1, 9, 21]) == [0, 3, 0]  # not in the view: 0
    assert v.seqs_for([]) == []


def test_a_store_of_every_message_shown_at_once() -> None:
    v = view(1, 2, 3)
    v.apply(Change("INBOX", "flags", (1, 2, 3), 9))
    assert v.has_pending_flags
    v.shown_many([1, 2, 3], [9, 8, 9])  # 2 was shown as of before the change
    assert v.take_updates(allow_expunge=True).flag_changes == [(2, 2)]
    assert not v.has_pending_flags
    v.shown_many([1], [10])  # nothing pending: nothing to do


def test_flag_changes_keep_the_highest_modseq_and_skip_expunged() -> None:
    v = view(1, 2, 3)
    v.apply(Change("INBOX", "flags", (1, 2), 9))  # the first change: taken as it is
    v.apply(Change("INBOX", "expunge", (3,), 10))
    v.apply(Change("INBOX", "flags", (2, 3), 11))
    v.shown(1, 9)
    v.shown(2, 10)  # older than the last change of 2: still to announce
    assert v.take_updates(allow_expunge=False).flag_changes == [(2, 2)]

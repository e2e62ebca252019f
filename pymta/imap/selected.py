"""`SelectedMailbox`: one session's view of its selected folder.

The view is what the client has been told: the sequence-number ↔ UID map (message n is
`uids[n-1]`, ascending UID order, RFC 9051 §2.3.1.2). The store's change notifications
(`Store.subscribe`) are not applied to the map when they arrive: they wait as pending
changes until the session may announce them (RFC 9051 §5.2, §7.5.1):

- new messages (EXISTS) and other sessions' flag changes (FETCH FLAGS, with UID: RFC 9051
  §7.5.2 requires UID in unsolicited FETCH for rev2, harmless for rev1) may go out after
  any command, and during IDLE;
- expunges (EXPUNGE, or one VANISHED when QRESYNC is enabled, RFC 7162 §3.2.10) never
  during FETCH, STORE or SEARCH (§7.5.1) — nor, more strictly than the RFC asks, during
  their UID forms, so a pipelining client's sequence numbers never shift under it.

Until an expunge is announced its UID keeps its sequence number; the message is simply
no longer in the store (FETCH skips it). This module is pure logic: no store, no I/O, so
two views fed the same changes can be checked against each other in unit tests.
"""

from __future__ import annotations

import bisect
import logging
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pymta.store import Change

from .command import SeqRange, SequenceSet
from .errors import BadCommand

log = logging.getLogger(__name__)


@dataclass
class Updates:
    """What may be announced now, in the order it must be sent."""

    expunged_seqs: list[int] = field(default_factory=list)  # highest first: no renumbering
    vanished_uids: list[int] = field(default_factory=list)  # QRESYNC: one VANISHED response
    exists: int | None = None  # the new message count, when it grew
    flag_changes: list[tuple[int, int]] = field(default_factory=list)  # (seq, uid)

    def __bool__(self) -> bool:
        return bool(
            self.expunged_seqs or self.vanished_uids or self.exists is not None or self.flag_changes
        )


class SelectedMailbox:
    def __init__(
        self,
        folder: str,
        *,
        readonly: bool,
        uidvalidity: int,
        uids: Iterable[int],
        highestmodseq: int = 0,
    ) -> None:
        self.folder = folder
        self.readonly = readonly
        self.uidvalidity = uidvalidity
        self.highestmodseq = highestmodseq
        # 8 bytes per message: a 20,000-message folder costs 160 KB while selected.
        self._uids = array("Q", uids)
        self._new: set[int] = set()
        self._expunged: set[int] = set()
        self._flags: dict[int, int] = {}  # uid → modseq of the latest change not yet shown
        self.gone = False  # the folder was deleted or renamed: the session must end
        self.needs_resync = False  # reindexed behind our back: compare with the store

    # -- the map ----------------------------------------------------------------------

    @property
    def count(self) -> int:
        """The message count the client knows (EXISTS)."""
        return len(self._uids)

    @property
    def uids(self) -> Sequence[int]:
        return self._uids

    def uid_of(self, seq: int) -> int:
        return self._uids[seq - 1]

    def seq_of(self, uid: int) -> int | None:
        i = bisect.bisect_left(self._uids, uid)
        if i < len(self._uids) and self._uids[i] == uid:
            return i + 1
        return None

    @property
    def last_uid(self) -> int:
        return self._uids[-1] if self._uids else 0

    def is_expunged(self, uid: int) -> bool:
        """Expunged in the store, not yet announced: the client still sees it."""
        return uid in self._expunged

    # -- sequence sets (RFC 9051 §9 sequence-set) -------------------------------------

    def resolve(
        self, seqset: SequenceSet, *, uid: bool, saved: Sequence[int] | None = None
    ) -> list[tuple[int, int]]:
        """The (seq, uid) pairs a set names, ascending, without duplicates.

        Sequence numbers beyond the count (and "*" in an empty mailbox) are a BAD (RFC 9051
        §9 seq-number); UIDs that do not exist are silently left out (§6.4.8). "$" is the
        saved SEARCH result (RFC 5182 §2.1), UIDs, which may since have been expunged.
        """
        if seqset.saved:
            if saved is None:
                return []  # RFC 5182 §2.1: "$" before any SAVE is the empty set
            return self._pairs_for_uids(saved)
        uids = self._uids
        return [(seq, uids[seq - 1]) for seq in _merge(self._spans(seqset.ranges, uid))]

    def resolve_uids(
        self, seqset: SequenceSet, *, uid: bool, saved: Sequence[int] | None = None
    ) -> list[int]:
        """The UIDs of `resolve`'s pairs, ascending: one slice of the map per run of
        sequence numbers, so `1:*` of a big folder costs a copy, not a loop."""
        if seqset.saved:
            return [u for _, u in self.resolve(seqset, uid=uid, saved=saved)]
        spans = _merged_spans(self._spans(seqset.ranges, uid))
        out: list[int] = []
        for lo, hi in spans:
            out.extend(self._uids[lo - 1 : hi])
        return out

    def _spans(self, ranges: Sequence[SeqRange], uid: bool) -> list[tuple[int, int]]:
        """Inclusive spans of sequence numbers that `ranges` name (UIDs when `uid`)."""
        if uid:
            return self._uid_spans(ranges)
        count = len(self._uids)
        spans: list[tuple[int, int]] = []
        for r in ranges:
            first = count if r.first is None else r.first
            last = count if r.last is None else r.last
            lo, hi = min(first, last), max(first, last)
            if lo < 1 or hi > count:
                raise BadCommand("Invalid message sequence number")
            spans.append((lo, hi))
        return spans

    def _uid_spans(self, ranges: Sequence[SeqRange]) -> list[tuple[int, int]]:
        if not self._uids:
            return []
        star = self._uids[-1]
        spans: list[tuple[int, int]] = []
        for r in ranges:
            first = star if r.first is None else r.first
            last = star if r.last is None else r.last
            lo, hi = min(first, last), max(first, last)
            start = bisect.bisect_left(self._uids, lo)
            end = bisect.bisect_right(self._uids, hi)
            if start < end:
                spans.append((start + 1, end))
        return spans

    def _pairs_for_uids(self, uids: Iterable[int]) -> list[tuple[int, int]]:
        pairs = []
        for u in sorted(set(uids)):
            seq = self.seq_of(u)
            if seq is not None:
                pairs.append((seq, u))
        return pairs

    def seqs_for(self, uids: Sequence[int]) -> list[int]:
        """The sequence numbers of ascending `uids` (0 for one the client does not know):
        one comparison when they are a run of the map, as for FETCH 1:*, else one pass."""
        if not uids:
            return []
        known = self._uids
        start = bisect.bisect_left(known, uids[0])
        n = len(uids)
        if known[start : start + n].tolist() == list(uids):
            return list(range(start + 1, start + n + 1))
        out: list[int] = []
        i, end = start, len(known)
        for u in uids:
            while i < end and known[i] < u:
                i += 1
            out.append(i + 1 if i < end and known[i] == u else 0)
        return out

    # -- changes from the store -------------------------------------------------------

    def apply(self, change: Change) -> None:
        """Record a committed change of this folder (`Store.subscribe` callback)."""
        if change.highestmodseq > self.highestmodseq:
            self.highestmodseq = change.highestmodseq
        if change.kind == "exists":
            last = self._uids[-1] if self._uids else 0
            for u in change.uids:
                if u > last:
                    self._new.add(u)
        elif change.kind == "expunge":
            for u in change.uids:
                if u in self._new:
                    self._new.discard(u)  # never announced: the client never knew it
                    self._flags.pop(u, None)
                elif self.seq_of(u) is not None:
                    self._expunged.add(u)
                    self._flags.pop(u, None)
        elif change.kind == "flags":
            modseq = change.highestmodseq
            if not self._flags and not self._expunged:
                # A STORE 1:* of 20,000 messages: one dictionary, no loop in Python.
                self._flags = dict.fromkeys(change.uids, modseq)
                return
            for u in change.uids:
                if u not in self._expunged:
                    self._flags[u] = max(self._flags.get(u, 0), modseq)
        elif change.kind == "folders":
            if change.renamed_to is not None or (
                change.uidvalidity and change.uidvalidity != self.uidvalidity
            ):
                self.gone = True
            else:
                self.needs_resync = True

    def resync(self, uids_now: Iterable[int]) -> None:
        """The folder was looked at again (after a reindex): what the store holds now
        becomes pending expunges and new messages, as if notified."""
        now = set(uids_now)
        known = set(self._uids)
        self._expunged |= known - now
        last = self._uids[-1] if self._uids else 0
        self._new |= {u for u in now - known if u > last}
        self.needs_resync = False

    def shown(self, uid: int, modseq: int) -> None:
        """The session just sent this message's flags as of `modseq` (its own STORE,
        a FETCH FLAGS): a pending change up to that modseq needs no announcement."""
        pending = self._flags.get(uid)
        if pending is not None and pending <= modseq:
            del self._flags[uid]

    def shown_many(self, uids: Iterable[int], modseqs: Iterable[int]) -> None:
        """`shown` for aligned UIDs and modseqs; nothing to do when nothing is pending."""
        pending = self._flags
        if not pending:
            return
        for uid, modseq in zip(uids, modseqs, strict=True):
            p = pending.get(uid)
            if p is not None and p <= modseq:
                del pending[uid]

    @property
    def has_pending_flags(self) -> bool:
        """Some flag change of another session waits to be announced."""
        return bool(self._flags)

    def drop_flag_updates(self) -> None:
        self._flags.clear()

    @property
    def has_pending(self) -> bool:
        return bool(self._new or self._expunged or self._flags)

    @property
    def has_pending_expunges(self) -> bool:
        return bool(self._expunged)

    # -- announcing -------------------------------------------------------------------

    def take_updates(self, *, allow_expunge: bool, vanished: bool = False) -> Updates:
        """Apply to the map what may be announced now and say what to send."""
        out = Updates()
        if allow_expunge and self._expunged:
            gone = self._expunged
            if vanished:
                out.vanished_uids = sorted(gone)
            else:
                out.expunged_seqs = [
                    seq for seq in range(len(self._uids), 0, -1) if self._uids[seq - 1] in gone
                ]
            self._uids = array("Q", (u for u in self._uids if u not in gone))
            self._expunged = set()
        if self._new:
            last = self._uids[-1] if self._uids else 0
            fresh = sorted(u for u in self._new if u > last)
            if len(fresh) != len(self._new):
                log.warning(
                    "imap.view_uid_order folder=%s dropped=%d",
                    self.folder,
                    len(self._new) - len(fresh),
                )
            self._uids.extend(fresh)
            self._new = set()
            if fresh:
                out.exists = len(self._uids)
        if self._flags:
            pending = self._flags
            self._flags = {}
            for u in sorted(pending):
                if u in self._expunged:
                    continue
                seq = self.seq_of(u)
                if seq is not None:
                    out.flag_changes.append((seq, u))
        return out

    def remove_now(self, uids: Iterable[int]) -> None:
        """Forget messages without announcing them (CLOSE expunges silently,
        RFC 9051 §6.4.1); only used right before the view is dropped."""
        gone = set(uids)
        self._uids = array("Q", (u for u in self._uids if u not in gone))
        self._expunged -= gone


def _merge(spans: list[tuple[int, int]]) -> Iterable[int]:
    """The numbers of inclusive spans, ascending, each once."""
    merged = _merged_spans(spans)
    if len(merged) == 1:
        lo, hi = merged[0]
        return range(lo, hi + 1)
    out: list[int] = []
    for lo, hi in merged:
        out.extend(range(lo, hi + 1))
    return out


def _merged_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Inclusive spans sorted, overlapping and adjacent ones joined."""
    if len(spans) <= 1:
        return spans
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out

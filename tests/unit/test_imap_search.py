"""SEARCH evaluation (RFC 9051 §6.4.4, RFC 5032, RFC 5182, RFC 7162) and ESEARCH data."""

from __future__ import annotations

import base64
import calendar
import datetime
from collections.abc import Sequence
from pathlib import Path

import pytest

from pymta.imap.command import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchReturn,
    SearchSequence,
    SearchSize,
    SearchWithin,
    SeqRange,
    SequenceSet,
)
from pymta.imap.search import (
    FIELD_COLUMNS,
    META_COLUMNS,
    SENT_COLUMN,
    Row,
    Searcher,
    SearchResult,
    esearch_data,
    esearch_suppressed,
    needs_files,
    saved_result,
    search_columns,
    search_response,
    sequence_set,
)
from pymta.mime.summary import build_summary
from pymta.mime.text import search_forms
from pymta.store.model import MessageMeta

UTC = datetime.UTC
NOW = calendar.timegm((2024, 3, 10, 12, 0, 0))


def ts(y: int, m: int, d: int, hh: int = 12, mm: int = 0) -> float:
    return float(calendar.timegm((y, m, d, hh, mm, 0)))


# Five messages, each a (raw, flags, keywords, internal date). UIDs 10, 20, 30, 40, 50.
MESSAGES: list[tuple[bytes, str, tuple[str, ...], float]] = [
    (
        b"From: Alice Example <alice@example.org>\r\n"
        b"To: bob@example.net\r\n"
        b"Subject: Lunch on Friday\r\n"
        b"Date: Fri, 1 Mar 2024 23:30:00 -0800\r\n"
        b"X-Mailer: Pine\r\n"
        b"\r\n"
        b"Shall we meet at noon?\r\n",
        "S",
        (),
        ts(2024, 3, 1, 9),
    ),
    (
        b"From: =?utf-8?q?Ren=C3=A9_Fran=C3=A7ois?= <rene@example.fr>\r\n"
        b"To: alice@example.org\r\n"
        b"Cc: Carol <carol@example.com>\r\n"
        b"Subject: =?iso-8859-1?q?Caf=E9?= =?utf-8?b?w6AgUGFyaXM=?=\r\n"
        b"Date: Sat, 2 Mar 2024 08:00:00 +0100\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
        b"Le caf=E9 est pr=EAt.\r\n",
        "FRS",
        ("$Work",),
        ts(2024, 3, 2, 0, 30),
    ),
    (
        b"From: bob@example.net\r\n"
        b"To: alice@example.org\r\n"
        b"Bcc: secret@example.org\r\n"
        b"Subject: Report\r\n"
        b"X-Priority: 1 (Highest)\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n'
        b"\r\n"
        b"--b\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        + base64.encodebytes("The quarterly numbers are in. Überraschung!".encode())
        + b"--b\r\n"
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.encodebytes(b"binary needle inside") + b"--b--\r\n",
        "",
        (),
        ts(2024, 3, 9),
    ),
    (
        b"From: carol@example.com\r\n"
        b"Subject: folded\r\n"
        b"  subject line\r\n"
        b"X-Spam: no\r\n"
        b"X-Spam: yes\r\n"
        b"Content-Type: message/rfc822\r\n"
        b"\r\n"
        b"From: inner@example.org\r\n"
        b"Subject: forwarded inner\r\n"
        b"\r\n"
        b"the inner body text\r\n",
        "D",
        ("Later",),
        ts(2024, 3, 10, 11),
    ),
    (
        b"Subject: no date, no from\r\n\r\nshort\r\n",
        "T",
        (),
        ts(2024, 2, 28),
    ),
]
UIDS = [10, 20, 30, 40, 50]


class Reader:
    """Serves the messages above and counts what is opened."""

    def __init__(self) -> None:
        self.opened: list[int] = []
        self.by_uid = {uid: raw for uid, (raw, *_) in zip(UIDS, MESSAGES, strict=True)}

    def __call__(self, meta: MessageMeta) -> bytes:
        self.opened.append(meta.uid)
        return self.by_uid[meta.uid]


# Every column a search may read: what `rows` builds, as the store would return them.
ALL = (*META_COLUMNS, *FIELD_COLUMNS.values(), SENT_COLUMN)


def row_of(uid: int, raw: bytes, flags: str, keywords: tuple[str, ...], when: float) -> Row:
    f = search_forms(build_summary(raw).envelope)
    values = {
        "uid": uid,
        "flags": flags,
        "keywords": " ".join(keywords),
        "modseq": uid * 10,
        "internal_date": when,
        "size": len(raw),
        "file": f"cur/{uid}",
        "search_date": f.date,
        "search_subject": f.subject,
        "search_from": f.from_,
        "search_to": f.to,
        "search_cc": f.cc,
        "search_bcc": f.bcc,
        "search_in_reply_to": f.in_reply_to,
        "search_message_id": f.message_id,
        SENT_COLUMN: f.sent,
    }
    return tuple(values[c] for c in ALL)


def rows() -> list[Row]:
    return [row_of(uid, *message) for uid, message in zip(UIDS, MESSAGES, strict=True)]


def run(*keys: SearchKey, reader: Reader | None = None, saved: Sequence[int] = ()) -> list[int]:
    searcher = Searcher(tz=UTC, clock=lambda: NOW, reader=reader or Reader())
    key = keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))
    return searcher.search(key, rows(), ALL, saved=saved).uids


def seqset(*ranges: tuple[int | None, int | None]) -> SequenceSet:
    return SequenceSet(tuple(SeqRange(a, b) for a, b in ranges))


# -- flags and meta keys ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SearchAll(), UIDS),
        (SearchFlag("\\Seen"), [10, 20]),
        (SearchFlag("\\Seen", present=False), [30, 40, 50]),
        (SearchFlag("\\Answered"), [20]),
        (SearchFlag("\\Flagged"), [20]),
        (SearchFlag("\\Draft"), [40]),
        (SearchFlag("\\Deleted"), [50]),
        (SearchFlag("\\DELETED", present=False), [10, 20, 30, 40]),
        (SearchFlag("$work"), [20]),  # keywords are case-insensitive
        (SearchFlag("Later", present=False), [10, 20, 30, 50]),
        (SearchFlag("\\Recent"), []),  # RECENT / NEW
        (SearchFlag("\\Recent", present=False), UIDS),  # OLD
        (SearchFlag("\\Unknown"), []),
        (SearchSize(larger=True, size=len(MESSAGES[0][0])), [20, 30, 40]),
        (SearchSize(larger=False, size=len(MESSAGES[0][0])), [50]),
        (SearchModseq(300), [30, 40, 50]),
    ],
)
def test_meta_keys(key: SearchKey, expected: list[int]) -> None:
    assert run(key) == expected


def test_sequence_numbers_and_uids() -> None:
    assert run(SearchSequence(seqset((2, 2), (4, None)))) == [20, 40, 50]
    assert run(SearchSequence(seqset((None, 4)))) == [40, 50]  # "*:4" is "4:*"
    assert run(SearchSequence(seqset((25, 40)), uid=True)) == [30, 40]
    assert run(SearchSequence(seqset((None, None)), uid=True)) == [50]
    assert run(SearchSequence(seqset((60, 70)), uid=True)) == []


def test_star_means_the_view_not_the_last_message_given() -> None:
    searcher = Searcher(tz=UTC, reader=Reader())
    key = SearchSequence(seqset((None, None)))
    assert searcher.search(key, rows()[:3], ALL, max_seq=5).uids == []
    assert searcher.search(key, rows()[:3], ALL).uids == [30]


def test_sequence_numbers_are_the_views() -> None:
    # The rows of messages 2 and 4 only (the others did not match an earlier filter).
    searcher = Searcher(tz=UTC, reader=Reader())
    some = [rows()[1], rows()[3]]
    result = searcher.search(SearchSequence(seqset((3, 5))), some, ALL, seqs=[2, 4], max_seq=5)
    assert (result.seqs, result.uids) == ([4], [40])


def test_dollar_is_the_saved_result() -> None:
    key = SearchSequence(SequenceSet(saved=True))
    assert run(key, saved=[20, 40, 99]) == [20, 40]
    assert run(key) == []  # RFC 5182 §2.1: "$" before any SAVE is empty


def test_internal_dates_use_the_server_timezone_and_ignore_time() -> None:
    d = datetime.date
    on = SearchDate(DateField.INTERNAL, DateOp.ON, d(2024, 3, 2))
    assert run(on) == [20]
    assert run(SearchDate(DateField.INTERNAL, DateOp.BEFORE, d(2024, 3, 2))) == [10, 50]
    assert run(SearchDate(DateField.INTERNAL, DateOp.SINCE, d(2024, 3, 9))) == [30, 40]
    # In UTC-2 message 20 (00:30 UTC on the 2nd) was received on the 1st.
    minus2 = datetime.timezone(datetime.timedelta(hours=-2))
    searcher = Searcher(tz=minus2, reader=Reader())
    assert searcher.search(on, rows(), ALL).uids == []
    on_first = SearchDate(DateField.INTERNAL, DateOp.ON, d(2024, 3, 1))
    assert searcher.search(on_first, rows(), ALL).uids == [10, 20]


def test_sent_dates_use_the_date_header_as_written() -> None:
    d = datetime.date
    # Message 10 says "Fri, 1 Mar 2024 23:30:00 -0800": the 1st, although in UTC it was the
    # 2nd (RFC 9051 §6.4.4: "disregarding time and timezone").
    assert run(SearchDate(DateField.SENT, DateOp.ON, d(2024, 3, 1))) == [10]
    assert run(SearchDate(DateField.SENT, DateOp.ON, d(2024, 3, 2))) == [20]
    # Without a Date: header the internal date stands in (40: 10 Mar, 30: 9 Mar, 50: 28 Feb).
    assert run(SearchDate(DateField.SENT, DateOp.SINCE, d(2024, 3, 2))) == [20, 30, 40]
    assert run(SearchDate(DateField.SENT, DateOp.BEFORE, d(2024, 3, 1))) == [50]


def test_within_is_relative_to_the_injected_clock() -> None:
    assert run(SearchWithin(older=False, seconds=2 * 86400)) == [30, 40]
    assert run(SearchWithin(older=True, seconds=2 * 86400)) == [10, 20, 50]
    # RFC 5032 §2: both bounds are inclusive.
    exactly = int(NOW - ts(2024, 3, 10, 11))
    assert run(SearchWithin(older=True, seconds=exactly)) == [10, 20, 30, 40, 50]
    assert run(SearchWithin(older=False, seconds=exactly)) == [40]


# -- header keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SearchHeader("SUBJECT", "lunch"), [10]),
        (SearchHeader("SUBJECT", "caféà paris"), [20]),  # two encoded words, joined
        (SearchHeader("SUBJECT", "CAFÉ"), [20]),
        (SearchHeader("SUBJECT", "folded subject"), [40]),  # unfolded
        (SearchHeader("SUBJECT", ""), UIDS),
        (SearchHeader("FROM", "alice@example.org"), [10]),
        (SearchHeader("FROM", "rené françois"), [20]),
        (SearchHeader("FROM", "BOB"), [30]),
        (SearchHeader("TO", "alice"), [20, 30]),
        (SearchHeader("CC", "carol"), [20]),
        (SearchHeader("BCC", "secret"), [30]),
        (SearchHeader("FROM", ""), [10, 20, 30, 40]),  # presence
        (SearchHeader("DATE", "mar 2024"), [10, 20]),
        (SearchHeader("X-Mailer", "pine"), [10]),
        (SearchHeader("x-priority", "highest"), [30]),
        (SearchHeader("X-Spam", "yes"), [40]),  # any occurrence
        (SearchHeader("X-Mailer", ""), [10]),
        (SearchHeader("Reply-To", "alice"), []),  # the ENVELOPE would copy From
        (SearchHeader("SUBJECT", "forwarded inner"), []),  # not the encapsulated message
    ],
)
def test_header_keys(key: SearchKey, expected: list[int]) -> None:
    assert run(key) == expected


def test_indexed_header_keys_read_no_file() -> None:
    reader = Reader()
    for key in [
        SearchHeader("SUBJECT", "café"),
        SearchHeader("FROM", "rené"),
        SearchHeader("TO", "alice"),
        SearchHeader("Message-ID", "x"),
        SearchDate(DateField.SENT, DateOp.ON, datetime.date(2024, 3, 1)),
    ]:
        run(key, reader=reader)
        assert not needs_files(key)
    assert reader.opened == []


def test_utf8_search_string_matches_8bit_header() -> None:
    raw = "Subject: Grüße aus Köln\r\n\r\nhi\r\n".encode()
    searcher = Searcher(tz=UTC, reader=lambda _: raw)
    row = row_of(1, raw, "", (), 0.0)
    assert searcher.search(SearchHeader("SUBJECT", "GRÜSSE"), [row], ALL).uids == [1]


# -- body and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (SearchBody("noon"), [10]),
        (SearchBody("café est prêt"), [20]),  # quoted-printable, iso-8859-1
        (SearchBody("quarterly numbers"), [30]),  # base64, utf-8
        (SearchBody("überraschung"), [30]),
        (SearchBody("binary needle"), []),  # not a text part
        (SearchBody("inner body text"), [40]),  # inside message/rfc822
        (SearchBody("lunch"), []),  # BODY does not look at headers
        (SearchBody("lunch", include_headers=True), [10]),  # TEXT does
        (SearchBody("x-mailer: pine", include_headers=True), [10]),
        (SearchBody("forwarded inner", include_headers=True), [40]),
        (SearchBody("", include_headers=False), UIDS),
    ],
)
def test_body_and_text(key: SearchKey, expected: list[int]) -> None:
    assert run(key) == expected


def test_file_read_once_per_message_for_several_file_keys() -> None:
    reader = Reader()
    assert run(SearchBody("the"), SearchHeader("X-Spam", "yes"), reader=reader) == [40]
    assert reader.opened == UIDS


def test_unreadable_file_matches_no_file_key() -> None:
    def gone(meta: MessageMeta) -> bytes:
        raise FileNotFoundError(meta.uid)

    searcher = Searcher(tz=UTC, reader=gone)
    key = SearchOr(SearchBody("noon"), SearchFlag("\\Deleted"))
    assert searcher.search(key, rows(), ALL).uids == [50]


# -- cost ordering: cheap keys never open files -----------------------------------------------


def test_cheap_keys_never_open_files() -> None:
    reader = Reader()
    key = SearchAnd(
        (
            SearchOr(SearchFlag("\\Seen"), SearchFlag("\\Draft")),
            SearchNot(SearchSize(larger=True, size=10**6)),
            SearchHeader("SUBJECT", "o"),
            SearchHeader("FROM", "example"),
            SearchDate(DateField.SENT, DateOp.SINCE, datetime.date(2000, 1, 1)),
            SearchWithin(older=True, seconds=1),
            SearchSequence(seqset((1, None))),
        )
    )
    assert run(key, reader=reader) == [10, 40]
    assert reader.opened == []
    assert not needs_files(key)


def test_file_keys_run_last_and_only_on_survivors() -> None:
    reader = Reader()
    # The body key comes first in the command; it is still evaluated after the flag.
    assert run(SearchBody("the"), SearchFlag("\\Draft"), reader=reader) == [40]
    assert reader.opened == [40]
    reader = Reader()
    # In an OR the cheap side is tried first: a match there opens nothing.
    assert run(SearchOr(SearchBody("noon"), SearchFlag("\\Seen")), reader=reader) == [10, 20]
    assert reader.opened == [30, 40, 50]


def test_search_columns_name_what_the_rows_must_hold() -> None:
    assert search_columns(SearchHeader("SUBJECT", "x")) == ("uid", "search_subject")
    cheap = SearchAnd((SearchFlag("\\Flagged"), SearchSize(larger=True, size=9), SearchAll()))
    assert search_columns(cheap) == ("uid", "flags", "size")
    assert search_columns(SearchFlag("$Work")) == ("uid", "keywords")
    assert search_columns(SearchFlag("\\Recent")) == ("uid",)
    sent = SearchDate(DateField.SENT, DateOp.ON, datetime.date(2024, 1, 1))
    assert search_columns(sent) == ("uid", "internal_date", "sent_day")  # no Date: header
    key = SearchAnd(
        (
            SearchNot(SearchHeader("Subject", "x")),
            SearchOr(SearchHeader("FROM", "a"), SearchHeader("Reply-To", "b")),
            SearchHeader("TO", ""),  # presence: read from the file
            sent,
            SearchBody("x"),
        )
    )
    # Files are read: a MessageMeta is made of the message's own columns.
    assert search_columns(key) == (*META_COLUMNS, "search_subject", "search_from", "sent_day")
    assert needs_files(key)


def test_rows_without_a_needed_column_are_refused() -> None:
    searcher = Searcher(tz=UTC, reader=Reader())
    with pytest.raises(ValueError, match="search_subject"):
        searcher.search(SearchHeader("SUBJECT", "x"), [(1, "S")], ("uid", "flags"))


# -- trees ------------------------------------------------------------------------------------


def test_and_or_not_trees() -> None:
    seen = SearchFlag("\\Seen")
    draft = SearchFlag("\\Draft")
    deleted = SearchFlag("\\Deleted")
    assert run(SearchOr(seen, draft)) == [10, 20, 40]
    assert run(SearchNot(SearchOr(seen, draft))) == [30, 50]
    assert run(SearchOr(SearchAnd((seen, SearchHeader("SUBJECT", "café"))), deleted)) == [20, 50]
    assert run(SearchAnd(())) == UIDS
    assert run(SearchNot(SearchNot(seen))) == [10, 20]
    assert run(seen, SearchNot(SearchFlag("\\Answered")), SearchAll()) == [10]


def test_result_carries_seqs_and_highest_modseq() -> None:
    searcher = Searcher(tz=UTC, reader=Reader())
    result = searcher.search(SearchFlag("\\Seen", False), rows(), ALL)
    assert result == SearchResult(seqs=[3, 4, 5], uids=[30, 40, 50], highest_modseq=500)
    assert searcher.search(SearchFlag("x"), rows(), ALL).highest_modseq == 0
    # Rows without modseq (the key does not use MODSEQ): nothing to report.
    flags_only = [(uid, flags) for uid, flags, *_ in rows()]
    result = searcher.search(SearchFlag("\\Seen", False), flags_only, ("uid", "flags"))
    assert result == SearchResult(seqs=[3, 4, 5], uids=[30, 40, 50], highest_modseq=0)


# -- results ----------------------------------------------------------------------------------


def test_sequence_set_compresses_runs() -> None:
    assert sequence_set([1, 2, 3, 5, 8, 9]) == b"1:3,5,8:9"
    assert sequence_set([7]) == b"7"
    assert sequence_set([]) == b""


def test_search_response() -> None:
    assert search_response([2, 5]) == b"SEARCH 2 5"
    assert search_response([]) == b"SEARCH"
    assert search_response([2, 5], highest_modseq=917) == b"SEARCH 2 5 (MODSEQ 917)"
    assert search_response([], highest_modseq=917) == b"SEARCH"


R = SearchReturn


@pytest.mark.parametrize(
    ("numbers", "options", "expected"),
    [
        ([2, 3, 4, 9], (R.MIN, R.MAX, R.COUNT), b"MIN 2 MAX 9 COUNT 4"),
        ([2, 3, 4, 9], (), b"ALL 2:4,9"),  # RETURN () means ALL
        ([2, 3, 4, 9], (R.ALL,), b"ALL 2:4,9"),
        ([], (R.MIN, R.MAX, R.ALL, R.COUNT), b"COUNT 0"),
        ([], (R.MIN,), b""),
        ([5], (R.SAVE, R.COUNT), b"COUNT 1"),
    ],
)
def test_esearch_data(numbers: list[int], options: tuple[R, ...], expected: bytes) -> None:
    assert esearch_data(numbers, options) == expected


def test_esearch_modseq() -> None:
    assert esearch_data([1, 2], (R.COUNT,), highest_modseq=77) == b"COUNT 2 MODSEQ 77"
    assert esearch_data([], (R.COUNT,), highest_modseq=77) == b"COUNT 0"


def test_save_alone_suppresses_esearch() -> None:
    assert esearch_suppressed((R.SAVE,))
    assert not esearch_suppressed((R.SAVE, R.MIN))
    assert not esearch_suppressed(())


@pytest.mark.parametrize(
    ("options", "saved"),
    [
        ((R.SAVE,), [10, 20, 30]),
        ((R.SAVE, R.MIN), [10]),
        ((R.SAVE, R.MAX), [30]),
        ((R.SAVE, R.MIN, R.MAX), [10, 30]),
        ((R.SAVE, R.MIN, R.COUNT), [10, 20, 30]),  # RFC 5182 §2.4 table
        ((R.SAVE, R.ALL), [10, 20, 30]),
        ((R.MIN,), None),
    ],
)
def test_saved_result(options: tuple[R, ...], saved: list[int] | None) -> None:
    result = SearchResult(seqs=[1, 2, 3], uids=[10, 20, 30], highest_modseq=0)
    assert saved_result(result, options) == saved


def test_default_reader_streams_maildir_files(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    raws = [b"Subject: a\r\n\r\nfirst needle\r\n", b"Subject: b\r\n\r\nsecond\r\n"]
    found = []
    for uid, raw in enumerate(raws, 1):
        name = f"cur/{uid}:2,"
        (tmp_path / name).write_bytes(raw)
        found.append((uid, "", "", 1, 0.0, len(raw), name))
    searcher = Searcher(tz=UTC)
    result = searcher.search(SearchBody("NEEDLE"), found, META_COLUMNS, directory=tmp_path)
    assert result.uids == [1]

"""Response encoding: strings, mailbox names, sets, dates and response lines, checked on
bytes and by round trip through the grammar rules the parser uses."""

from __future__ import annotations

import calendar
import datetime
import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymta.imap import grammar, wire
from pymta.imap.command import SeqRange

# -- strings (RFC 9051 §4.3) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("INBOX", b"INBOX"),
        ("a]b", b'"a]b"'),  # resp-specials: not in an atom we write
        ("two words", b'"two words"'),
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ('say "hi" \\o/', b'"say \\"hi\\" \\\\o/"'),
        ("a*b%c(d)e{f", b'"a*b%c(d)e{f"'),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("nul\0", b"{4}\r\nnul\0"),
        ("Grüße", b"{7}\r\nGr\xc3\xbc\xc3\x9fe"),
    ],
)
def test_astring(value: str, expected: bytes) -> None:
    assert wire.astring(value) == expected


def test_utf8_goes_quoted_once_enabled() -> None:
    assert wire.astring("Grüße", utf8=True) == b'"Gr\xc3\xbc\xc3\x9fe"'
    assert wire.string("Grüße", utf8=True) == b'"Gr\xc3\xbc\xc3\x9fe"'
    assert wire.astring("a\r\nb", utf8=True) == b"{4}\r\na\r\nb"


def test_string_is_never_an_atom() -> None:
    assert wire.string("INBOX") == b'"INBOX"'
    assert wire.string(b"bytes") == b'"bytes"'


def test_quoted_refuses_line_breaks_and_nul() -> None:
    for bad in ("a\rb", "a\nb", "a\0b"):
        with pytest.raises(ValueError):
            wire.quoted(bad)


def test_nstring_literal_literal8() -> None:
    assert wire.nstring(None) == b"NIL"
    assert wire.nstring("NIL") == b'"NIL"'
    assert wire.nstring(b"x\r\n") == b"{3}\r\nx\r\n"
    assert wire.literal(b"") == b"{0}\r\n"
    assert wire.literal8(b"a\0b") == b"~{3}\r\na\0b"


def reparse(encoded: bytes, rule: str = "astring") -> bytes:
    reader = grammar.Reader(encoded, utf8_names=False)
    value = getattr(grammar, rule)(reader)
    assert reader.at_end()
    return value  # type: ignore[no-any-return]


@given(st.binary(max_size=40))
@settings(max_examples=300)
def test_astring_round_trip_bytes(value: bytes) -> None:
    if b"\0" in value:  # NUL cannot travel in a literal (CHAR8): that is literal8's job
        assert reparse(wire.literal8(value), "literal8") == value
        return
    assert reparse(wire.astring(value)) == value
    assert reparse(wire.string(value), "string") == value
    assert reparse(wire.nstring(value), "nstring") == value


@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=30))
@settings(max_examples=300)
def test_astring_round_trip_text(value: str) -> None:
    data = value.encode("utf-8")
    for utf8 in (False, True):
        encoded = wire.astring(value, utf8=utf8)
        if b"\0" in data:
            assert encoded.startswith(b"{")
            continue
        if not utf8 and not value.isascii():
            assert encoded.startswith(b"{")  # 8-bit is never quoted for a rev1 client
        assert reparse(encoded) == data


# -- mailbox names (RFC 3501 §5.1.3, RFC 6855 §3) ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "utf8", "expected"),
    [
        ("INBOX", False, b"INBOX"),
        ("Sent", False, b'"Sent"'),
        ("Entwürfe", False, b'"Entw&APw-rfe"'),
        ("AT&T", False, b'"AT&-T"'),
        ("日本語", False, b'"&ZeVnLIqe-"'),
        ("Entwürfe", True, b'"Entw\xc3\xbcrfe"'),
        ("AT&T", True, b'"AT&T"'),
        ('My "Box"', False, b'"My \\"Box\\""'),
    ],
)
def test_mailbox_name(name: str, utf8: bool, expected: bytes) -> None:
    assert wire.mailbox_name(name, utf8) == expected


@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20))
@settings(max_examples=300)
def test_mailbox_name_round_trip(name: str) -> None:
    for utf8 in (False, True):
        reader = grammar.Reader(wire.mailbox_name(name, utf8), utf8_names=utf8)
        decoded = grammar.mailbox(reader)
        assert reader.at_end()
        assert decoded == ("INBOX" if name.upper() == "INBOX" else name)


def test_flag_list() -> None:
    assert wire.flag_list([]) == b"()"
    assert wire.flag_list(["\\Seen", "$Junk"]) == b"(\\Seen $Junk)"


# -- sequence sets -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numbers", "expected"),
    [
        ([1], b"1"),
        ([1, 2, 3, 4, 5, 7, 9, 10, 11, 12], b"1:5,7,9:12"),
        ([12, 9, 1, 10, 11, 1], b"1,9:12"),
        ([3, 5], b"3,5"),
        (range(1, 20001), b"1:20000"),
    ],
)
def test_sequence_set(numbers: list[int], expected: bytes) -> None:
    assert wire.sequence_set(numbers) == expected


def test_unordered_sequence_set_keeps_the_order() -> None:
    assert wire.sequence_set([5, 6, 7, 2, 3, 9], ordered=False) == b"5:7,2:3,9"


def test_sequence_set_refuses_empty_and_zero() -> None:
    for bad in ([], [0, 1], [3, 0]):
        with pytest.raises(ValueError):
            wire.sequence_set(bad)
    with pytest.raises(ValueError):
        wire.sequence_set([3, 0], ordered=False)


@given(st.sets(st.integers(1, 5000), min_size=1, max_size=200))
def test_sequence_set_round_trip(numbers: set[int]) -> None:
    encoded = wire.sequence_set(numbers)
    parsed = grammar.sequence_set(grammar.Reader(encoded, utf8_names=False))
    expanded: set[int] = set()
    for r in parsed.ranges:
        assert isinstance(r, SeqRange) and r.first is not None and r.last is not None
        expanded.update(range(r.first, r.last + 1))
    assert expanded == numbers


# -- dates -------------------------------------------------------------------------------------


def test_imap_date_time() -> None:
    ts = calendar.timegm((2026, 11, 26, 2, 30, 0))
    assert wire.imap_date_time(ts) == b'"26-Nov-2026 02:30:00 +0000"'
    assert wire.imap_date_time(calendar.timegm((2024, 1, 5, 9, 8, 7))) == (
        b'"05-Jan-2024 09:08:07 +0000"'
    )
    assert wire.imap_date_time(-5) == b'"01-Jan-1970 00:00:00 +0000"'


@given(st.integers(0, 253402300799))
def test_imap_date_time_round_trip(ts: int) -> None:
    reader = grammar.Reader(wire.imap_date_time(ts), utf8_names=False)
    parsed = grammar.date_time(reader)
    assert parsed == datetime.datetime.fromtimestamp(ts, datetime.UTC)


# -- response lines ----------------------------------------------------------------------------


class Code(enum.Enum):
    TRYCREATE = "TRYCREATE"


def test_tagged_and_untagged() -> None:
    assert wire.tagged("a1", wire.OK, None, "LOGIN completed") == b"a1 OK LOGIN completed\r\n"
    assert wire.tagged("a1", wire.NO, Code.TRYCREATE, "No such mailbox") == (
        b"a1 NO [TRYCREATE] No such mailbox\r\n"
    )
    assert wire.tagged("a1", wire.OK, "READ-WRITE", "") == b"a1 OK [READ-WRITE] Completed\r\n"
    assert wire.untagged_status(wire.OK, wire.code_uidvalidity(3857529045), "UIDs valid") == (
        b"* OK [UIDVALIDITY 3857529045] UIDs valid\r\n"
    )
    assert wire.untagged(b"172 EXISTS") == b"* 172 EXISTS\r\n"
    assert wire.untagged_status(wire.BYE, None, "Logging out") == b"* BYE Logging out\r\n"


def test_response_text_injection_is_impossible() -> None:
    line = wire.tagged("a1", wire.BAD, None, "oops\r\na2 OK fake\r\n")
    assert line.count(b"\r\n") == 1 and line.endswith(b"\r\n")


def test_continuations() -> None:
    assert wire.continuation() == b"+ Ready\r\n"
    assert wire.challenge(b"") == b"+ \r\n"
    assert wire.challenge(b"Username:") == b"+ VXNlcm5hbWU6\r\n"


def test_response_codes() -> None:
    assert wire.code_uidnext(4392) == b"UIDNEXT 4392"
    assert wire.code_highestmodseq(715194045007) == b"HIGHESTMODSEQ 715194045007"
    assert wire.code_modified([7, 9, 8, 12]) == b"MODIFIED 7:9,12"
    assert wire.code_appenduid(38505, [3955]) == b"APPENDUID 38505 3955"
    assert wire.code_appenduid(38505, [3955, 3956, 3957]) == b"APPENDUID 38505 3955:3957"
    assert wire.code_copyuid(38505, [304, 319, 320], [3956, 3957, 3958]) == (
        b"COPYUID 38505 304,319:320 3956:3958"
    )
    with pytest.raises(ValueError):
        wire.code_copyuid(1, [1, 2], [3])
    assert wire.code_permanentflags(["\\Seen", "\\Deleted"]) == (
        b"PERMANENTFLAGS (\\Seen \\Deleted \\*)"
    )
    assert wire.code_permanentflags([], new_keywords=False) == b"PERMANENTFLAGS ()"
    assert wire.code_capability(["IMAP4rev1", "IMAP4rev2"]) == b"CAPABILITY IMAP4rev1 IMAP4rev2"
    assert wire.code_badcharset(["US-ASCII", "UTF-8"]) == b"BADCHARSET (US-ASCII UTF-8)"

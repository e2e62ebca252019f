"""The IMAP grammar's ground floor: `Reader`, `ParseError` and the basic token rules.

One function per grammar rule, named after the rule, its docstring quoting the ABNF of
RFC 9051 §9 (or of the extension that defines it). Each takes the `Reader` (one framed
command and a position in it), consumes exactly its rule and returns the value; anything
malformed raises `ParseError(tag, message)`, which the session answers `tag BAD message`
(`* BAD` before a tag is known). Messages are generic and never echo the client's bytes.

This module holds the rules every command shares: tag, atom, the numbers (number,
nz-number, number64, mod-sequence-value), the strings (quoted, literal, literal8, string,
astring, nstring), mailbox and list-mailbox, sequence-set, flag and flag-list, date and
date-time, header-fld-name. Built on it: grammar_search.py (SEARCH's search-program),
grammar_fetch.py (FETCH's items and modifiers), grammar_mailbox.py (the parameters of
SELECT, CREATE, LIST and STATUS), and parser.py, which turns a whole command into a
`command.Command`.

Decisions:
- Keywords are case-insensitive (RFC 9051 §9 note 1); SP is exactly one space (note 2).
- Mailbox names are decoded here: modified UTF-7 (RFC 3501 §5.1.3, canonical form only) for
  rev1 clients, UTF-8 once the client enabled IMAP4rev2 or UTF8=ACCEPT (`utf8_names`,
  RFC 9051 §5.1, RFC 6855 §3). Any case of "INBOX" becomes "INBOX" (RFC 9051 §5.1).
- Work is bounded before it is done: parenthesised nesting (search keys, NOT/OR chains)
  deeper than MAX_DEPTH, more than MAX_ITEMS list elements in one command, or more than
  MAX_SEQUENCE_RANGES ranges in one set are a ParseError; every rule is linear in its input.
- Strings in literals must not hold NUL (RFC 9051 §9 CHAR8); APPEND message data may (it is
  stored as sent, so a message is never refused for a stray NUL).
"""

from __future__ import annotations

import datetime
import re
from typing import NoReturn

from pymta.store.errors import InvalidName
from pymta.store.names import mutf7_decode

from .command import SeqRange, SequenceSet

MAX_DEPTH = 100  # nested parentheses / NOT / OR in one command
MAX_ITEMS = 10_000  # list elements in one command: search keys, fetch items, flags, ...
# A 64 KiB line holds at most ~32,000 ranges ("1,"); clients send long UID sets (QRESYNC
# known-uids, mbsync), so this cap is above what the default line limit allows.
MAX_SEQUENCE_RANGES = 65_536
MAX_NUMBER = 0xFFFF_FFFF  # number, nz-number: unsigned 32-bit (RFC 9051 §9)
MAX_NUMBER64 = 0x7FFF_FFFF_FFFF_FFFF  # number64, mod-sequence-value: 63-bit

# ATOM-CHAR = <any CHAR except atom-specials>; atom-specials = "(" / ")" / "{" / SP / CTL /
# "%" / "*" / DQUOTE / "\" / "]"  (RFC 9051 §9)
_ATOM = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+")
_ASTRING_ATOM = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5d-\x7a\x7c-\x7e]+")  # + "]"
_LIST_ATOM = re.compile(rb"[\x21\x23-\x27\x2a-\x5b\x5d-\x7a\x7c-\x7e]+")  # + "%" "*" "]"
_TAG = re.compile(rb"[\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+")  # astring - "+"
_QUOTED = re.compile(rb'"((?:[^"\\\r\n\x00]|\\["\\])*)"')
_QUOTED_ESCAPE = re.compile(rb'\\(["\\])')
_LITERAL = re.compile(rb"\{([0-9]{1,20})(\+?)\}\r\n")
_LITERAL8 = re.compile(rb"~\{([0-9]{1,20})(\+?)\}\r\n")
_DIGITS = re.compile(rb"[0-9]+")
_KEYWORD = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._:=\-]*")  # command and item names
_SEQ_RANGE = rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?"
_SEQUENCE_SET = re.compile(_SEQ_RANGE + rb"(?:," + _SEQ_RANGE + rb")*")
_DATE = re.compile(rb"([0-9]{1,2})-([A-Za-z]{3})-([0-9]{4})")
_DATE_TIME = re.compile(
    rb'"([ 0-9]?[0-9])-([A-Za-z]{3})-([0-9]{4}) '
    rb'([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})([0-9]{2})"'
)
_MONTHS = {
    m: i
    for i, m in enumerate(
        b"JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(),
        start=1,
    )
}
# System flags in their canonical spelling (RFC 9051 §2.3.2); keywords keep the client's.
_SYSTEM_FLAGS = {
    f.upper(): f for f in ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "\\Recent")
}
_HEADER_FIELD = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext


class ParseError(Exception):
    """A malformed command: answer `tag BAD message` (or `* BAD message` if tag is None)."""

    def __init__(self, tag: str | None, message: str) -> None:
        super().__init__(message)
        self.tag = tag
        self.message = message


class Reader:
    """One frame and a position in it, plus what the rules need to know of the session."""

    __slots__ = ("charset", "data", "depth", "items", "pos", "tag", "utf8_names")

    def __init__(self, data: bytes, *, utf8_names: bool) -> None:
        self.data = data
        self.pos = 0
        self.tag: str | None = None
        self.utf8_names = utf8_names
        self.depth = 0
        self.items = 0
        self.charset: str | None = None  # SEARCH CHARSET, for decoding its strings

    def fail(self, message: str) -> NoReturn:
        raise ParseError(self.tag, message)

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def peek(self) -> int:
        """The next octet, or -1 at the end."""
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def skip(self, token: bytes) -> bool:
        """Consume `token` (exact octets) if it comes next."""
        if self.data.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def expect(self, token: bytes, what: str) -> None:
        if not self.skip(token):
            self.fail(f"expected {what}")

    def sp(self) -> None:
        """SP = %x20, exactly one (RFC 9051 §9 note 2)."""
        self.expect(b" ", "a space")

    def match(self, pattern: re.Pattern[bytes], what: str) -> re.Match[bytes]:
        found = pattern.match(self.data, self.pos)
        if found is None:
            self.fail(f"expected {what}")
        self.pos = found.end()
        return found

    def keyword(self, what: str = "a keyword") -> str:
        """A command or item name, upper-cased (case-insensitive, RFC 9051 §9 note 1)."""
        return self.match(_KEYWORD, what).group().decode("ascii").upper()

    def peek_keyword(self) -> str:
        found = _KEYWORD.match(self.data, self.pos)
        return found.group().decode("ascii").upper() if found else ""

    def count(self, n: int = 1) -> None:
        self.items += n
        if self.items > MAX_ITEMS:
            self.fail("too many items in one command")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self.fail("nested too deeply")

    def leave(self) -> None:
        self.depth -= 1


# -- lexical rules -----------------------------------------------------------------------------


def tag(r: Reader) -> str:
    """tag = 1*<any ASTRING-CHAR except "+">  (RFC 9051 §9)"""
    found = _TAG.match(r.data, r.pos)
    if found is None:
        raise ParseError(None, "missing command tag")
    r.pos = found.end()
    return found.group().decode("ascii")


def atom(r: Reader) -> bytes:
    """atom = 1*ATOM-CHAR  (RFC 9051 §9)"""
    return r.match(_ATOM, "an atom").group()


def number(r: Reader) -> int:
    """number = 1*DIGIT ; unsigned 32-bit  (RFC 9051 §9)"""
    return _bounded(r, _digits(r), MAX_NUMBER)


def nz_number(r: Reader) -> int:
    """nz-number = digit-nz *DIGIT ; non-zero unsigned 32-bit  (RFC 9051 §9)"""
    start = r.pos
    value = _bounded(r, _digits(r), MAX_NUMBER)
    if r.data[start] == 0x30:
        r.fail("expected a non-zero number")
    return value


def number64(r: Reader) -> int:
    """number64 = 1*DIGIT ; unsigned 63-bit  (RFC 9051 §9)"""
    return _bounded(r, _digits(r), MAX_NUMBER64)


def nz_number64(r: Reader) -> int:
    """nz-number64 = digit-nz *DIGIT ; unsigned 63-bit  (RFC 9051 §9)"""
    start = r.pos
    value = number64(r)
    if r.data[start] == 0x30:
        r.fail("expected a non-zero number")
    return value


def mod_sequence_value(r: Reader) -> int:
    """mod-sequence-value = 1*DIGIT ; 1 <= n <= 2^63-1  (RFC 7162 §7)"""
    value = number64(r)
    if value == 0:
        r.fail("expected a non-zero mod-sequence")
    return value


def mod_sequence_valzer(r: Reader) -> int:
    """mod-sequence-valzer = "0" / mod-sequence-value  (RFC 7162 §7)"""
    return number64(r)


def _digits(r: Reader) -> bytes:
    found = r.match(_DIGITS, "a number")
    if len(found.group()) > 20:  # before int(): no quadratic conversion of a huge string
        r.fail("number too large")
    return found.group()


def _bounded(r: Reader, digits: bytes, limit: int) -> int:
    value = int(digits)
    if value > limit:
        r.fail("number too large")
    return value


def quoted(r: Reader) -> bytes:
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE ; QUOTED-CHAR = <any TEXT-CHAR except
    quoted-specials> / "\\" quoted-specials / UTF8-2 / UTF8-3 / UTF8-4  (RFC 9051 §9; 8-bit
    octets are checked to be UTF-8 where the string is decoded, RFC 6855 §3)"""
    found = r.match(_QUOTED, "a quoted string")
    return _QUOTED_ESCAPE.sub(rb"\1", found.group(1))


def literal(r: Reader, *, allow_nul: bool = False) -> bytes:
    """literal = "{" number64 ["+"] "}" CRLF *CHAR8  (RFC 9051 §9, RFC 7888 §8)"""
    found = r.match(_LITERAL, "a literal")
    return _literal_octets(r, found, allow_nul=allow_nul)


def literal8(r: Reader) -> bytes:
    """literal8 = "~{" number64 ["+"] "}" CRLF *OCTET  (RFC 9051 §9, RFC 4466 §3)"""
    found = r.match(_LITERAL8, "a literal8")
    return _literal_octets(r, found, allow_nul=True)


def _literal_octets(r: Reader, found: re.Match[bytes], *, allow_nul: bool) -> bytes:
    start = found.end()
    end = start + int(found.group(1))
    if end > len(r.data):
        r.fail("literal shorter than announced")
    value = r.data[start:end]
    if not allow_nul and b"\x00" in value:
        r.fail("NUL in a string")  # RFC 9051 §9 CHAR8
    r.pos = end
    return value


def string(r: Reader) -> bytes:
    """string = quoted / literal  (RFC 9051 §9)"""
    if r.peek() == 0x7B:  # "{"
        return literal(r)
    return quoted(r)


def astring(r: Reader) -> bytes:
    """astring = 1*ASTRING-CHAR / string  (RFC 9051 §9)"""
    first = r.peek()
    if first == 0x22:  # DQUOTE
        return quoted(r)
    if first == 0x7B:
        return literal(r)
    return r.match(_ASTRING_ATOM, "a string").group()


def nstring(r: Reader) -> bytes | None:
    """nstring = string / nil  (RFC 9051 §9)"""
    if r.data[r.pos : r.pos + 3].upper() == b"NIL":
        r.pos += 3
        return None
    return string(r)


def utf8_text(r: Reader, raw: bytes) -> str:
    """A string as text: UTF-8 (RFC 9051 §9 QUOTED-CHAR; RFC 6855 §3 requires BAD for
    malformed UTF-8)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        r.fail("invalid UTF-8 in a string")


# -- mailboxes ---------------------------------------------------------------------------------


def mailbox(r: Reader) -> str:
    """mailbox = "INBOX" / astring ; INBOX is case-insensitive  (RFC 9051 §9, §5.1)"""
    return _mailbox_name(r, astring(r))


def list_mailbox(r: Reader) -> str:
    """list-mailbox = 1*list-char / string ; list-char = ATOM-CHAR / list-wildcards /
    resp-specials  (RFC 9051 §9)"""
    first = r.peek()
    raw = string(r) if first in (0x22, 0x7B) else r.match(_LIST_ATOM, "a mailbox pattern").group()
    return _mailbox_name(r, raw)


def _mailbox_name(r: Reader, raw: bytes) -> str:
    if raw.upper() == b"INBOX":
        return "INBOX"  # RFC 9051 §5.1
    if r.utf8_names:
        return utf8_text(r, raw)  # RFC 6855 §3, RFC 9051 §5.1
    try:
        return mutf7_decode(raw.decode("ascii"))  # RFC 3501 §5.1.3
    except (UnicodeDecodeError, InvalidName):
        r.fail("mailbox name is not valid modified UTF-7")


# -- sequence sets -----------------------------------------------------------------------------


def sequence_set(r: Reader) -> SequenceSet:
    """sequence-set = (seq-number / seq-range) ["," sequence-set] / seq-last-command ;
    seq-range = seq-number ":" seq-number ; seq-number = nz-number / "*" ;
    seq-last-command = "$"  (RFC 9051 §9, RFC 5182 §3)"""
    if r.skip(b"$"):
        return SequenceSet(saved=True)
    text = r.match(_SEQUENCE_SET, "a sequence set").group()
    parts = text.split(b",")
    if len(parts) > MAX_SEQUENCE_RANGES:
        r.fail("sequence set too long")
    ranges = []
    for part in parts:
        first, colon, last = part.partition(b":")
        a = seq_number(r, first)
        ranges.append(SeqRange(a, seq_number(r, last) if colon else a))
    return SequenceSet(tuple(ranges))


def seq_number(r: Reader, text: bytes) -> int | None:
    """seq-number = nz-number / "*"  (RFC 9051 §9); None stands for "*"."""
    if text == b"*":
        return None
    if text[0] == 0x30 or len(text) > 10 or int(text) > MAX_NUMBER:
        r.fail("invalid sequence number")
    return int(text)


def known_uids(r: Reader) -> SequenceSet:
    """known-uids = sequence-set ; "*" is not allowed  (RFC 7162 §7)"""
    found = sequence_set(r)
    if found.saved or any(x.first is None or x.last is None for x in found.ranges):
        r.fail("'*' or '$' not allowed here")
    return found


# -- flags -------------------------------------------------------------------------------------


def flag(r: Reader) -> str:
    """flag = "\\Answered" / "\\Flagged" / "\\Deleted" / "\\Seen" / "\\Draft" / flag-keyword /
    flag-extension ; flag-extension = "\\" atom  (RFC 9051 §9)"""
    if r.skip(b"\\"):
        name = "\\" + atom(r).decode("ascii")
        return _SYSTEM_FLAGS.get(name.upper(), name)
    return flag_keyword(r)


def flag_keyword(r: Reader) -> str:
    """flag-keyword = "$MDNSent" / "$Forwarded" / "$Junk" / "$NotJunk" / "$Phishing" / atom
    (RFC 9051 §9)"""
    return atom(r).decode("ascii")


def flag_list(r: Reader) -> tuple[str, ...]:
    """flag-list = "(" [flag *(SP flag)] ")"  (RFC 9051 §9)"""
    r.expect(b"(", "'('")
    flags: list[str] = []
    if not r.skip(b")"):
        while True:
            r.count()
            flags.append(flag(r))
            if r.skip(b")"):
                break
            r.sp()
    return tuple(dict.fromkeys(flags))


# -- dates -------------------------------------------------------------------------------------


def date(r: Reader) -> datetime.date:
    """date = date-text / DQUOTE date-text DQUOTE ;
    date-text = date-day "-" date-month "-" date-year  (RFC 9051 §9)"""
    quoted_form = r.skip(b'"')
    found = r.match(_DATE, "a date (dd-Mon-yyyy)")
    if quoted_form:
        r.expect(b'"', "'\"'")
    day, month, year = found.groups()
    return _calendar_date(r, int(year), month, int(day))


def date_time(r: Reader) -> datetime.datetime:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE ;
    time = 2DIGIT ":" 2DIGIT ":" 2DIGIT ; zone = ("+" / "-") 4DIGIT  (RFC 9051 §9; a
    one-digit day without its padding space is accepted too)"""
    found = r.match(_DATE_TIME, "a date-time")
    day, month, year, hh, mm, ss, sign, zh, zm = found.groups()
    day_of = _calendar_date(r, int(year), month, int(day))
    hour, minute, second = int(hh), int(mm), int(ss)
    if hour > 23 or minute > 59 or second > 60 or int(zh) > 23 or int(zm) > 59:
        r.fail("invalid date-time")
    offset = datetime.timedelta(hours=int(zh), minutes=int(zm))
    zone = datetime.timezone(-offset if sign == b"-" else offset)
    # A leap second (":60") is kept as the last second of its minute.
    return datetime.datetime.combine(
        day_of, datetime.time(hour, minute, min(second, 59)), tzinfo=zone
    )


def _calendar_date(r: Reader, year: int, month: bytes, day: int) -> datetime.date:
    number_of = _MONTHS.get(month.upper())
    if number_of is None:
        r.fail("invalid month")
    try:
        return datetime.date(year, number_of, day)
    except ValueError:
        r.fail("invalid date")


# -- header field names ------------------------------------------------------------------------


def header_fld_name(r: Reader) -> str:
    """header-fld-name = astring  (RFC 9051 §9; a field name is printable ASCII without ":",
    RFC 5322 §3.6.8)"""
    r.count()
    name = astring(r).decode("ascii", "replace")
    if _HEADER_FIELD.fullmatch(name) is None:
        r.fail("invalid header field name")
    return name

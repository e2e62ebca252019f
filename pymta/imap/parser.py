"""The IMAP command parser: one framed command (see framer.py) → one `command.Command` value.

One function per grammar rule, named after the rule, its docstring quoting the ABNF of
RFC 9051 §9 (or of the extension that defines it). Each takes the `Reader` (the frame and a
position in it), consumes exactly its rule and returns the value; anything malformed raises
`ParseError(tag, message)`, which the session answers `tag BAD message` (`* BAD` before a
tag is known). Messages are generic and never echo the client's bytes.

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

import base64
import binascii
import datetime
import re
from collections.abc import Callable
from typing import NoReturn

from pymta.store.errors import InvalidName
from pymta.store.names import mutf7_decode

from .command import (
    Append,
    AppendMessage,
    Authenticate,
    Capability,
    Check,
    Close,
    Command,
    Copy,
    Create,
    DateField,
    DateOp,
    Delete,
    Enable,
    Expunge,
    Fetch,
    FetchAttr,
    FetchItem,
    GetQuota,
    GetQuotaRoot,
    Id,
    Idle,
    List,
    Login,
    Logout,
    Namespace,
    Noop,
    QresyncParams,
    Rename,
    Search,
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
    Section,
    SectionText,
    Select,
    SeqRange,
    SequenceSet,
    SetQuota,
    StartTls,
    Status,
    StatusItems,
    Store,
    StoreMode,
    Subscribe,
    Unselect,
)

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
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
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
# RFC 6154 §2 use-attr, canonical spelling.
_USE_ATTRS = {
    a.upper(): a
    for a in ("\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash")
}
_UTF8_CHARSETS = frozenset({"US-ASCII", "UTF-8", "UTF8"})


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


def parse_command(frame: bytes, *, utf8_names: bool) -> Command:
    """command = tag SP (command-any / command-auth / command-nonauth / command-select) CRLF
    (RFC 9051 §9; the framer has removed the final CRLF)."""
    r = Reader(frame, utf8_names=utf8_names)
    r.tag = tag(r)
    r.sp()
    name = r.keyword("a command name")
    rule = _COMMANDS.get(name)
    if rule is None:
        r.fail("unknown command")
    command = rule(r, r.tag)
    if not r.at_end():
        r.fail("unexpected characters after the command")
    return command


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


def _text(r: Reader, raw: bytes) -> str:
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
        return _text(r, raw)  # RFC 6855 §3, RFC 9051 §5.1
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


# -- search (RFC 9051 §6.4.4) ------------------------------------------------------------------

_SEARCH_FLAGS: dict[str, SearchKey] = {
    "ANSWERED": SearchFlag("\\Answered"),
    "DELETED": SearchFlag("\\Deleted"),
    "DRAFT": SearchFlag("\\Draft"),
    "FLAGGED": SearchFlag("\\Flagged"),
    "SEEN": SearchFlag("\\Seen"),
    "UNANSWERED": SearchFlag("\\Answered", present=False),
    "UNDELETED": SearchFlag("\\Deleted", present=False),
    "UNDRAFT": SearchFlag("\\Draft", present=False),
    "UNFLAGGED": SearchFlag("\\Flagged", present=False),
    "UNSEEN": SearchFlag("\\Seen", present=False),
    # RFC 3501 §6.4.4 (IMAP4rev1 only): RECENT, OLD = NOT RECENT, NEW = RECENT UNSEEN.
    "RECENT": SearchFlag("\\Recent"),
    "OLD": SearchFlag("\\Recent", present=False),
    "NEW": SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", present=False))),
    "ALL": SearchAll(),
}
_SEARCH_HEADERS = {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
_SEARCH_DATES = {
    "BEFORE": (DateField.INTERNAL, DateOp.BEFORE),
    "ON": (DateField.INTERNAL, DateOp.ON),
    "SINCE": (DateField.INTERNAL, DateOp.SINCE),
    "SENTBEFORE": (DateField.SENT, DateOp.BEFORE),
    "SENTON": (DateField.SENT, DateOp.ON),
    "SENTSINCE": (DateField.SENT, DateOp.SINCE),
}


def search_program(r: Reader) -> SearchKey:
    """search-program = ["CHARSET" SP charset SP] search-key *(SP search-key) ; the
    top-level keys are ANDed  (RFC 9051 §9, §6.4.4)"""
    if r.peek_keyword() == "CHARSET":
        r.keyword()
        r.sp()
        r.charset = charset(r)
        r.sp()
    keys = [search_key(r)]
    while r.skip(b" "):
        keys.append(search_key(r))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def charset(r: Reader) -> str:
    """charset = atom / quoted  (RFC 9051 §9); upper-cased."""
    raw = quoted(r) if r.peek() == 0x22 else atom(r)
    return raw.decode("ascii", "replace").upper()


def search_key(r: Reader) -> SearchKey:
    """search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP
    astring / "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring / "KEYWORD" SP
    flag-keyword / "ON" SP date / "SEEN" / "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP
    astring / "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" / "UNKEYWORD" SP
    flag-keyword / "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring / "LARGER" SP
    number64 / "NOT" SP search-key / "OR" SP search-key SP search-key / "SENTBEFORE" SP date /
    "SENTON" SP date / "SENTSINCE" SP date / "SMALLER" SP number64 / "UID" SP sequence-set /
    "UNDRAFT" / sequence-set / "(" search-key *(SP search-key) ")"  (RFC 9051 §9)
    plus RFC 3501's "NEW" / "OLD" / "RECENT", RFC 5032's ("OLDER" / "YOUNGER") SP nz-number
    and RFC 7162's search-modsequence."""
    r.count()
    first = r.peek()
    if first == 0x28:  # "("
        return _search_group(r)
    if 0x30 <= first <= 0x39 or first in (0x2A, 0x24):  # digit, "*", "$"
        return SearchSequence(sequence_set(r))
    name = r.keyword("a search key")
    simple = _SEARCH_FLAGS.get(name)
    if simple is not None:
        return simple
    if name in ("NOT", "OR"):
        r.enter()
        r.sp()
        left = search_key(r)
        if name == "NOT":
            r.leave()
            return SearchNot(left)
        r.sp()
        right = search_key(r)
        r.leave()
        return SearchOr(left, right)
    r.sp()
    return _search_key_argument(r, name)


def _search_group(r: Reader) -> SearchKey:
    r.enter()
    r.expect(b"(", "'('")
    keys = [search_key(r)]
    while r.skip(b" "):
        keys.append(search_key(r))
    r.expect(b")", "')'")
    r.leave()
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _search_key_argument(r: Reader, name: str) -> SearchKey:
    """The search keys that take an argument (after their SP)."""
    header = _SEARCH_HEADERS.get(name)
    if header is not None:
        return SearchHeader(header, _search_text(r, astring(r)))
    when = _SEARCH_DATES.get(name)
    if when is not None:
        return SearchDate(when[0], when[1], date(r))
    if name in ("BODY", "TEXT"):
        return SearchBody(_search_text(r, astring(r)), include_headers=name == "TEXT")
    if name == "HEADER":
        field_name = header_fld_name(r)
        r.sp()
        return SearchHeader(field_name, _search_text(r, astring(r)))
    if name in ("KEYWORD", "UNKEYWORD"):
        return SearchFlag(flag_keyword(r), present=name == "KEYWORD")
    if name in ("LARGER", "SMALLER"):
        return SearchSize(larger=name == "LARGER", size=number64(r))
    if name == "UID":
        return SearchSequence(sequence_set(r), uid=True)
    if name in ("OLDER", "YOUNGER"):
        return SearchWithin(older=name == "OLDER", seconds=nz_number(r))
    if name == "MODSEQ":
        return search_modsequence(r)
    r.fail("unknown search key")


def search_modsequence(r: Reader) -> SearchKey:
    """search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer ;
    search-modseq-ext = SP entry-name SP entry-type-req  (RFC 7162 §7; the entry names a
    flag's metadata item: we keep one mod-sequence per message, so it is read and ignored,
    as RFC 7162 §3.1.5 allows)"""
    if r.peek() == 0x22:
        quoted(r)  # entry-name = DQUOTE "/flags/" attr-flag DQUOTE
        r.sp()
        if r.keyword("an entry type") not in ("PRIV", "SHARED", "ALL"):
            r.fail("invalid entry type")
        r.sp()
    return SearchModseq(mod_sequence_valzer(r))


def _search_text(r: Reader, raw: bytes) -> str:
    """A SEARCH string: UTF-8 for CHARSET US-ASCII or UTF-8 or none (RFC 9051 §6.4.4).
    Under any other charset the octets are kept as Latin-1 (lossless: the session may
    answer NO [BADCHARSET], or re-decode with `text.encode("latin-1").decode(charset)`)."""
    if r.charset is None or r.charset in _UTF8_CHARSETS:
        return _text(r, raw)
    return raw.decode("latin-1")


def search_return_opts(r: Reader) -> tuple[SearchReturn, ...]:
    """search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")" ;
    search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"  (RFC 9051 §9, RFC 4731 §3.1,
    RFC 5182 §2). An empty list means ALL (RFC 4731 §3.1)."""
    r.expect(b"(", "'('")
    options: list[SearchReturn] = []
    if not r.skip(b")"):
        while True:
            r.count()
            try:
                options.append(SearchReturn(r.keyword("a search return option")))
            except ValueError:
                r.fail("unknown search return option")
            if r.skip(b")"):
                break
            r.sp()
    return tuple(dict.fromkeys(options)) or (SearchReturn.ALL,)


# -- fetch (RFC 9051 §6.4.5) -------------------------------------------------------------------

_FETCH_SIMPLE = {
    a.value: FetchItem(a)
    for a in (
        FetchAttr.ENVELOPE,
        FetchAttr.FLAGS,
        FetchAttr.INTERNALDATE,
        FetchAttr.RFC822_SIZE,
        FetchAttr.BODY,
        FetchAttr.BODYSTRUCTURE,
        FetchAttr.UID,
        FetchAttr.MODSEQ,
        FetchAttr.RFC822,
        FetchAttr.RFC822_HEADER,
        FetchAttr.RFC822_TEXT,
    )
}
_FAST = tuple(_FETCH_SIMPLE[a] for a in ("FLAGS", "INTERNALDATE", "RFC822.SIZE"))
_ALL = (*_FAST, _FETCH_SIMPLE["ENVELOPE"])
# RFC 9051 §6.4.5: ALL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), FAST = (FLAGS
# INTERNALDATE RFC822.SIZE), FULL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY).
_FETCH_MACROS = {"ALL": _ALL, "FAST": _FAST, "FULL": (*_ALL, _FETCH_SIMPLE["BODY"])}
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD = re.compile(rb"[A-Za-z]+(?:\.[A-Za-z]+)*")
_HEADER_FIELD = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext


def fetch_att(r: Reader) -> FetchItem:
    """fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" / "BODY" ["STRUCTURE"] /
    "UID" / "BODY" section [partial] / "BODY.PEEK" section [partial] / "BINARY" [".PEEK"]
    section-binary [partial] / "BINARY.SIZE" section-binary  (RFC 9051 §9) ; plus "MODSEQ"
    (RFC 7162 §7) and RFC 3501's "RFC822" / "RFC822.HEADER" / "RFC822.TEXT"."""
    r.count()
    name = r.match(_FETCH_NAME, "a fetch attribute").group().decode("ascii").upper()
    bracket = r.peek() == 0x5B  # "["
    if not bracket:
        simple = _FETCH_SIMPLE.get(name)
        if simple is None:
            r.fail("unknown fetch attribute")
        return simple
    if name in ("BODY", "BODY.PEEK"):
        found = section(r)
        return FetchItem(
            FetchAttr.BODY_SECTION, found, peek=name == "BODY.PEEK", partial=_partial_if(r)
        )
    if name in ("BINARY", "BINARY.PEEK"):
        found = section_binary(r)
        return FetchItem(
            FetchAttr.BINARY, found, peek=name == "BINARY.PEEK", partial=_partial_if(r)
        )
    if name == "BINARY.SIZE":
        return FetchItem(FetchAttr.BINARY_SIZE, section_binary(r))
    r.fail("unknown fetch attribute")


def _partial_if(r: Reader) -> tuple[int, int] | None:
    return partial(r) if r.peek() == 0x3C else None  # "<"


def fetch_atts(r: Reader) -> tuple[FetchItem, ...]:
    """ "ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"  (RFC 9051 §9:
    the item part of fetch; the macros are expanded, repeated items given once)"""
    if r.skip(b"("):
        items = [fetch_att(r)]
        while r.skip(b" "):
            items.append(fetch_att(r))
        r.expect(b")", "')'")
        return tuple(dict.fromkeys(items))
    macro = _FETCH_MACROS.get(r.peek_keyword())
    if macro is not None:
        r.keyword()
        return macro
    return (fetch_att(r),)


def section(r: Reader) -> Section:
    """section = "[" [section-spec] "]"  (RFC 9051 §9)"""
    r.expect(b"[", "'['")
    found = Section() if r.peek() == 0x5D else section_spec(r)
    r.expect(b"]", "']'")
    return found


def section_binary(r: Reader) -> Section:
    """section-binary = "[" [section-part] "]"  (RFC 9051 §9)"""
    r.expect(b"[", "'['")
    found = Section() if r.peek() == 0x5D else Section(part=section_part(r))
    r.expect(b"]", "']'")
    return found


def section_spec(r: Reader) -> Section:
    """section-spec = section-msgtext / (section-part ["." section-text]) ;
    section-text = section-msgtext / "MIME"  (RFC 9051 §9)"""
    if 0x30 <= r.peek() <= 0x39:
        part = section_part(r)
        if not r.skip(b"."):
            return Section(part=part)
        text, fields = section_msgtext(r, mime_allowed=True)
        return Section(part=part, text=text, fields=fields)
    text, fields = section_msgtext(r, mime_allowed=False)
    return Section(text=text, fields=fields)


def section_part(r: Reader) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number)  (RFC 9051 §9)"""
    parts = [nz_number(r)]
    data = r.data
    while r.pos + 1 < len(data) and data[r.pos] == 0x2E and 0x30 <= data[r.pos + 1] <= 0x39:
        r.pos += 1
        r.count()
        parts.append(nz_number(r))
    if len(parts) > MAX_DEPTH:
        r.fail("section nested too deeply")
    return tuple(parts)


def section_msgtext(r: Reader, *, mime_allowed: bool) -> tuple[SectionText, tuple[str, ...]]:
    """section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    (RFC 9051 §9; "MIME" only after a part number, as section-text)"""
    word = r.match(_SECTION_WORD, "a section name").group().decode("ascii").upper()
    try:
        text = SectionText(word)
    except ValueError:
        r.fail("unknown section")
    if text is SectionText.MIME and not mime_allowed:
        r.fail("MIME needs a part number")
    if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        r.sp()
        return text, header_list(r)
    return text, ()


def header_list(r: Reader) -> tuple[str, ...]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"  (RFC 9051 §9); the names
    upper-cased."""
    r.expect(b"(", "'('")
    names = [header_fld_name(r).upper()]
    while r.skip(b" "):
        names.append(header_fld_name(r).upper())
    r.expect(b")", "')'")
    return tuple(dict.fromkeys(names))


def header_fld_name(r: Reader) -> str:
    """header-fld-name = astring  (RFC 9051 §9; a field name is printable ASCII without ":",
    RFC 5322 §3.6.8)"""
    r.count()
    name = astring(r).decode("ascii", "replace")
    if _HEADER_FIELD.fullmatch(name) is None:
        r.fail("invalid header field name")
    return name


def partial(r: Reader) -> tuple[int, int]:
    """partial = "<" number64 "." nz-number64 ">"  (RFC 9051 §9)"""
    r.expect(b"<", "'<'")
    offset = number64(r)
    r.expect(b".", "'.'")
    length = nz_number64(r)
    r.expect(b">", "'>'")
    return offset, length


def fetch_modifiers(r: Reader, *, uid: bool) -> tuple[int | None, bool]:
    """fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")" ;
    fetch-modifier =/ "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"  (RFC 4466 §3,
    RFC 7162 §7). Returns (changed_since, vanished)."""
    r.expect(b"(", "'('")
    changed_since: int | None = None
    vanished = False
    while True:
        name = r.keyword("a fetch modifier")
        if name == "CHANGEDSINCE" and changed_since is None:
            r.sp()
            changed_since = mod_sequence_value(r)
        elif name == "VANISHED" and not vanished:
            vanished = True
        else:
            r.fail("unknown or repeated fetch modifier")
        if r.skip(b")"):
            break
        r.sp()
    # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
    if vanished and (not uid or changed_since is None):
        r.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    return changed_since, vanished


# -- commands ----------------------------------------------------------------------------------


def _no_arguments(kind: Callable[[str], Command]) -> Callable[[Reader, str], Command]:
    def rule(r: Reader, tag: str) -> Command:
        return kind(tag)

    return rule


def authenticate(r: Reader, tag: str) -> Command:
    """authenticate = "AUTHENTICATE" SP auth-type [SP initial-resp] ; auth-type = atom ;
    initial-resp = (base64 / "=")  (RFC 9051 §9, SASL-IR RFC 4959 §7)"""
    r.sp()
    mechanism = atom(r).decode("ascii").upper()
    if not r.skip(b" "):
        return Authenticate(tag, mechanism)
    if r.skip(b"="):
        return Authenticate(tag, mechanism, b"")  # RFC 4959 §3: "=" is an empty response
    raw = r.match(_BASE64, "base64").group()
    if not raw:
        r.fail("expected base64")
    return Authenticate(tag, mechanism, _base64(r, raw))


def _base64(r: Reader, raw: bytes) -> bytes:
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error:
        r.fail("invalid base64")


def login(r: Reader, tag: str) -> Command:
    """login = "LOGIN" SP userid SP password ; userid = astring ; password = astring
    (RFC 9051 §9)"""
    r.sp()
    user = _text(r, astring(r))
    r.sp()
    return Login(tag, user, _text(r, astring(r)))


def enable(r: Reader, tag: str) -> Command:
    """enable = "ENABLE" 1*(SP capability) ; capability = ("AUTH=" auth-type) / atom
    (RFC 9051 §9, RFC 5161 §4)"""
    names: list[str] = []
    while r.skip(b" "):
        r.count()
        names.append(atom(r).decode("ascii").upper())
    if not names:
        r.fail("expected a capability")
    return Enable(tag, tuple(dict.fromkeys(names)))


def select(r: Reader, tag: str) -> Command:
    """select = "SELECT" SP mailbox [select-params]  (RFC 9051 §9, RFC 4466 §3)"""
    return _select(r, tag, readonly=False)


def examine(r: Reader, tag: str) -> Command:
    """examine = "EXAMINE" SP mailbox [select-params]  (RFC 9051 §9, RFC 4466 §3)"""
    return _select(r, tag, readonly=True)


def _select(r: Reader, tag: str, *, readonly: bool) -> Command:
    r.sp()
    name = mailbox(r)
    condstore, qresync = select_params(r) if r.skip(b" ") else (False, None)
    return Select(tag, name, readonly=readonly, condstore=condstore, qresync=qresync)


def select_params(r: Reader) -> tuple[bool, QresyncParams | None]:
    """select-params = SP "(" select-param *(SP select-param) ")" ;
    select-param =/ "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP mod-sequence-value
    [SP known-uids] [SP seq-match-data] ")"  (RFC 4466 §3, RFC 7162 §7). An unknown
    parameter is an error (RFC 4466 §2.1)."""
    r.expect(b"(", "'('")
    condstore = False
    qresync: QresyncParams | None = None
    if r.skip(b")"):
        return condstore, qresync  # "()": accepted as no parameters
    while True:
        name = r.keyword("a select parameter")
        if name == "CONDSTORE" and not condstore:
            condstore = True
        elif name == "QRESYNC" and qresync is None:
            r.sp()
            qresync = qresync_param(r)
        else:
            r.fail("unknown or repeated select parameter")
        if r.skip(b")"):
            return condstore, qresync
        r.sp()


def qresync_param(r: Reader) -> QresyncParams:
    """ "(" uidvalidity SP mod-sequence-value [SP known-uids] [SP seq-match-data] ")" ;
    seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 §7)"""
    r.expect(b"(", "'('")
    uidvalidity = nz_number(r)
    r.sp()
    modseq = mod_sequence_value(r)
    uids: SequenceSet | None = None
    match: tuple[SequenceSet, SequenceSet] | None = None
    if r.skip(b" "):
        more = True
        if r.peek() != 0x28:
            uids = known_uids(r)
            more = r.skip(b" ")
        if more:
            match = seq_match_data(r)
    r.expect(b")", "')'")
    return QresyncParams(uidvalidity, modseq, uids, match)


def seq_match_data(r: Reader) -> tuple[SequenceSet, SequenceSet]:
    """seq-match-data = "(" known-sequence-set SP known-uid-set ")"  (RFC 7162 §7)"""
    r.expect(b"(", "'('")
    seqs = known_uids(r)
    r.sp()
    uids = known_uids(r)
    r.expect(b")", "')'")
    return seqs, uids


def create(r: Reader, tag: str) -> Command:
    """create = "CREATE" SP mailbox [create-params] ; create-params = SP "(" create-param
    *(SP create-param) ")" ; create-param =/ "USE" SP "(" [use-attr *(SP use-attr)] ")"
    (RFC 9051 §9, RFC 4466 §3, RFC 6154 §6)"""
    r.sp()
    name = mailbox(r)
    uses: tuple[str, ...] = ()
    if r.skip(b" "):
        r.expect(b"(", "'('")
        if r.keyword("a create parameter") != "USE":
            r.fail("unknown create parameter")  # RFC 4466 §2.2
        r.sp()
        uses = use_attrs(r)
        r.expect(b")", "')'")
    return Create(tag, name, uses)


def use_attrs(r: Reader) -> tuple[str, ...]:
    """ "(" [use-attr *(SP use-attr)] ")" ; use-attr = "\\All" / "\\Archive" / "\\Drafts" /
    "\\Flagged" / "\\Junk" / "\\Sent" / "\\Trash" / use-attr-ext  (RFC 6154 §6)"""
    r.expect(b"(", "'('")
    uses: list[str] = []
    if not r.skip(b")"):
        while True:
            r.count()
            r.expect(b"\\", "a special-use attribute")
            name = "\\" + atom(r).decode("ascii")
            uses.append(_USE_ATTRS.get(name.upper(), name))
            if r.skip(b")"):
                break
            r.sp()
    return tuple(dict.fromkeys(uses))


def delete(r: Reader, tag: str) -> Command:
    """delete = "DELETE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Delete(tag, mailbox(r))


def rename(r: Reader, tag: str) -> Command:
    """rename = "RENAME" SP mailbox SP mailbox  (RFC 9051 §9; no rename-params are known,
    RFC 4466 §2.3)"""
    r.sp()
    old = mailbox(r)
    r.sp()
    return Rename(tag, old, mailbox(r))


def subscribe(r: Reader, tag: str) -> Command:
    """subscribe = "SUBSCRIBE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Subscribe(tag, mailbox(r))


def unsubscribe(r: Reader, tag: str) -> Command:
    """unsubscribe = "UNSUBSCRIBE" SP mailbox  (RFC 9051 §9)"""
    r.sp()
    return Subscribe(tag, mailbox(r), subscribe=False)


_SELECT_OPTIONS = frozenset({"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE"})
_RETURN_OPTIONS = frozenset({"SUBSCRIBED", "CHILDREN", "SPECIAL-USE"})


def list_(r: Reader, tag: str) -> Command:
    """list = "LIST" [SP list-select-opts] SP mailbox SP mbox-or-pat [SP list-return-opts] ;
    mbox-or-pat = list-mailbox / patterns  (RFC 9051 §9, RFC 5258 §6)"""
    r.sp()
    selection: tuple[str, ...] = ()
    extended = False
    if r.peek() == 0x28:
        selection = list_select_opts(r)
        extended = True
        r.sp()
    reference = mailbox(r)
    r.sp()
    if r.peek() == 0x28:
        found = patterns(r)
        extended = True
    else:
        found = (list_mailbox(r),)
    options: tuple[str, ...] = ()
    status_items: StatusItems | None = None
    if r.skip(b" "):
        if r.keyword("RETURN") != "RETURN":
            r.fail("expected RETURN")
        r.sp()
        options, status_items = list_return_opts(r)
        extended = True
    return List(tag, reference, found, selection, options, status_items, extended=extended)


def list_select_opts(r: Reader) -> tuple[str, ...]:
    """list-select-opts = "(" [(*(list-select-opt SP) list-select-base-opt
    *(SP list-select-opt)) / (list-select-independent-opt *(SP list-select-independent-opt))]
    ")" ; options SUBSCRIBED, REMOTE, RECURSIVEMATCH (RFC 5258 §6), SPECIAL-USE (RFC 6154 §6).
    An unknown option, or RECURSIVEMATCH without SUBSCRIBED, is an error (RFC 5258 §3)."""
    found = _option_list(r, _SELECT_OPTIONS)
    if "RECURSIVEMATCH" in found and "SUBSCRIBED" not in found:
        r.fail("RECURSIVEMATCH needs SUBSCRIBED")
    return found


def list_return_opts(r: Reader) -> tuple[tuple[str, ...], StatusItems | None]:
    """list-return-opts = "RETURN" SP "(" [return-option *(SP return-option)] ")" ;
    return-option = "SUBSCRIBED" / "CHILDREN" / "SPECIAL-USE" / status-option ;
    status-option = "STATUS" SP "(" status-att *(SP status-att) ")"  (RFC 5258 §6,
    RFC 6154 §6, RFC 5819 §4). Returns the options (without STATUS) and the STATUS items."""
    r.expect(b"(", "'('")
    options: list[str] = []
    status_items: StatusItems | None = None
    if r.skip(b")"):
        return (), None
    while True:
        r.count()
        name = r.keyword("a return option")
        if name == "STATUS" and status_items is None:
            r.sp()
            status_items = status_att_list(r)
        elif name in _RETURN_OPTIONS:
            options.append(name)
        else:
            r.fail("unknown return option")
        if r.skip(b")"):
            return tuple(dict.fromkeys(options)), status_items
        r.sp()


def _option_list(r: Reader, known: frozenset[str]) -> tuple[str, ...]:
    r.expect(b"(", "'('")
    options: list[str] = []
    if r.skip(b")"):
        return ()
    while True:
        r.count()
        name = r.keyword("an option")
        if name not in known:
            r.fail("unknown option")
        options.append(name)
        if r.skip(b")"):
            return tuple(dict.fromkeys(options))
        r.sp()


def patterns(r: Reader) -> tuple[str, ...]:
    """patterns = "(" list-mailbox *(SP list-mailbox) ")"  (RFC 5258 §6)"""
    r.expect(b"(", "'('")
    r.count()
    found = [list_mailbox(r)]
    while r.skip(b" "):
        r.count()
        found.append(list_mailbox(r))
    r.expect(b")", "')'")
    return tuple(found)


def lsub(r: Reader, tag: str) -> Command:
    """lsub = "LSUB" SP mailbox SP list-mailbox  (RFC 3501 §9)"""
    r.sp()
    reference = mailbox(r)
    r.sp()
    return List(tag, reference, (list_mailbox(r),), lsub=True)


def namespace(r: Reader, tag: str) -> Command:
    """namespace-command = "NAMESPACE"  (RFC 9051 §9, RFC 2342 §5)"""
    return Namespace(tag)


_STATUS_ATTS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",  # RFC 9051
        "SIZE",  # RFC 8438
        "RECENT",  # RFC 3501
        "HIGHESTMODSEQ",  # RFC 7162
        "APPENDLIMIT",  # RFC 7889
    }
)


def status(r: Reader, tag: str) -> Command:
    """status = "STATUS" SP mailbox SP "(" status-att *(SP status-att) ")"  (RFC 9051 §9)"""
    r.sp()
    name = mailbox(r)
    r.sp()
    return Status(tag, name, status_att_list(r))


def status_att_list(r: Reader) -> StatusItems:
    """ "(" status-att *(SP status-att) ")" ; status-att = "MESSAGES" / "UIDNEXT" /
    "UIDVALIDITY" / "UNSEEN" / "DELETED" / "SIZE"  (RFC 9051 §9) plus RFC 3501's "RECENT",
    RFC 7162's "HIGHESTMODSEQ", RFC 7889's "APPENDLIMIT"."""
    r.expect(b"(", "'('")
    items: list[str] = []
    while True:
        r.count()
        name = r.keyword("a status item")
        if name not in _STATUS_ATTS:
            r.fail("unknown status item")
        items.append(name)
        if r.skip(b")"):
            return StatusItems(tuple(dict.fromkeys(items)))
        r.sp()


def append(r: Reader, tag: str) -> Command:
    """append = "APPEND" SP mailbox 1*append-message ;
    append-message = [SP flag-list] [SP date-time] SP append-data  (RFC 3502 §6 MULTIAPPEND,
    RFC 4466 §3)"""
    r.sp()
    name = mailbox(r)
    messages: list[AppendMessage] = []
    while r.skip(b" "):
        r.count()
        flags: tuple[str, ...] = ()
        if r.peek() == 0x28:
            flags = flag_list(r)
            r.sp()
        when = None
        if r.peek() == 0x22:
            when = date_time(r)
            r.sp()
        data, utf8 = append_data(r)
        messages.append(AppendMessage(flags, when, data, utf8))
    if not messages:
        r.fail("expected a message")
    return Append(tag, name, tuple(messages))


def append_data(r: Reader) -> tuple[bytes, bool]:
    """append-data = literal / literal8 / utf8-literal ; utf8-literal = "UTF8" SP "("
    literal8 ")"  (RFC 4466 §3, RFC 3516 §4.4, RFC 6855 §4). Returns (octets, utf8)."""
    first = r.peek()
    if first == 0x7B:
        return literal(r, allow_nul=True), False
    if first == 0x7E:  # "~"
        return literal8(r), False
    if r.keyword("a message literal") != "UTF8":
        r.fail("expected a message literal")
    r.sp()
    r.expect(b"(", "'('")
    data = literal8(r)
    r.expect(b")", "')'")
    return data, True


def fetch(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """fetch = "FETCH" SP sequence-set SP ("ALL" / "FULL" / "FAST" / fetch-att /
    "(" fetch-att *(SP fetch-att) ")") [fetch-modifiers]  (RFC 9051 §9, RFC 4466 §3)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    items = fetch_atts(r)
    changed_since, vanished = None, False
    if r.skip(b" "):
        changed_since, vanished = fetch_modifiers(r, uid=uid)
    return Fetch(tag, found, items, uid, changed_since, vanished)


def store(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """store = "STORE" SP sequence-set [store-modifiers] SP store-att-flags ;
    store-modifiers = SP "(" "UNCHANGEDSINCE" SP mod-sequence-valzer ")"  (RFC 9051 §9,
    RFC 4466 §3, RFC 7162 §7)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    unchanged_since: int | None = None
    if r.skip(b"("):
        if r.keyword("a store modifier") != "UNCHANGEDSINCE":
            r.fail("unknown store modifier")
        r.sp()
        unchanged_since = mod_sequence_valzer(r)
        r.expect(b")", "')'")
        r.sp()
    mode, silent, flags = store_att_flags(r)
    return Store(tag, found, mode, flags, silent, unchanged_since, uid)


_STORE_ITEM = re.compile(rb"([+-]?)FLAGS(\.SILENT)?", re.IGNORECASE)


def store_att_flags(r: Reader) -> tuple[StoreMode, bool, tuple[str, ...]]:
    """store-att-flags = (["+" / "-"] "FLAGS" [".SILENT"]) SP (flag-list / (flag *(SP flag)))
    (RFC 9051 §9)"""
    item = r.match(_STORE_ITEM, "FLAGS, +FLAGS or -FLAGS")
    mode = StoreMode(item.group(1).decode("ascii"))
    r.sp()
    if r.peek() == 0x28:
        return mode, bool(item.group(2)), flag_list(r)
    flags = [flag(r)]
    while r.skip(b" "):
        r.count()
        flags.append(flag(r))
    return mode, bool(item.group(2)), tuple(dict.fromkeys(flags))


def search(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """search = "SEARCH" [search-return-opts] SP search-program  (RFC 9051 §9)"""
    r.sp()
    options: tuple[SearchReturn, ...] | None = None
    if r.peek_keyword() == "RETURN":
        r.keyword()
        r.sp()
        options = search_return_opts(r)
        r.sp()
    key = search_program(r)
    return Search(tag, key, r.charset, options, uid)


def copy(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """copy = "COPY" SP sequence-set SP mailbox  (RFC 9051 §9)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    return Copy(tag, found, mailbox(r), uid=uid)


def move(r: Reader, tag: str, *, uid: bool = False) -> Command:
    """move = "MOVE" SP sequence-set SP mailbox  (RFC 9051 §9, RFC 6851 §4)"""
    r.sp()
    found = sequence_set(r)
    r.sp()
    return Copy(tag, found, mailbox(r), uid=uid, move=True)


def uid_expunge(r: Reader, tag: str) -> Command:
    """uid-expunge = "EXPUNGE" SP sequence-set  (RFC 9051 §9, RFC 4315 §2.1)"""
    r.sp()
    return Expunge(tag, sequence_set(r))


_UID_COMMANDS: dict[str, Callable[[Reader, str], Command]] = {
    "COPY": lambda r, t: copy(r, t, uid=True),
    "MOVE": lambda r, t: move(r, t, uid=True),
    "FETCH": lambda r, t: fetch(r, t, uid=True),
    "SEARCH": lambda r, t: search(r, t, uid=True),
    "STORE": lambda r, t: store(r, t, uid=True),
    "EXPUNGE": uid_expunge,
}


def uid(r: Reader, tag: str) -> Command:
    """uid = "UID" SP (copy / move / fetch / search / store / uid-expunge)  (RFC 9051 §9)"""
    r.sp()
    rule = _UID_COMMANDS.get(r.keyword("a UID command"))
    if rule is None:
        r.fail("unknown UID command")
    return rule(r, tag)


def id_(r: Reader, tag: str) -> Command:
    """id = "ID" SP id_params_list ; id_params_list = "(" #(string SPACE nstring) ")" / nil
    (RFC 2971 §4; values are informational, so bad UTF-8 is replaced, not refused)"""
    r.sp()
    if r.data[r.pos : r.pos + 3].upper() == b"NIL":
        r.pos += 3
        return Id(tag, None)
    r.expect(b"(", "'('")
    params: list[tuple[str, str | None]] = []
    if not r.skip(b")"):
        while True:
            r.count()
            key = string(r).decode("utf-8", "replace")
            r.sp()
            value = nstring(r)
            params.append((key, None if value is None else value.decode("utf-8", "replace")))
            if r.skip(b")"):
                break
            r.sp()
    return Id(tag, tuple(params))


def getquota(r: Reader, tag: str) -> Command:
    """getquota = "GETQUOTA" SP quota-root-name ; quota-root-name = astring  (RFC 9208 §7)"""
    r.sp()
    return GetQuota(tag, _text(r, astring(r)))


def getquotaroot(r: Reader, tag: str) -> Command:
    """getquotaroot = "GETQUOTAROOT" SP mailbox  (RFC 9208 §7)"""
    r.sp()
    return GetQuotaRoot(tag, mailbox(r))


def setquota(r: Reader, tag: str) -> Command:
    """setquota = "SETQUOTA" SP quota-root-name SP setquota-list ; setquota-list = "("
    [setquota-resource *(SP setquota-resource)] ")" ; setquota-resource = resource-name SP
    resource-limit  (RFC 9208 §7)"""
    r.sp()
    root = _text(r, astring(r))
    r.sp()
    r.expect(b"(", "'('")
    limits: list[tuple[str, int]] = []
    if not r.skip(b")"):
        while True:
            r.count()
            name = atom(r).decode("ascii").upper()
            r.sp()
            limits.append((name, number64(r)))
            if r.skip(b")"):
                break
            r.sp()
    return SetQuota(tag, root, tuple(limits))


_COMMANDS: dict[str, Callable[[Reader, str], Command]] = {
    # command-any (RFC 9051 §9), ID (RFC 2971)
    "CAPABILITY": _no_arguments(Capability),
    "NOOP": _no_arguments(Noop),
    "LOGOUT": _no_arguments(Logout),
    "ID": id_,
    # command-nonauth
    "STARTTLS": _no_arguments(StartTls),
    "AUTHENTICATE": authenticate,
    "LOGIN": login,
    # command-auth
    "ENABLE": enable,
    "SELECT": select,
    "EXAMINE": examine,
    "CREATE": create,
    "DELETE": delete,
    "RENAME": rename,
    "SUBSCRIBE": subscribe,
    "UNSUBSCRIBE": unsubscribe,
    "LIST": list_,
    "LSUB": lsub,
    "NAMESPACE": namespace,
    "STATUS": status,
    "APPEND": append,
    "IDLE": _no_arguments(Idle),
    "GETQUOTA": getquota,
    "GETQUOTAROOT": getquotaroot,
    "SETQUOTA": setquota,
    # command-select
    "CHECK": _no_arguments(Check),
    "CLOSE": _no_arguments(Close),
    "UNSELECT": _no_arguments(Unselect),
    "EXPUNGE": _no_arguments(Expunge),
    "FETCH": fetch,
    "STORE": store,
    "SEARCH": search,
    "COPY": copy,
    "MOVE": move,
    "UID": uid,
}


# -- continuation lines (framer.ContinuationLine) ----------------------------------------------


def authenticate_response(line: bytes) -> bytes | None:
    """The client's answer to an AUTHENTICATE challenge: base64, or "*" to cancel (None)
    (RFC 9051 §6.2.2). Raises ParseError (untagged) for anything else."""
    if line == b"*":
        return None
    r = Reader(line, utf8_names=False)
    if _BASE64.fullmatch(line) is None:
        r.fail("invalid base64")
    return _base64(r, line)


def idle_done(line: bytes) -> bool:
    """idle = "IDLE" CRLF "DONE"  (RFC 9051 §9, RFC 2177 §3): is this line the DONE?"""
    return line.upper() == b"DONE"

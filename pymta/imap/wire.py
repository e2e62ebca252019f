"""Response encoding: the octets of IMAP server responses (RFC 9051 §7, §9).

Pure functions from values to bytes, used by the session and the FETCH renderer, so they
are written for speed (FETCH calls several per message): precompiled patterns, %-formatting
of bytes, no intermediate objects.

Rules of this file:
- A string goes out as an atom only where the grammar allows one (astring) and the octets
  are all ATOM-CHAR; otherwise quoted when it holds no CR, LF or NUL (and, before the client
  enabled UTF-8, no 8-bit octet: RFC 9051 §4.3, RFC 6855 §3); otherwise as a literal.
  Nothing here ever writes CR, LF or NUL inside a quoted string, or a non-synchronizing
  literal (RFC 7888 §3: client to server only).
- Response text (`tagged`, `untagged_status`) is single-line: CR and LF are replaced.
- Mailbox names are encoded here, modified UTF-7 (RFC 3501 §5.1.3) or UTF-8 (RFC 9051 §5.1,
  RFC 6855 §3), with the store's codec.
"""

from __future__ import annotations

import base64
import enum
import re
import time
from collections.abc import Iterable, Sequence

from pymta.store.names import mutf7_encode

OK = "OK"
NO = "NO"
BAD = "BAD"
BYE = "BYE"
PREAUTH = "PREAUTH"

CRLF = b"\r\n"
NIL = b"NIL"

# ATOM-CHAR (RFC 9051 §9): CHAR except "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]".
_ATOM = re.compile(rb"[\x21\x23\x24\x26\x27\x2b-\x5b\x5e-\x7a\x7c-\x7e]+")
# TEXT-CHAR except NUL (RFC 9051 §9): 7-bit, no CR, no LF.
_QUOTABLE_ASCII = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*")
_QUOTABLE_UTF8 = re.compile(rb"[^\x00\r\n]*")
_LINE_BREAKS = re.compile(r"[\r\n\x00]+")
_MONTHS = tuple(b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())
_MAX_TIMESTAMP = 253402300799  # 9999-12-31 23:59:59 UTC: date-year is 4DIGIT


def _octets(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


# -- strings (RFC 9051 §4.3) -------------------------------------------------------------------


def literal(data: bytes) -> bytes:
    """literal = "{" number64 "}" CRLF *CHAR8  (RFC 9051 §9; synchronizing form only)"""
    return b"{%d}\r\n%s" % (len(data), data)


def literal8(data: bytes) -> bytes:
    """literal8 = "~{" number64 "}" CRLF *OCTET  (RFC 9051 §9: BINARY[] data with NUL)"""
    return b"~{%d}\r\n%s" % (len(data), data)


def quoted(value: str | bytes) -> bytes:
    """quoted = DQUOTE *QUOTED-CHAR DQUOTE, with "\\" and DQUOTE escaped (RFC 9051 §9).
    Raises ValueError for CR, LF or NUL, which no quoted string can hold."""
    data = _octets(value)
    if _QUOTABLE_UTF8.fullmatch(data) is None:
        raise ValueError("CR, LF or NUL cannot be quoted")
    return _quote(data)


def _quote(data: bytes) -> bytes:
    if b"\\" in data or b'"' in data:
        data = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
    return b'"%s"' % data


def _quotable(data: bytes, utf8: bool) -> bool:
    return (_QUOTABLE_UTF8 if utf8 else _QUOTABLE_ASCII).fullmatch(data) is not None


def string(value: str | bytes, *, utf8: bool = False) -> bytes:
    """string = quoted / literal  (RFC 9051 §9): quoted when it can be, else a literal.
    `utf8`: the client enabled IMAP4rev2 or UTF8=ACCEPT, so quoted strings may hold UTF-8
    (RFC 6855 §3); bytes given with utf8=True must be valid UTF-8."""
    data = _octets(value)
    if _quotable(data, utf8):
        return _quote(data)
    return literal(data)


def astring(value: str | bytes, *, utf8: bool = False) -> bytes:
    """astring = 1*ASTRING-CHAR / string  (RFC 9051 §9): an atom when every octet is an
    ATOM-CHAR (and it is not "NIL", which a careless client reads as nil), else `string`."""
    data = _octets(value)
    if _ATOM.fullmatch(data) is not None and data.upper() != NIL:
        return data
    return string(data, utf8=utf8)


def nstring(value: str | bytes | None, *, utf8: bool = False) -> bytes:
    """nstring = string / nil  (RFC 9051 §9)"""
    if value is None:
        return NIL
    return string(value, utf8=utf8)


def mailbox_name(name: str, utf8: bool) -> bytes:
    """A mailbox name as it goes on the wire (RFC 9051 §9 mailbox): modified UTF-7 for rev1
    clients (RFC 3501 §5.1.3), UTF-8 once IMAP4rev2 or UTF8=ACCEPT is enabled (RFC 9051
    §5.1, RFC 6855 §3). INBOX is an atom; every other name is quoted (or a literal), as
    Dovecot does: some clients mis-read atoms in LIST responses."""
    if name == "INBOX":
        return b"INBOX"
    if utf8:
        return string(name, utf8=True)
    return string(mutf7_encode(name).encode("ascii"))


def flag_list(flags: Iterable[str]) -> bytes:
    """flag-list = "(" [flag *(SP flag)] ")"  (RFC 9051 §9); the flags are atoms already
    (the store accepts nothing else)."""
    return b"(%s)" % " ".join(flags).encode("ascii")


# -- numbers and sets --------------------------------------------------------------------------


def sequence_set(numbers: Iterable[int], *, ordered: bool = True) -> bytes:
    """sequence-set / uid-set (RFC 9051 §9): consecutive numbers as ranges, "1:5,7,9:12".

    ordered=True sorts and de-duplicates first (VANISHED, ESEARCH ALL, MODIFIED);
    ordered=False keeps the given order and only joins ascending runs, for sets whose
    order carries meaning (COPYUID source and destination, RFC 4315 §3).
    Raises ValueError for an empty set or a number below 1."""
    values = sorted(set(numbers)) if ordered else list(numbers)
    if not values:
        raise ValueError("an empty sequence set cannot be written")
    if values[0] < 1 or (not ordered and min(values) < 1):
        raise ValueError("sequence numbers start at 1")
    parts: list[bytes] = []
    start = previous = values[0]
    for value in values[1:]:
        if value == previous + 1:
            previous = value
            continue
        parts.append(b"%d" % start if start == previous else b"%d:%d" % (start, previous))
        start = previous = value
    parts.append(b"%d" % start if start == previous else b"%d:%d" % (start, previous))
    return b",".join(parts)


def imap_date_time(ts: float) -> bytes:
    """date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
    (RFC 9051 §9), in UTC: b'"26-Nov-2026 02:30:00 +0000"' (INTERNALDATE)."""
    t = time.gmtime(min(max(ts, 0), _MAX_TIMESTAMP))
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


# -- responses (RFC 9051 §7.1) -----------------------------------------------------------------


def resp_text(code: enum.Enum | str | bytes | None, text: str) -> bytes:
    """resp-text = ["[" resp-text-code "]" SP] [text]  (RFC 9051 §9); the text on one line.
    `code` may be an enum (its value is used), e.g. errors.Code."""
    line = _LINE_BREAKS.sub(" ", text).encode("utf-8") or b"Completed"
    if code is None:
        return line
    raw = code.value if isinstance(code, enum.Enum) else code
    return b"[%s] %s" % (_octets(raw), line)


def tagged(tag: str, status: str, code: enum.Enum | str | bytes | None, text: str) -> bytes:
    """response-tagged = tag SP resp-cond-state CRLF  (RFC 9051 §9): b"a1 OK [CODE] text\\r\\n"."""
    return b"%s %s %s\r\n" % (tag.encode("ascii"), status.encode("ascii"), resp_text(code, text))


def untagged_status(status: str, code: enum.Enum | str | bytes | None, text: str) -> bytes:
    """ "*" SP (resp-cond-state / resp-cond-bye / resp-cond-auth) CRLF  (RFC 9051 §9):
    b"* OK [UIDVALIDITY 3] text\\r\\n", b"* BYE text\\r\\n"."""
    return b"* %s %s\r\n" % (status.encode("ascii"), resp_text(code, text))


def untagged(payload: bytes | str) -> bytes:
    """response-data = "*" SP (mailbox-data / message-data / capability-data / ...) CRLF:
    b"* 3 EXISTS\\r\\n" from b"3 EXISTS"."""
    return b"* %s\r\n" % _octets(payload)


def continuation(text: str = "Ready") -> bytes:
    """continue-req = "+" SP resp-text CRLF  (RFC 9051 §7.6): the go-ahead for a literal."""
    return b"+ %s\r\n" % resp_text(None, text)


def challenge(data: bytes) -> bytes:
    """continue-req = "+" SP base64 CRLF  (RFC 9051 §7.6): an AUTHENTICATE challenge."""
    return b"+ %s\r\n" % base64.b64encode(data)


# -- response codes with arguments (RFC 9051 §7.1, RFC 4315, RFC 7162, RFC 5530) ---------------


def code_uidvalidity(uidvalidity: int) -> bytes:
    return b"UIDVALIDITY %d" % uidvalidity


def code_uidnext(uidnext: int) -> bytes:
    return b"UIDNEXT %d" % uidnext


def code_highestmodseq(modseq: int) -> bytes:
    """HIGHESTMODSEQ mod-sequence-value  (RFC 7162 §3.1.2.1)"""
    return b"HIGHESTMODSEQ %d" % modseq


def code_modified(numbers: Iterable[int]) -> bytes:
    """MODIFIED sequence-set  (RFC 7162 §3.1.3): the messages UNCHANGEDSINCE kept."""
    return b"MODIFIED %s" % sequence_set(numbers)


def code_appenduid(uidvalidity: int, uids: Sequence[int]) -> bytes:
    """APPENDUID nz-number SP uid-set  (RFC 4315 §3, RFC 3502 §6: one UID per message,
    in the order appended)."""
    return b"APPENDUID %d %s" % (uidvalidity, sequence_set(uids, ordered=False))


def code_copyuid(uidvalidity: int, source: Sequence[int], destination: Sequence[int]) -> bytes:
    """COPYUID nz-number SP uid-set SP uid-set  (RFC 4315 §3): source and destination UIDs
    in corresponding order."""
    if len(source) != len(destination):
        raise ValueError("COPYUID needs as many source as destination UIDs")
    return b"COPYUID %d %s %s" % (
        uidvalidity,
        sequence_set(source, ordered=False),
        sequence_set(destination, ordered=False),
    )


def code_permanentflags(flags: Iterable[str], *, new_keywords: bool = True) -> bytes:
    """PERMANENTFLAGS SP "(" [flag-perm *(SP flag-perm)] ")"  (RFC 9051 §7.1): "\\*" when
    the client may create keywords."""
    items = list(flags)
    if new_keywords:
        items.append("\\*")
    return b"PERMANENTFLAGS %s" % flag_list(items)


def code_capability(capabilities: Iterable[str]) -> bytes:
    """capability-data = "CAPABILITY" *(SP capability)  (RFC 9051 §7.1)"""
    return b"CAPABILITY %s" % " ".join(capabilities).encode("ascii")


def code_badcharset(charsets: Iterable[str]) -> bytes:
    """ "BADCHARSET" [SP "(" charset *(SP charset) ")"]  (RFC 9051 §7.1)"""
    return b"BADCHARSET (%s)" % b" ".join(astring(c) for c in charsets)

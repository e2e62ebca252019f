"""The POP3 command grammar: one function per rule, each headed by its ABNF.

Raising functions (`ParseError`, answered `-ERR` by the session); nothing here touches
state. Parsing is deliberately lenient where clients differ and the meaning is plain
(runs of spaces between parameters, a trailing space), strict where a wrong reading
would act on the wrong message (numbers).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# RFC 1939 §3 does not bound message numbers; ours are positions in a listing of at most
# 2^32 UIDs, so ten digits are plenty and anything longer is refused unread.
_NUMBER = re.compile(r"[0-9]{1,10}")


class ParseError(Exception):
    """A line that is not a command we can read; its text is the `-ERR` reply."""


@dataclass(frozen=True)
class Command:
    keyword: str  # upper-case (RFC 1939 §3: keywords are case-insensitive)
    params: tuple[str, ...]
    # Everything after the keyword and one space, as sent: PASS takes it whole
    # (RFC 1939 §7: spaces in the argument may be part of the password).
    rest: bytes = field(repr=False)


def command(line: bytes) -> Command:
    """RFC 2449 §3:

    command = keyword *(SP param) CRLF    ;255 octets maximum
    keyword = 3*4VCHAR
    param   = 1*VCHAR
    """
    keyword, _, rest = line.partition(b" ")
    if not 3 <= len(keyword) <= 4 or not _vchars(keyword):
        raise ParseError("Unknown command")
    try:
        params = tuple(p.decode("utf-8") for p in rest.split())
    except UnicodeDecodeError:
        raise ParseError("Invalid characters in arguments") from None
    return Command(keyword.decode("ascii").upper(), params, rest)


def message_number(text: str) -> int:
    """RFC 1939 §5: msg = a message-number, "1" for the first message of the maildrop."""
    if not _NUMBER.fullmatch(text) or int(text) == 0:
        raise ParseError("Invalid message number")
    return int(text)


def line_count(text: str) -> int:
    """RFC 1939 §7 TOP: n = a non-negative number of lines."""
    if not _NUMBER.fullmatch(text):
        raise ParseError("Invalid number of lines")
    return int(text)


def _vchars(data: bytes) -> bool:
    """VCHAR = %x21-7E (RFC 5234 Appendix B.1)."""
    return all(0x21 <= octet <= 0x7E for octet in data)

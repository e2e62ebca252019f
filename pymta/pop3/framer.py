"""The POP3 line reader: a client's byte stream cut into lines under a length limit.

Sans-I/O: `feed(bytes)` what the socket gave, then call `next_event()` until it returns
`NeedMore`. POP3 has no literals (RFC 1939 §3: every command is one line), so this is much
smaller than IMAP's framer; the rules are the same:

- A line ends with CRLF; a bare LF is accepted too (as Dovecot does). The line is handed
  over without its line ending. Empty lines are handed over as well (the session ignores
  them between commands; an empty SASL response means something).
- Nothing is held beyond the limit: `max_line_bytes` counts the line with its CRLF
  (RFC 2449 §4: a command is at most 255 octets "including the terminating CRLF"). A
  longer line is reported once as `LineTooLong` as soon as it is known to be too long;
  its octets are dropped as they arrive, never kept, up to its LF.
- `max_line_bytes` may change between lines (a SASL response may be longer than a
  command, RFC 5034 §4); it applies to the next line not yet begun.
- `reset()` forgets everything buffered: after STLS, nothing the client pipelined in
  plaintext behind the command is taken as a command (RFC 2595 §4, CVE-2011-0411 class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class NeedMore:
    """Nothing complete yet: feed more bytes."""


NEED_MORE = NeedMore()


@dataclass(frozen=True, slots=True)
class Line:
    """One line without its line ending (may hold a password: never printed)."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than `max_line_bytes`: answer -ERR; the line is dropped."""


LINE_TOO_LONG = LineTooLong()

Event: TypeAlias = NeedMore | Line | LineTooLong


class LineReader:
    """Bytes in, lines out; see the module docstring for the rules."""

    def __init__(self, max_line_bytes: int) -> None:
        if max_line_bytes < 3:
            raise ValueError("a line needs room for at least one octet and CRLF")
        self.max_line_bytes = max_line_bytes
        self._buf = bytearray()
        self._scan = 0  # octets of _buf already searched for LF
        self._discarding = False  # dropping the rest of a line found too long

    @property
    def buffered_bytes(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def reset(self) -> None:
        """Forget everything buffered (STLS, RFC 2595 §4)."""
        self._buf = bytearray()
        self._scan = 0
        self._discarding = False

    def next_event(self) -> Event:
        while True:
            buf = self._buf
            newline = buf.find(b"\n", self._scan)
            if self._discarding:
                if newline < 0:
                    buf.clear()
                    self._scan = 0
                    return NEED_MORE
                del buf[: newline + 1]
                self._scan = 0
                self._discarding = False
                continue
            # Content at most max - 2 octets; a CR may wait for its LF.
            limit = self.max_line_bytes - 2
            if newline < 0:
                if len(buf) > limit + 1:
                    buf.clear()
                    self._scan = 0
                    self._discarding = True
                    return LINE_TOO_LONG
                self._scan = len(buf)
                return NEED_MORE
            end = newline - 1 if newline and buf[newline - 1] == 0x0D else newline
            line = bytes(buf[:end]) if end <= limit else None
            del buf[: newline + 1]
            self._scan = 0
            return LINE_TOO_LONG if line is None else Line(line)

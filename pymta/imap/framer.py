"""The IMAP framer: a client's byte stream cut into whole commands before anything parses them.

Sans-I/O, after imap-codec's fragmentizer: `feed(bytes)` what the socket gave, then call
`next_event()` until it returns `NeedMore`. A command is one line, or several lines joined by
literals (RFC 9051 §4.3: a line ending in `{n}`, `{n+}` (LITERAL+, RFC 7888 §3) or `~{n}`
(literal8, RFC 4466 / RFC 3516) is followed by exactly n octets and then the rest of the
command). The framer hands the parser one `CommandFrame` holding the whole command, its
literals inline (`{n}\\r\\n` + octets), without the final line ending.

Rules of this file:

- Nothing is held beyond the limits: a line is given up as soon as it is longer than
  `max_line_bytes` (its remaining bytes are counted and dropped, never kept), a literal is
  refused from its announcement alone, before one octet of it is stored, and so is any
  literal that would take the command past `max_command_bytes`. The input buffer holds at
  most what the caller fed since the last `next_event()`.
- A refused command is skipped exactly as the client sends it, so none of its octets is
  ever taken for a command (the smuggling class): a synchronizing literal refused before
  "+" was sent is never sent by the client (RFC 9051 §7.5), so nothing more is read of it;
  a non-synchronizing literal is read and dropped (RFC 7888 §4), and so is every line and
  non-synchronizing literal after it up to the end of the command.
- A synchronizing literal needs the caller's decision: after `LiteralAnnounced` with
  `synchronizing=True` the caller either sends "+ ..." and calls `accept_literal()`, or
  sends the tagged NO/BAD and calls `reject_literal()`; `next_event()` before either is a
  bug and raises `RuntimeError`. A non-synchronizing literal needs nothing (the octets are
  on their way already); `reject_literal()` makes the framer drop it and its command.
- Lines end with CRLF; a bare LF is accepted too (as Dovecot does). Empty lines between
  commands are ignored.
- `expect_line()` makes the next event the next raw line (`ContinuationLine`): the client's
  answers to AUTHENTICATE challenges (RFC 9051 §6.2.2) and IDLE's "DONE" (RFC 2177 §3).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TypeAlias

# RFC 9051 §9: literal = "{" number64 ["+"] "}" CRLF *CHAR8; RFC 4466 §3 literal8 =
# "~{" number ["+"] "}" CRLF *OCTET. Only at the very end of a line (RFC 7888 §3: the
# receiver checks the end of every line). number64 has at most 19 digits; 20 are read so a
# 2^64 announcement is still recognised (and refused as too large).
_LITERAL_AT_END = re.compile(rb"(~?)\{([0-9]{1,20})(\+?)\}\Z")
_LITERAL_WINDOW = 26  # longest announcement: "~{" + 20 digits + "+}"
# tag = 1*<any ASTRING-CHAR except "+"> (RFC 9051 §9), followed by SP.
_TAG = re.compile(rb"([\x21\x23\x24\x26\x27\x2c-\x5b\x5d-\x7a\x7c-\x7e]+) ")
_TAG_WINDOW = 256  # a longer tag is not worth echoing in an error reply


# -- events ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NeedMore:
    """Nothing complete yet: feed more bytes."""


NEED_MORE = NeedMore()


@dataclass(frozen=True, slots=True)
class CommandFrame:
    """One whole command for the parser (may hold a password: never printed)."""

    data: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class LiteralAnnounced:
    """A literal of `size` octets follows. Synchronizing: the client waits for "+"
    (RFC 9051 §7.5); answer it and call `accept_literal()`, or refuse the command and call
    `reject_literal()`."""

    tag: str | None
    size: int
    synchronizing: bool
    binary: bool = False  # literal8 "~{n}" (RFC 3516 §4.4, RFC 6855 §4)


@dataclass(frozen=True, slots=True)
class LineTooLong:
    """A line longer than max_line_bytes, or a command longer than max_command_bytes: answer
    `tag BAD` (or `* BAD` without a tag); the rest of the command is discarded."""

    tag: str | None


@dataclass(frozen=True, slots=True)
class LiteralTooLarge:
    """A literal above max_literal_bytes (or one that would take the command past
    max_command_bytes): answer `tag NO [TOOBIG]` (RFC 4469 §5, RFC 7888 §5). The command is
    discarded; a non-synchronizing literal's octets are read and dropped as they arrive
    (RFC 7888 §4) — a caller that will not wait for them answers BYE and closes."""

    tag: str | None
    size: int
    synchronizing: bool


@dataclass(frozen=True, slots=True)
class ContinuationLine:
    """The raw line asked for with `expect_line()`, without its line ending (may hold SASL
    credentials: never printed)."""

    data: bytes = field(repr=False)


Event: TypeAlias = (
    NeedMore | CommandFrame | LiteralAnnounced | LineTooLong | LiteralTooLarge | ContinuationLine
)


class _State(enum.Enum):
    LINE = "line"  # reading a line of the current command (or the next command)
    LITERAL = "literal"  # reading literal octets into the command
    DECIDE = "decide"  # a synchronizing literal was announced: waiting for the caller
    SKIP_LITERAL = "skip-literal"  # dropping the octets of a refused literal
    DISCARD_LINE = "discard-line"  # dropping the rest of a refused line


def _tag_of(line: bytes | bytearray) -> str | None:
    """The tag of a command line, best effort (for error replies)."""
    match = _TAG.match(line, 0, min(len(line), _TAG_WINDOW))
    return match.group(1).decode("ascii") if match else None


def _literal_at_end(line: bytes | bytearray) -> re.Match[bytes] | None:
    return _LITERAL_AT_END.search(line, max(0, len(line) - _LITERAL_WINDOW))


class Framer:
    """Bytes in, events out; see the module docstring for the rules."""

    def __init__(self, max_line_bytes: int, max_literal_bytes: int, max_command_bytes: int) -> None:
        if min(max_line_bytes, max_command_bytes) <= 0 or max_literal_bytes < 0:
            raise ValueError("framer limits must be positive")
        self.max_line_bytes = max_line_bytes
        self.max_literal_bytes = max_literal_bytes
        self.max_command_bytes = max_command_bytes
        self._buf = bytearray()  # input not looked at yet (its start is the current line)
        self._scan = 0  # bytes of _buf already searched for LF
        self._cmd = bytearray()  # the current command so far: lines and literals
        self._state = _State.LINE
        self._remaining = 0  # octets left in the current (or skipped) literal
        self._tail = b""  # last bytes of a line being discarded (for its literal)
        self._discard_literals = True  # a discarded command line may announce a literal
        self._continuation = False  # expect_line() was called
        self._tag: str | None = None

    # -- the caller's side ------------------------------------------------------------------

    @property
    def tag(self) -> str | None:
        """The tag of the command being read (or last read), best effort."""
        return self._tag

    @property
    def buffered_bytes(self) -> int:
        """Octets held: unread input plus the command being assembled."""
        return len(self._buf) + len(self._cmd)

    def feed(self, data: bytes) -> None:
        self._buf += data

    def expect_line(self) -> None:
        """Make the next event the next raw line (`ContinuationLine`), between commands."""
        if self._state is not _State.LINE or self._cmd:
            raise RuntimeError("expect_line() in the middle of a command")
        self._continuation = True

    def accept_literal(self) -> None:
        """The caller sent "+" for the announced synchronizing literal: read it."""
        if self._state is not _State.DECIDE:
            raise RuntimeError("no synchronizing literal waits for a decision")
        self._state = _State.LITERAL

    def reject_literal(self) -> None:
        """The caller refused the command of the announced literal (and answered it)."""
        if self._state is _State.DECIDE:
            # RFC 9051 §7.5: the client sends no octets without "+": the command just ends.
            self._end_command()
            self._state = _State.LINE
        elif self._state is _State.LITERAL:
            # RFC 7888 §4: the octets are coming anyway; drop them and the command's rest.
            self._end_command()
            self._discard_literals = True
            self._state = _State.SKIP_LITERAL
        else:
            raise RuntimeError("no literal to reject")

    def reset(self) -> None:
        """Forget everything buffered (after STARTTLS, RFC 9051 §6.2.1: what the client sent
        before the TLS handshake must not be taken as commands)."""
        self._buf = bytearray()
        self._scan = 0
        self._end_command()
        self._state = _State.LINE
        self._remaining = 0
        self._tail = b""
        self._continuation = False

    def next_event(self) -> Event:
        while True:
            state = self._state
            if state is _State.LINE:
                event = self._line()
            elif state is _State.LITERAL:
                event = self._literal()
            elif state is _State.SKIP_LITERAL:
                event = self._skip_literal()
            elif state is _State.DISCARD_LINE:
                event = self._discard_line()
            else:
                raise RuntimeError("a synchronizing literal waits for accept/reject_literal()")
            if event is not None:
                return event

    # -- states (each returns an event, or None to go on) ------------------------------------

    def _line(self) -> Event | None:
        buf = self._buf
        newline = buf.find(b"\n", self._scan)
        if newline < 0:
            # One more octet is allowed for the CR of the CRLF still to come.
            if len(buf) > self.max_line_bytes + 1:
                if not self._cmd and not self._continuation:
                    self._tag = _tag_of(buf)
                return self._line_too_long(bytes(buf[-_LITERAL_WINDOW:]), complete=False)
            self._scan = len(buf)
            return NEED_MORE
        end = newline - 1 if newline and buf[newline - 1] == 0x0D else newline
        if end > self.max_line_bytes:
            if not self._cmd and not self._continuation:
                self._tag = _tag_of(buf)
            tail = bytes(buf[max(0, end - _LITERAL_WINDOW) : end])
            del buf[: newline + 1]
            self._scan = 0
            return self._line_too_long(tail, complete=True)
        line = bytes(buf[:end])
        del buf[: newline + 1]
        self._scan = 0
        if self._continuation:
            self._continuation = False
            return ContinuationLine(line)
        if not self._cmd:
            if not line:
                return None  # an empty line between commands
            self._tag = _tag_of(line)
        if len(self._cmd) + len(line) > self.max_command_bytes:
            self._end_command()
            return self._discard_after(line, LineTooLong(self._tag))
        match = _literal_at_end(line)
        if match is None:
            if self._cmd:
                self._cmd += line
                data = bytes(self._cmd)
                self._end_command()
            else:
                data = line
            return CommandFrame(data)
        size = int(match.group(2))
        synchronizing = not match.group(3)
        self._cmd += line
        self._cmd += b"\r\n"
        if size > self.max_literal_bytes or len(self._cmd) + size > self.max_command_bytes:
            self._end_command()
            if not synchronizing:
                self._remaining = size
                self._discard_literals = True
                self._state = _State.SKIP_LITERAL
            return LiteralTooLarge(self._tag, size, synchronizing)
        self._remaining = size
        self._state = _State.DECIDE if synchronizing else _State.LITERAL
        return LiteralAnnounced(self._tag, size, synchronizing, binary=bool(match.group(1)))

    def _literal(self) -> Event | None:
        count = min(self._remaining, len(self._buf))
        if count:
            with memoryview(self._buf) as view:
                self._cmd += view[:count]
            del self._buf[:count]
            self._remaining -= count
        if self._remaining:
            return NEED_MORE
        self._state = _State.LINE  # the command goes on after the literal
        return None

    def _skip_literal(self) -> Event | None:
        count = min(self._remaining, len(self._buf))
        del self._buf[:count]
        self._remaining -= count
        if self._remaining:
            return NEED_MORE
        self._tail = b""
        self._state = _State.DISCARD_LINE  # the rest of the refused command
        return None

    def _discard_line(self) -> Event | None:
        buf = self._buf
        newline = buf.find(b"\n")
        if newline < 0:
            self._tail = (self._tail + bytes(buf[-_LITERAL_WINDOW:]))[-_LITERAL_WINDOW:]
            buf.clear()
            return NEED_MORE
        end = newline - 1 if newline and buf[newline - 1] == 0x0D else newline
        start = max(0, end - _LITERAL_WINDOW)
        tail = (self._tail + bytes(buf[start:end]))[-_LITERAL_WINDOW:]
        if end == 0 and self._tail.endswith(b"\r"):
            tail = tail[:-1]  # the CR came in the previous feed
        del buf[: newline + 1]
        self._scan = 0
        self._tail = b""
        self._after_discarded_line(tail)
        return None

    # -- helpers ----------------------------------------------------------------------------

    def _end_command(self) -> None:
        self._cmd = bytearray()

    def _line_too_long(self, tail: bytes, *, complete: bool) -> Event:
        self._discard_literals = not self._continuation
        self._continuation = False
        self._end_command()
        if complete:
            self._after_discarded_line(tail)
        else:
            self._tail = tail
            self._buf.clear()
            self._scan = 0
            self._state = _State.DISCARD_LINE
        return LineTooLong(self._tag)

    def _discard_after(self, line: bytes, event: Event) -> Event:
        """`line` (complete) is refused: skip what its command still sends."""
        self._discard_literals = True
        self._after_discarded_line(line[-_LITERAL_WINDOW:])
        return event

    def _after_discarded_line(self, tail: bytes) -> None:
        """A refused line is over: if it announced a non-synchronizing literal, the client
        sends it and then the rest of the command, which are dropped too (RFC 7888 §3); a
        synchronizing literal is never sent without our "+" (RFC 9051 §7.5)."""
        match = _literal_at_end(tail) if self._discard_literals else None
        if match is not None and match.group(3):
            self._remaining = int(match.group(2))
            self._state = _State.SKIP_LITERAL
        else:
            self._state = _State.LINE

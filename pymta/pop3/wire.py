"""A message file as the body of a POP3 multi-line response (RFC 1939 §3), in pieces.

`MessageEncoder` turns the octets of a message file, fed in pieces of any size, into what
goes on the wire: every line ending CRLF (a bare LF becomes CRLF, as IMAP serves it and
as the store counts sizes), every line that starts with "." stuffed with one more ".",
and, at `finish()`, a CRLF if the message did not end with one, then the terminating
".\\r\\n". With `body_lines` it serves TOP (RFC 1939 §7): the header, the blank line,
then at most that many lines of the body.

The rules that make piecewise encoding exact, wherever a piece boundary falls:
- a CR at the very end of a piece is held back until the next piece shows whether an LF
  follows (CRLF stays CRLF, a lone CR stays a lone CR);
- whether the next octet starts a line is carried over, so a "." right after a piece that
  ended a line is stuffed too;
- TOP finds the end of the header across pieces the same way (an empty line: a line end
  right at the start of a line).

`MessageTransfer` reads a message file through an encoder. Its `read()` blocks (disk):
the asyncio adapter calls it on a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import BinaryIO

CRLF = b"\r\n"
TERMINATOR = b".\r\n"  # RFC 1939 §3: the end of a multi-line response
# One read of a message file. 256 KiB: a 10 KB message is one read (and one trip to a
# worker thread); a 1 MB one four, each written before the next is read.
CHUNK_BYTES = 256 * 1024


def to_crlf(data: bytes) -> bytes:
    """Every bare LF as CRLF. `data` must not end with a CR whose LF may follow."""
    lf = data.count(b"\n")
    if lf == 0 or lf == data.count(b"\r\n"):
        return data  # the usual case: already CRLF throughout
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


class MessageEncoder:
    def __init__(self, body_lines: int | None = None) -> None:
        self._held_cr = False  # the last piece ended with a CR, not yet sent
        self._line_start = True  # the next octet sent starts a line
        self._in_header = body_lines is not None  # TOP: the header has not ended yet
        self._lines_left = body_lines  # TOP: body lines still to send
        self.done = False  # TOP has sent all it will: the rest of the file is not needed

    def encode(self, data: bytes) -> bytes:
        """The next piece of the message file, encoded (possibly empty)."""
        if self.done:
            return b""
        if self._held_cr:
            data = b"\r" + data
            self._held_cr = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._held_cr = True
        if not data:
            return b""
        data = to_crlf(data)
        if self._lines_left is not None:
            data = self._top(data)
            if not data:
                return b""
        # RFC 1939 §3: a line starting with the termination octet gets one more.
        out = data.replace(b"\n.", b"\n..")
        if self._line_start and data[0] == 0x2E:
            out = b"." + out
        self._line_start = data.endswith(b"\n")
        return out

    def finish(self) -> bytes:
        """The end of the response: a last CRLF when needed, then ".\\r\\n"."""
        out = b""
        if self._held_cr and not self.done:
            out = self.encode(CRLF[1:])  # a CR held back: end its line
        if not self._line_start:
            out += CRLF
        self._line_start = True
        self.done = True
        return out + TERMINATOR

    def _top(self, data: bytes) -> bytes:
        """What of `data` (CRLF line ends) TOP sends: RFC 1939 §7, the headers, the blank
        line after them, then `body_lines` lines of the body."""
        start = 0
        if self._in_header:
            if self._line_start and data.startswith(CRLF):
                start = 2
            else:
                blank = data.find(b"\r\n\r\n")
                if blank < 0:
                    return data  # all header so far
                start = blank + 4
            self._in_header = False
        left = self._lines_left
        assert left is not None
        if data.count(b"\n", start) < left:
            self._lines_left = left - data.count(b"\n", start)
            return data
        end = start
        for _ in range(left):
            end = data.index(b"\n", end) + 1
        self._lines_left = 0
        self.done = True
        return data[:end]


class MessageTransfer:
    """One message file streamed as a multi-line response body. Not thread-safe: one
    caller at a time (the adapter awaits each `read` before the next)."""

    def __init__(
        self, file: BinaryIO, *, body_lines: int | None = None, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self._file: BinaryIO | None = file
        self._encoder = MessageEncoder(body_lines)
        self._chunk_bytes = chunk_bytes
        self._ready = b""  # encoded and not yet taken (see `prefetch`)
        self.finished = False  # the terminator has been produced
        self.sent_bytes = 0  # octets produced so far, terminator included

    def prefetch(self) -> None:
        """Read the first piece now (blocking), so `take_ready` has it without another
        trip to a worker thread: a small message is read whole where it is opened."""
        self._ready = self.read()

    def take_ready(self) -> bytes:
        data, self._ready = self._ready, b""
        return data

    def read(self) -> bytes:
        """Blocking: the next encoded piece; the last one ends with ".\\r\\n"; b"" after
        that. Closes the file once the terminator is produced."""
        if self.finished or self._file is None:
            return b""
        parts: list[bytes] = []
        while True:
            data = b"" if self._encoder.done else self._file.read(self._chunk_bytes)
            if data:
                parts.append(self._encoder.encode(data))
            # A short read of a regular file is its end (and TOP may have all it needs):
            # finish in the same piece.
            if len(data) < self._chunk_bytes or self._encoder.done:
                parts.append(self._encoder.finish())
                self.finished = True
                self.close()
                break
            if parts[-1]:
                break
        out = parts[0] if len(parts) == 1 else b"".join(parts)
        self.sent_bytes += len(out)
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

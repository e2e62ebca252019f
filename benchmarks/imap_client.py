"""A minimal asyncio IMAP client for benchmarks/imap.py and benchmarks/imap_populate.py.

`ImapConnection.open(host, port, tls, ctx)` connects (plain, implicit TLS or STARTTLS),
reads the greeting and the capabilities; `login`, then `send` / `run` raw tagged
commands and get each one's `Reply`: the tagged line, the untagged data received while it
ran, and the time from writing the command to reading its tagged line. `append` and
`append_nowait` send APPEND with a synchronising or a LITERAL+ literal.

Written for measuring servers, not for parsing their answers: responses are read into one
reused buffer (`ImapProtocol`, an asyncio BufferedProtocol) and scanned with bytes.find
for literals ({n}) and our tags only, at about 1 GB/s, so the client's own cost stays
small next to the server's. The benchmark reads what it checks (EXISTS, FETCH and SEARCH
counts) from `Reply.data` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from dataclasses import dataclass
from typing import Any, cast


class BenchError(Exception):
    """The server answered something the benchmark cannot go on from."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One command's outcome: the tagged line, the untagged data before it, the timing."""

    status: str  # OK, NO or BAD
    line: bytes  # the tagged line without CRLF
    data: bytes  # untagged responses received while the command ran
    elapsed_s: float  # from writing the command to reading its tagged line

    def check(self, what: str) -> Reply:
        if self.status != "OK":
            raise BenchError(f"{what}: {self.line.decode(errors='replace')}")
        return self


class _Finder:
    """Incremental find of one needle in a filling buffer: each byte is searched once."""

    __slots__ = ("at", "needle", "until")

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.at = -1  # a match at or after the scan position, or -1
        self.until = 0  # no match starts before this (besides `at`)

    def next(self, buf: bytearray, pos: int, end: int) -> int:
        if self.at >= pos:
            return self.at
        i = buf.find(self.needle, max(pos, self.until), end)
        self.at = i
        if i < 0:
            self.until = max(pos, end - len(self.needle) + 1)
        return i

    def shift(self, n: int) -> None:
        self.at = self.at - n if self.at >= n else -1
        self.until = max(0, self.until - n)


class ImapProtocol(asyncio.BufferedProtocol):
    """Reads responses: finds tagged lines and continuation requests outside literals.

    The transport reads straight into one buffer that is reused from response to response
    (a BufferedProtocol: no per-read bytes objects, no fresh memory to fault in), and
    only the bytes just read are searched. The buffer always starts with CRLF (a
    sentinel), so every response line, the first included, is found as CRLF followed by
    its first byte: "*" untagged, "+" continuation (RFC 9051 §7.5), anything else one of
    our tags ("t<n>"). A line ending in "{n}" is followed by n bytes of literal (RFC 9051
    §4.3), skipped unscanned.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(1 << 18)
        self.buf[0:2] = b"\r\n"
        self.end = 2  # bytes of buf filled
        self.pos = 0  # everything before is scanned (and outside literals)
        # One byte is found at memchr speed, three at a few GB/s: "}" is rare in responses,
        # so each hit is checked to be the end of "{n}" CRLF in Python.
        self._literal = _Finder(b"}")
        self._tagged = _Finder(b"\r\nt")
        self._continuation = _Finder(b"\r\n+")
        loop = asyncio.get_running_loop()
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        # Not awaited when the connection fails before the greeting: no "never retrieved".
        self.greeting.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.waiters: dict[bytes, tuple[asyncio.Future[Reply], float]] = {}
        self.continuation: asyncio.Future[bytes] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    async def drain(self) -> None:
        await self._can_write.wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._can_write.set()
        err = BenchError(f"connection closed: {exc or 'by the server'}")
        for fut in [self.greeting, self.continuation, *(w for w, _ in self.waiters.values())]:
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self.waiters.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buf) - self.end < 1 << 16:
            # Grow only here, while the transport holds no view of the buffer.
            self.buf.extend(bytes(len(self.buf)))
        return memoryview(self.buf)[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self._scan()

    def data_received(self, data: bytes) -> None:
        """For a transport that does not read into buffers (and for tests)."""
        view = self.get_buffer(len(data))
        n = min(len(view), len(data))
        view[:n] = data[:n]
        del view
        self.buffer_updated(n)
        if n < len(data):
            self.data_received(data[n:])

    def _consume(self, upto: int) -> None:
        """Drop the buffer up to `upto` (the CRLF that ends a line stays as the sentinel)."""
        rest = self.end - upto
        self.buf[0:rest] = self.buf[upto : self.end]
        self.end = rest
        self.pos = 0
        for f in (self._literal, self._tagged, self._continuation):
            f.shift(upto)

    def _scan(self) -> None:
        buf = self.buf
        while self.pos <= self.end:
            end = self.end
            if not self.greeting.done():
                eol = buf.find(b"\r\n", 2, end)
                if eol < 0:
                    return
                self.greeting.set_result(bytes(buf[2:eol]))
                self._consume(eol)
                continue
            lit = self._literal.next(buf, self.pos, end)
            line = self._tagged.next(buf, self.pos, end)
            if self.continuation is not None:
                cont = self._continuation.next(buf, self.pos, end)
                if cont >= 0 and (line < 0 or cont < line):
                    line = cont
            if line < 0 and lit < 0:
                return
            if lit >= 0 and (line < 0 or lit < line):
                if lit + 3 > end:
                    return  # is it "}" CRLF? wait for two more bytes
                self.pos = self._after_literal(lit)
                continue
            eol = buf.find(b"\r\n", line + 2, end)
            if eol < 0:
                return
            self._complete(line, eol)

    def _after_literal(self, close: int) -> int:
        """Where scanning goes on after the "}" at `close`: past the literal that a
        "{n}" or "~{n}" CRLF announces, else just past the "}"."""
        buf = self.buf
        if buf[close + 1 : close + 3] != b"\r\n":
            return close + 1
        brace = buf.rfind(b"{", max(self.pos, close - 24), close)
        digits = bytes(buf[brace + 1 : close]).rstrip(b"+") if brace >= 0 else b""
        if not digits.isdigit():
            return close + 1
        return close + 3 + int(digits)

    def _complete(self, line: int, eol: int) -> None:
        now = time.perf_counter()
        text = bytes(self.buf[line + 2 : eol])
        if text.startswith(b"+"):
            go_on = self.continuation
            self.continuation = None
            self._consume(eol)
            if go_on is not None and not go_on.done():
                go_on.set_result(text)
            return
        tag, _, rest = text.partition(b" ")
        waiter = self.waiters.pop(tag, None)
        data = bytes(self.buf[2 : line + 2]) if waiter is not None else b""
        self._consume(eol)
        if waiter is None:
            return
        fut, sent = waiter
        status = rest.split(b" ", 1)[0].decode(errors="replace").upper()
        if not fut.done():
            fut.set_result(Reply(status, text, data, now - sent))


def quote(s: str) -> str:
    """An IMAP quoted string (RFC 9051 §4.3): backslash and double quote escaped."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapConnection:
    """One client connection: send tagged commands, await their replies."""

    def __init__(self, protocol: ImapProtocol, transport: asyncio.Transport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.capabilities: set[str] = set()
        self._next_tag = 0

    @classmethod
    async def open(
        cls, host: str, port: int, tls: str, ctx: ssl.SSLContext | None, timeout: float = 30
    ) -> ImapConnection:
        loop = asyncio.get_running_loop()
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                ImapProtocol,
                host,
                port,
                ssl=ctx if tls == "implicit" else None,
                server_hostname=host if tls == "implicit" else None,
            ),
            timeout,
        )
        conn = cls(protocol, transport)
        greeting = await asyncio.wait_for(protocol.greeting, timeout)
        if not greeting.upper().startswith(b"* OK"):
            conn.close()
            raise BenchError(f"greeting: {greeting.decode(errors='replace')}")
        conn._capabilities_from(greeting)
        if not conn.capabilities:
            await conn.refresh_capabilities()
        if tls == "starttls":
            assert ctx is not None
            await conn.starttls(ctx, host)
        return conn

    def _capabilities_from(self, text: bytes) -> bool:
        upper = text.upper()
        for marker in (b"[CAPABILITY ", b"* CAPABILITY "):
            i = upper.find(marker)
            if i >= 0:
                words = text[i + len(marker) :].split(b"]", 1)[0].split(b"\r\n", 1)[0]
                self.capabilities = {w.decode().upper() for w in words.split()}
                return True
        return False

    async def refresh_capabilities(self) -> None:
        reply = (await self.run("CAPABILITY")).check("CAPABILITY")
        self._capabilities_from(reply.data)

    async def starttls(self, ctx: ssl.SSLContext, host: str) -> None:
        if "STARTTLS" not in self.capabilities:
            raise BenchError("the server does not offer STARTTLS")
        (await self.run("STARTTLS")).check("STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self.transport, self.protocol, ctx, server_hostname=host)
        assert transport is not None
        self.transport = self.protocol.transport = transport
        # RFC 9051 §6.2.1: capabilities learnt before TLS must be discarded.
        await self.refresh_capabilities()

    def _tag(self) -> bytes:
        self._next_tag += 1
        return b"t%d" % self._next_tag

    def send(self, command: str | bytes) -> asyncio.Future[Reply]:
        """Write one command line; the future resolves with its tagged reply."""
        if isinstance(command, str):
            command = command.encode()
        tag = self._tag()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.protocol.waiters[tag] = (fut, time.perf_counter())
        self.transport.write(tag + b" " + command + b"\r\n")
        return fut

    async def run(self, command: str | bytes, timeout: float = 600) -> Reply:
        return await asyncio.wait_for(self.send(command), timeout)

    async def login(self, user: str, password: str) -> None:
        if "LOGINDISABLED" in self.capabilities:
            raise BenchError("LOGINDISABLED: use --tls or --starttls")
        reply = (await self.run(f"LOGIN {quote(user)} {quote(password)}")).check("LOGIN")
        # RFC 9051 §6.2.3: a server may send new capabilities with the OK; else ask.
        if not self._capabilities_from(reply.line + b"\r\n" + reply.data):
            await self.refresh_capabilities()

    def append_nowait(
        self, folder: str, message: bytes, flags: str, date: str
    ) -> asyncio.Future[Reply]:
        """APPEND with a non-synchronising literal (RFC 7888 LITERAL+): one write."""
        head = f"APPEND {quote(folder)} ({flags}) {quote(date)} {{{len(message)}+}}\r\n"
        return self.send(head.encode() + message)

    async def append(self, folder: str, message: bytes, flags: str, date: str) -> Reply:
        """APPEND with a synchronising literal: wait for "+" before sending the message."""
        cont: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.protocol.continuation = cont
        head = f"APPEND {quote(folder)} ({flags}) {quote(date)} {{{len(message)}}}"
        reply = self.send(head)
        either: set[asyncio.Future[Any]] = {cont, reply}
        done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if reply in done:  # refused before the data (too big, no such folder)
            self.protocol.continuation = None
            return reply.result()
        self.transport.write(message + b"\r\n")
        return await reply

    async def drain(self) -> None:
        await self.protocol.drain()

    def close(self) -> None:
        self.transport.close()

    async def logout(self) -> None:
        with contextlib.suppress(BenchError, asyncio.TimeoutError, OSError):
            await self.run("LOGOUT", timeout=10)
        self.close()

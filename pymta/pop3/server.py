"""The asyncio adapter around `Pop3Session`: socket, TLS, timeouts, connection gate, and the
streaming of message files.

One `Pop3Connection` (an `asyncio.Protocol`) per accepted socket; it feeds received bytes
to the session and runs one task that loops `next_event()` → write → act. Nothing here
parses POP3. Works with the default loop and uvloop (transports, `loop.start_tls`).

- Input is read only while the session waits for it: `data_received` pauses the
  transport while a command runs, so a client pipelining megabytes is held back by TCP,
  not buffered here (the line reader's limit bounds the rest).
- RETR and TOP: the message file is read in pieces on a worker thread (the first piece
  where it was opened), each piece written before the next is read, and the writer waits
  while the transport is above its high-water mark (`pause_writing`), so a slow client
  holds at most one piece and the transport's buffer of a message, never the whole.
- STLS: the line reader is emptied right before `loop.start_tls` swaps the protocol, so
  nothing the client sent in plaintext after the command is executed (RFC 2595 §4,
  CVE-2011-0411 class); plaintext arriving later is fed to the TLS handshake and fails it.
- Timeouts: `imap_login_timeout_s` before login (bending RFC 1939 §3's ten minutes for
  connections that have not authenticated, as Dovecot's login processes do),
  `imap_idle_timeout_s` after (at least 30 minutes, so above RFC 1939 §3's ten); the
  timer restarts whenever a command is awaited. On expiry the connection is closed
  without a reply and without UPDATE (RFC 1939 §3). A client that stops reading is given
  the same time to drain what was written.
- The gate refuses a connection over the limits with `-ERR [SYS/TEMP]`.
- `close_all()` ends every connection (a graceful stop: between commands, with
  `-ERR [SYS/TEMP] Server shutting down`); `busy` tells whether some command is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any, cast

from pymta.config.model import Limits
from pymta.gate import ConnectionGate

from .session import Action, Pop3Session
from .wire import MessageTransfer

log = logging.getLogger(__name__)

SessionFactory = Callable[[str, bool], Pop3Session]  # (peer ip, TLS active) -> session
TLS_HANDSHAKE_TIMEOUT_S = 30.0


def _peer_ip(peername: Any) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "")


class Pop3Connection(asyncio.Protocol):
    def __init__(self, listener: Pop3Listener) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._session: Pop3Session | None = None
        self._peer = ""
        self._wake = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._want_input = False
        self._paused = False
        self._sending = False  # a message is being streamed
        self._closed = False
        self._gated = False
        self._task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _peer_ip(transport.get_extra_info("peername"))
        listener = self._listener
        if not listener.gate.acquire(self._peer):
            log.warning("pop3 connection_refused client=%s reason=limit", self._peer)
            self._transport.write(b"-ERR [SYS/TEMP] Too many connections\r\n")
            self._transport.close()
            self._closed = True
            return
        self._gated = True
        tls = transport.get_extra_info("ssl_object") is not None
        self._session = listener.session_factory(self._peer, tls)
        listener.connections.add(self)
        log.info("pop3 connect client=%s listener=%s tls=%s", self._peer, listener.name, tls)
        self._task = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        if self._session is None:
            return
        self._session.receive_data(data)
        if not self._want_input and not self._paused and self._transport is not None:
            self._transport.pause_reading()  # resumed when the session asks for input
            self._paused = True
        self._wake.set()

    def eof_received(self) -> bool | None:
        self._closed = True
        self._wake.set()
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._wake.set()
        self._can_write.set()
        self._listener.connections.discard(self)
        if self._gated:
            self._gated = False
            self._listener.gate.release(self._peer)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    # -- the session loop -------------------------------------------------------------

    async def _serve(self) -> None:
        assert self._session is not None
        session = self._session
        reason = "client closed"
        try:
            await self._write(session.greeting())
            while not self._closed:
                out = await session.next_event()
                if out.transfer is not None:
                    await self._send_message(out.data, out.transfer)
                elif out.data:
                    await self._write(out.data)
                action = out.action
                if action is Action.CLOSE:
                    reason = "quit"
                    break
                if action is Action.START_TLS:
                    await self._start_tls()
                    session.tls_started()
                elif action is Action.READ:
                    if await self._wait_input():
                        continue
                    if not self._closed:
                        reason = "timeout"
                        await self._write(session.autologout())
                    break
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            reason = f"error {type(exc).__name__}"
        except asyncio.CancelledError:
            reason = "stopped"
            raise
        finally:
            session.close(reason)
            if self._transport is not None and not self._transport.is_closing():
                self._transport.close()

    def _timeout(self) -> float:
        assert self._session is not None
        limits = self._listener.limits
        if self._session.authenticated:
            return limits.imap_idle_timeout_s
        return limits.imap_login_timeout_s

    async def _wait_input(self) -> bool:
        """Wait for input; False when the autologout timer ran out (RFC 1939 §3)."""
        assert self._transport is not None
        self._wake.clear()
        self._want_input = True
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        try:
            async with asyncio.timeout(self._timeout()):
                await self._wake.wait()
        except TimeoutError:
            return False
        finally:
            self._want_input = False
        return True

    async def _write(self, data: bytes) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        if not data:
            return
        self._transport.write(data)
        if not self._can_write.is_set():
            async with asyncio.timeout(self._timeout()):
                await self._can_write.wait()

    async def _send_message(self, status: bytes, transfer: MessageTransfer) -> None:
        """The status line and the message, piece by piece (see the module docstring)."""
        loop = asyncio.get_running_loop()
        self._sending = True
        try:
            await self._write(status + transfer.take_ready())
            while not transfer.finished:
                piece = await loop.run_in_executor(None, transfer.read)
                await self._write(piece)
        finally:
            self._sending = False
            transfer.close()

    async def _start_tls(self) -> None:
        """RFC 2595 §4: the handshake right after the +OK. Input received since the
        command is dropped; `loop.start_tls` pauses reading and swaps the protocol in the
        same step, so no plaintext reaches the session after this."""
        assert self._session is not None and self._transport is not None
        context = self._listener.tls_context
        if context is None:
            raise ConnectionResetError("no TLS context")
        self._session.discard_input()
        self._want_input = True  # never pause the raw transport during the handshake
        try:
            loop = asyncio.get_running_loop()
            transport = await loop.start_tls(
                self._transport,
                self,
                context,
                server_side=True,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT_S,
            )
        finally:
            self._want_input = False
        if transport is None:
            raise ConnectionResetError("TLS handshake failed")
        self._transport = transport
        self._paused = False
        log.info("pop3 stls client=%s", self._peer)

    # -- for the listener -------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._sending or (self._session is not None and self._session.busy)

    def shut_down(self) -> None:
        """Server stop: no UPDATE (RFC 1939 §6); a word first when between commands."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._session is None:
            return
        if not self.busy:
            with contextlib.suppress(Exception):
                transport.write(self._session.shutdown())
        transport.close()
        if self._task is not None:
            self._task.cancel()


class Pop3Listener:
    """One POP3 listener (a `[listeners]` entry). The wiring passes `protocol_factory` to
    `loop.create_server` (with `ssl=` for implicit TLS); `tls_context` is for STLS."""

    def __init__(
        self,
        *,
        name: str,
        session_factory: SessionFactory,
        limits: Limits,
        gate: ConnectionGate,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.session_factory = session_factory
        self.limits = limits
        self.gate = gate
        self.tls_context = tls_context
        self.connections: set[Pop3Connection] = set()

    def protocol_factory(self) -> Pop3Connection:
        return Pop3Connection(self)

    @property
    def connection_count(self) -> int:
        return len(self.connections)

    @property
    def busy(self) -> bool:
        """Some connection is in the middle of a command."""
        return any(connection.busy for connection in self.connections)

    def close_all(self) -> None:
        for connection in list(self.connections):
            connection.shut_down()

"""The asyncio adapter around `ImapSession`: socket, TLS, timeouts, connection gate.

One `ImapConnection` (an `asyncio.Protocol`) per accepted socket; it feeds received bytes
to the session and runs one task that loops `next_event()` → write → act. Nothing here
parses IMAP. Works with the default loop and uvloop (transports, `loop.start_tls`).

- Input is read only while the session waits for it: `data_received` pauses the
  transport while a command runs, so a client pipelining megabytes is held back by TCP,
  not buffered here (the framer's limits bound the rest).
- STARTTLS: the framer is emptied right before `loop.start_tls` swaps the protocol, so
  nothing the client sent in plaintext after the command is executed (RFC 9051 §6.2.1,
  CVE-2011-0411 class); plaintext arriving later is fed to the TLS handshake and fails it.
- Timeouts (RFC 9051 §5.4): `imap_login_timeout_s` before login, `imap_idle_timeout_s`
  after (IDLE included); then `* BYE` and close.
- The gate refuses a connection over the limits with `* BYE [UNAVAILABLE]`.
- `close_all()` says `* BYE` to every connection (a graceful stop); `busy` tells whether
  some command is running.
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

from .session import Action, ImapSession

log = logging.getLogger(__name__)

SessionFactory = Callable[[str, bool], ImapSession]  # (peer ip, TLS active) -> session
TLS_HANDSHAKE_TIMEOUT_S = 30.0


def _peer_ip(peername: Any) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "")


class ImapConnection(asyncio.Protocol):
    def __init__(self, listener: ImapListener) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._session: ImapSession | None = None
        self._peer = ""
        self._wake = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._want_input = False
        self._paused = False
        self._timer_start = 0.0  # loop time the autologout timer last started
        self._closed = False
        self._gated = False
        self._task: asyncio.Task[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = _peer_ip(transport.get_extra_info("peername"))
        listener = self._listener
        if not listener.gate.acquire(self._peer):
            log.warning("imap connection_refused client=%s reason=limit", self._peer)
            self._transport.write(b"* BYE [UNAVAILABLE] Too many connections\r\n")
            self._transport.close()
            self._closed = True
            return
        self._gated = True
        tls = transport.get_extra_info("ssl_object") is not None
        self._session = listener.session_factory(self._peer, tls)
        self._session.wakeup = self._wake.set
        self._session.writer = self._write
        listener.connections.add(self)
        log.info("imap connect client=%s listener=%s tls=%s", self._peer, listener.name, tls)
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
        previous: Action | None = None
        try:
            await self._write(session.greeting())
            while not self._closed:
                out = await session.next_event()
                if out.data:
                    await self._write(out.data)
                action = out.action
                if action is Action.CLOSE:
                    reason = "logout"
                    break
                if action is Action.START_TLS:
                    await self._start_tls()
                    session.tls_started()
                elif action in (Action.READ, Action.IDLE):
                    # The autologout timer restarts when the server waits for a command,
                    # and when IDLE begins; updates sent during IDLE do not restart it
                    # (RFC 2177 §3: clients re-issue IDLE at least every 29 minutes).
                    if action is Action.READ or previous is not Action.IDLE:
                        self._timer_start = asyncio.get_running_loop().time()
                    previous = action
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

    async def _wait_input(self) -> bool:
        """Wait for input (or, while idling, a change of the selected folder); False when
        the autologout timer ran out (RFC 9051 §5.4)."""
        assert self._session is not None and self._transport is not None
        limits = self._listener.limits
        timeout = (
            limits.imap_idle_timeout_s
            if self._session.authenticated
            else limits.imap_login_timeout_s
        )
        timeout -= asyncio.get_running_loop().time() - self._timer_start
        if timeout <= 0:
            return False
        self._wake.clear()
        self._want_input = True
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        try:
            async with asyncio.timeout(timeout):
                await self._wake.wait()
        except TimeoutError:
            return False
        finally:
            self._want_input = False
        return True

    async def _write(self, data: bytes) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        self._transport.write(data)
        await self._can_write.wait()

    async def _start_tls(self) -> None:
        """RFC 9051 §6.2.1: the handshake right after the tagged OK. Input received since
        the command is dropped; `loop.start_tls` pauses reading and swaps the protocol in
        the same step, so no plaintext reaches the session after this."""
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
        log.info("imap starttls client=%s", self._peer)

    # -- for the listener -------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._session is not None and self._session.busy

    def shut_down(self) -> None:
        """Server stop: `* BYE` and close (RFC 9051 §7.1.5)."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._session is None:
            return
        with contextlib.suppress(Exception):
            transport.write(self._session.shutdown())
        transport.close()
        if self._task is not None:
            self._task.cancel()


class ImapListener:
    """One IMAP listener (a `[listeners]` entry). The wiring passes `protocol_factory` to
    `loop.create_server` (with `ssl=` for implicit TLS); `tls_context` is for STARTTLS."""

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
        self.connections: set[ImapConnection] = set()

    def protocol_factory(self) -> ImapConnection:
        return ImapConnection(self)

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

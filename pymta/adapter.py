"""The asyncio side shared by the IMAP and POP3 front ends: one connection per socket around
a sans-I/O session, and the listener that owns them.

`SessionConnection` is an `asyncio.Protocol`: it feeds received bytes to the session and
runs one task (`_serve`, the protocol's own loop of `next_event()` → write → act). What
every such front end needs is here, written once:

- The connection gate: over the limits, the protocol's refusal line and close.
- Input is read only while the session waits for it: `data_received` pauses the transport
  while a command runs, so a client pipelining megabytes is held back by TCP, not
  buffered here (the session's framer bounds the rest).
- Output waits while the transport is above its high-water mark (`pause_writing`), for
  at most the session's timeout: a client that stops reading is closed like an idle one.
- STARTTLS / STLS: the session's input is emptied right before `loop.start_tls` swaps the
  protocol, so nothing the client sent in plaintext after the command is executed (RFC
  9051 §6.2.1, RFC 2595 §4; CVE-2011-0411 class); plaintext arriving later is fed to the
  TLS handshake and fails it.
- `shut_down` (server stop) sends the session's goodbye when the protocol allows it now,
  and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from typing import Any, ClassVar, Generic, Protocol, TypeVar, cast

from pymta.config.model import Limits
from pymta.gate import ConnectionGate

log = logging.getLogger(__name__)

TLS_HANDSHAKE_TIMEOUT_S = 30.0


class AdaptedSession(Protocol):
    """What the adapter calls on a sans-I/O session (`ImapSession`, `Pop3Session`)."""

    @property
    def busy(self) -> bool: ...

    @property
    def authenticated(self) -> bool: ...

    def receive_data(self, data: bytes) -> None: ...

    def discard_input(self) -> None: ...

    def shutdown(self) -> bytes: ...


S = TypeVar("S", bound=AdaptedSession)


def peer_ip(peername: Any) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "")


class SessionConnection(asyncio.Protocol, Generic[S]):
    """One accepted socket. Subclasses name the protocol and write `_serve`."""

    protocol_name: ClassVar[str]  # in log lines: "imap", "pop3"
    refusal: ClassVar[bytes]  # said to a connection over the gate's limits
    tls_command: ClassVar[str]  # in log lines: "starttls", "stls"

    def __init__(self, listener: SessionListener[S]) -> None:
        self._listener = listener
        self._transport: asyncio.Transport | None = None
        self._session: S | None = None
        self._peer = ""
        self._wake = asyncio.Event()
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._want_input = False
        self._paused = False
        self._closed = False
        self._gated = False
        self._task: asyncio.Task[None] | None = None

    # -- for subclasses ---------------------------------------------------------------

    def _session_started(self, session: S) -> None:
        """Called once the session exists, before `_serve` starts."""

    async def _serve(self) -> None:
        raise NotImplementedError

    def _goodbye_allowed(self) -> bool:
        """Whether `shut_down` may write the session's goodbye now."""
        return True

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._peer = peer_ip(transport.get_extra_info("peername"))
        listener = self._listener
        name = self.protocol_name
        if not listener.gate.acquire(self._peer):
            log.warning("%s connection_refused client=%s reason=limit", name, self._peer)
            self._transport.write(self.refusal)
            self._transport.close()
            self._closed = True
            return
        self._gated = True
        tls = transport.get_extra_info("ssl_object") is not None
        self._session = listener.session_factory(self._peer, tls)
        self._session_started(self._session)
        listener.connections.add(self)
        log.info("%s connect client=%s listener=%s tls=%s", name, self._peer, listener.name, tls)
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

    # -- input, output, TLS -----------------------------------------------------------

    def _timeout(self) -> float:
        """The session's timeout: `imap_login_timeout_s` before login, then
        `imap_idle_timeout_s` (shared by IMAP and POP3)."""
        assert self._session is not None
        limits = self._listener.limits
        if self._session.authenticated:
            return limits.imap_idle_timeout_s
        return limits.imap_login_timeout_s

    async def _wait_input(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for input (or another wake-up); False if none."""
        assert self._transport is not None
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
        """Write, then wait while the transport is above its high-water mark: for at most
        the session's timeout, then the connection is aborted (ConnectionResetError)."""
        if self._closed or self._transport is None or self._transport.is_closing():
            raise ConnectionResetError("connection closed")
        if not data:
            return
        self._transport.write(data)
        if self._can_write.is_set():
            return
        try:
            async with asyncio.timeout(self._timeout()):
                await self._can_write.wait()
        except TimeoutError:
            # The client stopped reading: drop what is buffered and the connection, as an
            # idle client is dropped; the session sees a closed connection.
            log.info("%s drain_timeout client=%s", self.protocol_name, self._peer)
            self._closed = True
            self._transport.abort()
            raise ConnectionResetError("client stopped reading") from None

    async def _start_tls(self) -> None:
        """The handshake right after the reply to STARTTLS / STLS. Input received since the
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
        log.info("%s %s client=%s", self.protocol_name, self.tls_command, self._peer)

    # -- for the listener -------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self._session is not None and self._session.busy

    def shut_down(self) -> None:
        """Server stop: the session's goodbye when allowed now, then close."""
        transport = self._transport
        if transport is None or transport.is_closing() or self._session is None:
            return
        if self._goodbye_allowed():
            with contextlib.suppress(Exception):
                transport.write(self._session.shutdown())
        transport.close()
        if self._task is not None:
            self._task.cancel()


class SessionListener(Generic[S]):
    """One listener (a `[listeners]` entry). The wiring passes `protocol_factory` to
    `loop.create_server` (with `ssl=` for implicit TLS); `tls_context` is for STARTTLS."""

    connection_class: ClassVar[type[SessionConnection[Any]]]

    def __init__(
        self,
        *,
        name: str,
        session_factory: Callable[[str, bool], S],  # (peer ip, TLS active) -> session
        limits: Limits,
        gate: ConnectionGate,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.session_factory = session_factory
        self.limits = limits
        self.gate = gate
        self.tls_context = tls_context
        self.connections: set[SessionConnection[S]] = set()

    def protocol_factory(self) -> SessionConnection[S]:
        return self.connection_class(self)

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

"""Shared harness for the SMTP front-end tests (named test_smtp_* to stay within the
files the SMTP front end owns; it holds no tests itself).

- `FakePolicy`: an in-memory `InboundPolicy` whose answers depend on the address
  (`unknown@` → unknown user, `full@` → over quota, `boom@` → raises, ...) and which
  records every delivery.
- `running_server(**limits)`: an `SmtpListener` on 127.0.0.1 port 0 in the current loop.
- `Wire`: a raw SMTP client over asyncio streams that reads like the conversation:
  `await c.send("MAIL FROM:<a@b>")`, `await c.expect("250 2.1.0")`.
- `@on_each_loop`: runs an async test on the default event loop and on uvloop (the
  server uses uvloop when it is installed).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import re
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pymta.config.model import Limits
from pymta.delivery.verdicts import DeliveryOutcome, Refusal, SessionInfo
from pymta.queue.model import DsnRequest
from pymta.smtp import codes
from pymta.smtp.codes import Reply
from pymta.smtp.server import SmtpListener

HOSTNAME = "mx.example.test"
MESSAGE = b"From: a@outside.test\r\nTo: alice@example.test\r\nSubject: hi\r\n\r\nhello\r\n"

RCPT_REFUSALS = {
    "unknown": Refusal.UNKNOWN_USER,
    "internal": Refusal.INTERNAL_ONLY,
    "disabled": Refusal.MAILBOX_DISABLED,
    "full": Refusal.OVER_QUOTA,
    "tempfail": Refusal.TEMPORARY,
}


@dataclass
class Delivery:
    session: SessionInfo
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    dsn: DsnRequest | None = None  # the RFC 3461 parameters the handler passed on

    @property
    def received(self) -> str:
        """Our Received header field, unfolded (RFC 5322 §2.2.3)."""
        head = self.message[: len(self.message) - len(self.body)].decode()
        return re.sub(r"\r\n[ \t]", " ", head).rstrip("\r\n")

    @property
    def body(self) -> bytes:
        """The message without our Received header (its first, folded, field)."""
        lines = self.message.split(b"\r\n")
        assert lines[0].startswith(b"Received: ")
        rest = 1
        while lines[rest][:1] in (b" ", b"\t"):
            rest += 1
        return b"\r\n".join(lines[rest:])


@dataclass
class FakePolicy:
    """Local part decides: see RCPT_REFUSALS; `boom@` raises; domains other than
    example.test are relaying; deliver-temp@/deliver-fail@/deliver-boom@ at DATA."""

    deliveries: list[Delivery] = field(default_factory=list)
    senders: list[tuple[SessionInfo, str]] = field(default_factory=list)
    recipients: list[tuple[SessionInfo, str, str]] = field(default_factory=list)

    async def check_sender(self, session: SessionInfo, sender: str) -> Reply | None:
        self.senders.append((session, sender))
        if sender.startswith("boom@"):
            raise RuntimeError("directory on fire")
        if sender.startswith("refused@"):
            return codes.Reply(550, "5.7.1", "Sender refused")
        return None

    async def check_recipient(
        self, session: SessionInfo, sender: str, recipient: str
    ) -> Refusal | None:
        self.recipients.append((session, sender, recipient))
        local, _, domain = recipient.rpartition("@")
        if local == "boom":
            raise RuntimeError("directory on fire")
        if domain != "example.test":
            return Refusal.RELAY_DENIED
        return RCPT_REFUSALS.get(local)

    async def deliver(
        self,
        session: SessionInfo,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        dsn: DsnRequest | None = None,
    ) -> DeliveryOutcome:
        locals_ = {r.partition("@")[0] for r in recipients}
        if "deliver-boom" in locals_:
            raise RuntimeError("disk on fire")
        if "deliver-temp" in locals_:
            return DeliveryOutcome(accepted=False, temporary=True, detail="store busy")
        if "deliver-fail" in locals_:
            return DeliveryOutcome(accepted=False, detail="filtered")
        self.deliveries.append(Delivery(session, sender, tuple(recipients), message, dsn))
        return DeliveryOutcome(accepted=True, routes=tuple((r, "local") for r in recipients))


class CountingGate:
    """Total and per-IP connection counts (the shape of the server's gate)."""

    def __init__(self, max_total: int = 100, max_per_ip: int = 100) -> None:
        self.max_total, self.max_per_ip = max_total, max_per_ip
        self.per_ip: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.per_ip.values())

    def acquire(self, ip: str) -> bool:
        if self.total >= self.max_total or self.per_ip[ip] >= self.max_per_ip:
            return False
        self.per_ip[ip] += 1
        return True

    def release(self, ip: str) -> None:
        assert self.per_ip[ip] > 0, "released more than acquired"
        self.per_ip[ip] -= 1


@dataclass
class RunningServer:
    port: int
    policy: FakePolicy
    listener: SmtpListener
    gate: CountingGate
    implicit_tls: bool = False

    async def connect(self, *, greeting: bool = True) -> Wire:
        tls = client_tls_context() if self.implicit_tls else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=tls, server_hostname="localhost" if tls else None
        )
        wire = Wire(reader, writer)
        if greeting:
            await wire.expect(f"220 {HOSTNAME} ESMTP")
        return wire

    async def session(self, helo: str = "client.example") -> Wire:
        """Connected, greeted, EHLO done."""
        wire = await self.connect()
        await wire.send(f"EHLO {helo}")
        await wire.expect("250-")
        return wire


@contextlib.asynccontextmanager
async def running_server(
    *,
    tls_context: ssl.SSLContext | None = None,
    implicit_tls: bool = False,
    gate: CountingGate | None = None,
    **limits: float,
) -> AsyncIterator[RunningServer]:
    policy = FakePolicy()
    gate = gate or CountingGate()
    listener = SmtpListener(
        name="mx",
        policy=policy,
        limits=Limits(**limits),  # type: ignore[arg-type]
        hostname=HOSTNAME,
        gate=gate,
        tls_context=tls_context,
        implicit_tls=implicit_tls,
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        listener.protocol_factory, "127.0.0.1", 0, ssl=tls_context if implicit_tls else None
    )
    try:
        yield RunningServer(
            server.sockets[0].getsockname()[1], policy, listener, gate, implicit_tls
        )
    finally:
        server.close()
        listener.close_all()
        await server.wait_closed()


class Wire:
    """A raw SMTP client: whole replies (multi-line aware), checked by prefix."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def send(self, line: str) -> None:
        await self.send_raw(line.encode() + b"\r\n")

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def reply(self, timeout: float = 5.0) -> str:
        """One whole reply; its lines joined by CRLF."""
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                raise ConnectionError(f"connection closed after {lines!r}")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(line)
            if line[3:4] != "-":
                return "\r\n".join(lines)

    async def expect(self, *prefixes: str | Reply) -> list[str]:
        """The next replies, in order, each starting with its prefix."""
        got = []
        for prefix in prefixes:
            reply = await self.reply()
            assert reply.startswith(str(prefix)), f"expected {str(prefix)!r}, got {reply!r}"
            got.append(reply)
        return got

    async def expect_closed(self, timeout: float = 5.0) -> None:
        rest = await asyncio.wait_for(self.reader.read(), timeout)
        assert rest == b"", f"expected the server to close, got {rest!r}"

    async def starttls(self, context: ssl.SSLContext) -> None:
        await self.writer.start_tls(context, server_hostname="localhost")

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def eventually(condition: object, timeout: float = 5.0) -> None:
    """Wait until `condition()` holds (a state the server reaches on its own)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():  # type: ignore[operator]
        assert loop.time() < deadline, "condition never held"
        await asyncio.sleep(0.01)


def server_tls_context(tls_cert: tuple[Path, Path]) -> ssl.SSLContext:
    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    return context


def client_tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@pytest.fixture
async def srv() -> AsyncIterator[RunningServer]:
    async with running_server() as server:
        yield server


LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop

    LOOPS["uvloop"] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - uvloop is optional
    pass


def on_each_loop(scenario: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the async test `scenario` once per event loop in LOOPS. A scenario taking
    `tls_cert` gets the session's throwaway certificate."""
    wants_cert = "tls_cert" in inspect.signature(scenario).parameters

    def run(loop_name: str, *args: object) -> None:
        with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
            runner.run(asyncio.wait_for(scenario(*args), 20))

    if wants_cert:

        def test(loop_name: str, tls_cert: tuple[Path, Path]) -> None:
            run(loop_name, tls_cert)

    else:

        def test(loop_name: str) -> None:  # type: ignore[misc]
            run(loop_name)

    test.__name__, test.__doc__ = scenario.__name__, scenario.__doc__
    return pytest.mark.parametrize("loop_name", LOOPS)(test)

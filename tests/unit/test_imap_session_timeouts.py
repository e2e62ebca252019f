"""The autologout timer of the asyncio adapter (RFC 9051 §5.4), with small timeouts injected
into `Limits` (the config refuses an idle timeout under 30 minutes, so the mechanism is
tested here, on a real listener over loopback): `imap_login_timeout_s` before login,
`imap_idle_timeout_s` once logged in, IDLE included; then `* BYE` and the connection closes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pymta.config.model import Limits
from pymta.gate import ConnectionGate
from pymta.imap.server import ImapListener
from pymta.imap.session import ImapSession, SessionConfig
from tests.unit.test_imap_session import ALICE, PASSWORD, Env

LOGIN_TIMEOUT_S = 0.3
IDLE_TIMEOUT_S = 1.2
BYE = b"* BYE Autologout; idle for too long\r\n"


@dataclass
class Served:
    env: Env
    listener: ImapListener
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    limits = Limits(
        imap_login_timeout_s=LOGIN_TIMEOUT_S,
        imap_idle_timeout_s=IDLE_TIMEOUT_S,
        auth_failure_delay_s=0,
    )
    env = Env(tmp_path, limits=limits)

    def session(peer_ip: str, tls_active: bool) -> ImapSession:
        config = SessionConfig(
            store=env.store,
            authenticator=env.auth,
            directory=env.holder,
            limits=limits,
            hostname="mx.example.test",
            listener="imap",
            starttls_available=False,
            plaintext_auth=True,  # loopback, no TLS: the timers are what is tested
        )
        return ImapSession(config, peer_ip=peer_ip, tls_active=tls_active)

    listener = ImapListener(
        name="imap", session_factory=session, limits=limits, gate=ConnectionGate(10, 10)
    )
    server = await asyncio.get_running_loop().create_server(
        listener.protocol_factory, "127.0.0.1", 0
    )
    port = server.sockets[0].getsockname()[1]
    yield Served(env, listener, port)
    listener.close_all()
    server.close()
    await server.wait_closed()
    await env.close()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def command(self, line: str, tag: str) -> list[bytes]:
        self.writer.write(line.encode() + b"\r\n")
        return await self.until(tag.encode() + b" ")

    async def until(self, prefix: bytes) -> list[bytes]:
        lines = []
        async with asyncio.timeout(5):
            while True:
                line = await self.reader.readline()
                assert line, lines  # not closed before the reply
                lines.append(line)
                if line.startswith(prefix):
                    return lines

    async def rest_until_closed(self) -> bytes:
        """Everything the server still sends, up to its close (a hang fails the test)."""
        async with asyncio.timeout(5):
            return await self.reader.read()


async def connect(served: Served) -> Client:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    client = Client(reader, writer)
    assert (await reader.readline()).startswith(b"* OK [CAPABILITY")
    return client


async def logged_in(served: Served) -> Client:
    client = await connect(served)
    assert (await client.command(f"a1 LOGIN alice {PASSWORD}", "a1"))[-1].startswith(b"a1 OK")
    return client


async def test_unauthenticated_connection_is_logged_out(served: Served) -> None:
    client = await connect(served)
    start = time.monotonic()
    assert await client.rest_until_closed() == BYE
    assert time.monotonic() - start >= LOGIN_TIMEOUT_S * 0.9
    await asyncio.sleep(0)  # connection_lost runs
    assert served.listener.connection_count == 0  # and the gate was released


async def test_each_command_restarts_the_login_timer(served: Served) -> None:
    client = await connect(served)
    for n in range(6):  # twice the timeout in all, never idle for a whole one
        await asyncio.sleep(LOGIN_TIMEOUT_S / 3)
        assert (await client.command(f"n{n} NOOP", f"n{n}"))[-1].startswith(b"n%d OK" % n)
    assert await client.rest_until_closed() == BYE


async def test_authenticated_connection_waits_for_the_idle_timeout(served: Served) -> None:
    client = await logged_in(served)
    # Well past the login timeout, the logged-in connection is still served ...
    await asyncio.sleep(LOGIN_TIMEOUT_S * 2)
    assert (await client.command("a2 NOOP", "a2"))[-1] == b"a2 OK NOOP completed\r\n"
    # ... and logged out only once imap_idle_timeout_s has passed without a command.
    start = time.monotonic()
    assert await client.rest_until_closed() == BYE
    assert time.monotonic() - start >= IDLE_TIMEOUT_S * 0.9


async def test_idle_command_is_logged_out_after_the_idle_timeout(served: Served) -> None:
    client = await logged_in(served)
    await client.command("s1 SELECT INBOX", "s1")
    client.writer.write(b"i1 IDLE\r\n")
    assert await client.until(b"+ ") == [b"+ idling\r\n"]
    start = time.monotonic()
    # RFC 9051 §5.4 / RFC 2177 §3: IDLE does not hold the timer off for ever.
    assert await client.rest_until_closed() == BYE
    assert time.monotonic() - start >= IDLE_TIMEOUT_S * 0.9


def test_session_autologout_says_bye_and_ends_the_session(tmp_path: Path) -> None:
    session = Env(tmp_path).session().session
    assert session.autologout() == BYE
    assert session.state.value == "logout"


async def test_updates_sent_during_idle_do_not_restart_the_timer(served: Served) -> None:
    """The autologout timer counts the client's silence; a busy mailbox does not keep an
    idling client connected beyond it (RFC 2177 §3)."""
    client = await logged_in(served)
    await client.command("s1 SELECT INBOX", "s1")
    client.writer.write(b"i1 IDLE\r\n")
    assert await client.until(b"+ ") == [b"+ idling\r\n"]
    start = time.monotonic()

    async def keep_delivering() -> None:
        while True:
            await asyncio.sleep(IDLE_TIMEOUT_S / 4)
            await served.env.deliver()

    feeder = asyncio.create_task(keep_delivering())
    try:
        rest = await client.rest_until_closed()
    finally:
        feeder.cancel()
    assert rest.endswith(BYE) and b"EXISTS" in rest
    assert time.monotonic() - start < IDLE_TIMEOUT_S * 2


async def test_a_client_that_stops_reading_is_closed_after_the_idle_timeout(
    served: Served,
) -> None:
    """A FETCH answer larger than the socket buffers, to a client that never reads: the
    server waits for the transport to drain for the session's timeout, then closes (it
    does not hold the connection, its gate slot and the buffered answer forever)."""
    line = b"x" * 78 + b"\r\n"
    raw = b"Subject: large\r\n\r\n" + line * (16_000_000 // len(line))
    await served.env.store.deliver(ALICE, raw)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connecting
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", served.port))
    login = f"a1 LOGIN alice {PASSWORD}\r\na2 SELECT INBOX\r\na3 FETCH 1 BODY[]\r\n"
    await loop.sock_sendall(sock, login.encode())
    async with asyncio.timeout(10):  # the answer fills the buffers and the writer waits
        while not any(not c._can_write.is_set() for c in served.listener.connections):
            await asyncio.sleep(0.01)
    start = time.monotonic()
    async with asyncio.timeout(IDLE_TIMEOUT_S * 8):
        while served.listener.connection_count:  # the client reads nothing meanwhile
            await asyncio.sleep(0.05)
    assert time.monotonic() - start >= IDLE_TIMEOUT_S * 0.9
    sock.close()

"""The POP3 asyncio adapter on a real listener over loopback (no TLS, plaintext allowed: what
is tested is the adapter): flow control while streaming a large message to a client that
does not read, the autologout timer (RFC 1939 §3: closed without a reply, no UPDATE, the
maildrop released), the connection gate, and a graceful stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pymta.config.model import Limits
from pymta.gate import ConnectionGate
from pymta.pop3.server import Pop3Connection, Pop3Listener
from pymta.pop3.session import Pop3Session, SessionConfig
from pymta.pop3.wire import CHUNK_BYTES
from tests.unit.test_pop3_session import ALICE, PASSWORD, Env, until

LOGIN_TIMEOUT_S = 0.3
IDLE_TIMEOUT_S = 0.6


@dataclass
class Served:
    env: Env
    listener: Pop3Listener
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    limits = Limits(
        imap_login_timeout_s=LOGIN_TIMEOUT_S,
        imap_idle_timeout_s=IDLE_TIMEOUT_S,
        auth_failure_delay_s=0,
    )
    env = Env(tmp_path, limits=limits)

    def session(peer_ip: str, tls_active: bool) -> Pop3Session:
        config = SessionConfig(
            store=env.store,
            authenticator=env.auth,
            maildrops=env.maildrops,
            limits=limits,
            hostname="mx.example.test",
            listener="pop3",
            starttls_available=False,
            plaintext_auth=True,
        )
        return Pop3Session(config, peer_ip=peer_ip, tls_active=tls_active)

    listener = Pop3Listener(
        name="pop3", session_factory=session, limits=limits, gate=ConnectionGate(10, 2)
    )
    server = await asyncio.get_running_loop().create_server(
        listener.protocol_factory, "127.0.0.1", 0
    )
    yield Served(env, listener, server.sockets[0].getsockname()[1])
    listener.close_all()
    server.close()
    await server.wait_closed()
    await env.close()


async def connect(
    served: Served, *, login: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port, limit=1 << 26)
    assert (await reader.readline()).startswith(b"+OK")
    if login:
        writer.write(f"USER alice\r\nPASS {PASSWORD}\r\n".encode())
        assert (await reader.readline()).startswith(b"+OK")
        assert (await reader.readline()).startswith(b"+OK Logged in")
    return reader, writer


def connection(served: Served) -> Pop3Connection:
    [conn] = served.listener.connections
    return conn


class RawClient:
    """A client on a plain non-blocking socket that reads only when told to: no
    StreamReader draining the socket behind the test's back, so the server really meets
    a client that reads nothing."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.loop = asyncio.get_running_loop()

    @classmethod
    async def connect(cls, served: Served, *, rcvbuf: int) -> RawClient:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connecting
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", served.port))
        return cls(sock)

    async def send(self, data: bytes) -> None:
        await self.loop.sock_sendall(self.sock, data)

    async def read_until(self, terminator: bytes) -> bytes:
        searched = 0  # the buffer before this cannot hold the start of the terminator
        async with asyncio.timeout(30):
            while (at := self.buffer.find(terminator, searched)) < 0:
                searched = max(0, len(self.buffer) - len(terminator) + 1)
                chunk = await self.loop.sock_recv(self.sock, 1 << 20)
                assert chunk, "closed before the terminator"
                self.buffer += chunk
        end = at + len(terminator)
        found = bytes(self.buffer[:end])
        del self.buffer[:end]
        return found


async def test_large_message_is_streamed_under_flow_control(served: Served) -> None:
    line = b".stuffed line of a large message " + b"x" * 60 + b"\r\n"
    raw = b"Subject: large\r\n\r\n" + line * (24_000_000 // len(line))
    await served.env.store.deliver(ALICE, raw)
    client = await RawClient.connect(served, rcvbuf=16 * 1024)
    assert (await client.read_until(b"\r\n")).startswith(b"+OK")
    await client.send(f"USER alice\r\nPASS {PASSWORD}\r\n".encode())
    assert (await client.read_until(b"\r\n")).startswith(b"+OK")
    assert (await client.read_until(b"\r\n")).startswith(b"+OK Logged in")
    await client.send(b"RETR 1\r\n")
    conn = connection(served)
    # The client reads nothing: the writer stops at the transport's high-water mark ...
    await until(lambda: not conn._can_write.is_set())
    transport = conn._transport
    assert transport is not None
    _, high = transport.get_write_buffer_limits()
    # ... with at most one piece of the message above it, and most of the file unread.
    stuffed = CHUNK_BYTES + CHUNK_BYTES // len(line) + 1
    assert transport.get_write_buffer_size() <= high + stuffed
    assert conn.busy
    # Then everything arrives, in order, dot-stuffed, as announced.
    assert await client.read_until(b"\r\n") == b"+OK %d octets\r\n" % len(raw)
    body = await client.read_until(b"\r\n.\r\n")
    assert body.replace(b"\r\n..", b"\r\n.")[: -len(b".\r\n")] == raw
    await client.send(b"QUIT\r\n")
    assert (await client.read_until(b"\r\n")).startswith(b"+OK")
    client.sock.close()


async def test_unauthenticated_connection_is_closed_silently(served: Served) -> None:
    reader, _ = await connect(served, login=False)
    async with asyncio.timeout(5):
        assert await reader.read() == b""  # RFC 1939 §3: no response
    await until(lambda: served.listener.connection_count == 0)  # and the gate is free


async def test_idle_session_is_closed_without_update_and_unlocked(served: Served) -> None:
    await served.env.deliver(b"Subject: x\r\n\r\nbody\r\n")
    reader, writer = await connect(served)
    writer.write(b"DELE 1\r\n")
    assert await reader.readline() == b"+OK Message 1 deleted\r\n"
    # Past the login timeout, a logged-in session is still served ...
    await asyncio.sleep(LOGIN_TIMEOUT_S * 1.5)
    writer.write(b"NOOP\r\n")
    assert await reader.readline() == b"+OK\r\n"
    # ... until the idle timeout: closed, nothing deleted, the maildrop free again.
    async with asyncio.timeout(5):
        assert await reader.read() == b""
    await until(lambda: not served.env.maildrops.locked(ALICE))
    assert len(await served.env.store.messages(ALICE, "INBOX")) == 1


async def test_gate_refuses_connections_over_the_limit(served: Served) -> None:
    first = await connect(served, login=False)
    second = await connect(served, login=False)  # two per IP
    reader, _ = await asyncio.open_connection("127.0.0.1", served.port)
    async with asyncio.timeout(5):
        assert await reader.read() == b"-ERR [SYS/TEMP] Too many connections\r\n"
    for _, writer in (first, second):
        writer.close()


async def test_close_all_between_commands(served: Served) -> None:
    reader, writer = await connect(served)
    writer.write(b"NOOP\r\n")
    assert await reader.readline() == b"+OK\r\n"
    served.listener.close_all()
    async with asyncio.timeout(5):
        assert await reader.read() == b"-ERR [SYS/TEMP] Server shutting down\r\n"
    await until(lambda: not served.env.maildrops.locked(ALICE))

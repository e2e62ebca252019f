"""Limits against the real server, over implicit TLS (993-style) and STARTTLS (143-style): a
huge literal announced, 10,000 nested parentheses, a 1 MB line, LITERAL+ over APPENDLIMIT.
Each is answered as the RFCs say (never a crash, never the memory first), the connection
goes on where it can, and the server still answers a new connection afterwards."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_imap_basic import client_tls, with_imap

APPEND_LIMIT = 64 * 1024  # max_message_size, advertised as APPENDLIMIT (RFC 7889)
MODES = ("implicit", "starttls")


def with_limits(cfg: dict[str, Any]) -> None:
    with_imap(cfg)
    cfg["limits"] = {"max_message_size": APPEND_LIMIT}


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(edit=with_limits)


class Conn:
    """A raw IMAP connection over TLS: send bytes, read up to a marker."""

    def __init__(self, sock: ssl.SSLSocket) -> None:
        self.sock = sock
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until(self, marker: bytes) -> bytes:
        """Everything up to and including the line holding `marker`."""
        deadline = time.monotonic() + 10
        while marker not in self.buffer:
            assert time.monotonic() < deadline, self.buffer[-300:]
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buffer += chunk
        end = self.buffer.find(b"\r\n", self.buffer.find(marker)) + 2
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def rest_until_closed(self) -> bytes:
        """What the server still sends before it closes (a timeout fails the test)."""
        try:
            while chunk := self.sock.recv(65536):
                self.buffer += chunk
        except (ConnectionResetError, ssl.SSLEOFError):
            pass  # closed without a TLS close_notify: closed all the same
        rest, self.buffer = self.buffer, b""
        return rest

    def close(self) -> None:
        self.sock.close()


def connect(srv: ServerThread, mode: str) -> Conn:
    if mode == "implicit":
        raw = socket.create_connection(("127.0.0.1", srv.port("imaps")), timeout=10)
        conn = Conn(client_tls().wrap_socket(raw, server_hostname="localhost"))
        assert conn.until(b"\r\n").startswith(b"* OK [CAPABILITY")
        return conn
    raw = socket.create_connection(("127.0.0.1", srv.port("imap")), timeout=10)
    assert raw.recv(4096).startswith(b"* OK")
    raw.sendall(b"t0 STARTTLS\r\n")
    assert raw.recv(4096).startswith(b"t0 OK")
    return Conn(client_tls().wrap_socket(raw, server_hostname="localhost"))


def logged_in(srv: ServerThread, mode: str) -> Conn:
    conn = connect(srv, mode)
    conn.send(b'l1 LOGIN alice "%s"\r\n' % PASSWORDS["alice"].encode())
    assert conn.until(b"l1 ").startswith(b"l1 OK")
    return conn


def assert_new_connection_served(srv: ServerThread, mode: str) -> None:
    conn = logged_in(srv, mode)
    conn.send(b"n1 SELECT INBOX\r\nn2 NOOP\r\n")
    assert b"n1 OK" in conn.until(b"n1 ")
    assert conn.until(b"n2 ").startswith(b"n2 OK")
    conn.close()


def assert_still_answering(conn: Conn) -> None:
    conn.send(b"z1 NOOP\r\n")
    assert conn.until(b"z1 ").startswith(b"z1 OK")


@pytest.mark.parametrize("mode", MODES)
def test_huge_literal_announced(srv: ServerThread, mode: str) -> None:
    """RFC 7889 §4 / RFC 9051 §7.5: a synchronizing literal over the limit is refused before
    the client sends one octet: no "+" continuation, nothing allocated."""
    conn = connect(srv, mode)
    conn.send(b"a1 APPEND INBOX {4294967296}\r\n")
    assert conn.until(b"a1 ") == b"a1 BAD [TOOBIG] Literal too large\r\n"  # not logged in
    assert_still_answering(conn)
    conn.close()
    conn = logged_in(srv, mode)
    conn.send(b"a2 APPEND INBOX {4294967296}\r\n")
    assert conn.until(b"a2 ") == b"a2 NO [TOOBIG] Literal too large\r\n"
    assert_still_answering(conn)
    conn.close()
    assert_new_connection_served(srv, mode)


@pytest.mark.parametrize("mode", MODES)
def test_ten_thousand_nested_parentheses(srv: ServerThread, mode: str) -> None:
    conn = logged_in(srv, mode)
    conn.send(b"s1 SELECT INBOX\r\n")
    conn.until(b"s1 OK")
    # Where the grammar nests (search keys): the parser's depth limit, not the stack.
    conn.send(b"a1 SEARCH " + b"(" * 10_000 + b"ALL" + b")" * 10_000 + b"\r\n")
    assert conn.until(b"a1 ").startswith(b"a1 BAD")
    conn.send(b"a2 SEARCH " + b"NOT " * 10_000 + b"ALL\r\n")
    assert conn.until(b"a2 ").startswith(b"a2 BAD")
    conn.send(b"a3 FETCH 1 " + b"(" * 10_000 + b"\r\n")  # where it does not
    assert conn.until(b"a3 ").startswith(b"a3 BAD")
    assert_still_answering(conn)
    conn.close()
    assert_new_connection_served(srv, mode)


@pytest.mark.parametrize("mode", MODES)
def test_one_megabyte_line(srv: ServerThread, mode: str) -> None:
    """A line longer than imap_max_line_bytes is answered BAD [TOOBIG] (its rest read and
    dropped), before and after login."""
    line = b"x" * (1024 * 1024)
    conn = connect(srv, mode)
    conn.send(b"a1 NOOP " + line + b"\r\n")
    assert conn.until(b"a1 ") == b"a1 BAD [TOOBIG] Command line too long\r\n"
    assert_still_answering(conn)
    conn.close()
    conn = logged_in(srv, mode)
    conn.send(b"a2 SEARCH SUBJECT " + line + b"\r\n")
    assert conn.until(b"a2 ").startswith(b"a2 BAD [TOOBIG]")
    assert_still_answering(conn)
    conn.close()
    assert_new_connection_served(srv, mode)


@pytest.mark.parametrize("mode", MODES)
def test_literal_plus_over_appendlimit(srv: ServerThread, mode: str) -> None:
    """RFC 7888 §4 / RFC 7889 §4: a non-synchronizing literal over APPENDLIMIT comes whole
    whatever we say. A moderately large one is refused with NO [TOOBIG] and its octets read
    and dropped (choice 1); a huge one is not worth reading: BAD, BYE, close (choice 2)."""
    conn = logged_in(srv, mode)
    conn.send(b"c1 CAPABILITY\r\n")
    assert f"APPENDLIMIT={APPEND_LIMIT}".encode() in conn.until(b"c1 OK")
    size = APPEND_LIMIT + 1000
    conn.send(b"a1 APPEND INBOX {%d+}\r\n" % size + b"x" * size + b"\r\n")
    assert conn.until(b"a1 ") == b"a1 NO [TOOBIG] Literal too large\r\n"
    assert_still_answering(conn)  # the dropped octets were not read as commands
    conn.send(b"a2 STATUS INBOX (MESSAGES)\r\n")
    assert b"(MESSAGES 0)" in conn.until(b"a2 OK")
    conn.send(b"a3 APPEND INBOX {4294967296+}\r\n" + b"x" * 4096)
    reply = conn.until(b"* BYE")
    assert reply == b"a3 BAD [TOOBIG] Literal too large\r\n* BYE [TOOBIG] Literal too large\r\n"
    assert conn.rest_until_closed() == b""
    conn.close()
    assert_new_connection_served(srv, mode)

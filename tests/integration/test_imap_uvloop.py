"""The IMAP adapter on uvloop (what `pymta serve` runs on when uvloop is installed): the
basic flow over implicit TLS and STARTTLS (uvloop's own `start_tls`), IDLE woken by an SMTP
delivery, and the read pausing of a long line."""

from __future__ import annotations

import imaplib
import socket
from collections.abc import Callable

import pytest
import uvloop
from imapclient import IMAPClient

from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_imap_basic import MESSAGE, client_tls, deliver, with_imap
from tests.integration.test_imap_clients import raw, read_until


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    server = pymta_server(edit=with_imap, use_uvloop=True)
    assert isinstance(server.loop, uvloop.Loop)
    return server


def test_login_select_fetch_idle_over_implicit_tls(srv: ServerThread) -> None:
    deliver(srv)
    c = IMAPClient("127.0.0.1", port=srv.port("imaps"), ssl=True, ssl_context=client_tls())
    try:
        c.login("alice", PASSWORDS["alice"])
        assert c.select_folder("INBOX")[b"EXISTS"] == 1
        data = c.fetch([1], ["FLAGS", "ENVELOPE", "BODY.PEEK[]"])[1]
        assert data[b"ENVELOPE"].subject == b"Hello IMAP"
        assert data[b"BODY[]"].endswith(MESSAGE)
        c.idle()
        deliver(srv)
        responses = c.idle_check(timeout=10)
        c.idle_done()
        assert (2, b"EXISTS") in responses
    finally:
        c.logout()


def test_starttls_login_and_fetch(srv: ServerThread) -> None:
    deliver(srv)
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
    try:
        imap.starttls(client_tls())
        assert "AUTH=PLAIN" in imap.capabilities
        imap.login("alice", PASSWORDS["alice"])
        assert imap.select("INBOX") == ("OK", [b"1"])
        typ, data = imap.fetch("1", "(BODY[])")
        assert typ == "OK" and data[0][1].endswith(MESSAGE)
        assert b"\\Seen" in imap.fetch("1", "(FLAGS)")[1][0]
    finally:
        imap.logout()


def test_long_line_and_a_new_connection(srv: ServerThread) -> None:
    raw = socket.create_connection(("127.0.0.1", srv.port("imaps")), timeout=10)
    tls = client_tls().wrap_socket(raw, server_hostname="localhost")
    assert tls.recv(4096).startswith(b"* OK")
    tls.sendall(b"a1 NOOP " + b"x" * (1024 * 1024) + b"\r\na2 NOOP\r\n")
    reply = b""
    while b"a2 " not in reply:
        chunk = tls.recv(4096)
        assert chunk, reply
        reply += chunk
    assert reply == b"a1 BAD [TOOBIG] Command line too long\r\na2 OK NOOP completed\r\n"
    tls.close()
    imap = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=client_tls())
    assert imap.login("alice", PASSWORDS["alice"])[0] == "OK"
    assert imap.logout()[0] == "BYE"


def test_starttls_smuggling_is_discarded_on_uvloop(srv: ServerThread) -> None:
    """CVE-2011-0411 class, with uvloop's start_tls: the pipelined a2 is never run."""
    s = raw(srv)
    s.sendall(b"a1 STARTTLS\r\na2 CAPABILITY\r\n")
    assert read_until(s, b"a1 OK").startswith(b"a1 OK")
    tls = client_tls().wrap_socket(s, server_hostname="localhost")
    tls.sendall(b"a3 NOOP\r\n")
    reply = read_until(tls, b"a3 ")
    assert b"a2" not in reply and reply.startswith(b"a3 OK")
    tls.close()

"""IMAP against a real pymta with imapclient and aioimaplib and raw sockets: IDLE woken by
an SMTP delivery, two sessions seeing each other's changes, STARTTLS smuggling, limits."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable

import aioimaplib
import pytest
from imapclient import IMAPClient

from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_imap_basic import client_tls, deliver, with_imap


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(edit=with_imap)


def client(srv: ServerThread) -> IMAPClient:
    c = IMAPClient("127.0.0.1", port=srv.port("imaps"), ssl=True, ssl_context=client_tls())
    c.login("alice", PASSWORDS["alice"])
    return c


def test_idle_is_woken_by_an_smtp_delivery(srv: ServerThread) -> None:
    c = client(srv)
    try:
        c.select_folder("INBOX")
        c.idle()
        deliver(srv)
        responses = c.idle_check(timeout=10)
        c.idle_done()
        assert (1, b"EXISTS") in responses
    finally:
        c.logout()


def test_two_sessions_see_each_others_flags_and_expunges(srv: ServerThread) -> None:
    deliver(srv)
    deliver(srv)
    a, b = client(srv), client(srv)
    try:
        a.select_folder("INBOX")
        b.select_folder("INBOX")
        a.add_flags([1], [b"\\Flagged"])
        assert b"\\Flagged" in b.get_flags([1])[1]
        a.add_flags([2], [b"\\Deleted"])
        a.expunge()
        b.noop()  # the expunge is announced here
        assert b.search("ALL") == [1]
        assert a.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 1
    finally:
        a.logout()
        b.logout()


def test_imapclient_commands(srv: ServerThread) -> None:
    c = client(srv)
    try:
        assert c.has_capability("IDLE") and c.has_capability("QRESYNC")
        assert c.namespace().personal == (("", "."),)
        c.create_folder("Projects.2026")
        c.subscribe_folder("Projects.2026")
        assert any(f[2] == "Projects.2026" for f in c.list_sub_folders())
        uid = int(
            c.append("Projects.2026", b"Subject: note\r\n\r\nremember\r\n", [b"\\Seen"])
            .split()[2]
            .rstrip(b"]")
        )
        c.select_folder("Projects.2026")
        assert c.search(["SUBJECT", "note"]) == [uid]
        assert c.fetch([uid], ["BODY.PEEK[TEXT]"])[uid][b"BODY[TEXT]"] == b"remember\r\n"
        c.copy([uid], "Trash")
        c.move([uid], "Archive")
        assert c.search("ALL") == []
        c.unselect_folder()
        c.rename_folder("Projects", "Old")
        c.delete_folder("Old.2026")
        assert c.get_quota_root("INBOX")[0].mailbox == "INBOX"
        assert b"pymta" in c.id_({"name": "test"})[0]
        c.enable("CONDSTORE")
    finally:
        c.logout()


async def test_aioimaplib_session(srv: ServerThread) -> None:
    await asyncio.to_thread(deliver, srv)
    imap = aioimaplib.IMAP4_SSL(host="127.0.0.1", port=srv.port("imaps"), ssl_context=client_tls())
    await imap.wait_hello_from_server()
    res = await imap.login("alice", PASSWORDS["alice"])
    assert res.result == "OK"
    res = await imap.select("INBOX")
    assert res.result == "OK"
    res = await imap.uid("fetch", "1:*", "(UID FLAGS ENVELOPE BODYSTRUCTURE)")
    assert res.result == "OK" and b"ENVELOPE" in res.lines[0]
    res = await imap.uid_search("ALL")
    assert res.lines[0] == b"1"
    idle = await imap.idle_start(timeout=5)
    await asyncio.to_thread(deliver, srv)
    pushed = await imap.wait_server_push()
    imap.idle_done()
    await asyncio.wait_for(idle, 5)
    assert b"2 EXISTS" in pushed
    await imap.logout()


def raw(srv: ServerThread, listener: str = "imap") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", srv.port(listener)), timeout=10)
    assert s.recv(1000).startswith(b"* OK")
    return s


def read_until(s: socket.socket, marker: bytes) -> bytes:
    data = b""
    deadline = time.monotonic() + 10
    while marker not in data and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_starttls_smuggling_is_discarded(srv: ServerThread) -> None:
    """CVE-2011-0411 class: a command pipelined after STARTTLS is never executed."""
    s = raw(srv)
    s.sendall(b"a1 STARTTLS\r\na2 CAPABILITY\r\n")
    assert read_until(s, b"a1 OK").startswith(b"a1 OK")
    tls = client_tls().wrap_socket(s, server_hostname="localhost")
    tls.sendall(b"a3 NOOP\r\n")
    reply = read_until(tls, b"a3 ")
    assert b"a2" not in reply and reply.startswith(b"a3 OK")
    tls.close()


@pytest.mark.parametrize(
    "attack",
    [
        b"a1 APPEND INBOX {4294967296}\r\n",  # huge literal announced
        b"a1 NOOP " + b"(" * 10000 + b"\r\n",  # 10,000 nested parentheses
        b"a1 NOOP " + b"x" * (1024 * 1024) + b"\r\n",  # a 1 MB line
    ],
)
def test_limits_leave_the_server_answering(srv: ServerThread, attack: bytes) -> None:
    s = raw(srv)
    s.sendall(attack)
    reply = read_until(s, b"a1 ")
    assert reply.startswith(b"a1 BAD") or reply.startswith(b"a1 NO"), reply[:200]
    s.close()
    again = raw(srv)  # a new connection is still served
    again.sendall(b"b1 NOOP\r\n")
    assert read_until(again, b"b1 ").startswith(b"b1 OK")
    again.close()

"""POP3 against a real pymta with poplib: every command over STLS (port 110's form) and
implicit TLS (995's), the UPDATE state, the maildrop lock next to IMAP, UIDLs stable across
sessions and equal to IMAP's UID and UIDVALIDITY, large messages, STLS smuggling, and the
shared login throttle. Mail arrives over SMTP, as it would."""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import smtplib
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from pymta.store import MailboxRef
from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_imap_basic import client_tls, with_imap

ALICE = MailboxRef("user", "alice", "example.test")
FAILURE_DELAY_S = 0.05
MAX_FAILURES_PER_IP = 3
LOGIN_TIMEOUT_S = 0.5


def message(n: int, body: str = "") -> bytes:
    body = body or f"Message number {n}.\r\n.A line that starts with a dot.\r\nBye.\r\n"
    return (
        f"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: POP3 test {n}\r\n"
        f"Message-ID: <pop3-{n}@example.test>\r\n\r\n{body}"
    ).encode()


def with_pop3(cfg: dict[str, Any]) -> None:
    with_imap(cfg)
    cfg["listeners"]["pop3"] = {
        "protocol": "pop3",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "starttls",
    }
    cfg["listeners"]["pop3s"] = {
        "protocol": "pop3",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "implicit",
    }
    cfg["limits"] = {
        # The n-th recent failure from an address waits 0.05 s * 2**(n-1); the third
        # makes the address refused outright for the window.
        "auth_failure_delay": f"{FAILURE_DELAY_S}s",
        "auth_max_failures_per_ip": MAX_FAILURES_PER_IP,
        "imap_login_timeout": f"{LOGIN_TIMEOUT_S}s",
    }


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(edit=with_pop3)


def deliver(srv: ServerThread, *messages: bytes, to: str = "alice@example.test") -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as smtp:
        for raw in messages:
            smtp.sendmail("bob@example.test", [to], raw)


def pop3(srv: ServerThread, user: str | None = "alice") -> poplib.POP3:
    """Connected over STLS; logged in unless `user` is None."""
    pop = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=10)
    pop.stls(client_tls())
    if user is not None:
        pop.user(user)
        pop.pass_(PASSWORDS[user])
    return pop


def imap(srv: ServerThread) -> imaplib.IMAP4_SSL:
    c = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=client_tls(), timeout=10)
    c.login("alice", PASSWORDS["alice"])
    return c


def retrieved(pop: poplib.POP3, n: int) -> bytes:
    """RETR n as a client stores it: poplib undoes the dot-stuffing, lines get CRLF."""
    resp, lines, _ = pop.retr(n)
    assert resp.startswith(b"+OK")
    return b"".join(line + b"\r\n" for line in lines)


def uidls(pop: poplib.POP3) -> dict[int, str]:
    _, lines, _ = pop.uidl()
    return {int(n): uid.decode() for n, uid in (line.split() for line in lines)}


def log_in_when_free(srv: ServerThread, deadline_s: float = 10) -> poplib.POP3:
    """The server notices a dropped connection a moment after the client drops it: log in
    as soon as the maildrop lock is free again."""
    deadline = time.monotonic() + deadline_s
    while True:
        pop = pop3(srv, None)
        pop.user("alice")
        try:
            pop.pass_(PASSWORDS["alice"])
            return pop
        except poplib.error_proto as exc:
            pop.close()
            if b"[IN-USE]" not in exc.args[0] or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def test_capa_and_login_refused_before_stls(srv: ServerThread) -> None:
    pop = poplib.POP3("127.0.0.1", srv.port("pop3"), timeout=10)
    try:
        assert pop.getwelcome() == b"+OK pymta POP3 server ready"
        caps = pop.capa()
        assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
        with pytest.raises(poplib.error_proto, match="Plaintext authentication disallowed"):
            pop.user("alice")
        pop.stls(client_tls())
        caps = pop.capa()
        # RFC 2449 §6: every capability the issue asks for.
        for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"):
            assert cap in caps
        assert caps["SASL"] == ["PLAIN", "LOGIN"]
        assert caps["IMPLEMENTATION"] == ["pymta"]
        assert "STLS" not in caps  # RFC 2595 §4: not permitted any more
        pop.user("alice")
        assert pop.pass_(PASSWORDS["alice"]).startswith(b"+OK Logged in")
    finally:
        pop.quit()


def test_every_transaction_command_over_stls(srv: ServerThread) -> None:
    sent = [message(n) for n in (1, 2, 3)]
    deliver(srv, *sent)
    pop = pop3(srv)
    try:
        count, size = pop.stat()
        resp, listing, _ = pop.list()
        sizes = [int(line.split()[1]) for line in listing]
        assert count == 3 and size == sum(sizes) and resp.startswith(b"+OK 3 messages")
        assert pop.list(2) == b"+OK 2 %d" % sizes[1]
        before = uidls(pop)
        assert pop.uidl(3) == f"+OK 3 {before[3]}".encode()
        for n, raw in enumerate(sent, 1):
            got = retrieved(pop, n)
            assert got.endswith(raw)  # after the Received header added at delivery
            assert len(got) == sizes[n - 1]  # LIST's size is what RETR sends
        resp, lines, _ = pop.top(2, 1)
        assert resp.startswith(b"+OK")
        assert b"Subject: POP3 test 2" in lines
        assert lines[-2:] == [b"", b"Message number 2."]
        assert pop.dele(1) == b"+OK Message 1 deleted"
        with pytest.raises(poplib.error_proto, match="deleted"):
            pop.retr(1)
        assert pop.noop() == b"+OK"
        assert pop.stat() == (2, sizes[1] + sizes[2])
        assert pop.rset().startswith(b"+OK Maildrop has 3 messages")
        pop.dele(1)
        pop.dele(3)
        with pytest.raises(poplib.error_proto, match="No such message"):
            pop.dele(4)
    finally:
        assert pop.quit() == b"+OK pymta POP3 server signing off (1 messages left)"
    pop = pop3(srv)
    try:
        assert pop.stat() == (1, sizes[1])
        assert uidls(pop) == {1: before[2]}  # the same UIDL in a later session
        assert retrieved(pop, 1).endswith(sent[1])
    finally:
        pop.quit()


def test_implicit_tls_and_sasl(srv: ServerThread) -> None:
    deliver(srv, message(1))
    pop = poplib.POP3_SSL("127.0.0.1", srv.port("pop3s"), context=client_tls(), timeout=10)
    try:
        assert "STLS" not in pop.capa() and "USER" in pop.capa()
        token = base64.b64encode(f"\0alice\0{PASSWORDS['alice']}".encode()).decode()
        # RFC 5034 §4: AUTH PLAIN with an initial response.
        assert pop._shortcmd(f"AUTH PLAIN {token}").startswith(b"+OK Logged in")
        assert pop.stat()[0] == 1
    finally:
        pop.quit()
    pop = pop3(srv, None)
    try:
        # AUTH LOGIN: "+ base64" challenges, base64 answers.
        pop._putcmd("AUTH LOGIN")
        assert pop._getline()[0] == b"+ " + base64.b64encode(b"Username:")
        pop._putcmd(base64.b64encode(b"alice").decode())
        assert pop._getline()[0] == b"+ " + base64.b64encode(b"Password:")
        pop._putcmd(base64.b64encode(PASSWORDS["alice"].encode()).decode())
        assert pop._getresp().startswith(b"+OK Logged in")
    finally:
        pop.quit()


def test_dropped_connection_deletes_nothing(srv: ServerThread) -> None:
    deliver(srv, message(1), message(2))
    pop = pop3(srv)
    pop.retr(1)
    pop.dele(1)
    pop.dele(2)
    pop.close()  # no QUIT: RFC 1939 §6, no UPDATE
    pop = log_in_when_free(srv)
    try:
        assert pop.stat()[0] == 2
    finally:
        pop.quit()
    c = imap(srv)
    try:
        c.select("INBOX")
        assert b"\\Seen" not in c.fetch("1", "(FLAGS)")[1][0]  # not even \Seen
    finally:
        c.logout()


def test_maildrop_lock_in_use_while_imap_goes_on(srv: ServerThread) -> None:
    deliver(srv, message(1), message(2))
    first = pop3(srv)
    second = pop3(srv, None)
    try:
        second.user("alice")
        # RFC 2449 §8.1.2: good credentials, maildrop in use.
        with pytest.raises(poplib.error_proto, match=re.escape("-ERR [IN-USE]")):
            second.pass_(PASSWORDS["alice"])
        bob = pop3(srv, "bob")  # another maildrop
        bob.quit()
        c = imap(srv)  # IMAP is not blocked, and may expunge meanwhile
        try:
            assert c.select("INBOX") == ("OK", [b"2"])
            c.store("1", "+FLAGS", "\\Deleted")
            c.expunge()
        finally:
            c.logout()
        assert first.stat()[0] == 2  # the snapshot of login
        with pytest.raises(poplib.error_proto, match="removed by another session"):
            first.retr(1)
        assert retrieved(first, 2).endswith(message(2))
        first.dele(1)
        first.dele(2)
        assert first.quit().endswith(b"(maildrop empty)")
        second.user("alice")
        assert second.pass_(PASSWORDS["alice"]).startswith(b"+OK Logged in, 0 messages")
    finally:
        second.quit()


def test_uidl_stable_and_consistent_with_imap(srv: ServerThread) -> None:
    deliver(srv, message(1), message(2), message(3))
    c = imap(srv)
    try:
        uidvalidity = int(
            re.search(rb"UIDVALIDITY (\d+)", c.status("INBOX", "(UIDVALIDITY)")[1][0])[1]
        )
        c.select("INBOX")
        c.store("1", "+FLAGS", "\\Deleted")  # expunged before POP3 looks: UIDs 2 and 3 stay
        c.expunge()
        imap_uids = [int(u) for u in c.uid("SEARCH", "ALL")[1][0].split()]
    finally:
        c.logout()
    pop = pop3(srv)
    try:
        first = uidls(pop)
        pop.retr(1)
    finally:
        pop.quit()  # marks the retrieved message \Seen, changing its file name
    # Dovecot's default pop3_uidl_format %08Xu%08Xv.
    assert list(first.values()) == [f"{uid:08X}{uidvalidity:08X}" for uid in imap_uids]
    deliver(srv, message(4))
    pop = pop3(srv)
    try:
        again = uidls(pop)
    finally:
        pop.quit()
    assert [again[1], again[2]] == [first[1], first[2]] and len(again) == 3
    c = imap(srv)
    try:
        c.select("INBOX")
        flags = c.fetch("1:*", "(UID FLAGS)")[1]
        assert b"\\Seen" in flags[0] and b"\\Seen" not in flags[1]  # RETR, then QUIT
    finally:
        c.logout()


def test_large_message_with_bare_lf_and_dots_streams_whole(srv: ServerThread) -> None:
    line = b".a dotted line of a large message, stored with bare LF line ends\n"
    body = line * (1_500_000 // len(line))
    raw = b"From: bob@example.test\nSubject: large\n\n" + body
    assert srv.server is not None
    srv.call(srv.server.store.deliver(ALICE, raw))
    pop = pop3(srv)
    try:
        size = int(pop.list(1).split()[2])
        expected = raw.replace(b"\n", b"\r\n")
        assert size == len(expected)
        got = retrieved(pop, 1)
        assert got == expected
        _, lines, _ = pop.top(1, 2)
        assert lines == [b"From: bob@example.test", b"Subject: large", b"", *[line[:-1]] * 2]
    finally:
        pop.quit()


def test_stls_discards_pipelined_plaintext(srv: ServerThread) -> None:
    """CVE-2011-0411 class: what follows STLS in the same packet is never executed."""
    with socket.create_connection(("127.0.0.1", srv.port("pop3")), timeout=10) as sock:
        assert sock.recv(1024).startswith(b"+OK")
        sock.sendall(b"STLS\r\nUSER alice\r\n")
        assert sock.recv(1024) == b"+OK Begin TLS negotiation now\r\n"
        with client_tls().wrap_socket(sock) as tls:
            tls.sendall(f"PASS {PASSWORDS['alice']}\r\n".encode())
            assert tls.recv(1024) == b"-ERR No username given\r\n"


def test_command_line_limit_and_pipelining(srv: ServerThread) -> None:
    deliver(srv, message(1))
    with (
        socket.create_connection(("127.0.0.1", srv.port("pop3s")), timeout=10) as raw,
        client_tls().wrap_socket(raw) as sock,
    ):
        f = sock.makefile("rb")
        assert f.readline().startswith(b"+OK")
        sock.sendall(b"NOOP " + b"x" * 300 + b"\r\n")
        assert f.readline() == b"-ERR Command line too long\r\n"  # RFC 2449 §4
        # RFC 2449 §6.6: commands sent at once, answered in order.
        sock.sendall(
            f"USER alice\r\nPASS {PASSWORDS['alice']}\r\nSTAT\r\nDELE 1\r\nQUIT\r\n".encode()
        )
        replies = [f.readline() for _ in range(5)]
        assert [r.split()[0] for r in replies] == [b"+OK"] * 5
        assert replies[4] == b"+OK pymta POP3 server signing off (maildrop empty)\r\n"
        assert f.readline() == b""  # closed after QUIT


def test_failed_logins_are_throttled_with_every_protocol(srv: ServerThread) -> None:
    pop = pop3(srv, None)
    try:
        for _ in range(MAX_FAILURES_PER_IP):
            pop.user("alice")
            with pytest.raises(poplib.error_proto, match=re.escape("-ERR [AUTH]")):
                pop.pass_("wrong")
        pop.user("alice")
        with pytest.raises(poplib.error_proto, match=re.escape("-ERR [AUTH]")):
            pop.pass_(PASSWORDS["alice"])  # refused unchecked: the address is throttled
    finally:
        pop.quit()
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap(srv)  # the same throttle for IMAP


def test_connection_that_never_logs_in_is_closed_silently(srv: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", srv.port("pop3")), timeout=10) as sock:
        f = sock.makefile("rb")
        assert f.readline().startswith(b"+OK")
        start = time.monotonic()
        assert f.readline() == b""  # RFC 1939 §3: closed without a response
        assert time.monotonic() - start < 5


def test_uvloop_stls_retr(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server(edit=with_pop3, use_uvloop=True)
    deliver(srv, message(1))
    pop = pop3(srv)
    try:
        assert retrieved(pop, 1).endswith(message(1))
        pop.dele(1)
    finally:
        pop.quit()
    assert srv.messages("alice") == []


def test_server_stop_ends_sessions_without_update(srv: ServerThread) -> None:
    deliver(srv, message(1))
    pop = pop3(srv)
    pop.dele(1)
    assert srv.server is not None
    srv.call(srv.server.stop())
    with pytest.raises(poplib.error_proto, match=re.escape("-ERR [SYS/TEMP] Server shutting")):
        pop.noop()
    pop.close()
    assert len(srv.messages("alice")) == 1  # RFC 1939 §6: no QUIT, no UPDATE
    srv.server = None  # stopped here: the fixture only stops the loop

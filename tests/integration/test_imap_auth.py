"""Logins against the real server: failed-login throttling seen over IMAP (the one throttle
of pymta.auth, shared by every listener), NO [UNAVAILABLE] while the directory is down,
and the autologout of a connection that never logs in (RFC 9051 §5.4)."""

from __future__ import annotations

import base64
import imaplib
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_imap_basic import client_tls, with_imap

FAILURE_DELAY_S = 0.05
MAX_FAILURES_PER_IP = 3
LOGIN_TIMEOUT_S = 0.5


def with_throttle(cfg: dict[str, Any]) -> None:
    with_imap(cfg)
    cfg["limits"] = {
        # The n-th recent failure from an address waits 0.05 s * 2**(n-1); the third
        # makes the address refused outright for the window.
        "auth_failure_delay": f"{FAILURE_DELAY_S}s",
        "auth_max_failures_per_ip": MAX_FAILURES_PER_IP,
        "imap_login_timeout": f"{LOGIN_TIMEOUT_S}s",
    }


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(edit=with_throttle)


def imaps(srv: ServerThread) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=client_tls(), timeout=10)


def timed_login(imap: imaplib.IMAP4, user: str, password: str) -> tuple[str, float]:
    """The refusal's text (or "OK") and how long the answer took."""
    start = time.monotonic()
    try:
        imap.login(user, password)
    except imaplib.IMAP4.error as exc:
        return str(exc), time.monotonic() - start
    return "OK", time.monotonic() - start


def test_failed_logins_are_delayed_then_refused_on_every_listener(srv: ServerThread) -> None:
    imap = imaps(srv)
    try:
        delays = []
        for _ in range(MAX_FAILURES_PER_IP):
            reply, took = timed_login(imap, "alice", "wrong")
            assert "[AUTHENTICATIONFAILED]" in reply
            delays.append(took)
        # Each failure is answered only after its delay, doubling per recent failure.
        assert delays[-1] >= FAILURE_DELAY_S * 2 ** (MAX_FAILURES_PER_IP - 1) * 0.9
        # Past the limit even the right password is refused, unchecked and delayed too;
        # the reply looks like any failure (RFC 5530 §3), the client learns nothing more.
        reply, took = timed_login(imap, "alice", PASSWORDS["alice"])
        assert "[AUTHENTICATIONFAILED]" in reply
        assert took >= FAILURE_DELAY_S * 2 ** (MAX_FAILURES_PER_IP - 1) * 0.9
    finally:
        imap.logout()
    # The throttle is per address, for every user and every listener: bob over STARTTLS.
    plain = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
    try:
        plain.starttls(client_tls())
        token = f"\0bob\0{PASSWORDS['bob']}".encode()
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            plain.authenticate("PLAIN", lambda _: token)
    finally:
        plain.logout()


class DirectoryDown:
    """A directory backend that cannot be reached: every look-up raises OSError (what
    the LDAP backend will do when its server is gone)."""

    def __getattr__(self, name: str) -> Any:
        def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise OSError("directory unreachable")

        return unreachable


def test_directory_down_gives_unavailable(
    srv: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert srv.server is not None
    before = imaps(srv)  # logged in before the outage
    before.login("alice", PASSWORDS["alice"])
    monkeypatch.setattr(srv.server.directory, "directory", DirectoryDown())

    imap = imaps(srv)
    try:
        with pytest.raises(imaplib.IMAP4.error, match=r"\[UNAVAILABLE\]"):
            imap.login("alice", PASSWORDS["alice"])
        token = base64.b64encode(f"\0alice\0{PASSWORDS['alice']}".encode()).decode()
        typ, data = imap._simple_command("AUTHENTICATE", "PLAIN", token)  # SASL-IR
        assert typ == "NO" and data[0].startswith(b"[UNAVAILABLE]")
        # The session that logged in earlier goes on (the quota of its login stands in).
        assert before.append("INBOX", None, None, b"Subject: x\r\n\r\nduring\r\n")[0] == "OK"
        assert before.getquotaroot("INBOX")[0] == "OK"

        monkeypatch.undo()  # the directory is back
        assert imap.login("alice", PASSWORDS["alice"])[0] == "OK"
    finally:
        imap.logout()
        before.logout()
    # An outage is no failed login: nothing was counted against the address.
    for _ in range(MAX_FAILURES_PER_IP):
        again = imaps(srv)
        assert again.login("alice", PASSWORDS["alice"])[0] == "OK"
        again.logout()


@pytest.mark.parametrize("listener", ["imaps", "imap"])
def test_connection_that_never_logs_in_is_logged_out(srv: ServerThread, listener: str) -> None:
    """RFC 9051 §5.4: the (short) timer before login; `* BYE`, then the server closes."""
    raw = socket.create_connection(("127.0.0.1", srv.port(listener)), timeout=10)
    if listener == "imaps":
        sock = client_tls().wrap_socket(raw, server_hostname="localhost")
    else:
        assert raw.recv(4096).startswith(b"* OK")
        raw.sendall(b"t1 STARTTLS\r\n")
        assert raw.recv(4096).startswith(b"t1 OK")
        sock = client_tls().wrap_socket(raw, server_hostname="localhost")
        sock.sendall(b"t2 CAPABILITY\r\n")  # TLS up, still not logged in
    start = time.monotonic()
    received = b""
    while chunk := sock.recv(4096):
        received += chunk
    assert received.endswith(b"* BYE Autologout; idle for too long\r\n")
    assert time.monotonic() - start >= LOGIN_TIMEOUT_S * 0.9
    sock.close()


def test_logged_in_connection_outlives_the_login_timeout(srv: ServerThread) -> None:
    imap = imaps(srv)
    try:
        imap.login("alice", PASSWORDS["alice"])
        time.sleep(LOGIN_TIMEOUT_S * 2)  # the timeout under test, twice over
        assert imap.noop()[0] == "OK"  # imap_idle_timeout (>= 30 min) applies now
    finally:
        imap.logout()

"""IMAP against a real pymta with imaplib: login over STARTTLS and implicit TLS, a message
delivered over SMTP read back, the listing of folders, the connection gate."""

from __future__ import annotations

import imaplib
import smtplib
import ssl
from collections.abc import Callable
from typing import Any

import pytest

from tests.integration.conftest import PASSWORDS, ServerThread

MESSAGE = (
    b"From: bob@example.test\r\nTo: alice@example.test\r\nSubject: Hello IMAP\r\n\r\nHi Alice\r\n"
)


def with_imap(cfg: dict[str, Any]) -> None:
    cfg["listeners"]["imap"] = {
        "protocol": "imap",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "starttls",
    }
    cfg["listeners"]["imaps"] = {
        "protocol": "imap",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "implicit",
    }


def client_tls() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def deliver(srv: ServerThread, message: bytes = MESSAGE, to: str = "alice@example.test") -> None:
    with smtplib.SMTP("127.0.0.1", srv.port("smtp")) as smtp:
        smtp.sendmail("bob@example.test", [to], message)


@pytest.fixture
def srv(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(edit=with_imap)


def starttls_client(srv: ServerThread) -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    imap.starttls(client_tls())
    return imap


def test_login_disabled_before_starttls(srv: ServerThread) -> None:
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"))
    try:
        assert "LOGINDISABLED" in imap.capabilities
        assert "STARTTLS" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="PRIVACYREQUIRED"):
            imap.login("alice", PASSWORDS["alice"])
        imap.starttls(client_tls())
        # RFC 9051 §6.2.1: the capabilities are asked again after TLS.
        assert "LOGINDISABLED" not in imap.capabilities
        assert "STARTTLS" not in imap.capabilities
        assert "AUTH=PLAIN" in imap.capabilities
    finally:
        imap.logout()


def test_message_delivered_over_smtp_is_read_over_imap(srv: ServerThread) -> None:
    deliver(srv)
    imap = starttls_client(srv)
    try:
        typ, data = imap.login("alice", PASSWORDS["alice"])
        assert typ == "OK"
        assert b"CAPABILITY" in data[0]  # RFC 9051 §6.2.3: capabilities in the tagged OK
        typ, data = imap.select("INBOX")
        assert (typ, data) == ("OK", [b"1"])
        typ, data = imap.fetch("1", "(FLAGS UID RFC822.SIZE INTERNALDATE ENVELOPE)")
        assert typ == "OK"
        meta = data[0]
        assert isinstance(meta, bytes)
        assert b"UID 1" in meta and b'"Hello IMAP"' in meta and b"FLAGS ()" in meta
        typ, data = imap.fetch("1", "(BODY[])")
        body = data[0]
        assert isinstance(body, tuple)
        assert body[1].endswith(b"Subject: Hello IMAP\r\n\r\nHi Alice\r\n")
        assert body[1].startswith(b"Return-Path: <bob@example.test>")
        typ, data = imap.fetch("1", "(FLAGS)")
        assert b"\\Seen" in data[0]  # BODY[] without PEEK set \Seen (RFC 9051 §6.4.5)
        typ, data = imap.list()
        names = [line.rsplit(b" ", 1)[-1] for line in data if isinstance(line, bytes)]
        assert b"INBOX" in names and b'"Sent"' in names
    finally:
        imap.logout()


def test_implicit_tls_login_with_wrong_password(srv: ServerThread) -> None:
    imap = imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=client_tls())
    try:
        assert "AUTH=PLAIN" in imap.capabilities
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login("alice", "wrong")
        typ, _ = imap.login("alice@example.test", PASSWORDS["alice"])  # an own address
        assert typ == "OK"
    finally:
        imap.logout()

"""Submission on a real server (issue 5): 587-style STARTTLS and 465 implicit TLS with AUTH,
the sender-ownership rule, relaying to the queue, DKIM signing of what was submitted."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dkim
import pytest

from pymta.queue.dkim import DkimKeys
from tests.integration.conftest import PASSWORDS, ServerThread

MESSAGE = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: hi\r\n\r\nhello\r\n"


def client_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def with_submission(doc: dict[str, Any]) -> None:
    doc["listeners"]["submission"] = {
        "protocol": "submission",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "starttls",
    }
    doc["listeners"]["submissions"] = {
        "protocol": "submission",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "implicit",
    }
    doc["addresses"].append({"address": "sales@example.test", "destinations": ["alice"]})


@pytest.fixture
def server(pymta_server: Callable[..., ServerThread]) -> ServerThread:
    return pymta_server(with_submission)


def submission(server: ServerThread, *, login: bool = True) -> smtplib.SMTP:
    client = smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10)
    client.ehlo("client.example")
    client.starttls(context=client_tls())
    client.ehlo("client.example")
    if login:
        client.login("alice", PASSWORDS["alice"])
    return client


def test_auth_is_not_offered_before_starttls(server: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", server.port("submission"), timeout=10) as client:
        client.ehlo("client.example")
        assert not client.has_extn("auth")
        assert client.has_extn("starttls")
        code, text = client.docmd("AUTH", "PLAIN AGFsaWNlAGFsaWNlLXBhc3M=")
        assert (code, text[:5]) == (530, b"5.7.0")


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
@pytest.mark.parametrize("initial_response", [True, False])
def test_login_over_starttls(server: ServerThread, mechanism: str, initial_response: bool) -> None:
    with submission(server, login=False) as client:
        assert set(client.esmtp_features["auth"].split()) == {"PLAIN", "LOGIN"}
        client.user, client.password = "alice", PASSWORDS["alice"]
        auth = client.auth_plain if mechanism == "PLAIN" else client.auth_login
        code, text = client.auth(mechanism, auth, initial_response_ok=initial_response)
        assert (code, text[:5]) == (235, b"2.7.0")
        code, text = client.docmd("AUTH", "PLAIN AGFsaWNlAGFsaWNlLXBhc3M=")
        assert (code, text[:5]) == (503, b"5.5.1")


def test_wrong_password_is_535(server: ServerThread) -> None:
    with submission(server, login=False) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as failed:
            client.login("alice", "not-her-password")
        assert (failed.value.smtp_code, failed.value.smtp_error[:5]) == (535, b"5.7.8")


def test_cancelled_exchange_is_501(server: ServerThread) -> None:
    with submission(server, login=False) as client:
        assert client.docmd("AUTH", "LOGIN")[0] == 334
        code, text = client.docmd("*")
        assert (code, text[:5]) == (501, b"5.7.0")


def test_mail_without_auth_is_530(server: ServerThread) -> None:
    with submission(server, login=False) as client:
        code, text = client.mail("alice@example.test")
        assert (code, text[:5]) == (530, b"5.7.0")


def test_submitted_mail_is_delivered_with_esmtpsa(server: ServerThread) -> None:
    with submission(server) as client:
        client.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
    [message] = server.messages("bob")
    assert b"with ESMTPSA" in message


def test_implicit_tls_with_auth(server: ServerThread) -> None:
    port = server.port("submissions")
    with smtplib.SMTP_SSL("127.0.0.1", port, context=client_tls(), timeout=10) as client:
        client.ehlo("client.example")
        assert "PLAIN" in client.esmtp_features["auth"]
        client.login("alice@example.test", PASSWORDS["alice"])
        client.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
    assert len(server.messages("bob")) == 1


def test_sender_not_owned_is_553(server: ServerThread) -> None:
    with submission(server) as client:
        code, text = client.mail("bob@example.test")
        assert (code, text[:5]) == (553, b"5.7.1")
        code, text = client.mail("")  # the null sender is nobody's
        assert (code, text[:5]) == (553, b"5.7.1")


def test_from_not_owned_is_550(server: ServerThread) -> None:
    forged = MESSAGE.replace("From: alice@", "From: bob@")
    with submission(server) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("alice@example.test", ["bob@example.test"], forged)
        assert (refused.value.smtp_code, refused.value.smtp_error[:5]) == (550, b"5.7.1")
    assert server.messages("bob") == []


def test_owned_alias_is_accepted(server: ServerThread) -> None:
    aliased = MESSAGE.replace("From: alice@", "From: Sales <sales@").replace(
        "example.test\r\nTo", "example.test>\r\nTo", 1
    )
    with submission(server) as client:
        client.sendmail("sales@example.test", ["bob@example.test"], aliased)
    [message] = server.messages("bob")
    assert b"From: Sales <sales@example.test>" in message


def test_relaying_after_auth_goes_to_the_queue(server: ServerThread) -> None:
    with submission(server) as client:
        client.sendmail("alice@example.test", ["someone@remote.test"], MESSAGE)
    queued = list((server.data_dir / "queue").rglob("*"))
    assert any(b"someone@remote.test" in p.read_bytes() for p in queued if p.is_file())


def test_submitted_mail_is_dkim_signed(server: ServerThread, tmp_path: Path) -> None:
    _, txt = DkimKeys(server.data_dir).keygen("example.test")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"default._domainkey.example.test."
        return txt.encode()

    with submission(server) as client:
        client.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
    [message] = server.messages("bob")
    assert b"DKIM-Signature:" in message
    assert dkim.verify(message, dnsfunc=dns)


def test_sender_check_can_be_relaxed_and_reloaded(
    pymta_server: Callable[..., ServerThread],
) -> None:
    def relaxed(doc: dict[str, Any]) -> None:
        with_submission(doc)
        doc["server"]["submission_sender_check"] = False

    server = pymta_server(relaxed)
    forged = MESSAGE.replace("From: alice@", "From: bob@")
    with submission(server) as client:
        client.sendmail("bob@example.test", ["bob@example.test"], forged)
    assert len(server.messages("bob")) == 1

    text = server.config_path.read_text()
    server.config_path.write_text(
        text.replace("submission_sender_check = false", "submission_sender_check = true")
    )
    assert server.reload()
    with submission(server) as client:
        code, reply = client.mail("bob@example.test")
        assert (code, reply[:5]) == (553, b"5.7.1")

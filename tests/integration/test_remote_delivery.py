"""Remote delivery through the queue: a second pymta on another loopback address
(127.0.0.2) is the remote MX, found through a DNS server on loopback; submitted mail
arrives there DKIM-signed and verifiable through that DNS; permanent failures come back to
the sender as a DSN; a smarthost with AUTH replaces the MX lookup."""

from __future__ import annotations

import email
import email.policy
import random
import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dkim
import pytest

from pymta.queue.dkim import DkimKeys
from tests.dns.server import DnsServer
from tests.integration.conftest import (
    PASSWORDS,
    ServerProcess,
    ServerThread,
    base_config,
    password_hash,
    write_config,
)
from tests.integration.test_submission import client_tls, with_submission

MSG = (
    b"From: alice@example.test\r\nSubject: over there\r\n"
    b"Message-ID: <r1@example.test>\r\n\r\nhi\r\n"
)


REMOTE_IP = "127.0.0.2"  # all of 127/8 is loopback on Linux


@pytest.fixture
def remote(tmp_path: Path, tls_cert: tuple[Path, Path]) -> Iterator[ServerThread]:
    """The remote MX on 127.0.0.2: domain remote.test with one user, `someone`, and a
    submission listener (where a smarthost test logs in as `someone`)."""
    doc = base_config(tmp_path / "remote", tls_cert)
    doc["server"]["hostname"] = "mx.remote.test"
    doc["server"]["submission_sender_check"] = False  # a smarthost relays for others
    doc["listeners"]["smtp"]["addresses"] = [REMOTE_IP]
    doc["listeners"]["submission"] = {
        "protocol": "submission",
        "addresses": [REMOTE_IP],
        "port": 0,
        "tls": "starttls",
    }
    doc["domains"] = [{"name": "remote.test"}]
    doc["directory"]["users"] = [
        {"name": "someone", "domain": "remote.test", "password_hash": password_hash("someone")}
    ]
    doc["addresses"] = []
    (tmp_path / "remote").mkdir()
    srv = ServerThread(write_config(tmp_path / "remote", doc)).start()
    yield srv
    srv.stop()


@pytest.fixture
def local(
    pymta_server: Callable[..., ServerThread], remote: ServerThread, dns_server: DnsServer
) -> ServerThread:
    dns_server.set_zone("remote.test", f"@ MX 10 mx\nmx A {REMOTE_IP}\n")
    dns_server.set_zone("example.test", "@ MX 10 mx\nmx A 127.0.0.1\n")

    def edit(cfg: dict[str, Any]) -> None:
        with_submission(cfg)
        cfg["queue"]["nameservers"] = [f"127.0.0.1:{dns_server.port}"]
        cfg["queue"]["remote_port"] = remote.port()
        cfg["addresses"] += [
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]},
            {"address": "bad@example.test", "destinations": ["nobody@remote.test"]},
        ]

    return pymta_server(edit)


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_queued_message_reaches_the_remote_mx(local: ServerThread, remote: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["fwd@example.test"], MSG) == {}
    wait_for(lambda: len(remote.messages("someone", "remote.test")) == 1, "not delivered")
    [msg] = remote.messages("someone", "remote.test")
    assert b"Subject: over there" in msg
    # Relayed by our server (its Received header) over STARTTLS to the remote MX.
    assert b"by mx.remote.test" in msg and b"with ESMTPS" in msg
    assert local.server is not None
    wait_for(lambda: not local.server.queue.list(), "the entry stayed queued")  # type: ignore[union-attr]


def test_submitted_mail_arrives_with_a_dkim_signature_valid_in_the_test_dns(
    local: ServerThread, remote: ServerThread, dns_server: DnsServer
) -> None:
    """alice submits over STARTTLS + AUTH; the remote MX gets it signed by example.test,
    and dkimpy verifies it against the key published in the loopback DNS."""
    _, record = DkimKeys(local.data_dir).keygen("example.test")
    dns_server.add_record("default._domainkey.example.test", "TXT", record)
    resolver = dns_server.resolver()

    def txt(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT")
        return b"".join(b"".join(rr.strings) for rr in answer)

    with smtplib.SMTP("127.0.0.1", local.port("submission"), timeout=10) as c:
        c.starttls(context=client_tls())
        c.login("alice", PASSWORDS["alice"])
        assert c.sendmail("alice@example.test", ["someone@remote.test"], MSG) == {}
    wait_for(lambda: len(remote.messages("someone", "remote.test")) == 1, "not delivered")
    [msg] = remote.messages("someone", "remote.test")
    assert b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.test;" in msg
    assert dkim.verify(msg, dnsfunc=txt)
    tampered = msg.replace(b"Subject: over there", b"Subject: over here")
    assert not dkim.verify(tampered, dnsfunc=txt)


def test_smarthost_with_auth_replaces_the_mx_lookup(
    pymta_server: Callable[..., ServerThread], remote: ServerThread
) -> None:
    """[queue] relay_host: every remote recipient goes to the smarthost (the remote's
    submission port), which wants STARTTLS and AUTH; no MX lookup happens (the queue's
    DNS is a closed port in this config)."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update(
            {
                "relay_host": f"[{REMOTE_IP}]:{remote.port('submission')}",
                "relay_user": "someone",
                "relay_password": "someone-pass",
            }
        )
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]}
        )

    local = pymta_server(edit)
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["fwd@example.test"], MSG) == {}
    wait_for(lambda: len(remote.messages("someone", "remote.test")) == 1, "not relayed")
    [msg] = remote.messages("someone", "remote.test")
    assert b"with ESMTPSA" in msg  # authenticated, over TLS


def test_smarthost_refusing_the_login_keeps_the_mail_queued(
    pymta_server: Callable[..., ServerThread], remote: ServerThread
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update(
            {
                "relay_host": f"{REMOTE_IP}:{remote.port('submission')}",
                "relay_user": "someone",
                "relay_password": "wrong",
            }
        )
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]}
        )

    local = pymta_server(edit)
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["fwd@example.test"], MSG) == {}
    assert local.server is not None
    queue = local.server.queue

    def deferred() -> bool:
        return any("535" in r.last_error for e in queue.list() for r in e.recipients)

    wait_for(deferred, "the refused login was not recorded")
    assert [r.status for e in queue.list() for r in e.recipients] == ["pending"]
    assert remote.messages("someone", "remote.test") == []


def test_permanent_failure_bounces_to_the_sender(local: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["bad@example.test"], MSG) == {}
    wait_for(lambda: len(local.messages("alice")) == 1, "no DSN in the sender's INBOX")
    dsn = email.message_from_bytes(local.messages("alice")[0], policy=email.policy.default)
    assert dsn["Return-Path"] == "<>"
    assert dsn.get_content_type() == "multipart/report"
    assert dsn.get_param("report-type") == "delivery-status"
    status = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    text = status.as_string()
    assert "Action: failed" in text and "Status: 5.1.1" in text
    assert "nobody@remote.test" in text


def test_no_dsn_for_the_null_sender(local: ServerThread) -> None:
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("<>", ["bad@example.test"], MSG) == {}
    assert local.server is not None
    wait_for(lambda: not local.server.queue.list(), "the failed entry stayed queued")  # type: ignore[union-attr]
    assert local.messages("alice") == []


def test_temporary_failure_then_success_on_retry(local: ServerThread, remote: ServerThread) -> None:
    """The remote answers 452 4.2.2 (mailbox full) at first; the queue retries and the
    message arrives once the remote admin raised the quota."""
    text = remote.config_path.read_text()
    remote.config_path.write_text(
        text.replace('domain = "remote.test"', 'domain = "remote.test"\nquota = "1K"', 1)
    )
    assert remote.reload()
    with smtplib.SMTP(REMOTE_IP, remote.port(), timeout=10) as c:  # fills the mailbox
        c.sendmail("x@elsewhere.test", ["someone@remote.test"], MSG + (b"x" * 70 + b"\r\n") * 30)
    with smtplib.SMTP("127.0.0.1", local.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["fwd@example.test"], MSG) == {}
    assert local.server is not None
    queue = local.server.queue

    def deferred() -> bool:
        return any("452 4.2.2" in r.last_error for e in queue.list() for r in e.recipients)

    wait_for(deferred, "the 452 was not recorded as a temporary failure")
    assert len(remote.messages("someone", "remote.test")) == 1
    remote.config_path.write_text(text)  # no quota
    assert remote.reload()
    wait_for(lambda: len(remote.messages("someone", "remote.test")) == 2, "not retried")
    wait_for(lambda: not queue.list(), "the entry stayed queued")
    assert local.messages("alice") == []  # no DSN for a message that got through


def test_expiry_bounces_to_the_sender(
    pymta_server: Callable[..., ServerThread], dns_server: DnsServer
) -> None:
    """A destination that stays unreachable past max_age: the sender gets a DSN."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update({"nameservers": [f"127.0.0.1:{dns_server.port}"], "max_age": "1s"})
        cfg["addresses"].append(
            {"address": "far@example.test", "destinations": ["someone@unreachable.test"]}
        )

    dns_server.set_zone("unreachable.test", "@ A 127.0.0.1\n")
    dns_server.fail("unreachable.test", "servfail")  # temporary, every time
    srv = pymta_server(edit)
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["far@example.test"], MSG) == {}
    wait_for(lambda: len(srv.messages("alice")) == 1, "no DSN after expiry")
    dsn = email.message_from_bytes(srv.messages("alice")[0], policy=email.policy.default)
    status = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    assert "Action: failed" in status.as_string()
    assert "someone@unreachable.test" in status.as_string()
    assert srv.server is not None
    wait_for(lambda: not srv.server.queue.list(), "the expired entry stayed queued")  # type: ignore[union-attr]


@pytest.mark.slow
def test_kill_9_during_remote_delivery_loses_nothing(
    pymta_process: Callable[..., ServerProcess], remote: ServerThread, dns_server: DnsServer
) -> None:
    """SIGKILL while the queue is relaying: after restarts every acknowledged message
    reaches the remote MX at least once (a duplicate only for a delivery in flight)."""
    dns_server.set_zone("remote.test", f"@ MX 10 mx\nmx A {REMOTE_IP}\n")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update(
            {"nameservers": [f"127.0.0.1:{dns_server.port}"], "remote_port": remote.port()}
        )
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]}
        )

    srv = pymta_process(edit)
    rng = random.Random(5)
    acked: list[str] = []
    for round_no in range(6):
        if round_no:
            srv.start()
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            for n in range(30):
                mid = f"k{round_no}n{n}"
                body = f"Message-ID: <{mid}@example.test>\r\nSubject: {mid}\r\n\r\nx\r\n"
                c.sendmail("alice@example.test", ["fwd@example.test"], body.encode())
                acked.append(mid)
        time.sleep(rng.uniform(0.0, 0.3))  # the queue is relaying now
        srv.kill()
    srv.start()

    def arrived() -> set[str]:
        found = set()
        for msg in remote.messages("someone", "remote.test"):
            for line in msg.split(b"\r\n"):
                if line.startswith(b"Message-ID: <"):
                    found.add(line[13:].split(b"@")[0].decode())
        return found

    wait_for(lambda: set(acked) <= arrived(), "acknowledged messages never arrived", 60)
    copies = len(remote.messages("someone", "remote.test"))
    print(f"{len(acked)} acknowledged, {copies} arrived ({copies - len(acked)} duplicates)")


def test_delay_warning_is_sent_once(
    pymta_server: Callable[..., ServerThread], dns_server: DnsServer
) -> None:
    """Still undelivered after delay_warning: the sender is told once (Action: delayed),
    and the message stays queued for more retries."""

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update(
            {"nameservers": [f"127.0.0.1:{dns_server.port}"], "delay_warning": "1s"}
        )
        cfg["addresses"].append(
            {"address": "far@example.test", "destinations": ["someone@unreachable.test"]}
        )

    dns_server.set_zone("unreachable.test", "@ A 127.0.0.1\n")
    dns_server.fail("unreachable.test", "servfail")
    srv = pymta_server(edit)
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        assert c.sendmail("alice@example.test", ["far@example.test"], MSG) == {}
    wait_for(lambda: len(srv.messages("alice")) == 1, "no delay warning")
    warning = email.message_from_bytes(srv.messages("alice")[0], policy=email.policy.default)
    status = next(p for p in warning.walk() if p.get_content_type() == "message/delivery-status")
    assert "Action: delayed" in status.as_string()
    assert srv.server is not None
    queue = srv.server.queue
    [entry] = queue.list()
    assert entry.warned and [r.status for r in entry.recipients] == ["pending"]
    attempts = entry.attempts
    wait_for(lambda: queue.list()[0].attempts >= attempts + 2, "no further retries")
    assert len(srv.messages("alice")) == 1  # once only

"""Routing rules of the admin model (issue: walking skeleton, section 3), over real SMTP."""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

import pytest

from tests.integration.conftest import ServerThread, password_hash


def message(subject: str = "hello", sender: str = "someone@outside.test", to: str = "x") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{subject.replace(' ', '.')}@outside.test>"
    msg.set_content("body of " + subject)
    return msg.as_bytes().replace(b"\n", b"\r\n")


def send(
    srv: ServerThread,
    rcpts: list[str],
    subject: str = "hello",
    sender: str = "someone@outside.test",
) -> dict[str, tuple[int, bytes]]:
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        return c.sendmail(sender, rcpts, message(subject, sender, ", ".join(rcpts)))


def rcpt_reply(
    srv: ServerThread, rcpt: str, sender: str = "someone@outside.test"
) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        c.ehlo("client.outside.test")
        c.mail(sender)
        return c.rcpt(rcpt)


def add_domain(name: str, **opts: Any) -> Callable[[dict[str, Any]], None]:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["domains"].append({"name": name, **opts})

    return edit


def test_user_address_lands_in_inbox_with_trace_headers(
    pymta_server: Callable[..., ServerThread],
) -> None:
    srv = pymta_server()
    assert send(srv, ["alice@example.test"]) == {}
    [msg] = srv.messages("alice")
    head = msg.split(b"\r\n\r\n", 1)[0]
    assert head.startswith(
        b"Return-Path: <someone@outside.test>\r\nDelivered-To: alice@example.test\r\n"
    )
    assert b"Received: from " in head and b"by mx.example.test" in head
    assert b"Subject: hello" in head
    assert srv.messages("bob") == []


def test_address_with_two_destinations_delivers_one_copy_each(
    pymta_server: Callable[..., ServerThread],
) -> None:
    srv = pymta_server()
    send(srv, ["info@example.test"])
    assert len(srv.messages("alice")) == 1
    assert len(srv.messages("bob")) == 1
    assert b"Delivered-To: info@example.test" in srv.messages("alice")[0]


def test_one_mailbox_gets_one_copy_however_many_addresses_lead_to_it(
    pymta_server: Callable[..., ServerThread],
) -> None:
    srv = pymta_server()
    send(srv, ["alice@example.test", "info@example.test", "ALICE@Example.Test"])
    assert len(srv.messages("alice")) == 1
    assert len(srv.messages("bob")) == 1


def test_address_bound_to_every_domain(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["domains"].append({"name": "other.test"})
        cfg["addresses"].append({"address": "postmaster", "destinations": ["bob"]})

    srv = pymta_server(edit)
    send(srv, ["postmaster@example.test"], subject="one")
    send(srv, ["postmaster@other.test"], subject="two")
    assert len(srv.messages("bob")) == 2
    assert srv.messages("alice") == []


def test_user_addresses_only_in_domains_that_add_them(
    pymta_server: Callable[..., ServerThread],
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["domains"] += [
            {"name": "other.test"},
            {"name": "quiet.test", "add_user_addresses": False},
        ]

    srv = pymta_server(edit)
    assert send(srv, ["alice@other.test"]) == {}
    assert len(srv.messages("alice")) == 1
    assert rcpt_reply(srv, "alice@quiet.test")[0] == 550


def test_internal_address_refuses_outside_senders(
    pymta_server: Callable[..., ServerThread],
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["addresses"].append(
            {"address": "staff@example.test", "destinations": ["alice", "bob"], "internal": True}
        )

    srv = pymta_server(edit)
    code, text = rcpt_reply(srv, "staff@example.test", sender="mallory@outside.test")
    assert (code, text[:5]) == (550, b"5.7.1")
    # The same address works between local accounts.
    assert send(srv, ["staff@example.test"], sender="bob@example.test") == {}
    assert len(srv.messages("alice")) == 1


def test_catch_all_takes_unknown_recipients(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["domains"].append(
            {
                "name": "catch.test",
                "add_user_addresses": False,
                "accept_unknown_recipients": True,
                "catch_all": "bob",
            }
        )

    srv = pymta_server(edit)
    assert send(srv, ["anything-at-all@catch.test"]) == {}
    [msg] = srv.messages("bob")
    assert b"Delivered-To: anything-at-all@catch.test" in msg
    assert rcpt_reply(srv, "anything-at-all@example.test")[0] == 550


def test_copy_inbound_to_is_a_hidden_copy(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["directory"]["users"].append(
            {"name": "carol", "domain": "example.test", "password_hash": password_hash("carol")}
        )
        cfg["domains"][0]["copy_inbound_to"] = "carol"

    srv = pymta_server(edit)
    send(srv, ["alice@example.test"])
    assert len(srv.messages("alice")) == 1
    assert len(srv.messages("carol")) == 1
    assert b"carol" not in srv.messages("alice")[0]


def test_public_mailbox_destination(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["public_mailboxes"] = [{"name": "Shared"}]
        cfg["addresses"].append(
            {"address": "shared@example.test", "destinations": ["public:Shared"]}
        )

    srv = pymta_server(edit)
    assert send(srv, ["shared@example.test"]) == {}
    assert len(srv.public_messages("Shared")) == 1


def test_external_destination_goes_to_the_queue(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["alice", "someone@remote.test"]}
        )

    srv = pymta_server(edit)
    assert send(srv, ["fwd@example.test"]) == {}
    assert len(srv.messages("alice")) == 1
    assert srv.server is not None
    [entry] = srv.server.queue.list()
    assert [(r.address, r.transport, r.status) for r in entry.recipients] == [
        ("someone@remote.test", "remote", "pending")
    ]


def test_unknown_user_and_relay_refused(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    code, text = rcpt_reply(srv, "nobody@example.test")
    assert (code, text[:5]) == (550, b"5.1.1")
    code, text = rcpt_reply(srv, "victim@elsewhere.test")
    assert (code, text[:5]) == (554, b"5.7.1")


def test_disabled_mailbox_refuses_mail(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["directory"]["users"][1]["enabled"] = False  # bob

    srv = pymta_server(edit)
    code, text = rcpt_reply(srv, "bob@example.test")
    assert (code, text[:5]) == (550, b"5.2.1")
    # An address that also reaches an enabled mailbox still works; bob gets nothing.
    assert send(srv, ["info@example.test"]) == {}
    assert len(srv.messages("alice")) == 1
    assert srv.messages("bob") == []


def test_over_quota_recipient_refused_at_rcpt(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["directory"]["users"][0]["quota"] = "3K"  # alice; each message is ~2.4K

    srv = pymta_server(edit)
    assert send(srv, ["alice@example.test"], subject="x" * 600) == {}
    assert send(srv, ["alice@example.test"], subject="y" * 600) == {}  # crosses the line
    assert len(srv.messages("alice")) == 2
    code, text = rcpt_reply(srv, "alice@example.test")
    assert (code, text[:5]) == (452, b"4.2.2")
    assert rcpt_reply(srv, "bob@example.test")[0] == 250


def test_recipient_limit(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        c.ehlo("client")
        c.mail("someone@outside.test")
        for _ in range(100):
            assert c.rcpt("alice@example.test")[0] == 250
        code, text = c.rcpt("alice@example.test")
        assert (code, text[:5]) == (452, b"4.5.3")


@pytest.mark.parametrize("rcpt", ["<alice@example.test", "alice@@example.test"])
def test_malformed_recipient_gets_a_syntax_error(
    pymta_server: Callable[..., ServerThread], rcpt: str
) -> None:
    srv = pymta_server()
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        c.ehlo("client")
        c.mail("someone@outside.test")
        code, _ = c.docmd(f"RCPT TO:{rcpt}")
        assert 500 <= code < 600
        assert c.noop()[0] == 250


def test_local_copy_that_cannot_be_delivered_now_is_retried_from_the_queue(
    pymta_server: Callable[..., ServerThread],
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["directory"]["users"][0]["quota"] = "1K"  # alice

    srv = pymta_server(edit)
    assert send(srv, ["alice@example.test"], subject="x" * 600) == {}  # crosses the line
    # info@ reaches alice (full: her copy waits in the queue) and bob (delivered now).
    assert send(srv, ["info@example.test"], subject="second") == {}
    assert len(srv.messages("bob")) == 1
    assert len(srv.messages("alice")) == 1
    assert srv.server is not None
    [entry] = srv.server.queue.list()
    assert [(r.address, r.transport) for r in entry.recipients] == [("info@example.test", "local")]
    # The admin raises the quota; the queue delivers the waiting copy on its next retry.
    text = srv.config_path.read_text().replace('quota = "1K"', 'quota = "1M"')
    srv.config_path.write_text(text)
    assert srv.reload()
    srv.call(srv.server.queue.process_due())
    deadline = time.monotonic() + 15
    while len(srv.messages("alice")) < 2:
        assert time.monotonic() < deadline, "the queued copy was not delivered"
        time.sleep(0.1)
    assert b"Delivered-To: info@example.test" in srv.messages("alice")[1]
    # The entry goes once the outcome is saved, just after the copy landed.
    while srv.server.queue.list():
        assert time.monotonic() < deadline, "the delivered entry stayed in the queue"
        time.sleep(0.1)

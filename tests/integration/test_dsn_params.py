"""The DSN parameters of RFC 3461 end to end, with smtplib against real pymta servers.

One pymta on 127.0.0.1 (example.test: alice, bob) and, where a next hop is needed, a second
one on 127.0.0.2 as the MX of remote.test (user `someone`), both found through the loopback
DNS server. The local server listens on a port chosen up front so that the remote one can
send reports back to it (example.test's MX is 127.0.0.1 at that port). A plain aiosmtpd
server without DSN stands in for a next hop that cannot report (the "relayed" case).
"""

from __future__ import annotations

import email
import email.policy
import smtplib
from collections.abc import Callable, Iterator, Sequence
from email.message import EmailMessage, Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from pymta.queue.model import DsnRequest, RcptDsn
from tests.dns.server import DnsServer
from tests.integration.conftest import (
    ServerThread,
    base_config,
    free_port,
    password_hash,
    write_config,
)
from tests.integration.test_remote_delivery import REMOTE_IP, wait_for

BODY_LINE = b"The body, which only RET=FULL brings back."
MSG = (
    b"From: alice@example.test\r\nSubject: report please\r\n"
    b"Message-ID: <d1@example.test>\r\n\r\n" + BODY_LINE + b"\r\n"
)


def parse(raw: bytes) -> EmailMessage:
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def reports(srv: ServerThread, user: str = "alice") -> list[EmailMessage]:
    """The DSNs (multipart/report) in a user's INBOX, oldest first."""
    msgs = [parse(raw) for raw in srv.messages(user)]
    return [m for m in msgs if m.get_content_type() == "multipart/report"]


def status_blocks(dsn: EmailMessage) -> list[Message]:
    """The message/delivery-status part: per-message fields, then one block per recipient."""
    part = next(p for p in dsn.walk() if p.get_content_type() == "message/delivery-status")
    blocks = part.get_payload()
    assert isinstance(blocks, list)
    return blocks


def send(
    port: int,
    rcpts: Sequence[tuple[str, Sequence[str]]],
    mail_options: Sequence[str] = (),
    sender: str = "alice@example.test",
    message: bytes = MSG,
) -> None:
    """One transaction, each recipient with its own RCPT parameters."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        assert c.has_extn("dsn")
        assert c.mail(sender, list(mail_options))[0] == 250
        for address, options in rcpts:
            assert c.rcpt(address, list(options))[0] == 250
        assert c.data(message)[0] == 250


# -- fixtures: two instances ------------------------------------------------------------------


@pytest.fixture
def local_port() -> int:
    return free_port()


@pytest.fixture
def remote(
    tmp_path: Path, tls_cert: tuple[Path, Path], dns_server: DnsServer, local_port: int
) -> Iterator[ServerThread]:
    """The MX of remote.test on 127.0.0.2; its own reports go to example.test's MX."""
    doc = base_config(tmp_path / "remote", tls_cert)
    doc["server"]["hostname"] = "mx.remote.test"
    doc["listeners"]["smtp"]["addresses"] = [REMOTE_IP]
    doc["domains"] = [{"name": "remote.test"}]
    doc["directory"]["users"] = [
        {"name": "someone", "domain": "remote.test", "password_hash": password_hash("someone")}
    ]
    doc["addresses"] = []
    doc["queue"]["nameservers"] = [f"127.0.0.1:{dns_server.port}"]
    doc["queue"]["remote_port"] = local_port
    (tmp_path / "remote").mkdir()
    srv = ServerThread(write_config(tmp_path / "remote", doc)).start()
    yield srv
    srv.stop()


@pytest.fixture
def local(
    pymta_server: Callable[..., ServerThread],
    remote: ServerThread,
    dns_server: DnsServer,
    local_port: int,
) -> ServerThread:
    """example.test on 127.0.0.1:`local_port`, relaying remote.test to `remote`."""
    dns_server.set_zone("remote.test", f"@ MX 10 mx\nmx A {REMOTE_IP}\n")
    dns_server.set_zone("example.test", "@ MX 10 mx\nmx A 127.0.0.1\n")

    def edit(cfg: dict[str, Any]) -> None:
        cfg["listeners"]["smtp"]["port"] = local_port
        cfg["queue"]["nameservers"] = [f"127.0.0.1:{dns_server.port}"]
        cfg["queue"]["remote_port"] = remote.port()
        cfg["addresses"] += [
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]},
            {"address": "bad@example.test", "destinations": ["nobody@remote.test"]},
            {"address": "bad2@example.test", "destinations": ["nobody2@remote.test"]},
        ]

    return pymta_server(edit)


def queue_empty(srv: ServerThread) -> Callable[[], bool]:
    assert srv.server is not None
    queue = srv.server.queue
    return lambda: not queue.list()


# -- (a) success reports from this server -----------------------------------------------------


def test_notify_success_to_a_local_mailbox_gets_a_delivered_report(
    pymta_server: Callable[..., ServerThread],
) -> None:
    """RFC 3461 §5.2.3 (a): a "delivered" DSN, naming the ENVID and the ORCPT (§6.3)."""
    srv = pymta_server()
    send(
        srv.port(),
        [
            ("bob@example.test", ["NOTIFY=SUCCESS", "ORCPT=rfc822;Bob+2BTag@Example.TEST"]),
            ("alice@example.test", ["NOTIFY=FAILURE"]),  # no report for her
        ],
        ["ENVID=Quarterly+2BQ3", "RET=FULL"],
    )
    wait_for(lambda: len(reports(srv)) == 1, "no delivered DSN in the sender's INBOX")
    [dsn] = reports(srv)
    assert dsn["Return-Path"] == "<>"  # RFC 3461 §6.1: from the null sender
    assert dsn["Subject"] == "Successful Mail Delivery Report"
    per_message, *per_recipient = status_blocks(dsn)
    assert per_message["Original-Envelope-Id"] == "Quarterly+Q3"
    assert per_message["Reporting-MTA"] == "dns; mx.example.test"
    [bob] = per_recipient
    assert bob["Original-Recipient"] == "rfc822; Bob+Tag@Example.TEST"
    assert bob["Final-Recipient"] == "rfc822; bob@example.test"
    assert (bob["Action"], bob["Status"]) == ("delivered", "2.0.0")
    # RFC 3461 §4.3: RET=FULL is for failure reports; this one carries the headers only.
    assert BODY_LINE not in dsn.as_bytes()
    assert b"Subject: report please" in dsn.as_bytes()
    assert len(srv.messages("bob")) == 1


def test_notify_success_to_an_alias_of_several_gets_an_expanded_report(
    pymta_server: Callable[..., ServerThread],
) -> None:
    """RFC 3461 §5.2.7.3 (c): info@ leads to alice and bob; one "expanded" DSN, none for
    the copies."""
    srv = pymta_server()
    send(srv.port(), [("info@example.test", ["NOTIFY=SUCCESS,FAILURE"])])
    wait_for(lambda: len(srv.messages("bob")) == 1, "bob got no copy")
    wait_for(lambda: len(reports(srv)) == 1, "no expanded DSN")
    blocks = status_blocks(reports(srv)[0])
    assert [(b["Final-Recipient"], b["Action"]) for b in blocks[1:]] == [
        ("rfc822; info@example.test", "expanded")
    ]
    assert len(srv.messages("alice")) == 2  # her copy of the message, and the DSN


def test_relayed_report_from_a_next_hop_without_dsn(
    pymta_server: Callable[..., ServerThread],
) -> None:
    """RFC 3461 §5.2.2: to a server without DSN no parameter is passed on, and SUCCESS
    becomes a "relayed" DSN from us."""
    seen: list[tuple[list[str], list[str]]] = []

    class Plain:
        async def handle_RCPT(
            self,
            server: SMTP,
            session: Session,
            envelope: Envelope,
            address: str,
            options: list[str],
        ) -> str:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return "250 OK"

        async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
            seen.append((list(envelope.mail_options), list(envelope.rcpt_options)))
            return "250 2.0.0 Ok: queued as PLAIN1"

    port = free_port()

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"]["relay_host"] = f"127.0.0.1:{port}"  # the plain server, for every domain
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["someone@remote.test"]}
        )

    plain = Controller(Plain(), hostname="127.0.0.1", port=port)
    plain.start()
    try:
        srv = pymta_server(edit)
        send(srv.port(), [("fwd@example.test", ["NOTIFY=SUCCESS"])], ["ENVID=r1"])
        wait_for(lambda: len(reports(srv)) == 1, "no relayed DSN")
    finally:
        plain.stop()
    [(mail_options, rcpt_options)] = seen
    # RFC 3461 §5.2.2 (a): no ENVID, NOTIFY, RET or ORCPT to a server without DSN.
    assert [o for o in mail_options if not o.startswith("SIZE=")] == []
    assert rcpt_options == []
    per_message, rcpt = status_blocks(reports(srv)[0])
    assert per_message["Original-Envelope-Id"] == "r1"
    assert (rcpt["Action"], rcpt["Status"]) == ("relayed", "2.0.0")
    assert rcpt["Final-Recipient"] == "rfc822; someone@remote.test"
    assert rcpt["Original-Recipient"] == "rfc822; fwd@example.test"
    assert rcpt["Remote-MTA"] == "dns; 127.0.0.1"
    assert rcpt["Diagnostic-Code"] == "smtp; 250 2.0.0 Ok: queued as PLAIN1"


# -- (b) NOTIFY=NEVER and (c) RET on failure reports --------------------------------------------


def test_notify_never_to_a_remote_recipient_refused_with_5xx_gets_no_bounce(
    local: ServerThread,
) -> None:
    """RFC 3461 §5.2.6 (b): bad@ asked NEVER, bad2@ FAILURE; both are refused by the remote
    MX with 550: one bounce, about bad2@'s destination only (§5.2.8)."""
    send(
        local.port(),
        [("bad@example.test", ["NOTIFY=NEVER"]), ("bad2@example.test", ["NOTIFY=FAILURE"])],
    )
    wait_for(queue_empty(local), "the failed entry stayed queued")
    [bounce] = reports(local)
    blocks = status_blocks(bounce)
    assert [(b["Final-Recipient"], b["Action"]) for b in blocks[1:]] == [
        ("rfc822; nobody2@remote.test", "failed")
    ]
    assert blocks[1]["Original-Recipient"] == "rfc822; bad2@example.test"


@pytest.mark.parametrize(
    ("ret", "returned_type", "has_body"),
    [("FULL", "message/rfc822", True), ("HDRS", "text/rfc822-headers", False)],
)
def test_ret_decides_what_a_bounce_brings_back(
    local: ServerThread, ret: str, returned_type: str, has_body: bool
) -> None:
    """RFC 3461 §4.3, §6.2: RET=FULL returns the whole message, RET=HDRS its headers."""
    send(local.port(), [("bad@example.test", [])], [f"RET={ret}"])
    wait_for(lambda: len(reports(local)) == 1, "no bounce")
    [bounce] = reports(local)
    returned = [p for p in bounce.walk() if p.get_content_type() in (returned_type,)]
    assert len(returned) == 1
    assert (BODY_LINE in bounce.as_bytes()) is has_body
    assert b"Subject: report please" in bounce.as_bytes()


# -- (d) relayed to a DSN server: the parameters arrive unchanged ------------------------------


def test_parameters_reach_the_next_pymta_unchanged_and_it_reports(
    local: ServerThread, remote: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RFC 3461 §5.2.1: the remote (which offers DSN) gets ENVID, RET, NOTIFY and ORCPT as
    the client sent them, case and xtext intact; it reports the delivery itself, and we
    do not (no "relayed" DSN from us)."""
    assert remote.server is not None
    deliverer = remote.server.deliverer
    handed_over: list[DsnRequest | None] = []
    real_deliver = deliverer.deliver

    async def recording(*args: Any, **kwargs: Any) -> Any:
        if args[1] != "":  # not the report it sends itself
            handed_over.append(kwargs.get("dsn"))
        return await real_deliver(*args, **kwargs)

    monkeypatch.setattr(deliverer, "deliver", recording)
    send(
        local.port(),
        [("Fwd@Example.TEST", ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Fwd+2BX@Example.TEST"])],
        ["RET=HDRS", "ENVID=Mixed+2BCase.Id"],
    )
    wait_for(lambda: len(remote.messages("someone", "remote.test")) == 1, "not relayed")
    wait_for(lambda: len(reports(local)) == 1, "no delivered DSN came back from the remote")
    assert handed_over == [
        DsnRequest(
            ret="HDRS",
            envid="Mixed+2BCase.Id",
            recipients={
                "someone@remote.test": RcptDsn(
                    ("SUCCESS", "FAILURE"), "rfc822;Fwd+2BX@Example.TEST"
                )
            },
        )
    ]
    [dsn] = reports(local)
    per_message, rcpt = status_blocks(dsn)
    assert per_message["Reporting-MTA"] == "dns; mx.remote.test"  # the remote's, not ours
    assert per_message["Original-Envelope-Id"] == "Mixed+Case.Id"
    assert rcpt["Original-Recipient"] == "rfc822; Fwd+X@Example.TEST"
    assert rcpt["Final-Recipient"] == "rfc822; someone@remote.test"
    assert rcpt["Action"] == "delivered"
    wait_for(queue_empty(local), "the relayed entry stayed queued")
    assert len(reports(local)) == 1  # §5.2.1: no report of our own


# -- (e) delay warnings follow NOTIFY ------------------------------------------------------


def test_no_delay_warning_without_delay_in_notify(
    pymta_server: Callable[..., ServerThread], dns_server: DnsServer
) -> None:
    """RFC 3461 §5.2.5 (c): far@ asked FAILURE only, far2@ FAILURE,DELAY; with
    delay_warning = 1s only far2@'s destination is in the warning."""
    dns_server.set_zone("unreachable.test", "@ A 127.0.0.1\n")
    dns_server.fail("unreachable.test", "servfail")  # temporary, every time

    def edit(cfg: dict[str, Any]) -> None:
        cfg["queue"].update(
            {"nameservers": [f"127.0.0.1:{dns_server.port}"], "delay_warning": "1s"}
        )
        cfg["addresses"] += [
            {"address": "far@example.test", "destinations": ["someone@unreachable.test"]},
            {"address": "far2@example.test", "destinations": ["other@unreachable.test"]},
        ]

    srv = pymta_server(edit)
    send(srv.port(), [("far@example.test", ["NOTIFY=FAILURE"])])
    send(
        srv.port(),
        [("far@example.test", ["NOTIFY=FAILURE"]), ("far2@example.test", ["NOTIFY=FAILURE,DELAY"])],
    )
    wait_for(lambda: len(reports(srv)) == 1, "no delay warning for far2@")
    [warning] = reports(srv)
    blocks = status_blocks(warning)
    assert [(b["Final-Recipient"], b["Action"]) for b in blocks[1:]] == [
        ("rfc822; other@unreachable.test", "delayed")
    ]
    assert srv.server is not None
    queue = srv.server.queue
    # The first message asked for no warning: still none after more attempts past 1s.
    wait_for(lambda: min(e.attempts for e in queue.list()) >= 3, "no further retries")
    assert len(reports(srv)) == 1

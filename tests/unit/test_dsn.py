"""Delivery status notifications (RFC 3464, RFC 3461, RFC 6522), read back with `email`."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime

import pytest

from pymta.queue.dsn import (
    HOP_LIMIT_ERROR,
    build_bounce,
    build_delay_warning,
    build_success,
    notify_allows,
    orcpt_for,
    remote_reply_detail,
    status_from_reply,
    too_many_hops,
    xtext_decode,
    xtext_encode,
)
from pymta.queue.model import DELIVERED, FAILED, PENDING, QueueEntry, QueueRecipient, SuccessAction

T0 = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 +0000
NOW = T0 + 3600.0
HOST = "mail.example.org"
POSTMASTER = "postmaster@example.org"
ORIGINAL = (
    b"Received: from client (client [192.0.2.1]) by mail.example.org\r\n"
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@remote.example>\r\n"
    b"Subject: quarterly report\r\n"
    b"Message-ID: <orig-1@example.org>\r\n"
    b"\r\n"
    b"The body, which a headers-only report must not carry.\r\n"
)
USER_UNKNOWN = "550 5.1.1 <bob@remote.example>: Recipient address rejected: User unknown"


def rcpt(
    address: str = "bob@remote.example",
    *,
    last_error: str = remote_reply_detail("mx1.remote.example", USER_UNKNOWN),
    notify: tuple[str, ...] = (),
    orcpt: str | None = None,
    status: str = FAILED,
) -> QueueRecipient:
    return QueueRecipient(
        address=address,
        transport="remote",
        status=status,
        attempts=3,
        last_error=last_error,
        notify=notify,
        orcpt=orcpt,
    )


def entry(
    *recipients: QueueRecipient,
    sender: str = "alice@example.org",
    envid: str | None = None,
    ret: str | None = None,
) -> QueueEntry:
    return QueueEntry(
        id="0123456789abcd-0123456789",
        sender=sender,
        recipients=list(recipients) or [rcpt()],
        created=T0,
        next_attempt=NOW,
        envid=envid,
        ret=ret,
    )


def bounce(e: QueueEntry, original: bytes = ORIGINAL, **kwargs: object) -> bytes | None:
    return build_bounce(
        e,
        e.recipients,
        original,
        reporting_mta=HOST,
        postmaster=POSTMASTER,
        now=NOW,
        **kwargs,  # type: ignore[arg-type]
    )


def parse(raw: bytes | None) -> EmailMessage:
    assert raw is not None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(msg, EmailMessage)
    return msg


def parts(msg: EmailMessage) -> list[Message]:
    payload = msg.get_payload()
    assert isinstance(payload, list)
    return payload


def status_blocks(msg: EmailMessage) -> list[Message]:
    """The message/delivery-status part: per-message fields, then one block per recipient."""
    report = parts(msg)[1]
    assert report.get_content_type() == "message/delivery-status"
    blocks = report.get_payload()
    assert isinstance(blocks, list)
    return blocks


# --- the bounce ---------------------------------------------------------------------------


def test_bounce_is_a_multipart_report_addressed_to_the_envelope_sender() -> None:
    msg = parse(bounce(entry()))
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"  # RFC 6522 §3
    assert msg["From"] == f"Mail Delivery System <MAILER-DAEMON@{HOST}>"
    assert msg["To"] == "alice@example.org"  # RFC 3464 §2: the envelope return address
    assert msg["Subject"] == "Undelivered Mail Returned to Sender"
    assert msg["Auto-Submitted"] == "auto-replied"  # RFC 3834 §5
    assert msg["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(msg["Date"]).timestamp() == NOW
    message_id = msg["Message-ID"]
    assert message_id.startswith("<") and message_id.endswith(f"@{HOST}>")
    assert [p.get_content_type() for p in parts(msg)] == [
        "text/plain",
        "message/delivery-status",
        "text/rfc822-headers",
    ]
    assert not msg.defects
    assert all(not p.defects for p in parts(msg))


def test_bounce_delivery_status_fields() -> None:
    msg = parse(bounce(entry()))
    per_message, per_recipient = status_blocks(msg)
    assert per_message["Reporting-MTA"] == f"dns; {HOST}"
    assert parsedate_to_datetime(per_message["Arrival-Date"]).timestamp() == T0
    assert "Original-Envelope-Id" not in per_message  # RFC 3461 §6.3 (a): MUST NOT
    assert per_recipient["Final-Recipient"] == "rfc822; bob@remote.example"
    assert per_recipient["Action"] == "failed"
    assert per_recipient["Status"] == "5.1.1"
    assert per_recipient["Remote-MTA"] == "dns; mx1.remote.example"
    assert per_recipient["Diagnostic-Code"] == f"smtp; {USER_UNKNOWN}"
    assert parsedate_to_datetime(per_recipient["Last-Attempt-Date"]).timestamp() == NOW
    assert "Original-Recipient" not in per_recipient  # RFC 3461 §6.3 (d): MUST NOT
    assert "Will-Retry-Until" not in per_recipient  # RFC 3464 §2.3.9: delayed only


def test_delivery_status_part_is_7bit_with_crlf_blocks() -> None:
    raw = bounce(entry(envid="b+C3+A9"))  # xtext of a UTF-8 "é": no 8-bit may leak in
    assert raw is not None
    report = raw.split(b"Content-Type: message/delivery-status\r\n\r\n", 1)[1].split(b"\r\n--")[0]
    assert report.isascii()  # RFC 3464 §2.1: 7bit MUST be used
    blocks = report.split(b"\r\n\r\n")
    assert blocks[0].startswith(b"Original-Envelope-Id: b?\r\nReporting-MTA: dns; ")
    assert blocks[1].startswith(b"Final-Recipient: rfc822; bob@remote.example\r\nAction: failed")


def test_human_readable_part_names_each_failed_recipient_and_the_reply() -> None:
    msg = parse(bounce(entry()))
    text = parts(msg)[0]
    assert isinstance(text, EmailMessage)
    content = text.get_content()
    assert f"mail system at host {HOST}" in content
    assert POSTMASTER in content
    assert "<bob@remote.example>: host mx1.remote.example said: 550 5.1.1" in content
    assert "User unknown" in content
    assert "body, which" not in content


def test_several_recipients_each_get_a_block() -> None:
    local = rcpt("carol@example.org", last_error="mailbox no longer exists")
    expired = rcpt("dave@slow.example", last_error="expired; last error: 451 4.4.1 timed out")
    msg = parse(bounce(entry(rcpt(), local, expired)))
    _, bob, carol, dave = status_blocks(msg)
    assert bob["Final-Recipient"] == "rfc822; bob@remote.example"
    # A local failure: no SMTP reply, no remote MTA (RFC 3464 §2.3.5 MUST NOT), 5.0.0.
    assert carol["Status"] == "5.0.0"
    assert "Remote-MTA" not in carol
    assert carol["Diagnostic-Code"] == "X-pymta; mailbox no longer exists"
    # Expiry after a temporary error keeps its 4.x.x with Action failed (RFC 3464 §2.3.3).
    assert dave["Action"] == "failed"
    assert dave["Status"] == "4.4.1"
    assert dave["Diagnostic-Code"] == "smtp; 451 4.4.1 timed out"


def test_last_attempt_date_is_the_given_time() -> None:
    raw = bounce(entry(), last_attempt=T0 + 60)
    assert parsedate_to_datetime(status_blocks(parse(raw))[1]["Last-Attempt-Date"]).timestamp() == (
        T0 + 60
    )


def test_expiry_without_a_reply_is_delivery_time_expired() -> None:
    msg = parse(bounce(entry(rcpt(last_error="expired"))))
    assert status_blocks(msg)[1]["Status"] == "4.4.7"  # RFC 3463 X.4.7


def test_loop_error_reports_routing_loop() -> None:
    msg = parse(bounce(entry(rcpt(last_error=HOP_LIMIT_ERROR))))
    fields = status_blocks(msg)[1]
    assert fields["Status"] == "5.4.6"
    assert "Remote-MTA" not in fields  # our own verdict, not a remote server's


def test_null_sender_never_gets_a_bounce() -> None:
    assert bounce(entry(sender="")) is None  # RFC 5321 §4.5.5


def test_no_failed_recipients_no_bounce() -> None:
    e = entry()
    assert build_bounce(e, [], ORIGINAL, reporting_mta=HOST, postmaster=POSTMASTER, now=NOW) is None


@pytest.mark.parametrize("notify", [("NEVER",), ("never",), ("SUCCESS",), ("SUCCESS", "DELAY")])
def test_notify_without_failure_means_no_bounce(notify: tuple[str, ...]) -> None:
    assert bounce(entry(rcpt(notify=notify))) is None  # RFC 3461 §4.1


def test_only_recipients_that_asked_are_reported() -> None:
    quiet = rcpt("quiet@remote.example", notify=("NEVER",))
    loud = rcpt("loud@remote.example", notify=("failure", "delay"))
    msg = parse(bounce(entry(quiet, loud)))
    blocks = status_blocks(msg)
    # RFC 3461 §5.2.8: no information for recipients that would not get a DSN.
    assert [b["Final-Recipient"] for b in blocks[1:]] == ["rfc822; loud@remote.example"]
    text = parts(msg)[0]
    assert isinstance(text, EmailMessage)
    assert "quiet@" not in text.get_content()


def test_default_and_ret_hdrs_return_headers_only() -> None:
    for ret in (None, "HDRS"):
        returned = parts(parse(bounce(entry(ret=ret))))[2]
        assert returned.get_content_type() == "text/rfc822-headers"
        assert isinstance(returned, EmailMessage)
        content = returned.get_content()
        assert "Subject: quarterly report" in content
        assert "Message-ID: <orig-1@example.org>" in content
        assert "The body" not in content


def test_ret_full_returns_the_whole_message() -> None:
    returned = parts(parse(bounce(entry(ret="FULL"))))[2]
    assert returned.get_content_type() == "message/rfc822"  # RFC 3461 §4.3
    assert isinstance(returned, EmailMessage)
    inner = returned.get_content()
    assert inner["Subject"] == "quarterly report"
    assert "The body, which" in inner.get_content()


def test_ret_full_bytes_are_returned_unchanged() -> None:
    raw = bounce(entry(ret="FULL"))
    assert raw is not None
    assert (
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\n" + ORIGINAL in raw
    )


def test_ret_full_of_a_large_message_falls_back_to_headers() -> None:
    big = ORIGINAL + b"x" * 200 + b"\r\n"
    returned = parts(parse(bounce(entry(ret="FULL"), big, max_full_bytes=len(ORIGINAL))))[2]
    assert returned.get_content_type() == "text/rfc822-headers"  # RFC 3461 §6.2 MAY


def test_envid_and_orcpt_round_trip_decoded_from_xtext() -> None:
    orcpt = "rfc822;" + xtext_encode("Bob+Lists=x@Remote.Example")
    e = entry(rcpt(orcpt=orcpt), envid=xtext_encode("QQ314159+x=y"))
    per_message, per_recipient = status_blocks(parse(bounce(e)))
    # RFC 3461 §6.3 (a): decoded, case preserved; (d): from the ORCPT parameter.
    assert per_message["Original-Envelope-Id"] == "QQ314159+x=y"
    assert per_recipient["Original-Recipient"] == "rfc822; Bob+Lists=x@Remote.Example"


def test_orcpt_without_type_is_taken_as_rfc822() -> None:
    per_recipient = status_blocks(parse(bounce(entry(rcpt(orcpt="bob@remote.example")))))[1]
    assert per_recipient["Original-Recipient"] == "rfc822; bob@remote.example"


def test_field_injection_through_envid_orcpt_or_reply_is_impossible() -> None:
    """A security regression: xtext can encode CR LF; a reply can carry them too."""
    evil = "x+0D+0AAction: delivered"
    e = entry(
        rcpt(orcpt="rfc822;" + evil, last_error="550 5.7.1 no\r\nStatus: 2.0.0\r\nX: y"),
        envid=evil,
    )
    per_message, per_recipient = status_blocks(parse(bounce(e)))
    assert per_message["Original-Envelope-Id"] == "x Action: delivered"
    assert per_recipient.get_all("Action") == ["failed"]
    assert per_recipient.get_all("Status") == ["5.7.1"]
    assert "X" not in per_recipient


def test_eight_bit_original_headers_do_not_crash() -> None:
    original = (
        b"From: =?utf-8?q?J=C3=BCrgen?= <j@example.org>\r\n"
        b"Subject: Gr\xc3\xbc\xc3\x9fe \xff\xfe latin-1 junk \xe9\r\n"
        b"\r\nbody \xe9\r\n"
    )
    raw = bounce(entry(), original)
    assert raw is not None
    assert b"Content-Transfer-Encoding: 8bit\r\n\r\nFrom: " in raw
    assert b"\xff\xfe latin-1 junk \xe9\r\n" in raw
    msg = parse(raw)
    assert parts(msg)[2].get_content_type() == "text/rfc822-headers"
    full = parse(bounce(entry(ret="FULL"), original))
    assert parts(full)[2].get_content_type() == "message/rfc822"


def test_bare_lf_original_is_returned_with_crlf() -> None:
    raw = bounce(entry(), b"Subject: lf\nFrom: a@b\n\nbody\n")
    assert raw is not None
    assert b"\r\n\r\nSubject: lf\r\nFrom: a@b\r\n\r\n--" in raw


def test_boundary_never_occurs_in_the_original() -> None:
    first = bounce(entry(ret="FULL"))
    assert first is not None
    boundary = parse(first).get_boundary()
    assert boundary is not None
    tricky = ORIGINAL + b"--" + boundary.encode() + b"\r\n"
    second = parse(bounce(entry(ret="FULL"), tricky))
    assert second.get_boundary() != boundary
    inner = parts(second)[2]
    assert isinstance(inner, EmailMessage)
    assert boundary in inner.get_content().get_content()


def test_utf8_addresses_use_the_utf8_address_type() -> None:
    per_recipient = status_blocks(parse(bounce(entry(rcpt("jürgen@bücher.example")))))[1]
    assert per_recipient["Final-Recipient"] == "utf-8; j\\x{FC}rgen@b\\x{FC}cher.example"


def test_long_diagnostic_is_folded_and_unfolds_to_the_reply() -> None:
    reply = "550 5.7.1 " + " ".join(["policy"] * 40)
    raw = bounce(entry(rcpt(last_error=reply)))
    assert raw is not None
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert status_blocks(parse(raw))[1]["Diagnostic-Code"] == f"smtp; {reply}"


# --- the delay warning --------------------------------------------------------------------


def delay(e: QueueEntry, until: float = T0 + 5 * 86400) -> bytes | None:
    return build_delay_warning(
        e,
        e.recipients,
        ORIGINAL,
        reporting_mta=HOST,
        postmaster=POSTMASTER,
        now=NOW,
        will_retry_until=until,
    )


def test_delay_warning_fields() -> None:
    waiting = rcpt(last_error=remote_reply_detail("mx1.remote.example", "451 4.7.1 greylisted"))
    waiting.status = PENDING
    msg = parse(delay(entry(waiting, ret="FULL")))
    assert msg["Subject"] == "Delayed Mail (still being retried)"
    assert msg.get_param("report-type") == "delivery-status"
    per_message, per_recipient = status_blocks(msg)
    assert per_message["Reporting-MTA"] == f"dns; {HOST}"
    assert per_recipient["Action"] == "delayed"
    assert per_recipient["Status"] == "4.7.1"
    assert per_recipient["Diagnostic-Code"] == "smtp; 451 4.7.1 greylisted"
    assert per_recipient["Remote-MTA"] == "dns; mx1.remote.example"
    until = parsedate_to_datetime(per_recipient["Will-Retry-Until"]).timestamp()
    assert until == T0 + 5 * 86400
    # RFC 3461 §6.2: no failure in it, so headers only, even with RET=FULL.
    assert parts(msg)[2].get_content_type() == "text/rfc822-headers"
    text = parts(msg)[0]
    assert isinstance(text, EmailMessage)
    assert "WARNING ONLY" in text.get_content()


def test_delay_status_is_always_temporary() -> None:
    for last_error in ("connection refused", "550 5.1.1 odd", ""):
        fields = status_blocks(parse(delay(entry(rcpt(last_error=last_error)))))[1]
        assert fields["Status"] == "4.0.0"


@pytest.mark.parametrize(
    ("notify", "warned"),
    [
        ((), True),
        (("DELAY",), True),
        (("failure", "delay"), True),
        (("FAILURE",), False),
        (("NEVER",), False),
        (("SUCCESS",), False),
    ],
)
def test_delay_warning_follows_notify(notify: tuple[str, ...], warned: bool) -> None:
    assert (delay(entry(rcpt(notify=notify))) is not None) is warned


def test_null_sender_never_gets_a_delay_warning() -> None:
    assert delay(entry(sender="")) is None


# --- status codes, xtext, loops -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("550 5.1.1 User unknown", "5.1.1"),
        ("550-5.1.1 first line of a multi-line reply", "5.1.1"),
        ("452 4.2.2 Mailbox full", "4.2.2"),
        ("550 User unknown", "5.0.0"),
        ("421 closing", "4.0.0"),
        ("554", "5.0.0"),
        ("550 4.1.1 class disagrees with the reply", "5.0.0"),
        ("host mx.example said: 550 5.7.01 leading zero", "5.7.1"),
        ("expired; last error: 451 4.4.1 no answer", "4.4.1"),
        ("connection to 192.0.2.250 refused", ""),
        ("timed out after 250 s", ""),
        ("250 2.0.0 ok", ""),
        ("mailbox no longer exists", ""),
        ("", ""),
    ],
)
def test_status_from_reply(text: str, status: str) -> None:
    assert status_from_reply(text) == status


def test_xtext_round_trip() -> None:
    for value in ("plain@example.org", "a+b=c@x", "sp ace\ttab", "ü@x", "++2B"):
        assert xtext_decode(xtext_encode(value)) == value
    assert xtext_encode("a+b=c") == "a+2Bb+3Dc"
    assert xtext_decode("lone+plus+zz") == "lone+plus+zz"


def received(n: int) -> bytes:
    return b"".join(b"Received: from h%d by h%d\r\n\tid %d\r\n" % (i, i + 1, i) for i in range(n))


def test_hop_counting() -> None:
    body = b"\r\n" + received(120)  # quoted Received lines in a body are not hops
    assert not too_many_hops(received(99) + b"Subject: x\r\n" + body)
    assert too_many_hops(received(100) + b"Subject: x\r\n" + body)  # RFC 5321 §6.3
    assert not too_many_hops(received(50) + b"\r\n", limit=51)
    assert too_many_hops(received(3), limit=3)
    # Field names are case-insensitive (RFC 5322 §1.2.2), LF-only mail counts the same.
    assert too_many_hops(b"RECEIVED: a\nreceived : b\nX-Received: c\n\nbody\n", limit=2)
    assert not too_many_hops(b"X-Received: a\nX-Received: b\n\n", limit=1)
    assert not too_many_hops(b"")


# --- success reports (RFC 3461 §5.2.2 (b), §5.2.3, §5.2.7.3 (c)) ------------------------------


def success(
    e: QueueEntry, action: SuccessAction = "delivered", original: bytes = ORIGINAL
) -> bytes | None:
    return build_success(
        e, e.recipients, original, action=action, reporting_mta=HOST, postmaster=POSTMASTER, now=NOW
    )


def delivered(address: str = "bob@example.org", **kwargs: object) -> QueueRecipient:
    kwargs.setdefault("notify", ("SUCCESS",))
    kwargs.setdefault("last_error", "")
    return rcpt(address, status=DELIVERED, **kwargs)  # type: ignore[arg-type]


def test_delivered_report() -> None:
    e = entry(delivered(orcpt="rfc822;Bob+2BX@example.org"), envid="Q+2Bx", ret="FULL")
    msg = parse(success(e))
    assert msg.get_content_type() == "multipart/report"
    assert msg.get_param("report-type") == "delivery-status"  # RFC 6522 §3
    assert msg["To"] == "alice@example.org"
    assert msg["Subject"] == "Successful Mail Delivery Report"
    per_message, per_recipient = status_blocks(msg)
    assert per_message["Original-Envelope-Id"] == "Q+x"  # RFC 3461 §6.3 (a), decoded
    assert per_recipient["Original-Recipient"] == "rfc822; Bob+X@example.org"
    assert per_recipient["Final-Recipient"] == "rfc822; bob@example.org"
    assert per_recipient["Action"] == "delivered"  # RFC 3464 §2.3.3
    assert per_recipient["Status"] == "2.0.0"
    assert per_recipient["Diagnostic-Code"] == "X-pymta; delivered to mailbox"
    assert "Remote-MTA" not in per_recipient
    # RFC 3461 §4.3: RET=FULL is for failures; a success report carries the headers only.
    returned = parts(msg)[2]
    assert returned.get_content_type() == "text/rfc822-headers"
    assert b"must not carry" not in returned.as_bytes()
    assert "<bob@example.org>: delivered to mailbox" in parts(msg)[0].get_payload()
    assert not msg.defects


def test_relayed_report_names_the_server_and_its_reply() -> None:
    detail = "host mx.remote.example[192.0.2.7]:25 said: 250 2.0.0 Ok: queued as 4711"
    msg = parse(success(entry(delivered("bob@remote.example", last_error=detail)), "relayed"))
    per_recipient = status_blocks(msg)[1]
    assert per_recipient["Action"] == "relayed"  # RFC 3461 §5.2.2 (b)
    assert per_recipient["Status"] == "2.0.0"
    assert per_recipient["Remote-MTA"] == "dns; mx.remote.example"
    assert per_recipient["Diagnostic-Code"] == "smtp; 250 2.0.0 Ok: queued as 4711"
    text = " ".join(str(parts(msg)[0].get_payload()).split())  # unwrapped
    assert (
        "<bob@remote.example>: relayed to a mail system that sends no delivery notices"
        " (host mx.remote.example said: 250 2.0.0 Ok: queued as 4711)"
    ) in text


def test_expanded_report() -> None:
    msg = parse(success(entry(delivered("team@example.org")), "expanded"))
    per_recipient = status_blocks(msg)[1]
    assert per_recipient["Action"] == "expanded"  # RFC 3461 §5.2.7.3 (c)
    assert per_recipient["Final-Recipient"] == "rfc822; team@example.org"
    assert per_recipient["Diagnostic-Code"] == "X-pymta; alias expanded"


@pytest.mark.parametrize("notify", [(), ("FAILURE",), ("NEVER",), ("DELAY", "FAILURE")])
def test_no_success_report_unless_asked(notify: tuple[str, ...]) -> None:
    """RFC 3461 §5.2.3 (b), (c): no NOTIFY, or one without SUCCESS: no report."""
    assert success(entry(delivered(notify=notify))) is None


def test_success_report_names_only_those_who_asked() -> None:
    e = entry(delivered("a@example.org"), delivered("b@example.org", notify=("FAILURE",)))
    blocks = status_blocks(parse(success(e)))
    assert [b["Final-Recipient"] for b in blocks[1:]] == ["rfc822; a@example.org"]  # §5.2.8


def test_null_sender_never_gets_a_success_report() -> None:
    assert success(entry(delivered(), sender="")) is None  # RFC 3461 §5.2


def test_reports_about_other_recipients_have_other_message_ids() -> None:
    one = parse(success(entry(delivered("a@example.org"))))
    two = parse(success(entry(delivered("b@example.org"))))
    assert one["Message-ID"] != two["Message-ID"]


def test_notify_allows() -> None:
    assert notify_allows(rcpt(notify=()), "FAILURE") and notify_allows(rcpt(notify=()), "DELAY")
    assert not notify_allows(rcpt(notify=()), "SUCCESS")  # absent NOTIFY: failures only
    assert notify_allows(rcpt(notify=("success",)), "SUCCESS")  # any case (§4.1 b.)
    assert not notify_allows(rcpt(notify=("NEVER",)), "FAILURE")


def test_orcpt_for_a_recipient_without_one() -> None:
    """RFC 3461 §5.2.1 (d): the address from RCPT; xtext for rfc822, RFC 6533 for UTF-8."""
    assert orcpt_for("Bob+tag@Example.org") == "rfc822;Bob+2Btag@Example.org"
    assert orcpt_for("zoë@example.org") == "utf-8;zo\\x{EB}@example.org"
    per_recipient = status_blocks(parse(bounce(entry(rcpt(orcpt=orcpt_for("zoë@x.org"))))))[1]
    assert per_recipient["Original-Recipient"] == "utf-8; zo\\x{EB}@x.org"


def test_bounce_names_a_remote_mta_given_with_its_address_and_port() -> None:
    detail = "host mx.remote.example[192.0.2.7]:25 said: 550 5.1.1 no such user"
    per_recipient = status_blocks(parse(bounce(entry(rcpt(last_error=detail)))))[1]
    assert per_recipient["Remote-MTA"] == "dns; mx.remote.example"  # RFC 3461 §6.3 (h)

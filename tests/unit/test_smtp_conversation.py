"""Ordinary SMTP conversations with the inbound front end: EHLO, MAIL/RCPT/DATA, the
replies for each refusal, SIZE, the recipient limit, PIPELINING, enhanced status codes,
the Received header, the transaction log, policy failures."""

from __future__ import annotations

import asyncio
import logging
import re
import smtplib

import pytest

from pymta.smtp import codes
from tests.unit.test_smtp_harness import (
    HOSTNAME,
    MESSAGE,
    RunningServer,
    running_server,
    srv,
)

__all__ = ["srv"]  # the fixture, imported for pytest

# -- smtplib: a real client -----------------------------------------------------------


async def test_ehlo_advertises_our_extensions_and_nothing_else(srv: RunningServer) -> None:
    def conversation() -> tuple[int, dict[str, str]]:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
            code, _ = client.ehlo("client.example")
            return code, client.esmtp_features

    code, features = await asyncio.to_thread(conversation)
    assert code == 250
    assert features == {
        "pipelining": "",
        "size": "52428800",
        "8bitmime": "",
        "smtputf8": "",
        "enhancedstatuscodes": "",
        "chunking": "",
        "dsn": "",  # RFC 3461 §3
    }  # no STARTTLS without a TLS context, no HELP, no AUTH, no VRFY


async def test_a_message_is_delivered_with_our_received_header(srv: RunningServer) -> None:
    def conversation() -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
            client.ehlo("client.example")
            return client.sendmail("a@outside.test", ["alice@example.test"], MESSAGE)

    assert await asyncio.to_thread(conversation) == {}
    [delivery] = srv.policy.deliveries
    assert delivery.sender == "a@outside.test"
    assert delivery.recipients == ("alice@example.test",)
    assert delivery.body == MESSAGE
    assert re.fullmatch(
        r"Received: from client\.example \(\[127\.0\.0\.1\]\) by mx\.example\.test \(pymta\)"
        r" with ESMTP id [0-9A-F]{12} for <alice@example\.test>;"
        r" \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
        delivery.received,
    ), delivery.received


async def test_the_reply_to_data_names_the_id_in_the_received_header(
    srv: RunningServer,
) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test>")
    await c.send("RCPT TO:<alice@example.test>")
    await c.send("DATA")
    await c.expect(codes.SENDER_OK, codes.RECIPIENT_OK, "354 ")
    await c.send_raw(MESSAGE + b".\r\n")
    [reply] = await c.expect("250 2.0.0 Ok: queued as ")
    queue_id = reply.rsplit(" ", 1)[1]
    assert f" id {queue_id} " in srv.policy.deliveries[0].received


async def test_the_policy_sees_the_session(srv: RunningServer) -> None:
    c = await srv.session(helo="client.example")
    await c.send("MAIL FROM:<>")
    await c.expect(codes.SENDER_OK)
    await c.send("RCPT TO:<alice@example.test>")
    await c.expect(codes.RECIPIENT_OK)
    [(session, sender)] = srv.policy.senders
    assert sender == ""  # the null reverse-path (RFC 5321 §4.5.5)
    assert session.peer_ip == "127.0.0.1"
    assert session.helo == "client.example"
    assert session.tls is None and session.authenticated_user is None
    assert session.listener == "mx"
    assert srv.policy.recipients[0][1:] == ("", "alice@example.test")


@pytest.mark.parametrize(
    ("recipient", "expected"),
    [
        ("unknown@example.test", "550 5.1.1"),
        ("bob@elsewhere.test", "554 5.7.1"),
        ("internal@example.test", "550 5.7.1"),
        ("disabled@example.test", "550 5.2.1"),
        ("full@example.test", "452 4.2.2"),
        ("tempfail@example.test", "451 4.3.0"),
    ],
)
async def test_each_refusal_at_rcpt(srv: RunningServer, recipient: str, expected: str) -> None:
    def conversation() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
            client.ehlo("client.example")
            client.mail("a@outside.test")
            return client.rcpt(recipient)

    code, text = await asyncio.to_thread(conversation)
    assert f"{code} {text.decode()}".startswith(expected + " ")


async def test_size_is_refused_at_mail_when_declared_too_big() -> None:
    async with running_server(max_message_bytes=1000) as srv:

        def conversation() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
                client.ehlo("client.example")
                assert client.esmtp_features["size"] == "1000"
                return client.mail("a@outside.test", ["SIZE=1001"])

        code, text = await asyncio.to_thread(conversation)
        assert (code, text.decode()) == (552, str(codes.MESSAGE_TOO_BIG)[4:])


async def test_size_is_refused_at_end_of_data_and_the_session_goes_on() -> None:
    async with running_server(max_message_bytes=1000) as srv:

        def conversation() -> tuple[int, bytes]:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=5) as client:
                client.ehlo("client.example")
                client.mail("a@outside.test")
                client.rcpt("alice@example.test")
                reply = client.data(MESSAGE + (b"x" * 76 + b"\r\n") * 20)
                assert client.noop()[0] == 250
                return reply

        code, text = await asyncio.to_thread(conversation)
        assert f"{code} {text.decode()}" == str(codes.MESSAGE_TOO_BIG)
        assert srv.policy.deliveries == []


async def test_more_recipients_than_the_limit_get_452_4_5_3() -> None:
    async with running_server(max_recipients=3) as srv:
        c = await srv.session()
        await c.send("MAIL FROM:<a@outside.test>")
        await c.expect(codes.SENDER_OK)
        for n in range(3):
            await c.send(f"RCPT TO:<user{n}@example.test>")
            await c.expect(codes.RECIPIENT_OK)
        await c.send("RCPT TO:<user3@example.test>")
        await c.expect("452 4.5.3 Too many recipients")
        await c.send("DATA")
        await c.expect("354")
        await c.send_raw(MESSAGE + b".\r\n")
        await c.expect("250 2.0.0")
        assert len(srv.policy.deliveries[0].recipients) == 3


async def test_delivery_outcomes_map_to_replies(srv: RunningServer) -> None:
    c = await srv.session()
    for recipient, expected in [
        ("deliver-temp@example.test", "451 4.3.0 "),
        ("deliver-fail@example.test", "554 5.0.0 "),
        ("alice@example.test", "250 2.0.0 "),
    ]:
        await c.send_raw(
            f"MAIL FROM:<a@outside.test>\r\nRCPT TO:<{recipient}>\r\nDATA\r\n".encode()
        )
        await c.expect(codes.SENDER_OK, codes.RECIPIENT_OK, "354")
        await c.send_raw(MESSAGE + b".\r\n")
        await c.expect(expected)


# -- PIPELINING (RFC 2920) ----------------------------------------------------------


async def test_pipelined_commands_in_one_write_are_answered_in_order(
    srv: RunningServer,
) -> None:
    c = await srv.connect()
    await c.send_raw(
        b"EHLO client.example\r\nMAIL FROM:<a@outside.test>\r\n"
        b"RCPT TO:<alice@example.test>\r\nRCPT TO:<unknown@example.test>\r\n"
        b"RCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    await c.expect("250-", "250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354")
    await c.send_raw(MESSAGE + b".\r\nMAIL FROM:<b@outside.test>\r\nRSET\r\nQUIT\r\n")
    await c.expect("250 2.0.0 Ok: queued as", "250 2.1.0", "250 2.0.0 Ok", "221 2.0.0")
    await c.expect_closed()
    assert srv.policy.deliveries[0].recipients == ("alice@example.test", "bob@example.test")


async def test_a_whole_session_in_one_write(srv: RunningServer) -> None:
    c = await srv.connect()
    await c.send_raw(
        b"EHLO client.example\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n"
        b"DATA\r\n" + MESSAGE + b".\r\nQUIT\r\n"
    )
    await c.expect("250-", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0")
    assert len(srv.policy.deliveries) == 1


# -- enhanced status codes (RFC 2034) -----------------------------------------------


async def test_enhanced_status_codes_on_every_reply(srv: RunningServer) -> None:
    c = await srv.connect()
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect("503 5.5.1 Send EHLO or HELO first")
    await c.send("EHLO client.example")
    await c.expect("250-mx.example.test\r\n250-PIPELINING")  # EHLO: exempt (RFC 2034 §3)
    for command, expected in [
        ("NOOP", "250 2.0.0 Ok"),
        ("RSET", "250 2.0.0 Ok"),
        ("HELP", "214 2.0.0 "),
        ("VRFY alice", "502 5.5.1 "),
        ("EXPN staff", "502 5.5.1 "),
        ("AUTH PLAIN", "502 5.5.1 "),
        ("STARTTLS", "454 4.7.0 "),
        ("FOO", "500 5.5.1 Command not recognized"),
        ("", "500 5.5.2 Syntax error"),
        ("RCPT TO:<alice@example.test>", "503 5.5.1 Need MAIL command"),
        ("DATA", "503 5.5.1 Need RCPT command"),
        ("MAIL", "501 5.5.4 "),
        ("MAIL FROM:<a@outside.test> FOO=BAR", "555 5.5.4 "),
        ("MAIL FROM:<a@outside.test> BODY=BINARYMIME", "501 5.5.4 "),
        ("MAIL FROM:<a@@@>", "553 5.1."),
        ("MAIL FROM:<a@outside.test", "553 5.1.7 "),
        ("MAIL FROM:<a@outside.test> SIZE=1", "250 2.1.0 Ok"),
        ("MAIL FROM:<a@outside.test>", "503 5.5.1 Nested MAIL command"),
        ("RCPT TO:<alice@example.test> FOO=BAR", "555 5.5.4 "),
        ("RCPT TO:<alice@example.test> NOTIFY=SOMETIMES", "501 5.5.4 "),  # RFC 3461 §5.1
        ("RCPT TO:<alice@example.test", "553 5.1.3 "),
        ("RCPT TO:<alice@@example.test>", "553 5.1.3 "),
        ("RCPT TO:<alice@example.test>", "250 2.1.5 Ok"),
        ("DATA x", "501 5.5.4 "),
        ("QUIT now", "501 5.5.4 "),
        ("QUIT", "221 2.0.0 Bye"),
    ]:
        await c.send(command)
        await c.expect(expected)


async def test_helo_replies_carry_no_enhanced_code_and_mean_plain_smtp(
    srv: RunningServer,
) -> None:
    c = await srv.connect()
    await c.send("HELO")
    await c.expect("501 Syntax: HELO hostname")
    await c.send("HELO client.example")
    await c.expect(f"250 {HOSTNAME}")
    await c.send_raw(
        b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        + MESSAGE
        + b".\r\n"
    )
    await c.expect("250 2.1.0", "250 2.1.5", "354", "250 2.0.0")
    assert " with SMTP id " in srv.policy.deliveries[0].received


async def test_smtputf8_mail_is_received_as_utf8smtp(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send_raw(
        "MAIL FROM:<rené@outside.test> SMTPUTF8\r\nRCPT TO:<alice@example.test>\r\n"
        "DATA\r\n".encode()
    )
    await c.expect("250 2.1.0", "250 2.1.5", "354")
    await c.send_raw("Subject: café\r\n\r\nbody\r\n.\r\n".encode())
    await c.expect("250 2.0.0")
    [delivery] = srv.policy.deliveries
    assert delivery.sender == "rené@outside.test"
    assert " with UTF8SMTP id " in delivery.received
    assert delivery.body == "Subject: café\r\n\r\nbody\r\n".encode()


# -- policy failures and the transaction log ---------------------------------------


async def test_an_exception_in_the_policy_is_451_with_a_reference_and_the_session_goes_on(
    srv: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<boom@outside.test>")
    [reply] = await c.expect("451 4.3.0 Internal error (")
    ref = reply.split("(")[1].rstrip(")")
    assert any(ref in r.getMessage() and r.exc_info for r in caplog.records)
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send("RCPT TO:<boom@example.test>")
    await c.expect("451 4.3.0 Internal error (")
    await c.send("RCPT TO:<deliver-boom@example.test>")
    await c.expect(codes.RECIPIENT_OK)
    await c.send("DATA")
    await c.expect("354")
    await c.send_raw(MESSAGE + b".\r\n")
    await c.expect("451 4.3.0 Internal error (")
    # The transaction is over: a new MAIL is a first MAIL, not a nested one.
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)


async def test_one_log_line_per_transaction_without_the_body(
    srv: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pymta.smtp")
    c = await srv.session()
    await c.send_raw(
        b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n"
        b"RCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    await c.expect("250", "250", "250", "354")
    await c.send_raw(
        b"Message-ID: <m1@outside.test>\r\nSubject: secret plans\r\n\r\nsecret body\r\n.\r\n"
    )
    [reply] = await c.expect("250 2.0.0")
    transactions = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp transaction ")
    ]
    assert len(transactions) == 1
    line = transactions[0]
    for part in [
        f"id={reply.rsplit(' ', 1)[1]}",
        "client=127.0.0.1",
        "helo=client.example",
        "from=<a@outside.test>",
        "rcpts=<alice@example.test>,<bob@example.test>",
        "msgid=<m1@outside.test>",
        "outcome=accepted",
        "routes=alice@example.test:local,bob@example.test:local",
        "tls=-",
    ]:
        assert part in line, part
    assert re.search(r" size=\d+ ", line)
    assert all("secret" not in r.getMessage() for r in caplog.records)


async def test_a_refused_data_transfer_is_logged_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pymta.smtp")
    async with running_server(max_message_bytes=100) as srv:
        c = await srv.session()
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250", "250", "354")
        await c.send_raw(b"x" * 200 + b"\r\n.\r\n")
        await c.expect("552 5.3.4")
    [line] = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("smtp transaction ")
    ]
    assert "outcome=refused" in line and 'reply="552 5.3.4"' in line
    assert "rcpts=<alice@example.test>" in line

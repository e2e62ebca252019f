"""Security regressions: SMTP smuggling (CVE-2023-51764 class), STARTTLS command
injection (CVE-2011-0411 class), header injection through HELO names and addresses.

The TLS tests run on the default event loop and on uvloop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pymta.smtp import codes
from tests.unit.test_smtp_harness import (
    MESSAGE,
    RunningServer,
    client_tls_context,
    on_each_loop,
    running_server,
    server_tls_context,
    srv,
)

__all__ = ["srv"]  # the fixture, imported for pytest

# -- SMTP smuggling ---------------------------------------------------------------------

SMUGGLED = (
    b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    b"Subject: smuggled\r\n\r\nevil\r\n"
)
FAKE_ENDS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-cr": b"\r\n.\r",
}


def assert_canonical(message: bytes) -> None:
    assert message.count(b"\n") == message.count(b"\r\n")
    assert message.count(b"\r") == message.count(b"\r\n")


@pytest.mark.parametrize("fake_end", FAKE_ENDS.values(), ids=FAKE_ENDS.keys())
async def test_smuggling_a_second_message_through_data_delivers_one_message(
    srv: RunningServer, fake_end: bytes
) -> None:
    c = await srv.session()
    await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    await c.expect("250 2.1.0", "250 2.1.5", "354")
    await c.send_raw(MESSAGE.rstrip(b"\r\n") + fake_end + SMUGGLED + b".\r\nQUIT\r\n")
    await c.expect("250 2.0.0 Ok: queued as ", "221 2.0.0")  # nothing in between
    await c.expect_closed()
    [delivery] = srv.policy.deliveries
    assert delivery.recipients == ("alice@example.test",)
    assert b"MAIL FROM:<admin@example.test>\r\n" in delivery.body
    assert b"Subject: smuggled\r\n\r\nevil\r\n" in delivery.body
    assert_canonical(delivery.message)
    assert [sender for _, sender in srv.policy.senders] == ["a@outside.test"]


@pytest.mark.parametrize("fake_end", FAKE_ENDS.values(), ids=FAKE_ENDS.keys())
async def test_smuggling_through_bdat_leaves_no_bare_line_ending(
    srv: RunningServer, fake_end: bytes
) -> None:
    content = MESSAGE.rstrip(b"\r\n") + fake_end + SMUGGLED
    c = await srv.session()
    await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
    await c.send_raw(b"BDAT %d LAST\r\n" % len(content) + content)
    await c.expect("250 2.1.0", "250 2.1.5", "250 2.0.0 Ok: queued as ")
    [delivery] = srv.policy.deliveries
    assert b"Subject: smuggled\r\n\r\nevil\r\n" in delivery.body
    assert_canonical(delivery.message)


# -- header injection ----------------------------------------------------------------


async def test_addresses_with_control_characters_are_refused(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a\x0bb@outside.test>")
    await c.expect("553 5.1.7")
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send_raw(b"RCPT TO:<alice\r@example.test>\r\n")
    await c.expect("553 5.1.3")


async def test_a_helo_name_cannot_add_header_lines(srv: RunningServer) -> None:
    c = await srv.connect()
    await c.send_raw(b"EHLO evil\rX-Injected: yes\r\n")
    await c.expect("501 Syntax: EHLO hostname")
    await c.send("EHLO not a (domain)")
    await c.expect("250-")
    await c.send_raw(
        b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
        + MESSAGE
        + b".\r\n"
    )
    await c.expect("250", "250", "354", "250 2.0.0")
    received = srv.policy.deliveries[0].received
    assert received.startswith("Received: from [127.0.0.1] ([127.0.0.1]) (helo=not?a??domain?)")


# -- STARTTLS injection ------------------------------------------------------------------


@on_each_loop
async def test_starttls_discards_a_pipelined_rset(tls_cert: tuple[Path, Path]) -> None:
    """CVE-2011-0411: `STARTTLS\\r\\nRSET\\r\\n` in one write: the RSET never runs."""
    async with running_server(tls_context=server_tls_context(tls_cert)) as srv:
        c = await srv.session()
        await c.send_raw(b"STARTTLS\r\nRSET\r\n")
        await c.expect("220 2.0.0 Ready to start TLS")
        await c.starttls(client_tls_context())
        await c.send("HELP")
        await c.expect("214 2.0.0")  # the first reply after the handshake is HELP's
        await c.close()


@on_each_loop
async def test_starttls_discards_a_pipelined_mail(tls_cert: tuple[Path, Path]) -> None:
    """CVE-2011-0411: an injected MAIL is never run; the next MAIL is a first MAIL."""
    async with running_server(tls_context=server_tls_context(tls_cert)) as srv:
        c = await srv.session()
        await c.send_raw(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
        await c.expect("220 2.0.0")
        await c.starttls(client_tls_context())
        await c.send("EHLO client.example")
        [ehlo] = await c.expect("250-")
        assert "STARTTLS" not in ehlo  # RFC 3207 §4.2
        await c.send("MAIL FROM:<a@outside.test>")
        await c.expect(codes.SENDER_OK)  # not 503 nested MAIL
        assert [sender for _, sender in srv.policy.senders] == ["a@outside.test"]
        await c.close()


@on_each_loop
async def test_after_starttls_the_session_starts_over(tls_cert: tuple[Path, Path]) -> None:
    """RFC 3207 §4.2: EHLO again; a transaction begun before TLS is gone."""
    async with running_server(tls_context=server_tls_context(tls_cert)) as srv:
        c = await srv.session()
        await c.send("MAIL FROM:<a@outside.test>")
        await c.expect(codes.SENDER_OK)
        await c.send("STARTTLS")
        await c.expect("220 2.0.0")
        await c.starttls(client_tls_context())
        await c.send("MAIL FROM:<a@outside.test>")
        await c.expect("503 5.5.1 Send EHLO or HELO first")
        await c.send("EHLO client.example")
        await c.expect("250-")
        await c.send("STARTTLS")
        await c.expect("503 5.5.1 TLS already active")
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250 2.1.0", "250 2.1.5", "354")
        await c.send_raw(MESSAGE + b".\r\n")
        await c.expect("250 2.0.0 Ok: queued as ")
        [delivery] = srv.policy.deliveries
        assert delivery.session.tls is not None and delivery.session.tls.startswith("TLSv1.")
        assert f" with ESMTPS ({delivery.session.tls}) id " in delivery.received
        await c.close()


@on_each_loop
async def test_implicit_tls_offers_no_starttls_and_records_tls(
    tls_cert: tuple[Path, Path],
) -> None:
    """Port 465 style (RFC 8314): TLS from the first octet; no STARTTLS offered."""
    context = server_tls_context(tls_cert)
    async with running_server(tls_context=context, implicit_tls=True) as srv:
        c = await srv.connect()
        await c.send("EHLO client.example")
        [ehlo] = await c.expect("250-")
        assert "STARTTLS" not in ehlo
        await c.send("STARTTLS")
        await c.expect("503 5.5.1 TLS already active")
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250 2.1.0", "250 2.1.5", "354")
        await c.send_raw(MESSAGE + b".\r\nQUIT\r\n")
        await c.expect("250 2.0.0 Ok: queued as ", "221 2.0.0")
        [delivery] = srv.policy.deliveries
        assert delivery.session.tls is not None
        assert f" with ESMTPS ({delivery.session.tls}) id " in delivery.received
        await c.close()

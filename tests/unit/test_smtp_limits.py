"""Limits of the inbound front end: command and data timeouts, line lengths, connection
limits, a graceful stop. Timeouts are set small; the tests wait for the server's reply.
Timeouts, connection limits and the stop run on the default event loop and on uvloop."""

from __future__ import annotations

import asyncio

from pymta.smtp import codes
from tests.unit.test_smtp_harness import (
    MESSAGE,
    CountingGate,
    RunningServer,
    eventually,
    on_each_loop,
    running_server,
    srv,
)

__all__ = ["srv"]  # the fixture, imported for pytest

# -- timeouts (RFC 5321 §4.5.3.2) -------------------------------------------------------


@on_each_loop
async def test_an_idle_client_gets_421_4_4_2_and_is_disconnected() -> None:
    async with running_server(command_timeout_s=0.2) as srv:
        c = await srv.connect()
        await c.expect("421 4.4.2 Timeout")
        await c.expect_closed()
        await eventually(lambda: srv.gate.total == 0)


@on_each_loop
async def test_a_slow_data_transfer_outlives_the_command_and_data_timeouts() -> None:
    """Only silence counts: 1 s of transfer, never 0.4 s without input."""
    async with running_server(command_timeout_s=0.15, data_timeout_s=0.4) as srv:
        c = await srv.session()
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250", "250", "354")
        await c.send_raw(b"Subject: slow\r\n\r\n")
        for n in range(20):
            await asyncio.sleep(0.05)
            await c.send_raw(b"line %d\r\n" % n)
        await c.send_raw(b".\r\n")
        await c.expect("250 2.0.0 Ok: queued as ")
        assert srv.policy.deliveries[0].body.endswith(b"line 19\r\n")


@on_each_loop
async def test_a_slow_bdat_chunk_outlives_the_command_and_data_timeouts() -> None:
    async with running_server(command_timeout_s=0.15, data_timeout_s=0.3) as srv:
        c = await srv.session()
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
        await c.expect("250", "250")
        await c.send_raw(b"BDAT %d LAST\r\n" % len(MESSAGE))
        for octet in range(len(MESSAGE)):
            if octet % 5 == 0:
                await asyncio.sleep(0.05)
            await c.send_raw(MESSAGE[octet : octet + 1])
        await c.expect("250 2.0.0 Ok: queued as ")


@on_each_loop
async def test_a_stalled_data_transfer_ends_after_the_data_timeout() -> None:
    async with running_server(command_timeout_s=30, data_timeout_s=0.2) as srv:
        c = await srv.session()
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250", "250", "354")
        await c.send_raw(b"Subject: stalled\r\n")
        await c.expect("421 4.4.2")
        await c.expect_closed()
        assert srv.policy.deliveries == []


@on_each_loop
async def test_a_stalled_bdat_chunk_ends_after_the_data_timeout() -> None:
    async with running_server(command_timeout_s=30, data_timeout_s=0.2) as srv:
        c = await srv.session()
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
        await c.send_raw(b"BDAT 100 LAST\r\nonly a part")
        await c.expect("250", "250", "421 4.4.2")
        await c.expect_closed()


# -- line lengths (RFC 5321 §4.5.3.1) ------------------------------------------------------


async def test_a_command_over_512_octets_is_500_5_5_6(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("NOOP " + "x" * 505)  # 510 octets + CRLF = 512: the limit
    await c.expect("250 2.0.0")
    await c.send("NOOP " + "x" * 506)
    await c.expect("500 5.5.6 Line too long")
    await c.send("NOOP " + "x" * 5000)  # over aiosmtpd's read buffer as well
    await c.expect("500 5.5.6 Line too long")
    await c.send("NOOP")
    await c.expect("250 2.0.0")


async def test_mail_may_grow_by_its_extension_parameters(srv: RunningServer) -> None:
    c = await srv.session()
    sender = "a" * 460 + "@outside.test"
    await c.send(f"MAIL FROM:<{sender}> SIZE=1000 BODY=8BITMIME SMTPUTF8")  # 536 octets
    await c.expect(codes.SENDER_OK)


async def test_a_data_line_over_1000_octets_is_refused_after_the_data(
    srv: RunningServer,
) -> None:
    c = await srv.session()
    for line_length in (1200, 5000):
        await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
        await c.expect("250", "250", "354")
        await c.send_raw(MESSAGE + b"y" * line_length + b"\r\nmore\r\n.\r\n")
        await c.expect("500 5.5.6 Line too long")
        await c.send("RCPT TO:<alice@example.test>")
        await c.expect("503 5.5.1 Need MAIL command")  # the transaction was reset
    assert srv.policy.deliveries == []


async def test_a_data_line_of_1000_octets_is_accepted(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    await c.expect("250", "250", "354")
    # 998 + CRLF is RFC 5322's limit; a leading dot is stuffed (RFC 5321 §4.5.2).
    await c.send_raw(MESSAGE + b"." + b"." * 998 + b"\r\n.\r\n")
    await c.expect("250 2.0.0")
    assert srv.policy.deliveries[0].body.endswith(b"." * 998 + b"\r\n")


# -- connection limits -----------------------------------------------------------------


@on_each_loop
async def test_connections_over_the_per_ip_limit_get_421_4_7_0() -> None:
    gate = CountingGate(max_total=10, max_per_ip=2)
    async with running_server(gate=gate) as srv:
        first, second = await srv.connect(), await srv.connect()
        third = await srv.connect(greeting=False)
        await third.expect("421 4.7.0 Too many connections")
        await third.expect_closed()
        assert gate.total == 2
        await first.send("QUIT")
        await first.expect("221 2.0.0")
        await eventually(lambda: gate.total == 1)
        fourth = await srv.connect()  # room again
        await fourth.send("NOOP")
        await fourth.expect("250 2.0.0")
        await second.close()
        await fourth.close()
        await eventually(lambda: gate.total == 0)


@on_each_loop
async def test_connections_over_the_total_limit_get_421_4_7_0() -> None:
    gate = CountingGate(max_total=1, max_per_ip=10)
    async with running_server(gate=gate) as srv:
        first = await srv.connect()
        second = await srv.connect(greeting=False)
        await second.expect(codes.TOO_MANY_CONNECTIONS)
        await second.expect_closed()
        await first.close()
        await eventually(lambda: gate.total == 0)
        assert srv.listener.connection_count == 0


# -- a graceful stop -------------------------------------------------------------------


@on_each_loop
async def test_the_listener_is_busy_while_a_transaction_is_open() -> None:
    async with running_server() as srv:
        idle, sending = await srv.session(), await srv.session()
        await eventually(lambda: srv.listener.connection_count == 2)
        assert not srv.listener.busy
        await sending.send("MAIL FROM:<a@outside.test>")
        await sending.expect(codes.SENDER_OK)
        assert srv.listener.busy
        await sending.send("RSET")
        await sending.expect(codes.OK)
        assert not srv.listener.busy
        srv.listener.close_all()
        for wire in (idle, sending):
            await wire.expect("421 4.3.2")
            await wire.expect_closed()
        await eventually(lambda: srv.gate.total == 0)

"""CHUNKING (RFC 3030): BDAT chunks, LAST, 0 LAST, oversized chunks, BDAT out of
sequence, DATA after BDAT, RSET, malformed BDAT — over a raw connection."""

from __future__ import annotations

import tracemalloc

from pymta.smtp import codes
from tests.unit.test_smtp_harness import MESSAGE, RunningServer, Wire, running_server, srv

__all__ = ["srv"]  # the fixture, imported for pytest


def bdat(data: bytes, *, last: bool = False) -> bytes:
    return b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data


async def transaction(srv: RunningServer, rcpt: str = "alice@example.test") -> Wire:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test>")
    await c.send(f"RCPT TO:<{rcpt}>")
    await c.expect(codes.SENDER_OK, codes.RECIPIENT_OK)
    return c


async def test_chunks_make_one_message(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(bdat(MESSAGE[:30]))
    await c.expect("250 2.0.0 30 octets received")
    await c.send_raw(bdat(MESSAGE[30:], last=True))
    await c.expect("250 2.0.0 Ok: queued as ")
    [delivery] = srv.policy.deliveries
    assert delivery.body == MESSAGE
    assert " with ESMTP id " in delivery.received


async def test_bdat_0_last_ends_the_message(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(bdat(MESSAGE) + b"BDAT 0 LAST\r\n")
    await c.expect("250 2.0.0 ", "250 2.0.0 Ok: queued as ")
    assert srv.policy.deliveries[0].body == MESSAGE


async def test_chunk_data_is_taken_as_is_no_dot_unstuffing(srv: RunningServer) -> None:
    content = b"Subject: dots\r\n\r\n..two dots\r\n.\r\nQUIT\r\n"
    c = await transaction(srv)
    await c.send_raw(bdat(content, last=True))
    await c.expect("250 2.0.0 Ok: queued as ")
    assert srv.policy.deliveries[0].body == content


async def test_a_whole_bdat_transaction_pipelined_in_one_write(srv: RunningServer) -> None:
    c = await srv.connect()
    await c.send_raw(
        b"EHLO client.example\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n"
        + bdat(MESSAGE[:10])
        + bdat(MESSAGE[10:])
        + b"BDAT 0 LAST\r\nQUIT\r\n"
    )
    await c.expect("250-", "250 2.1.0", "250 2.1.5", "250 2.0.0", "250 2.0.0", "250 2.0.0 Ok")
    await c.expect("221 2.0.0")
    assert srv.policy.deliveries[0].body == MESSAGE


async def test_bdat_without_mail_is_refused_and_its_octets_consumed(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send_raw(b"BDAT 10 LAST\r\nNOOP NOOP!")  # the ten octets are data, not a command
    await c.expect("503 5.5.1 Need MAIL command")
    await c.send("HELP")
    await c.expect("214 2.0.0")  # the next reply is HELP's: nothing ran in between


async def test_bdat_without_rcpt_is_refused_and_its_octets_consumed(srv: RunningServer) -> None:
    c = await srv.session()
    await c.send("MAIL FROM:<a@outside.test>")
    await c.expect(codes.SENDER_OK)
    await c.send_raw(bdat(b"RSET\r\n", last=True))
    await c.expect("503 5.5.1 Need RCPT command")
    await c.send("RCPT TO:<alice@example.test>")
    await c.expect(codes.RECIPIENT_OK)  # the MAIL still stands: the RSET was data


async def test_bdat_after_last_is_a_bad_sequence(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(bdat(MESSAGE, last=True) + bdat(b"more"))
    await c.expect("250 2.0.0 Ok: queued as ", "503 5.5.1")
    assert len(srv.policy.deliveries) == 1


async def test_data_after_bdat_is_a_bad_sequence(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(bdat(MESSAGE[:10]))
    await c.expect("250 2.0.0")
    await c.send("DATA")
    await c.expect("503 5.5.1 DATA not allowed after BDAT")
    await c.send("RSET")
    await c.expect("250 2.0.0")
    await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    await c.expect("250 2.1.0", "250 2.1.5", "354")
    await c.send_raw(MESSAGE + b".\r\n")
    await c.expect("250 2.0.0 Ok: queued as ")
    assert srv.policy.deliveries[0].body == MESSAGE


async def test_rset_clears_the_chunks(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(bdat(b"Subject: first\r\n"))
    await c.expect("250 2.0.0")
    await c.send("RSET")
    await c.expect("250 2.0.0")
    await c.send_raw(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
    await c.expect("250 2.1.0", "250 2.1.5")
    await c.send_raw(bdat(MESSAGE, last=True))
    await c.expect("250 2.0.0 Ok")
    assert srv.policy.deliveries[0].body == MESSAGE


async def test_an_oversized_chunk_is_read_then_refused_and_the_transaction_reset() -> None:
    async with running_server(max_message_bytes=100) as srv:
        c = await transaction(srv)
        await c.send_raw(bdat(b"x" * 150, last=True))
        await c.expect("552 5.3.4 Message size exceeds fixed maximum message size")
        await c.send("RCPT TO:<alice@example.test>")
        await c.expect("503 5.5.1 Need MAIL command")  # the transaction is over
        assert srv.policy.deliveries == []


async def test_chunks_over_the_limit_together_are_refused_and_the_rest_discarded() -> None:
    async with running_server(max_message_bytes=100) as srv:
        c = await transaction(srv)
        await c.send_raw(bdat(b"a" * 60) + bdat(b"b" * 60) + bdat(b"NOOP\r\n", last=True))
        await c.expect("250 2.0.0", "552 5.3.4", "503 5.5.1")
        await c.send("HELP")
        await c.expect("214 2.0.0")
        assert srv.policy.deliveries == []


async def test_a_huge_chunk_is_never_held_in_memory() -> None:
    """A chunk announced far over the limit is read in slices and dropped as it comes."""
    size, piece = 8 * 1024 * 1024, b"z" * 65536
    async with running_server(max_message_bytes=1000) as srv:
        c = await transaction(srv)
        tracemalloc.start()
        try:
            await c.send_raw(b"BDAT %d LAST\r\n" % size)
            for _ in range(size // len(piece)):
                await c.send_raw(piece)
            await c.expect("552 5.3.4")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < size // 4, peak


async def test_malformed_bdat_with_a_size_is_refused_and_its_octets_consumed(
    srv: RunningServer,
) -> None:
    c = await transaction(srv)
    await c.send_raw(b"BDAT 6 FIRST\r\nRSET\r\n")
    await c.expect("501 5.5.4 Syntax: BDAT <size> [LAST]")
    await c.send("HELP")
    await c.expect("214 2.0.0")


async def test_bdat_without_a_size_is_refused_and_the_connection_closed(
    srv: RunningServer,
) -> None:
    c = await transaction(srv)
    await c.send_raw(b"BDAT LAST\r\nMAIL FROM:<x@outside.test>\r\n")
    await c.expect("501 5.5.4 Syntax: BDAT <size> [LAST]", "421 4.3.0")
    await c.expect_closed()
    assert [sender for _, sender in srv.policy.senders] == ["a@outside.test"]


async def test_bdat_is_case_insensitive(srv: RunningServer) -> None:
    c = await transaction(srv)
    await c.send_raw(b"bdat %d last\r\n" % len(MESSAGE) + MESSAGE)
    await c.expect("250 2.0.0 Ok: queued as ")

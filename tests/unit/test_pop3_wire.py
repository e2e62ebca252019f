"""The POP3 line reader, command grammar and message encoder: read whole, byte by byte and
with trailing data; the encoder piecewise at every split point against a one-piece
reference (RFC 1939 §3 dot-stuffing and CRLF, §7 TOP; RFC 2449 §4 line lengths)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymta.pop3.framer import NEED_MORE, Line, LineReader, LineTooLong
from pymta.pop3.grammar import ParseError, command, line_count, message_number
from pymta.pop3.wire import MessageEncoder, MessageTransfer, to_crlf

# -- the line reader ---------------------------------------------------------------------------


def events(reader: LineReader) -> list[object]:
    out: list[object] = []
    while (event := reader.next_event()) is not NEED_MORE:
        out.append(event)
    return out


def test_lines_whole_byte_by_byte_and_with_trailing_data() -> None:
    data = b"USER alice\r\nPASS x y\nSTAT\r\nLIS"
    whole = LineReader(255)
    whole.feed(data)
    assert events(whole) == [Line(b"USER alice"), Line(b"PASS x y"), Line(b"STAT")]
    assert whole.buffered_bytes == 3  # "LIS" waits for its line end
    bytewise = LineReader(255)
    seen: list[object] = []
    for i in range(len(data)):
        bytewise.feed(data[i : i + 1])
        seen += events(bytewise)
    assert seen == [Line(b"USER alice"), Line(b"PASS x y"), Line(b"STAT")]


def test_line_of_255_octets_with_crlf_is_read_256_is_refused() -> None:
    """RFC 2449 §4: commands up to 255 octets, including the terminating CRLF."""
    reader = LineReader(255)
    reader.feed(b"A" * 253 + b"\r\n" + b"B" * 254 + b"\r\nNOOP\r\n")
    assert events(reader) == [Line(b"A" * 253), LineTooLong(), Line(b"NOOP")]


def test_long_line_is_refused_before_its_end_and_dropped_as_it_arrives() -> None:
    reader = LineReader(255)
    reader.feed(b"X" * 300)
    assert events(reader) == [LineTooLong()]
    assert reader.buffered_bytes == 0  # nothing of it is kept
    reader.feed(b"Y" * 10_000)
    assert events(reader) == [] and reader.buffered_bytes == 0
    reader.feed(b"Z\r\nQUIT\r\n")
    assert events(reader) == [Line(b"QUIT")]


def test_limit_changes_for_the_next_line_and_reset_forgets_everything() -> None:
    reader = LineReader(255)
    reader.max_line_bytes = 4096  # a SASL response
    reader.feed(b"a" * 1000 + b"\r\nSTLS\r\nUSER smuggled\r\n")
    assert events(reader)[0] == Line(b"a" * 1000)
    reader.reset()  # RFC 2595 §4: what followed STLS is never read
    assert reader.buffered_bytes == 0 and events(reader) == []


# -- the grammar -------------------------------------------------------------------------------


def test_command_keyword_any_case_and_params() -> None:
    cmd = command(b"top 1  10 ")
    assert (cmd.keyword, cmd.params) == ("TOP", ("1", "10"))
    assert command(b"PASS  two words ").rest == b" two words "  # RFC 1939 §7
    for bad in (b"NO", b"TOOLONG x", b"\x00AB", b"QU\x7fT"):
        with pytest.raises(ParseError, match="Unknown command"):
            command(bad)


def test_message_numbers_and_line_counts() -> None:
    assert message_number("1") == 1 and message_number("0042") == 42
    for bad in ("0", "-1", "+1", "1.0", "x", "12345678901", ""):
        with pytest.raises(ParseError, match="Invalid message number"):
            message_number(bad)
    assert line_count("0") == 0 and line_count("25") == 25
    with pytest.raises(ParseError, match="Invalid number of lines"):
        line_count("-1")


# -- the encoder -------------------------------------------------------------------------------


def encode(data: bytes, body_lines: int | None = None, cuts: tuple[int, ...] = ()) -> bytes:
    encoder = MessageEncoder(body_lines)
    out = b""
    last = 0
    for cut in (*cuts, len(data)):
        out += encoder.encode(data[last:cut])
        last = cut
    return out + encoder.finish()


def test_bare_lf_becomes_crlf_and_dots_are_stuffed() -> None:
    raw = b"Subject: x\n\n.hidden\r\n..two\nlast line"
    assert encode(raw) == b"Subject: x\r\n\r\n..hidden\r\n...two\r\nlast line\r\n.\r\n"
    assert encode(b".") == b"..\r\n.\r\n"
    assert encode(b"") == b".\r\n"
    assert encode(b"a\r\n") == b"a\r\n.\r\n"  # no second CRLF before the terminator
    assert to_crlf(b"a\r\nb\r\n") == b"a\r\nb\r\n"
    assert encode(b"a\rb\r") == b"a\rb\r\n.\r\n"  # a lone CR stays; a final one ends the line


def test_top_sends_the_header_the_blank_line_and_n_body_lines() -> None:
    raw = b"A: 1\r\nB: 2\r\n\r\n.one\r\ntwo\r\nthree\r\n"
    assert encode(raw, 0) == b"A: 1\r\nB: 2\r\n\r\n.\r\n"
    assert encode(raw, 2) == b"A: 1\r\nB: 2\r\n\r\n..one\r\ntwo\r\n.\r\n"
    assert encode(raw, 99) == encode(raw)
    assert encode(b"\r\nbody\r\nmore\r\n", 1) == b"\r\nbody\r\n.\r\n"  # no header at all
    assert encode(b"A: 1\nB: 2", 5) == b"A: 1\r\nB: 2\r\n.\r\n"  # no body at all


MESSAGES = [
    b"From: a\r\nSubject: dots\r\n\r\n.\r\n..\r\nx.\r\n.end\r\n",
    b"From: a\n\n.\n\n.\nlf only\n",
    b"A: b\r\n\r\r\n.x\r\r\n\r\n.",
    b".starts with a dot\r\n\r\n.body",
]


@pytest.mark.parametrize("raw", MESSAGES)
@pytest.mark.parametrize("body_lines", [None, 0, 1, 2, 5])
def test_every_split_point_gives_the_same_bytes(raw: bytes, body_lines: int | None) -> None:
    whole = encode(raw, body_lines)
    for i in range(len(raw) + 1):
        assert encode(raw, body_lines, (i,)) == whole, i
        for j in range(i, len(raw) + 1):
            assert encode(raw, body_lines, (i, j)) == whole, (i, j)


@given(st.binary(max_size=200), st.lists(st.integers(0, 200), max_size=6))
def test_encoding_is_independent_of_the_pieces(raw: bytes, cuts: list[int]) -> None:
    reference = encode(raw)
    assert encode(raw, None, tuple(sorted(c % (len(raw) + 1) for c in cuts))) == reference
    # Decoding the way a client does gives the message back with CRLF line ends.
    body = reference[: -len(b".\r\n")]
    lines = body.split(b"\r\n")[:-1]
    unstuffed = b"\r\n".join(line[1:] if line.startswith(b".") else line for line in lines)
    normalized = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if normalized.endswith(b"\r") and not normalized.endswith(b"\r\n"):
        normalized += b"\n"  # a final lone CR ends the last line
    assert unstuffed + b"\r\n" in (normalized + b"\r\n", normalized)


def test_transfer_reads_in_pieces_and_closes_the_file() -> None:
    raw = b"Subject: big\r\n\r\n" + b".line of text\r\n" * 10_000
    file = io.BytesIO(raw)
    transfer = MessageTransfer(file, chunk_bytes=4096)
    transfer.prefetch()
    pieces = [transfer.take_ready()]
    while not transfer.finished:
        pieces.append(transfer.read())
    assert len(pieces) > 10 and max(len(p) for p in pieces) <= 4096 + 4096 // 14 + 3
    assert b"".join(pieces) == encode(raw)
    assert file.closed and transfer.read() == b""
    assert transfer.sent_bytes == len(encode(raw))


def test_small_message_is_read_whole_at_prefetch() -> None:
    transfer = MessageTransfer(io.BytesIO(b"Subject: s\r\n\r\nhi\r\n"))
    transfer.prefetch()
    assert transfer.finished
    assert transfer.take_ready() == b"Subject: s\r\n\r\nhi\r\n.\r\n"


def test_top_stops_reading_the_file() -> None:
    file = io.BytesIO(b"S: x\r\n\r\n" + b"body\r\n" * 100_000)
    transfer = MessageTransfer(file, body_lines=1, chunk_bytes=1024)
    transfer.prefetch()
    assert transfer.finished and transfer.take_ready() == b"S: x\r\n\r\nbody\r\n.\r\n"
    assert file.closed

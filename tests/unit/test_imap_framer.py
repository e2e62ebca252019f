"""The IMAP framer: whole commands out of a byte stream, literals inline, limits enforced
before anything is held, refused commands skipped exactly as the client sends them."""

from __future__ import annotations

import pytest

from pymta.imap.framer import (
    CommandFrame,
    ContinuationLine,
    Event,
    Framer,
    LineTooLong,
    LiteralAnnounced,
    LiteralTooLarge,
    NeedMore,
)
from pymta.imap.parser import parse_command

LINE = 1000
LITERAL = 10_000
COMMAND = 20_000


def make(line: int = LINE, literal: int = LITERAL, command: int = COMMAND) -> Framer:
    return Framer(max_line_bytes=line, max_literal_bytes=literal, max_command_bytes=command)


def drain(framer: Framer, *, accept: bool = True) -> list[Event]:
    """Every event until NeedMore, answering synchronizing literals with "+" (or refusing
    them when accept=False)."""
    events: list[Event] = []
    while True:
        event = framer.next_event()
        if isinstance(event, NeedMore):
            return events
        events.append(event)
        if isinstance(event, LiteralAnnounced) and event.synchronizing:
            if accept:
                framer.accept_literal()
            else:
                framer.reject_literal()


def run(data: bytes, *, step: int | None = None, framer: Framer | None = None) -> list[Event]:
    """Feed `data` whole (step=None) or in slices of `step` octets; all events."""
    framer = framer or make()
    events: list[Event] = []
    size = step or max(1, len(data))
    for start in range(0, len(data), size):
        framer.feed(data[start : start + size])
        events += drain(framer)
    return events


def frames(events: list[Event]) -> list[bytes]:
    return [e.data for e in events if isinstance(e, CommandFrame)]


# -- whole, byte by byte, with trailing data ---------------------------------------------------

CORPUS = [
    b"a1 NOOP\r\n",
    b"a2 LOGIN {4}\r\nfred {4}\r\npass\r\n",
    b"a3 LOGIN {4+}\r\nfred {4+}\r\npass\r\n",
    b"a4 APPEND INBOX (\\Seen) {11}\r\nHello\r\nWorld\r\n",
    b"a5 APPEND INBOX ~{3}\r\na\x00b UTF8 (~{2+}\r\nhi)\r\n",
    b"a6 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From)])\r\n",
    b"a7 SELECT {0}\r\n\r\n",
    b"a8 SEARCH SUBJECT {5}\r\n{3}\r\n\r\n",
]


@pytest.mark.parametrize("data", CORPUS)
def test_whole_and_byte_by_byte_give_the_same_frames(data: bytes) -> None:
    whole = run(data)
    assert whole == run(data, step=1) == run(data, step=3)
    assert len(frames(whole)) == 1


def test_literals_are_inline_and_the_final_crlf_is_gone() -> None:
    events = run(b"a2 LOGIN {4}\r\nfred {4}\r\npass\r\n")
    assert events == [
        LiteralAnnounced("a2", 4, synchronizing=True),
        LiteralAnnounced("a2", 4, synchronizing=True),
        CommandFrame(b"a2 LOGIN {4}\r\nfred {4}\r\npass"),
    ]
    command = parse_command(frames(events)[0], utf8_names=False)
    assert (command.tag, command.user, command.password) == ("a2", "fred", "pass")  # type: ignore[attr-defined]


def test_two_commands_in_one_feed() -> None:
    data = b"".join(CORPUS)
    assert frames(run(data)) == frames(run(data, step=1))
    assert len(frames(run(data))) == len(CORPUS)


def test_non_synchronizing_and_binary_literals_are_announced() -> None:
    events = run(b"a5 APPEND INBOX ~{3}\r\na\x00b UTF8 (~{2+}\r\nhi)\r\n")
    assert events[:2] == [
        LiteralAnnounced("a5", 3, synchronizing=True, binary=True),
        LiteralAnnounced("a5", 2, synchronizing=False, binary=True),
    ]
    assert frames(events) == [b"a5 APPEND INBOX ~{3}\r\na\x00b UTF8 (~{2+}\r\nhi)"]


def test_literal_octets_are_never_taken_for_commands() -> None:
    payload = b"a9 LOGOUT\r\nb1 NOOP {5+}\r\n"
    data = b"a1 APPEND INBOX {%d+}\r\n%s\r\na2 NOOP\r\n" % (len(payload), payload)
    assert frames(run(data, step=1)) == [
        b"a1 APPEND INBOX {%d+}\r\n%s" % (len(payload), payload),
        b"a2 NOOP",
    ]


def test_bare_lf_and_empty_lines_between_commands() -> None:
    assert frames(run(b"\r\n\na1 NOOP\n\r\na2 LOGIN {1}\nx\na3 NOOP\r\n")) == [
        b"a1 NOOP",
        b"a2 LOGIN {1}\r\nx",
        b"a3 NOOP",
    ]


def test_a_cr_alone_does_not_end_a_line() -> None:
    assert frames(run(b"a1 NOOP\rX\r\n")) == [b"a1 NOOP\rX"]


def test_frame_repr_hides_the_command() -> None:
    assert "pass" not in repr(CommandFrame(b"a LOGIN fred pass"))
    assert "secret" not in repr(ContinuationLine(b"secret"))


# -- synchronizing literals: the caller decides ------------------------------------------------


def test_next_event_before_deciding_a_synchronizing_literal_is_a_bug() -> None:
    framer = make()
    framer.feed(b"a1 APPEND INBOX {5}\r\n")
    assert framer.next_event() == LiteralAnnounced("a1", 5, synchronizing=True)
    with pytest.raises(RuntimeError):
        framer.next_event()


def test_refused_synchronizing_literal_ends_the_command() -> None:
    # RFC 9051 §7.5: the client got NO instead of "+": it sends no octets, the next line is
    # a new command.
    framer = make()
    framer.feed(b"a1 APPEND INBOX {5}\r\na2 NOOP\r\n")
    assert framer.next_event() == LiteralAnnounced("a1", 5, synchronizing=True)
    framer.reject_literal()
    assert framer.next_event() == CommandFrame(b"a2 NOOP")
    assert isinstance(framer.next_event(), NeedMore)


def test_refused_non_synchronizing_literal_is_read_and_dropped_with_its_command() -> None:
    # RFC 7888 §4: the octets are on their way; they and the rest of the command are dropped.
    framer = make()
    framer.feed(b"a1 LOGIN {3+}\r\nabc {9+}\r\na9 LOGOUT\r\na2 NOOP\r\n")
    assert framer.next_event() == LiteralAnnounced("a1", 3, synchronizing=False)
    framer.reject_literal()
    assert framer.next_event() == CommandFrame(b"a2 NOOP")


def test_accept_or_reject_without_a_literal_is_a_bug() -> None:
    framer = make()
    with pytest.raises(RuntimeError):
        framer.accept_literal()
    with pytest.raises(RuntimeError):
        framer.reject_literal()


# -- limits ------------------------------------------------------------------------------------


def test_huge_synchronizing_literal_costs_nothing() -> None:
    framer = make()
    framer.feed(b"a1 APPEND INBOX {4294967296}\r\na2 NOOP\r\n")
    assert framer.next_event() == LiteralTooLarge("a1", 4294967296, synchronizing=True)
    # RFC 9051 §7.5: without "+" the client sends nothing of it; the next line is a command.
    assert framer.next_event() == CommandFrame(b"a2 NOOP")
    assert framer.buffered_bytes == 0


def test_literal_larger_than_announced_limit_is_refused_before_reading() -> None:
    framer = make(literal=100)
    framer.feed(b"a1 APPEND INBOX {101}\r\n")
    assert framer.next_event() == LiteralTooLarge("a1", 101, synchronizing=True)
    assert isinstance(framer.next_event(), NeedMore)


def test_smuggled_commands_in_a_too_large_non_synchronizing_literal_are_dropped() -> None:
    payload = b"a9 DELETE INBOX\r\n" * 20
    data = b"a1 APPEND INBOX {%d+}\r\n%s a2 X {4+}\r\nabcd\r\na3 NOOP\r\n" % (
        len(payload),
        payload,
    )
    for step in (None, 1, 7):
        events = run(data, step=step, framer=make(literal=100))
        assert events == [
            LiteralTooLarge("a1", len(payload), synchronizing=False),
            CommandFrame(b"a3 NOOP"),
        ]


def test_literal8_announcement_of_2_to_the_64_is_refused() -> None:
    events = run(b"a1 APPEND INBOX ~{18446744073709551616+}\r\n")
    assert events == [LiteralTooLarge("a1", 2**64, synchronizing=False)]


def test_one_megabyte_line_is_refused_without_being_held() -> None:
    framer = make(line=8192)
    chunk = 4096
    data = b"a1 LOGIN " + b"x" * 1_000_000 + b"\r\na2 NOOP\r\n"
    events: list[Event] = []
    for start in range(0, len(data), chunk):
        framer.feed(data[start : start + chunk])
        events += drain(framer)
        assert framer.buffered_bytes <= 8192 + 2 * chunk
    assert events == [LineTooLong("a1"), CommandFrame(b"a2 NOOP")]


def test_long_line_in_one_feed() -> None:
    events = run(b"a1 " + b"y" * 5000 + b"\r\na2 NOOP\r\n")
    assert events == [LineTooLong("a1"), CommandFrame(b"a2 NOOP")]


def test_long_line_without_a_tag_is_reported_untagged() -> None:
    assert run(b"z" * 5000 + b"\r\n") == [LineTooLong(None)]


@pytest.mark.parametrize("step", [None, 1, 100])
def test_smuggling_after_a_too_long_line_ending_in_a_literal(step: int | None) -> None:
    # The refused line announces a non-synchronizing literal: its octets (which look like a
    # command) and the rest of its command are dropped, not executed.
    data = b"a1 LOGIN " + b"u" * 2000 + b" {11+}\r\na9 LOGOUT\r\n\r\na2 NOOP\r\n"
    assert run(data, step=step) == [LineTooLong("a1"), CommandFrame(b"a2 NOOP")]


def test_too_long_line_ending_in_a_synchronizing_literal_ends_the_command() -> None:
    data = b"a1 LOGIN " + b"u" * 2000 + b" {11}\r\na2 NOOP\r\n"
    assert run(data, step=1) == [LineTooLong("a1"), CommandFrame(b"a2 NOOP")]


def test_command_longer_than_the_limit_across_literals() -> None:
    framer = make(line=100, literal=100, command=130)
    framer.feed(b"a1 LOGIN {60}\r\n" + b"p" * 60 + b" {60}\r\n")
    assert framer.next_event() == LiteralAnnounced("a1", 60, synchronizing=True)
    framer.accept_literal()
    # 15 + 60 + 7 + 60 octets would pass 130: refused before reading.
    assert framer.next_event() == LiteralTooLarge("a1", 60, synchronizing=True)
    framer.feed(b"a2 NOOP\r\n")
    assert framer.next_event() == CommandFrame(b"a2 NOOP")


def test_continuation_line_past_the_command_limit() -> None:
    framer = make(line=100, literal=100, command=120)
    framer.feed(b"a1 LOGIN {60+}\r\n" + b"p" * 60 + b" " + b"q" * 60 + b"\r\na2 NOOP\r\n")
    assert drain(framer) == [
        LiteralAnnounced("a1", 60, synchronizing=False),
        LineTooLong("a1"),
        CommandFrame(b"a2 NOOP"),
    ]


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Framer(0, 10, 10)


# -- continuation lines (AUTHENTICATE, IDLE) ---------------------------------------------------


def test_authenticate_exchange() -> None:
    framer = make()
    framer.feed(b"a1 AUTHENTICATE PLAIN\r\n")
    assert framer.next_event() == CommandFrame(b"a1 AUTHENTICATE PLAIN")
    framer.expect_line()
    assert isinstance(framer.next_event(), NeedMore)
    framer.feed(b"AGZyZWQAcGFzcw==\r\n")
    assert framer.next_event() == ContinuationLine(b"AGZyZWQAcGFzcw==")
    framer.expect_line()
    framer.feed(b"\r\n")  # an empty response is a line too
    assert framer.next_event() == ContinuationLine(b"")


def test_idle_done_pipelined_with_the_command() -> None:
    framer = make()
    framer.feed(b"a1 IDLE\r\nDONE\r\na2 NOOP\r\n")
    assert framer.next_event() == CommandFrame(b"a1 IDLE")
    framer.expect_line()
    assert framer.next_event() == ContinuationLine(b"DONE")
    assert framer.next_event() == CommandFrame(b"a2 NOOP")


def test_continuation_line_looking_like_a_literal_is_just_a_line() -> None:
    framer = make()
    framer.expect_line()
    framer.feed(b"abc {5}\r\na2 NOOP\r\n")
    assert framer.next_event() == ContinuationLine(b"abc {5}")
    assert framer.next_event() == CommandFrame(b"a2 NOOP")


def test_too_long_continuation_line() -> None:
    framer = make(line=10)
    framer.feed(b"a1 IDLE\r\n")
    assert framer.next_event() == CommandFrame(b"a1 IDLE")
    framer.expect_line()
    framer.feed(b"x" * 50 + b" {5+}\r\na2 NOOP\r\n")
    # No literal is looked for in a continuation line: the next line is a command.
    assert drain(framer) == [LineTooLong("a1"), CommandFrame(b"a2 NOOP")]


def test_expect_line_in_the_middle_of_a_command_is_a_bug() -> None:
    framer = make()
    framer.feed(b"a1 LOGIN {3+}\r\nab")
    assert framer.next_event() == LiteralAnnounced("a1", 3, synchronizing=False)
    assert isinstance(framer.next_event(), NeedMore)
    with pytest.raises(RuntimeError):
        framer.expect_line()


# -- STARTTLS ----------------------------------------------------------------------------------


def test_starttls_injection_is_discarded_by_reset() -> None:
    # CVE-2011-0411 class: what was pipelined after STARTTLS, in the clear, is dropped.
    framer = make()
    framer.feed(b"a1 STARTTLS\r\na2 LOGIN victim secret\r\n")
    assert framer.next_event() == CommandFrame(b"a1 STARTTLS")
    framer.reset()
    assert isinstance(framer.next_event(), NeedMore)
    assert framer.buffered_bytes == 0
    framer.feed(b"a3 CAPABILITY\r\n")
    assert framer.next_event() == CommandFrame(b"a3 CAPABILITY")


def test_tag_is_tracked() -> None:
    framer = make()
    framer.feed(b"x.1 APPEND INBOX {2+}\r\n")
    assert framer.next_event() == LiteralAnnounced("x.1", 2, synchronizing=False)
    assert framer.tag == "x.1"

"""Random and mutated client input through framer and parser: nothing but ParseError ever
comes out, nothing takes long, and the framer never holds more than its limits allow."""

from __future__ import annotations

import contextlib
import datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymta.imap.command import Command
from pymta.imap.framer import (
    CommandFrame,
    Framer,
    LineTooLong,
    LiteralAnnounced,
    LiteralTooLarge,
    NeedMore,
)
from pymta.imap.parser import ParseError, parse_command

LINE, LITERAL, COMMAND = 512, 2048, 4096
FUZZ = settings(
    max_examples=400,
    deadline=datetime.timedelta(seconds=1),
    suppress_health_check=[HealthCheck.too_slow],
)

# Valid commands as a client sends them, literals included: the seeds of the mutations.
CORPUS = [
    b"a1 CAPABILITY\r\n",
    b"a2 LOGIN {4}\r\nfred {6+}\r\nsecret\r\n",
    b"a3 AUTHENTICATE PLAIN AGZyZWQAcGFzcw==\r\n",
    b"a4 ENABLE QRESYNC UTF8=ACCEPT\r\n",
    b"a5 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211 (1,3 41,43)))\r\n",
    b'a6 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("INBOX" "Entw&APw-rfe*") '
    b"RETURN (CHILDREN STATUS (MESSAGES UNSEEN))\r\n",
    b'a7 STATUS "Sent" (MESSAGES UIDNEXT HIGHESTMODSEQ)\r\n',
    b'a8 APPEND Drafts (\\Draft) "05-Jan-2024 09:08:07 -0130" {5+}\r\nhello'
    b" UTF8 (~{3}\r\na\x00b)\r\n",
    b"a9 UID FETCH 1:* (FLAGS BODY.PEEK[1.2.HEADER.FIELDS (From To)]<0.100> "
    b"BINARY.SIZE[1] MODSEQ) (CHANGEDSINCE 12345 VANISHED)\r\n",
    b"b1 FETCH 2:4 FULL\r\n",
    b"b2 UID STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen $Junk)\r\n",
    b"b3 SEARCH RETURN (MIN COUNT SAVE) CHARSET UTF-8 OR FROM {4}\r\nfred "
    b'(NOT SEEN 1:5) SINCE 1-Feb-1994 HEADER X-Spam "yes" YOUNGER 60\r\n',
    b"b4 UID MOVE 1:3 Trash\r\n",
    b'b5 ID ("name" "mutt" "version" NIL)\r\n',
    b'b6 SETQUOTA "" (STORAGE 512)\r\n',
    b"b7 CREATE Archive (USE (\\Archive))\r\n",
    b"b8 IDLE\r\n",
]


def run(stream: bytes, chunks: list[int], accept: list[bool], utf8: bool) -> list[Command]:
    """Framer and parser over `stream`, fed in the given chunk sizes; each synchronizing
    literal accepted or refused as `accept` says. Only ParseError may come out of parsing."""
    framer = Framer(LINE, LITERAL, COMMAND)
    commands: list[Command] = []
    decisions = iter(accept)
    position = 0
    sizes = iter(chunks)
    while position < len(stream):
        size = next(sizes, 64)
        framer.feed(stream[position : position + size])
        position += size
        while True:
            event = framer.next_event()
            if isinstance(event, NeedMore):
                break
            if isinstance(event, LiteralAnnounced):
                assert event.size <= LITERAL
                if event.synchronizing:
                    if next(decisions, True):
                        framer.accept_literal()
                    else:
                        framer.reject_literal()
            elif isinstance(event, CommandFrame):
                assert len(event.data) <= COMMAND
                try:
                    commands.append(parse_command(event.data, utf8_names=utf8))
                except ParseError as error:
                    assert error.tag is None or " " not in error.tag
            else:
                assert isinstance(event, LineTooLong | LiteralTooLarge)
        # What the framer holds is bounded by its limits plus what was just fed.
        assert framer.buffered_bytes <= COMMAND + LINE + size
    return commands


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(b"".join(draw(st.lists(st.sampled_from(CORPUS), min_size=1, max_size=3))))
    for _ in range(draw(st.integers(0, 6))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["replace", "insert", "delete", "repeat"]))
        if kind == "replace" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif kind == "insert":
            special = st.sampled_from([b"(", b")", b"{", b"}", b"\r\n", b" ", b'"', b"\\", b"~{"])
            data[where:where] = draw(special | st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 8))]
        else:
            data[where:where] = data[where : where + draw(st.integers(1, 16))] * draw(
                st.integers(1, 40)
            )
    return bytes(data)


@FUZZ
@given(
    mutated(),
    st.lists(st.integers(1, 300), max_size=50),
    st.lists(st.booleans(), max_size=10),
    st.booleans(),
)
def test_mutated_commands_only_ever_raise_parse_error(
    stream: bytes, chunks: list[int], accept: list[bool], utf8: bool
) -> None:
    run(stream, chunks, accept, utf8)


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(1, 300), max_size=20), st.booleans())
def test_random_bytes_only_ever_raise_parse_error(
    stream: bytes, chunks: list[int], utf8: bool
) -> None:
    run(stream, chunks, [], utf8)


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_random_frames_only_ever_raise_parse_error(frame: bytes, utf8: bool) -> None:
    with contextlib.suppress(ParseError):
        parse_command(b"t " + frame, utf8_names=utf8)


def test_the_corpus_itself_parses() -> None:
    commands = run(b"".join(CORPUS), [], [], utf8=False)
    assert len(commands) == len(CORPUS)

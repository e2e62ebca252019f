"""The SMTP front end's pure parts: reply codes, the enhanced-code mapping, the Received
header, line endings, the BDAT grammar and chunk buffer, the transaction log line."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosmtpd.smtp
import pytest

from pymta.delivery.verdicts import Refusal, SessionInfo
from pymta.smtp import codes
from pymta.smtp.chunking import BdatCommand, ChunkBuffer, bdat_command
from pymta.smtp.message import (
    address_literal,
    fold,
    message_id,
    normalize_line_endings,
    path_is_closed,
    received_header,
    with_protocol,
)
from pymta.smtp.txlog import Transaction

ENHANCED_REPLY = re.compile(r"^([245])[0-9]{2}[ -]([245])\.[0-9]{1,3}\.[0-9]{1,3} \S")

# -- codes --------------------------------------------------------------------------------


def test_a_reply_prints_as_it_goes_on_the_wire() -> None:
    assert str(codes.UNKNOWN_USER) == "550 5.1.1 Recipient address rejected: user unknown"
    assert str(codes.START_DATA) == "354 End data with <CR><LF>.<CR><LF>"
    assert str(codes.INTERNAL_ERROR.format(ref="AB12")) == "451 4.3.0 Internal error (AB12)"


def test_every_named_reply_has_an_enhanced_code_of_its_class() -> None:
    exempt = {codes.START_DATA, codes.HELO_SYNTAX, codes.EHLO_SYNTAX}  # RFC 2034 §3, §4
    for name, value in vars(codes).items():
        if isinstance(value, codes.Reply) and value not in exempt:
            assert value.enhanced[:1] == str(value.code)[0], name
            assert ENHANCED_REPLY.match(str(value)), name


@pytest.mark.parametrize(
    ("refusal", "expected"),
    [
        (Refusal.UNKNOWN_USER, "550 5.1.1"),
        (Refusal.RELAY_DENIED, "554 5.7.1"),
        (Refusal.INTERNAL_ONLY, "550 5.7.1"),
        (Refusal.MAILBOX_DISABLED, "550 5.2.1"),
        (Refusal.OVER_QUOTA, "452 4.2.2"),
        (Refusal.TEMPORARY, "451 4.3.0"),
    ],
)
def test_each_refusal_has_its_reply(refusal: Refusal, expected: str) -> None:
    assert str(codes.refusal_reply(refusal)).startswith(expected + " ")


@pytest.mark.parametrize(
    ("aiosmtpd_says", "we_say"),
    [
        ("250 OK", "250 2.0.0 Ok"),
        ("221 Bye", "221 2.0.0 Bye"),
        ("220 Ready to start TLS", "220 2.0.0 Ready to start TLS"),
        ("503 Error: need MAIL command", "503 5.5.1 Need MAIL command"),
        ("503 Error: need RCPT command", "503 5.5.1 Need RCPT command"),
        ("503 Error: nested MAIL command", "503 5.5.1 Nested MAIL command"),
        ("503 Error: send HELO first", "503 5.5.1 Send EHLO or HELO first"),
        ("500 Error: bad syntax", "500 5.5.2 Syntax error"),
        ('500 Error: command "FOO" not recognized', "500 5.5.1 Command not recognized"),
        ("500 Command line too long", "500 5.5.6 Line too long"),
        ("500 Line too long (see RFC5321 4.5.3.1.6)", "500 5.5.6 Line too long"),
        ("552 Error: Too much mail data", str(codes.MESSAGE_TOO_BIG)),
        ("501 Syntax: MAIL FROM: <address>", str(codes.PARAMETER_SYNTAX)),
        ("555 MAIL FROM parameters not recognized or not implemented", "555 5.5.4 "),
        ("599 Something new", "599 5.0.0 Something new"),
    ],
)
def test_aiosmtpd_replies_get_an_enhanced_code(aiosmtpd_says: str, we_say: str) -> None:
    assert codes.with_enhanced_code(aiosmtpd_says).startswith(we_say)


@pytest.mark.parametrize(
    "line",
    [
        "354 End data with <CR><LF>.<CR><LF>",  # 3xx: RFC 2034 §4
        "553 5.1.3 Error: malformed address",  # already has one
        "421 4.7.0 QUIT sent too many times",
        "not a reply",
    ],
)
def test_lines_that_need_no_enhanced_code_are_left_alone(line: str) -> None:
    assert codes.with_enhanced_code(line) == line


def test_every_literal_reply_in_aiosmtpd_maps_to_a_consistent_enhanced_code() -> None:
    """If aiosmtpd grows a new reply, it still leaves here with a code of its class."""
    source = Path(aiosmtpd.smtp.__file__).read_text()
    literals = re.findall(r"""push\(\s*f?['"]([245][0-9]{2} [^'"]*)['"]""", source)
    assert len(literals) > 20
    for literal in literals:
        mapped = codes.with_enhanced_code(literal)
        match = ENHANCED_REPLY.match(mapped)
        assert match and match.group(1) == match.group(2), (literal, mapped)


# -- line endings (SMTP smuggling) ------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a\r\nb\r\n", b"a\r\nb\r\n"),
        (b"a\nb\n", b"a\r\nb\r\n"),
        (b"a\rb\r", b"a\r\nb\r\n"),
        (b"a\n.\nb", b"a\r\n.\r\nb\r\n"),
        (b"a\r.\r\nb\r\n", b"a\r\n.\r\nb\r\n"),
        (b"a\r\r\nb", b"a\r\n\r\nb\r\n"),
        (b"a\n\rb", b"a\r\n\r\nb\r\n"),
        (b"", b""),
    ],
)
def test_every_bare_cr_and_lf_becomes_crlf(content: bytes, expected: bytes) -> None:
    assert normalize_line_endings(content) == expected


@pytest.mark.parametrize(
    ("arg", "closed"),
    [
        ("<alice@example.test>", True),
        ("<alice@example.test> SIZE=10", True),
        ("alice@example.test", True),  # no brackets: aiosmtpd's leniency, kept
        ("<>", True),
        ('<"a>b"@example.test>', True),
        ("<alice@example.test", False),
        ('<"a>b"@example.test', False),
        ('<"a\\">"@example.test', False),
    ],
)
def test_a_path_that_opens_must_close(arg: str, closed: bool) -> None:
    assert path_is_closed(arg) is closed


# -- Received (RFC 5321 §4.4) -------------------------------------------------------------

NOW = datetime(2024, 3, 5, 10, 0, 0, tzinfo=timezone(timedelta(hours=1)))


def received(**overrides: object) -> str:
    args: dict[str, object] = {
        "helo": "client.example",
        "peer_ip": "192.0.2.7",
        "hostname": "mx.example.test",
        "protocol": "ESMTPS",
        "tls": "TLSv1.3:TLS_AES_256_GCM_SHA384",
        "transaction_id": "4A2B9C",
        "recipients": ["alice@example.test"],
        "now": NOW,
    }
    args.update(overrides)
    return received_header(**args).decode()  # type: ignore[arg-type]


def test_received_header_names_helo_ip_host_protocol_tls_id_recipient_and_date() -> None:
    assert received() == (
        "Received: from client.example ([192.0.2.7]) by mx.example.test (pymta)\r\n"
        "\twith ESMTPS (TLSv1.3:TLS_AES_256_GCM_SHA384) id 4A2B9C\r\n"
        "\tfor <alice@example.test>; Tue, 05 Mar 2024 10:00:00 +0100\r\n"
    )


def test_received_header_lines_stay_within_78_columns() -> None:
    header = received(helo="a" * 40 + ".example", recipients=["b" * 40 + "@example.test"])
    assert all(len(line) <= 78 for line in header.split("\r\n"))
    assert header.endswith("\r\n") and "\r\n\r\n" not in header


def test_received_for_clause_only_with_exactly_one_recipient() -> None:
    assert " for " not in received(recipients=["a@example.test", "b@example.test"])
    assert "id 4A2B9C;" in received(recipients=["a@example.test", "b@example.test"])


def test_received_without_tls_has_no_tls_comment() -> None:
    assert "with ESMTP id 4A2B9C" in received(protocol="ESMTP", tls=None)


def test_received_puts_a_bad_helo_in_a_comment_and_cannot_be_broken_by_it() -> None:
    header = received(helo="evil)\nX-Injected: yes (")
    assert header.startswith("Received: from [192.0.2.7] ([192.0.2.7]) (helo=evil??X-Injected:")
    assert "\nX-Injected" not in header


def test_received_uses_the_ipv6_address_literal_form() -> None:
    assert address_literal("2001:db8::1") == "[IPv6:2001:db8::1]"
    assert "from [IPv6:2001:db8::1] ([IPv6:2001:db8::1])" in received(
        helo="[IPv6:2001:db8::1]", peer_ip="2001:db8::1"
    )


def test_received_date_is_rfc5322_with_numeric_offset() -> None:
    header = received(now=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert header.rstrip().endswith("; Tue, 02 Jan 2024 03:04:05 +0000")


@pytest.mark.parametrize(
    ("extended", "tls", "authenticated", "smtputf8", "expected"),
    [
        (False, False, False, False, "SMTP"),
        (True, False, False, False, "ESMTP"),
        (True, True, False, False, "ESMTPS"),
        (True, False, True, False, "ESMTPA"),
        (True, True, True, False, "ESMTPSA"),
        (True, True, False, True, "UTF8SMTPS"),
        (True, False, False, True, "UTF8SMTP"),
    ],
)
def test_with_protocol_types_of_rfc3848_and_rfc6531(
    extended: bool, tls: bool, authenticated: bool, smtputf8: bool, expected: str
) -> None:
    got = with_protocol(extended=extended, tls=tls, authenticated=authenticated, smtputf8=smtputf8)
    assert got == expected


def test_fold_breaks_between_words_only() -> None:
    folded = fold("X:", ["w" * 30, "v" * 30, "u" * 30])
    assert folded == "X: " + "w" * 30 + " " + "v" * 30 + "\r\n\t" + "u" * 30 + "\r\n"


def test_message_id_is_read_from_the_header_section_only() -> None:
    msg = b"Subject: x\r\nMessage-ID:\r\n <abc@example.test>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert message_id(msg) == "<abc@example.test>"
    assert message_id(b"Subject: x\r\n\r\nMessage-ID: <body@x>\r\n") is None


# -- BDAT grammar (RFC 3030 §2) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("100", BdatCommand(100, last=False)),
        ("0 LAST", BdatCommand(0, last=True)),
        ("42 last", BdatCommand(42, last=True)),
        ("7 FIRST", BdatCommand(7, last=False, malformed=True)),
        (None, None),
        ("", None),
        ("x", None),
        ("-1", None),
        ("1.5 LAST", None),
        ("\u0661\u0662", None),  # Arabic-Indic digits are not DIGIT
    ],
)
def test_bdat_argument(arg: str | None, expected: BdatCommand | None) -> None:
    assert bdat_command(arg) == expected


def test_chunk_buffer_keeps_chunks_up_to_the_limit() -> None:
    buffer = ChunkBuffer(limit=10)
    buffer.feed(b"hello")
    buffer.feed(b"world")
    assert not buffer.overflow and buffer.content() == b"helloworld"


def test_chunk_buffer_drops_everything_once_over_the_limit() -> None:
    buffer = ChunkBuffer(limit=10)
    buffer.feed(b"hello")
    buffer.feed(b"world!")
    buffer.feed(b"more")
    assert buffer.overflow and buffer.received == 15 and buffer.content() == b""


# -- the transaction log line -------------------------------------------------------------


def test_transaction_line_quotes_what_is_not_a_plain_token() -> None:
    session = SessionInfo(peer_ip="192.0.2.7", helo="evil host\nfake=1", listener="mx")
    line = Transaction(
        transaction_id="AB",
        session=session,
        sender="",
        recipients=("a@example.test", "b@example.test"),
        outcome="accepted",
        reply="250 2.0.0",
        size=10,
        routes=(("a@example.test", "local"),),
    ).line()
    assert line == (
        'smtp transaction id=AB client=192.0.2.7 helo="evil host\\nfake=1" from=<> '
        "rcpts=<a@example.test>,<b@example.test> size=10 msgid=- outcome=accepted "
        'reply="250 2.0.0" routes=a@example.test:local tls=- listener=mx'
    )
    assert "\n" not in line

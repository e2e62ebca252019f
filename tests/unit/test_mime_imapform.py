"""IMAP wire forms of ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2, §9)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pymta.mime.imapform import (
    body_wire,
    bodystructure_wire,
    envelope_wire,
    nstring_wire,
    string_wire,
)
from pymta.mime.summary import build_summary

# -- strings (RFC 9051 §4.3) ------------------------------------------------------------------


def test_plain_ascii_is_quoted() -> None:
    assert string_wire("hello world") == b'"hello world"'
    assert string_wire("") == b'""'


def test_quoted_specials_are_escaped() -> None:
    assert string_wire('say "hi" \\ bye') == b'"say \\"hi\\" \\\\ bye"'


@pytest.mark.parametrize("text", ["a\r\nb", "a\nb", "a\rb", "nul\x00", "caf\u00e9", "\u65e5\u672c"])
def test_cr_lf_nul_and_8bit_become_literals(text: str) -> None:
    data = text.encode("utf-8")
    assert string_wire(text) == b"{%d}\r\n" % len(data) + data


def test_nstring_nil_for_none_and_non_strings() -> None:
    assert nstring_wire(None) == b"NIL"
    assert nstring_wire(42) == b"NIL"
    assert nstring_wire("x") == b'"x"'


@given(st.text())
def test_every_string_round_trips(text: str) -> None:
    wire = string_wire(text)
    if wire.startswith(b"{"):
        head, _, data = wire.partition(b"\r\n")
        assert int(head[1:-1]) == len(data)
        assert data == text.encode("utf-8", "replace")
    else:
        inner = wire[1:-1]
        assert wire[:1] == wire[-1:] == b'"'
        unescaped = inner.replace(b'\\"', b'"').replace(b"\\\\", b"\\")
        assert unescaped.decode("ascii") == text
        assert b"\r" not in inner and b"\n" not in inner


# -- ENVELOPE ---------------------------------------------------------------------------------

RFC_MESSAGE = (
    b"Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
    b"From: Terry Gray <gray@cac.washington.edu>\r\n"
    b"Subject: IMAP4rev1 WG mtg summary and minutes\r\n"
    b"To: imap@cac.washington.edu\r\n"
    b"cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>\r\n"
    b"Message-Id: <B27397-0100000@cac.washington.edu>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: TEXT/PLAIN; CHARSET=US-ASCII\r\n"
    b"\r\n"
    b"Hello\r\n"
)


def test_envelope_like_the_rfc_example() -> None:
    # RFC 9051 §7.5.2 / RFC 3501 §7.4.2 example FETCH response, our upper-cased params aside.
    s = build_summary(RFC_MESSAGE)
    assert envelope_wire(s.envelope) == (
        b'("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)" "IMAP4rev1 WG mtg summary and minutes" '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'(("Terry Gray" NIL "gray" "cac.washington.edu")) '
        b'((NIL NIL "imap" "cac.washington.edu")) '
        b'((NIL NIL "minutes" "CNRI.Reston.VA.US")("John Klensin" NIL "KLENSIN" "MIT.EDU")) '
        b'NIL NIL "<B27397-0100000@cac.washington.edu>")'
    )


def test_envelope_group_syntax_and_8bit_subject() -> None:
    raw = b"Subject: caf\xc3\xa9\r\nTo: friends: a@b.c, d@e.f;\r\n\r\n"
    wire = envelope_wire(build_summary(raw).envelope)
    assert wire == (
        b"(NIL {5}\r\ncaf\xc3\xa9 NIL NIL NIL "
        b'((NIL NIL "friends" NIL)(NIL NIL "a" "b.c")(NIL NIL "d" "e.f")(NIL NIL NIL NIL)) '
        b"NIL NIL NIL NIL)"
    )


def test_envelope_of_garbage_is_all_nil() -> None:
    assert envelope_wire(None) == b"(" + b" ".join([b"NIL"] * 10) + b")"
    assert envelope_wire(["d", 7, "not a list", [["only name"]]]) == (
        b'("d" NIL NIL (("only name" NIL NIL NIL)) NIL NIL NIL NIL NIL NIL)'
    )


# -- BODYSTRUCTURE ----------------------------------------------------------------------------

NESTED = (
    b"From: a@b.c\r\n"
    b'Content-Type: multipart/mixed; boundary="XX"\r\n'
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Language: en, de\r\n"
    b"\r\n"
    b"hello\r\n"
    b"world\r\n"
    b"--XX\r\n"
    b"Content-Type: message/rfc822\r\n"
    b'Content-Disposition: attachment; filename="m.eml"\r\n'
    b"\r\n"
    b"Subject: inner\r\n"
    b"\r\n"
    b"body\r\n"
    b"--XX\r\n"
    b"Content-Type: image/png\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"Content-ID: <img1>\r\n"
    b"\r\n"
    b"iVBORw0KGgo=\r\n"
    b"--XX--\r\n"
)


def test_bodystructure_multipart_with_message_and_basic_parts() -> None:
    body = build_summary(NESTED).bodystructure
    assert bodystructure_wire(body) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1 NIL NIL ("en" "de") NIL)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 22 '
        b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 4 0 NIL NIL NIL NIL) 2 '
        b'NIL ("ATTACHMENT" ("FILENAME" "m.eml")) NIL NIL)'
        b'("IMAGE" "PNG" NIL "<img1>" NIL "BASE64" 12 NIL NIL NIL NIL) '
        b'"MIXED" ("BOUNDARY" "XX") NIL NIL NIL)'
    )


def test_body_has_no_extension_data() -> None:
    body = build_summary(NESTED).bodystructure
    assert body_wire(body) == (
        b'(("TEXT" "PLAIN" ("CHARSET" "utf-8") NIL NIL "7BIT" 12 1)'
        b'("MESSAGE" "RFC822" NIL NIL NIL "7BIT" 22 '
        b'(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) '
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 4 0) 2)'
        b'("IMAGE" "PNG" NIL "<img1>" NIL "BASE64" 12) "MIXED")'
    )


def test_single_part_text_like_the_rfc_example() -> None:
    body = build_summary(RFC_MESSAGE).bodystructure
    assert body_wire(body) == b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1)'
    assert bodystructure_wire(body) == (
        b'("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 7 1 NIL NIL NIL NIL)'
    )


def test_parameter_value_with_quote_and_8bit_filename() -> None:
    raw = (
        b'Content-Type: application/pdf; name="a \\"b\\".pdf"\r\n'
        b'Content-Disposition: attachment; filename="r\xc3\xa9sum\xc3\xa9.pdf"\r\n'
        b"\r\n"
        b"x"
    )
    wire = bodystructure_wire(build_summary(raw).bodystructure)
    assert wire == (
        b'("APPLICATION" "PDF" ("NAME" "a \\"b\\".pdf") NIL NIL "7BIT" 1 NIL '
        b'("ATTACHMENT" ("FILENAME" {12}\r\nr\xc3\xa9sum\xc3\xa9.pdf)) NIL NIL)'
    )


@pytest.mark.parametrize(
    "junk",
    [None, [], "text", [1, 2, 3], [["x"]], [[None], "MIXED", "bad"], ["TEXT"], [[[[[[]]]]]]],
)
def test_corrupt_structures_never_raise(junk: object) -> None:
    for render in (body_wire, bodystructure_wire):
        wire = render(junk)  # type: ignore[arg-type]
        assert wire.startswith(b"(") and wire.endswith(b")")
        assert wire.count(b"(") == wire.count(b")")

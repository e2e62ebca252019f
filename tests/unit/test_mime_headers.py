"""Header block scanning and MIME field parsing over raw bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pymta.mime.headers import (
    extended_to_utf8,
    header_end,
    merge_rfc2231,
    parse_content_type,
    parse_disposition,
    parse_encoding,
    parse_fields,
    parse_language,
)

WANTED = frozenset({b"subject", b"content-type", b"from"})


def end_of(raw: bytes) -> int:
    return header_end(raw, 0, len(raw))


def test_header_end_crlf_lf_and_mixed() -> None:
    assert end_of(b"A: 1\r\nB: 2\r\n\r\nbody") == len(b"A: 1\r\nB: 2\r\n\r\n")
    assert end_of(b"A: 1\nB: 2\n\nbody") == len(b"A: 1\nB: 2\n\n")
    assert end_of(b"A: 1\r\nB: 2\n\nbody") == len(b"A: 1\r\nB: 2\n\n")
    assert end_of(b"A: 1\nB: 2\r\n\r\nbody\n\n") == len(b"A: 1\nB: 2\r\n\r\n")


def test_header_end_empty_header_and_no_separator() -> None:
    assert end_of(b"\r\nbody") == 2
    assert end_of(b"\nbody") == 1
    assert end_of(b"A: 1\r\nno blank line") == len(b"A: 1\r\nno blank line")
    assert end_of(b"") == 0
    raw = b"xxxxA: 1\r\n\r\nbody"
    assert header_end(raw, 4, len(raw)) == len(b"xxxxA: 1\r\n\r\n")
    assert header_end(raw, 4, 8) == 8  # the blank line lies outside the range


def test_parse_fields_unfolds_and_keeps_first() -> None:
    raw = (
        b"From foo@bar Mon Jan  1 00:00:00 2024\r\n"  # mbox separator: not a field
        b"Subject: one\r\n"
        b"  two\r\n"
        b"\tthree \r\n"
        b"Subject: second subject\r\n"
        b"Content-Type : text/plain;\r\n"
        b" charset=utf-8\r\n"
        b"X-Other: ignored\r\n"
        b"\r\n"
        b"From: not a header, this is the body\r\n"
    )
    fields = parse_fields(raw, 0, header_end(raw, 0, len(raw)), WANTED)
    assert fields == {
        b"subject": b"one  two\tthree",
        b"content-type": b"text/plain; charset=utf-8",
    }


def test_parse_fields_bare_lf_and_continuation_before_any_field() -> None:
    raw = b" orphan continuation\nSUBJECT:x\n y\n"
    assert parse_fields(raw, 0, len(raw), WANTED) == {b"subject": b"x y"}


def test_content_type() -> None:
    assert parse_content_type("text/plain") == ("TEXT", "PLAIN", [])
    assert parse_content_type(' Text / HTML ; charset = "utf-8" (comment) ; x=y') == (
        "TEXT",
        "HTML",
        [("charset", "utf-8"), ("x", "y")],
    )
    assert parse_content_type("multipart/mixed; boundary=----=_Part_1_2.3") == (
        "MULTIPART",
        "MIXED",
        [("boundary", "----=_Part_1_2.3")],
    )
    assert parse_content_type('text/plain; name="a \\"b\\" c"; junk; ;x=1') == (
        "TEXT",
        "PLAIN",
        [("name", 'a "b" c'), ("x", "1")],
    )
    for invalid in ("", "text", "text/", "/plain", "(only a comment)", "tëxt/plain"):
        assert parse_content_type(invalid) is None, invalid


def test_content_type_unterminated_quote_and_comment() -> None:
    assert parse_content_type('text/plain; name="abc') == ("TEXT", "PLAIN", [("name", "abc")])
    assert parse_content_type("text/plain (unterminated") == ("TEXT", "PLAIN", [])


def test_disposition_language_encoding() -> None:
    assert parse_disposition('attachment; filename="a.pdf"; size=12') == (
        "ATTACHMENT",
        [("filename", "a.pdf"), ("size", "12")],
    )
    assert parse_disposition("  ;filename=x") is None
    assert parse_language("en-US, de (German),fr") == ["en-US", "de", "fr"]
    assert parse_language(" , ") is None
    assert parse_encoding(" base64 (comment)") == "BASE64"
    assert parse_encoding("") == "7BIT"
    assert parse_encoding('"8bit"') == "7BIT"


def test_rfc2231_continuations_are_joined() -> None:
    assert merge_rfc2231(
        [("charset", "us-ascii"), ("name*1", "b.txt"), ("name*0", "a "), ("x", "1")]
    ) == [("CHARSET", "us-ascii"), ("NAME", "a b.txt"), ("X", "1")]


def test_rfc2231_extended_sections_are_joined_and_converted_to_utf8() -> None:
    # RFC 2231 §4.1 example, then a Latin-1 value converted to UTF-8 (RFC 9051 §7.5.2).
    assert merge_rfc2231(
        [
            ("title*0*", "us-ascii'en'This%20is%20even%20more%20"),
            ("title*1*", "%2A%2A%2Afun%2A%2A%2A%20"),
            ("title*2", "isn't it!"),
        ]
    ) == [("TITLE*", "us-ascii'en'This%20is%20even%20more%20%2A%2A%2Afun%2A%2A%2A%20isn%27t%20it!")]
    assert merge_rfc2231([("filename*", "iso-8859-1''M%FCller.txt")]) == [
        ("FILENAME*", "UTF-8''M%C3%BCller.txt")
    ]


def test_rfc2231_unknown_or_broken_charset_is_kept() -> None:
    assert extended_to_utf8("x-unknown''%FF") == "x-unknown''%FF"
    assert extended_to_utf8("zlib''abc") == "zlib''abc"  # a codec, but not a text encoding
    assert extended_to_utf8("utf-8''%FF") == "utf-8''%FF"
    assert extended_to_utf8("no quotes") == "no quotes"
    assert extended_to_utf8("us-ascii''%FF") == "us-ascii''%FF"


def test_rfc2231_later_extended_section_without_charset() -> None:
    assert merge_rfc2231([("name*0", "plain part "), ("name*1*", "%E2%82%AC")]) == [
        ("NAME*", "''plain%20part%20%E2%82%AC")
    ]


def naive_header_end(raw: bytes, start: int, end: int) -> int:
    """Reference: the first line (up to LF) that is empty or a lone CR ends the header."""
    i = start
    while i < end:
        newline = raw.find(b"\n", i, end)
        if newline < 0:
            return end
        if raw[i:newline] in (b"", b"\r"):
            return newline + 1
        i = newline + 1
    return end


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"\r\n", b"\n", b"\r", b"A: x", b" y", b"\r\n\r\n"]), max_size=12))
def test_header_end_matches_a_line_by_line_reading(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    for start in range(0, min(len(raw), 4) + 1):
        assert header_end(raw, start, len(raw)) == naive_header_end(raw, start, len(raw))


def test_header_end_long_headers_around_the_search_window() -> None:
    for length in range(16370, 16400):
        for blank in (b"\r\n\r\n", b"\n\n", b"\r\n\n"):
            raw = b"X: " + b"x" * length + blank + b"body\n\nmore\r\n\r\n"
            assert header_end(raw, 0, len(raw)) == naive_header_end(raw, 0, len(raw)), length

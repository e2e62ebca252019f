"""BODYSTRUCTURE / BODY of hand-written messages, compared with the exact structures.

Each structure is written as the IMAP text would read it (RFC 9051 §7.5.2), as nested
lists with None for NIL.
"""

from __future__ import annotations

import json

import pytest

from pymta.mime.bodystructure import (
    MimeLimits,
    PartSpan,
    body_without_extensions,
    find_body,
    find_part,
    iter_sections,
    split_multipart,
)
from pymta.mime.summary import MessageSummary, build_summary


def crlf(text: str) -> bytes:
    """A message written with \\n in the test, stored with CRLF as SMTP delivers it."""
    return text.replace("\n", "\r\n").encode("utf-8")


def text_body(octets: int, lines: int, *, fill: str = "x") -> bytes:
    """CRLF text of exactly `octets` octets in `lines` lines (each ending in CRLF)."""
    content = octets - 2 * lines
    assert content >= 0
    width, extra = divmod(content, lines)
    rows = [fill * (width + (1 if k < extra else 0)) for k in range(lines)]
    return "".join(row + "\r\n" for row in rows).encode()


def base64_body(octets: int, lines: int) -> bytes:
    return text_body(octets, lines, fill="Q")


def bodystructure(raw: bytes) -> list[object]:
    return build_summary(raw).bodystructure


# --- RFC 9051 §7.5.2 and §8 examples ---------------------------------------------------------


def test_rfc9051_simple_text_message() -> None:
    # RFC 9051 §7.5.2: ("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 2279 48)
    raw = b"Subject: x\r\n\r\n" + text_body(2279, 48)
    assert bodystructure(raw) == [
        "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 2279, 48,
        None, None, None, None,
    ]  # fmt: skip


def test_rfc9051_two_part_message_with_base64_attachment() -> None:
    # RFC 9051 §7.5.2:
    # (("TEXT" "PLAIN" ("CHARSET" "US-ASCII") NIL NIL "7BIT" 1152 23)
    #  ("TEXT" "PLAIN" ("CHARSET" "US-ASCII" "NAME" "cc.diff")
    #  "<960723163407.20117h@cac.washington.edu>" "Compiler diff" "BASE64" 4554 73) "MIXED")
    # The CRLF before each delimiter belongs to the delimiter (RFC 2046 §5.1.1), so each
    # body's last line break is written twice here: one ends the part's last line.
    raw = (
        crlf(
            "From: Terry Gray <gray@cac.washington.edu>\n"
            "MIME-Version: 1.0\n"
            'Content-Type: MULTIPART/MIXED; BOUNDARY="-=-=-"\n'
            "\n"
            "preamble\n"
            "---=-=-\n"
            "\n"
        )
        + text_body(1152, 23)
        + crlf(
            "\n---=-=-\n"
            'Content-Type: TEXT/PLAIN; CHARSET=US-ASCII; NAME="cc.diff"\n'
            "Content-ID: <960723163407.20117h@cac.washington.edu>\n"
            "Content-Description: Compiler diff\n"
            "Content-Transfer-Encoding: BASE64\n"
            "\n"
        )
        + base64_body(4554, 73)
        + crlf("\n---=-=---\n")
    )
    body = bodystructure(raw)
    assert body_without_extensions(body) == [
        ["TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 1152, 23],
        [
            "TEXT", "PLAIN", ["CHARSET", "US-ASCII", "NAME", "cc.diff"],
            "<960723163407.20117h@cac.washington.edu>", "Compiler diff", "BASE64", 4554, 73,
        ],
        "MIXED",
    ]  # fmt: skip
    assert body[2:] == ["MIXED", ["BOUNDARY", "-=-=-"], None, None, None]


# --- common clients ----------------------------------------------------------------------------

THUNDERBIRD = """\
Message-ID: <0f2a6c1e-1d2b-4c7e-9a0b-3f1d2e4c5b6a@example.org>
Date: Tue, 14 May 2024 10:21:33 +0200
MIME-Version: 1.0
User-Agent: Mozilla Thunderbird
Content-Language: en-US
To: Bob <bob@example.net>
From: Alice <alice@example.org>
Subject: Quarterly report
Content-Type: multipart/mixed;
 boundary="------------mixed0123456789"

This is a multi-part message in MIME format.
--------------mixed0123456789
Content-Type: multipart/alternative;
 boundary="------------alt0123456789"

--------------alt0123456789
Content-Type: text/plain; charset=UTF-8; format=flowed
Content-Transfer-Encoding: 7bit

Hi Bob,

the report is attached.

--------------alt0123456789
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: 7bit

<html><body><p>Hi Bob,</p><p>the report is attached.</p></body></html>

--------------alt0123456789--
--------------mixed0123456789
Content-Type: application/pdf; name="report Q1.pdf"
Content-Disposition: attachment; filename="report Q1.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k
ZT4+CnN0cmVhbQp4nCvkMlAwUDAzNVUwNrNQKErlCtfiAgBMmQXxCmVuZHN0cmVhbQplbmRvYmoK

--------------mixed0123456789--
"""


def test_thunderbird_alternative_with_attachment() -> None:
    raw = crlf(THUNDERBIRD)
    assert bodystructure(raw) == [
        [
            [
                "TEXT", "PLAIN", ["CHARSET", "UTF-8", "FORMAT", "flowed"], None, None, "7BIT",
                len("Hi Bob,\r\n\r\nthe report is attached.\r\n"), 3, None, None, None, None,
            ],
            [
                "TEXT", "HTML", ["CHARSET", "UTF-8"], None, None, "7BIT",
                len("<html><body><p>Hi Bob,</p><p>the report is attached.</p></body></html>\r\n"),
                1, None, None, None, None,
            ],
            "ALTERNATIVE", ["BOUNDARY", "------------alt0123456789"], None, None, None,
        ],
        [
            "APPLICATION", "PDF", ["NAME", "report Q1.pdf"], None, None, "BASE64", 156,
            None, ["ATTACHMENT", ["FILENAME", "report Q1.pdf"]], None, None,
        ],
        "MIXED", ["BOUNDARY", "------------mixed0123456789"], None, ["en-US"], None,
    ]  # fmt: skip


def test_thunderbird_sections_and_offsets() -> None:
    raw = crlf(THUNDERBIRD)
    summary = build_summary(raw)
    sections = [p.section for p in summary.parts]
    assert sections == ["", "1", "1.1", "1.2", "2"]
    assert [number for number, _ in iter_sections(summary.bodystructure)] == sections[1:]
    spans = {p.section: p for p in summary.parts}
    assert raw[spans["1.1"].body_offset : spans["1.1"].end_offset] == (
        b"Hi Bob,\r\n\r\nthe report is attached.\r\n"
    )
    assert raw[spans["1.1"].header_offset : spans["1.1"].body_offset] == (
        b"Content-Type: text/plain; charset=UTF-8; format=flowed\r\n"
        b"Content-Transfer-Encoding: 7bit\r\n\r\n"
    )
    attachment = raw[spans["2"].body_offset : spans["2"].end_offset]
    assert attachment == (
        b"JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFIvRmlsdGVyIC9GbGF0ZURlY29k\r\n"
        b"ZT4+CnN0cmVhbQp4nCvkMlAwUDAzNVUwNrNQKErlCtfiAgBMmQXxCmVuZHN0cmVhbQplbmRvYmoK\r\n"
    )
    # BODY[1] of the multipart/alternative part: its body, boundaries included.
    alternative = raw[spans["1"].body_offset : spans["1"].end_offset]
    assert alternative.startswith(b"--------------alt0123456789\r\n")
    assert alternative.endswith(b"--------------alt0123456789--")
    whole = spans[""]
    assert (whole.header_offset, whole.body_offset, whole.end_offset) == (0, 0, len(raw))
    assert whole.text_offset == summary.header_bytes
    assert raw[: summary.header_bytes].endswith(b' boundary="------------mixed0123456789"\r\n\r\n')


FORWARDED = """\
From: Carol <carol@example.com>
To: Dave <dave@example.com>
Subject: Fwd: Lunch
Date: Wed, 15 May 2024 09:00:00 +0000
Message-ID: <fwd-1@example.com>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: text/plain; charset=us-ascii

See below.

--outer
Content-Type: message/rfc822
Content-Disposition: inline

From: Erin <erin@example.com>
To: Carol <carol@example.com>
Cc: team:frank@example.com, grace@example.com;
Subject: Lunch
Date: Tue, 14 May 2024 12:00:00 +0000
Message-ID: <lunch-1@example.com>
In-Reply-To: <plan-0@example.com>

Noon at the usual place?
--outer--
"""


def test_forwarded_message_rfc822() -> None:
    raw = crlf(FORWARDED)
    inner_message = (
        "From: Erin <erin@example.com>\r\n"
        "To: Carol <carol@example.com>\r\n"
        "Cc: team:frank@example.com, grace@example.com;\r\n"
        "Subject: Lunch\r\n"
        "Date: Tue, 14 May 2024 12:00:00 +0000\r\n"
        "Message-ID: <lunch-1@example.com>\r\n"
        "In-Reply-To: <plan-0@example.com>\r\n"
        "\r\n"
        "Noon at the usual place?"
    )
    erin = [["Erin", None, "erin", "example.com"]]
    assert bodystructure(raw) == [
        [
            "TEXT", "PLAIN", ["CHARSET", "us-ascii"], None, None, "7BIT",
            len("See below.\r\n"), 1, None, None, None, None,
        ],
        [
            "MESSAGE", "RFC822", None, None, None, "7BIT", len(inner_message),
            [
                "Tue, 14 May 2024 12:00:00 +0000", "Lunch", erin, erin, erin,
                [["Carol", None, "carol", "example.com"]],
                [
                    [None, None, "team", None],
                    [None, None, "frank", "example.com"],
                    [None, None, "grace", "example.com"],
                    [None, None, None, None],
                ],
                None, "<plan-0@example.com>", "<lunch-1@example.com>",
            ],
            [
                "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT",
                len("Noon at the usual place?"), 0, None, None, None, None,
            ],
            8, None, ["INLINE", None], None, None,
        ],
        "MIXED", ["BOUNDARY", "outer"], None, None, None,
    ]  # fmt: skip


def test_forwarded_message_sections_header_and_text() -> None:
    raw = crlf(FORWARDED)
    summary = build_summary(raw)
    spans = {p.section: p for p in summary.parts}
    assert list(spans) == ["", "1", "2", "2.1"]
    message = spans["2"]
    assert message.text_offset is not None
    # BODY[2.HEADER] is the encapsulated header with its blank line; BODY[2.TEXT] its body.
    header = raw[message.body_offset : message.text_offset]
    assert header.startswith(b"From: Erin") and header.endswith(b"<plan-0@example.com>\r\n\r\n")
    assert raw[message.text_offset : message.end_offset] == b"Noon at the usual place?"
    # BODY[2.MIME] is the part's MIME header.
    assert raw[message.header_offset : message.body_offset] == (
        b"Content-Type: message/rfc822\r\nContent-Disposition: inline\r\n\r\n"
    )
    # 2.1 is the encapsulated (non-multipart) body; its "MIME header" is the message header.
    inner = spans["2.1"]
    assert (inner.header_offset, inner.body_offset, inner.end_offset) == (
        message.body_offset,
        message.text_offset,
        message.end_offset,
    )
    assert find_body(summary.bodystructure, "2.1") == summary.bodystructure[1][8]


def test_digest_parts_default_to_message_rfc822() -> None:
    # RFC 2046 §5.1.5: in multipart/digest a part without Content-Type is message/rfc822.
    raw = crlf(
        "Content-Type: multipart/digest; boundary=d\n"
        "\n"
        "--d\n"
        "\n"
        "Subject: one\n"
        "\n"
        "first\n"
        "--d\n"
        "Content-Type: text/plain\n"
        "\n"
        "plain\n"
        "--d--\n"
    )
    body = bodystructure(raw)
    first = body[0]
    assert isinstance(first, list)
    assert first == [
        "MESSAGE", "RFC822", None, None, None, "7BIT", len("Subject: one\r\n\r\nfirst"),
        [None, "one", None, None, None, None, None, None, None, None],
        [
            "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 5, 0,
            None, None, None, None,
        ],
        2, None, None, None, None,
    ]  # fmt: skip
    assert body[1] == [
        "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 5, 0, None, None, None, None,
    ]  # fmt: skip
    assert body[2] == "DIGEST"


def test_mime_part_fields_and_rfc2231_parameters() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n"
        "\n"
        "--b\n"
        "Content-Type: application/octet-stream;\n"
        " name*0*=iso-8859-1'de'Gr%FC;\n"
        ' name*1="sse.txt"\n'
        "Content-Disposition: attachment;\n"
        ' filename*0="very long ";\n'
        ' filename*1="name.txt"\n'
        "Content-ID: <part1@example.com>\n"
        "Content-Description: A file\n"
        "Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==\n"
        "Content-Language: de (German), en\n"
        "Content-Location: http://example.com/file.txt\n"
        "Content-Transfer-Encoding: Quoted-Printable\n"
        "\n"
        "data\n"
        "--b--\n"
    )
    assert bodystructure(raw)[0] == [
        "APPLICATION", "OCTET-STREAM", ["NAME*", "UTF-8'de'Gr%C3%BCsse.txt"],
        "<part1@example.com>", "A file", "QUOTED-PRINTABLE", 4,
        "Q2hlY2sgSW50ZWdyaXR5IQ==", ["ATTACHMENT", ["FILENAME", "very long name.txt"]],
        ["de", "en"], "http://example.com/file.txt",
    ]  # fmt: skip


def test_encoded_words_in_parameters_are_kept_raw() -> None:
    raw = crlf(
        'Content-Type: application/pdf; name="=?UTF-8?B?w6TDtsO8LnBkZg==?="\n'
        "Content-Transfer-Encoding: base64\n"
        "\n"
        "AAAA\n"
    )
    assert bodystructure(raw)[2] == ["NAME", "=?UTF-8?B?w6TDtsO8LnBkZg==?="]


# --- defaults and broken messages ----------------------------------------------------------------


def test_no_content_type_is_text_plain_us_ascii() -> None:
    raw = crlf("Subject: hi\n\nline one\nline two\n")
    assert bodystructure(raw) == [
        "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 20, 2,
        None, None, None, None,
    ]  # fmt: skip


def test_invalid_content_type_is_text_plain() -> None:
    # RFC 2045 §5.2: a syntactically invalid Content-Type is treated as text/plain.
    for value in ("text", "/plain", "garbage here", "", "té/xt"):
        raw = crlf(f"Content-Type: {value}\n\nbody\n")
        assert bodystructure(raw)[:3] == ["TEXT", "PLAIN", ["CHARSET", "US-ASCII"]], value


def test_text_plain_without_charset_gets_us_ascii_but_html_does_not() -> None:
    assert bodystructure(crlf("Content-Type: text/plain; format=flowed\n\nx\n"))[2] == [
        "CHARSET", "US-ASCII", "FORMAT", "flowed",
    ]  # fmt: skip
    assert bodystructure(crlf("Content-Type: text/html\n\nx\n"))[2] is None


def test_unknown_or_invalid_encoding() -> None:
    assert bodystructure(crlf("Content-Transfer-Encoding: x-uuencode\n\nx\n"))[5] == "X-UUENCODE"
    assert bodystructure(crlf("Content-Transfer-Encoding: ?bad\n\nx\n"))[5] == "7BIT"


def test_multipart_without_boundary_is_text_plain() -> None:
    raw = crlf("Content-Type: multipart/mixed\n\n--x\n\nhello\n--x--\n")
    body = bodystructure(raw)
    assert body[:2] == ["TEXT", "PLAIN"]
    assert body[6] == len(b"--x\r\n\r\nhello\r\n--x--\r\n")


def test_multipart_without_any_delimiter_is_text_plain() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=zzz\n\njust text\n")
    assert bodystructure(raw)[:2] == ["TEXT", "PLAIN"]


def test_unterminated_multipart_last_part_runs_to_the_end() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\n--b\n\ntwo\nthree\n")
    body = bodystructure(raw)
    assert body[0][6:8] == [3, 0]
    assert body[1][6:8] == [len("two\r\nthree\r\n"), 2]
    assert body[2] == "MIXED"


def test_bare_lf_message_sizes_count_crlf() -> None:
    # Stored with bare LF (e.g. a Maildir taken over from another server): sizes are those
    # of the message as IMAP sends it, with CRLF line ends (RFC 9051 §2.3.4).
    raw = b"Content-Type: multipart/mixed; boundary=b\n\n--b\n\none\ntwo\n--b--\n"
    summary = build_summary(raw)
    part = summary.bodystructure[0]
    assert part[6:8] == [len(b"one\r\ntwo"), 1]
    span = summary.parts[1]
    assert raw[span.body_offset : span.end_offset] == b"one\ntwo"


def test_no_header_body_separator() -> None:
    raw = b"Subject: only a header\r\nX-Other: y\r\n"
    summary = build_summary(raw)
    assert summary.header_bytes == len(raw)
    assert summary.bodystructure[6:8] == [0, 0]
    assert summary.subject == "only a header"


def test_empty_message() -> None:
    summary = build_summary(b"")
    assert summary.envelope == [None] * 10
    assert summary.bodystructure[6:8] == [0, 0]
    assert summary.header_bytes == 0


def test_transport_padding_after_delimiter_is_accepted() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b  \t\n\none\n--b--  \n")
    assert bodystructure(raw)[0][6] == 3


def test_longer_nested_boundary_is_not_the_outer_one() -> None:
    # RFC 2046 §5.1.1: a delimiter line holds only the boundary (and padding). "--b-inner"
    # must not split the outer multipart whose boundary is "b".
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=b\n"
        "\n"
        "--b\n"
        "Content-Type: multipart/alternative; boundary=b-inner\n"
        "\n"
        "--b-inner\n"
        "\n"
        "one\n"
        "--b-inner\n"
        "\n"
        "two\n"
        "--b-inner--\n"
        "--b--\n"
    )
    body = bodystructure(raw)
    inner = body[0]
    assert isinstance(inner, list) and inner[2] == "ALTERNATIVE"
    assert [p[6] for p in inner[:2]] == [3, 3]
    assert body[1] == "MIXED"


def test_outer_delimiter_ends_an_unterminated_inner_multipart() -> None:
    raw = crlf(
        "Content-Type: multipart/mixed; boundary=outer\n"
        "\n"
        "--outer\n"
        "Content-Type: multipart/alternative; boundary=inner\n"
        "\n"
        "--inner\n"
        "\n"
        "one\n"
        "--outer\n"
        "\n"
        "two\n"
        "--outer--\n"
    )
    summary = build_summary(raw)
    assert [p.section for p in summary.parts] == ["", "1", "1.1", "2"]
    assert summary.bodystructure[0][0][6] == 3
    assert summary.bodystructure[1][6] == 3


def test_empty_part_between_adjacent_delimiters() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n--b\n--b\n\nx\n--b--\n")
    summary = build_summary(raw)
    assert [b[6] for b in summary.bodystructure[:2]] == [0, 1]


def test_deep_nesting_is_capped_and_does_not_recurse_without_end() -> None:
    depth = 1000
    head = "".join(
        f"Content-Type: multipart/mixed; boundary=b{k}\n\n--b{k}\n" for k in range(depth)
    )
    raw = crlf(head + "\nleaf\n")
    summary = build_summary(raw)
    sections = [p.section for p in summary.parts]
    assert len(sections) == 101  # "" plus one numbered part per level up to the cap
    node = summary.bodystructure
    levels = 0
    while isinstance(node[0], list):
        node = node[0]
        levels += 1
    assert levels == 100
    assert node[:2] == ["APPLICATION", "OCTET-STREAM"]
    json.dumps(summary.bodystructure)


def test_message_rfc822_nesting_is_capped_too() -> None:
    raw = crlf("Content-Type: message/rfc822\n\n" * 300 + "Subject: bottom\n\nx\n")
    summary = build_summary(raw, MimeLimits(max_depth=10))
    node = summary.bodystructure
    levels = 0
    while node[0] == "MESSAGE":
        node = node[8]
        levels += 1
    assert levels == 10
    assert node[:2] == ["APPLICATION", "OCTET-STREAM"]


def test_part_count_is_capped() -> None:
    raw = crlf("Content-Type: multipart/mixed; boundary=b\n\n" + "--b\n\nx\n" * 50 + "--b--\n")
    summary = build_summary(raw, MimeLimits(max_parts=10))
    assert len(summary.parts) <= 11
    assert summary.bodystructure[-5] == "MIXED"


def test_8bit_headers_in_parts() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b'Content-Type: text/plain; name="Gr\xfc\xdfe.txt"\r\n'
        b"Content-Description: \xc3\xa9t\xc3\xa9\r\n\r\nx\r\n--b--\r\n"
    )
    part = bodystructure(raw)[0]
    # UTF-8 where it is valid UTF-8, Latin-1 otherwise.
    assert part[2] == ["CHARSET", "US-ASCII", "NAME", "Grüße.txt"]
    assert part[4] == "été"


def test_8bit_boundary_is_matched_in_its_own_bytes() -> None:
    raw = (
        b'Content-Type: multipart/mixed; boundary="\xe9t\xe9"\r\n\r\n'
        b"--\xe9t\xe9\r\n\r\nx\r\n--\xe9t\xe9--\r\n"
    )
    body = bodystructure(raw)
    assert body[1] == "MIXED" and body[0][6] == 1


# --- BODY (no extension data) ------------------------------------------------------------------


def test_body_without_extensions_keeps_only_basic_fields() -> None:
    raw = crlf(FORWARDED)
    body = body_without_extensions(bodystructure(raw))
    assert body[0] == [
        "TEXT", "PLAIN", ["CHARSET", "us-ascii"], None, None, "7BIT", 12, 1,
    ]  # fmt: skip
    message = body[1]
    assert isinstance(message, list) and len(message) == 10
    assert message[8] == [
        "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 24, 0,
    ]  # fmt: skip
    assert body[2:] == ["MIXED"]


def test_body_without_extensions_basic_part() -> None:
    body = bodystructure(crlf("Content-Type: image/png\nContent-Disposition: inline\n\nxx\n"))
    assert body == [
        "IMAGE", "PNG", None, None, None, "7BIT", 4, None, ["INLINE", None], None, None,
    ]  # fmt: skip
    assert body_without_extensions(body) == ["IMAGE", "PNG", None, None, None, "7BIT", 4]


# --- the multipart splitter on its own -----------------------------------------------------------


def test_split_multipart_preamble_epilogue_and_first_line_delimiter() -> None:
    raw = b"--b\r\n\r\nA\r\n--b\r\n\r\nB\r\n--b--\r\nepilogue"
    assert [raw[s:e] for s, e in split_multipart(raw, 0, len(raw), b"b", 100)] == [
        b"\r\nA",
        b"\r\nB",
    ]
    raw = b"preamble\r\n--b\r\nX: 1\r\n\r\nA\r\n--b--"
    assert [raw[s:e] for s, e in split_multipart(raw, 0, len(raw), b"b", 100)] == [b"X: 1\r\n\r\nA"]


def test_split_multipart_ignores_delimiter_not_at_line_start() -> None:
    raw = b"--b\r\n\r\nA --b\r\nB\r\n--b--"
    assert [raw[s:e] for s, e in split_multipart(raw, 0, len(raw), b"b", 100)] == [
        b"\r\nA --b\r\nB"
    ]


# --- the cached form ---------------------------------------------------------------------------


def test_summary_keeps_its_interface_and_round_trips_through_json() -> None:
    assert MessageSummary([], [], None, None, 0).parts == []
    summary = build_summary(crlf(FORWARDED))
    rows = json.loads(json.dumps(summary.parts))
    spans = [PartSpan.from_json(row) for row in rows]
    assert spans == summary.parts
    assert find_part(spans, "2") == summary.parts[2]
    assert find_part(spans, "9") is None
    assert json.loads(json.dumps(summary.bodystructure)) == summary.bodystructure


def test_part_span_from_json_rejects_other_rows() -> None:
    for row in ([], ["1", 0, 0, 0], ["1", "0", 0, 0, None], [1, 0, 0, 0, None], ["", 0, 0, 0, "x"]):
        with pytest.raises(ValueError):
            PartSpan.from_json(row)

"""ENVELOPE (RFC 9051 §7.5.2) of hand-written headers, compared with the exact structures."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pymta.mime.envelope import (
    _full_address_list,
    _simple_address_list,
    address_list,
    message_id_token,
)
from pymta.mime.summary import build_summary


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8")


def envelope(header: str) -> list[object]:
    return build_summary(crlf(header + "\nbody\n")).envelope


# RFC 9051 §8, "a003 fetch 12 full" and "a004 fetch 12 body[header]": the header is 342
# octets and the body 3028 octets in 92 lines.
RFC9051_HEADER = """\
Date: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)
From: Terry Gray <gray@cac.washington.edu>
Subject: IMAP4rev2 WG mtg summary and minutes
To: imap@cac.washington.edu
cc: minutes@CNRI.Reston.VA.US, John Klensin <KLENSIN@MIT.EDU>
Message-Id: <B27397-0100000@cac.washington.edu>
MIME-Version: 1.0
Content-Type: TEXT/PLAIN; CHARSET=US-ASCII

"""


def test_rfc9051_fetch_full_example() -> None:
    header = crlf(RFC9051_HEADER)
    assert len(header) == 342
    body = "".join(("y" * (31 if k < 84 else 30)) + "\r\n" for k in range(92)).encode()
    assert len(body) == 3028
    summary = build_summary(header + body)
    terry = [["Terry Gray", None, "gray", "cac.washington.edu"]]
    # The RFC's ENVELOPE shows the message-id ending in ".ed>", a typo for the header's
    # ".edu>"; IMAP returns the header value.
    assert summary.envelope == [
        "Wed, 17 Jul 1996 02:23:25 -0700 (PDT)",
        "IMAP4rev2 WG mtg summary and minutes",
        terry,
        terry,
        terry,
        [[None, None, "imap", "cac.washington.edu"]],
        [
            [None, None, "minutes", "CNRI.Reston.VA.US"],
            ["John Klensin", None, "KLENSIN", "MIT.EDU"],
        ],
        None,
        None,
        "<B27397-0100000@cac.washington.edu>",
    ]
    assert summary.bodystructure[:8] == [
        "TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT", 3028, 92,
    ]  # fmt: skip
    assert summary.header_bytes == 342
    assert summary.message_id == "<B27397-0100000@cac.washington.edu>"
    assert summary.subject == "IMAP4rev2 WG mtg summary and minutes"


def test_missing_headers_are_nil() -> None:
    assert envelope("X-Only: this\n") == [None] * 10


def test_sender_and_reply_to_default_to_from() -> None:
    env = envelope("From: Alice <alice@example.org>\nSender:\nSubject: s\n")
    alice = [["Alice", None, "alice", "example.org"]]
    assert env[2:5] == [alice, alice, alice]


def test_sender_and_reply_to_when_present() -> None:
    env = envelope(
        "From: Alice <alice@example.org>\n"
        "Sender: list-bounces@lists.example.org\n"
        "Reply-To: The List <list@lists.example.org>\n"
    )
    assert env[2:5] == [
        [["Alice", None, "alice", "example.org"]],
        [[None, None, "list-bounces", "lists.example.org"]],
        [["The List", None, "list", "lists.example.org"]],
    ]


def test_present_but_empty_fields() -> None:
    # RFC 9051 §7.5.2: empty Date/Subject/In-Reply-To/Message-ID are "", empty address
    # fields are NIL, and Sender/Reply-To then follow From (NIL too).
    env = envelope("Date:\nSubject:\nFrom:\nTo: \nIn-Reply-To:\nMessage-ID:\n")
    assert env == ["", "", None, None, None, None, None, None, "", ""]


def test_group_syntax_rfc5322_appendix_a13() -> None:
    env = envelope(
        "From: Pete <pete@silly.example>\n"
        "To: A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;\n"
        "Cc: Undisclosed recipients:;\n"
    )
    assert env[5] == [
        [None, None, "A Group", None],
        ["Ed Jones", None, "c", "a.test"],
        [None, None, "joe", "where.test"],
        ["John", None, "jdoe", "one.test"],
        [None, None, None, None],
    ]
    assert env[6] == [[None, None, "Undisclosed recipients", None], [None, None, None, None]]


def test_unclosed_group_is_closed() -> None:
    assert address_list(b"team: a@x.test, b@x.test") == [
        [None, None, "team", None],
        [None, None, "a", "x.test"],
        [None, None, "b", "x.test"],
        [None, None, None, None],
    ]


def test_encoded_words_are_kept_raw() -> None:
    env = envelope(
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus\n"
        " =?ISO-8859-1?Q?K=F6ln?=\n"
        "From: =?UTF-8?B?SsO2cmc=?= <joerg@example.de>\n"
    )
    assert env[1] == "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= aus =?ISO-8859-1?Q?K=F6ln?="
    assert env[2] == [["=?UTF-8?B?SsO2cmc=?=", None, "joerg", "example.de"]]


def test_folded_subject_is_unfolded_keeping_the_whitespace() -> None:
    assert envelope("Subject: a long\n\tsubject\n  line\n")[1] == "a long\tsubject  line"


def test_8bit_header_values() -> None:
    raw = b"Subject: Gr\xc3\xbc\xc3\x9fe\r\nFrom: J\xf6rg <j@example.de>\r\n\r\n"
    env = build_summary(raw).envelope
    assert env[1] == "Grüße"  # RFC 6532 UTF-8
    assert env[2] == [["Jörg", None, "j", "example.de"]]  # not UTF-8: read as Latin-1


def test_first_occurrence_wins_and_names_are_case_insensitive() -> None:
    env = envelope("SUBJECT: first\nsubject: second\nfRoM: a@x.test\n")
    assert env[1] == "first"
    assert env[2] == [[None, None, "a", "x.test"]]


def test_in_reply_to_and_message_id_are_raw_values() -> None:
    env = envelope("In-Reply-To: <a@x.test>\n <b@x.test>\nMessage-ID:  <m@x.test> (comment)\n")
    assert env[8] == "<a@x.test> <b@x.test>"
    assert env[9] == "<m@x.test> (comment)"


def test_summary_message_id_is_the_msg_id_token() -> None:
    summary = build_summary(crlf("Message-ID:  <m@x.test> (comment)\n\n"))
    assert summary.message_id == "<m@x.test>"
    assert message_id_token("no-brackets@x.test ") == "no-brackets@x.test"
    assert message_id_token("  ") is None
    assert message_id_token(None) is None


def test_address_forms() -> None:
    cases: list[tuple[bytes, list[list[str | None]] | None]] = [
        (b'"Joe Q. Public" <john.q.public@example.com>',
         [["Joe Q. Public", None, "john.q.public", "example.com"]]),
        (b"John Q. Public <john.q.public@example.com>",
         [["John Q. Public", None, "john.q.public", "example.com"]]),
        (b'"Giant; \\"Big\\" Box" <sysservices@example.net>',
         [['Giant; "Big" Box', None, "sysservices", "example.net"]]),
        (b"jd@example.com (John Doe)", [["John Doe", None, "jd", "example.com"]]),
        (b"<@a.test,@b.test:joe@c.test>", [[None, "@a.test,@b.test", "joe", "c.test"]]),
        (b"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
         [["Pete", None, "pete", "silly.test"]]),
        (b'"john doe"@example.com', [[None, None, "john doe", "example.com"]]),
        (b"john . doe @ example . com", [[None, None, "john.doe", "example.com"]]),
        (b"Mary <mary@[192.0.2.1]>", [["Mary", None, "mary", "[192.0.2.1]"]]),
        (b"", None),
        (b" , ,", None),
    ]  # fmt: skip
    for value, expected in cases:
        assert address_list(value) == expected, value


def test_unparseable_addresses_do_not_fail() -> None:
    assert address_list(b"foo") == [[None, None, "foo", "MISSING_DOMAIN"]]
    assert address_list(b"<>") == [[None, None, "MISSING_MAILBOX", "MISSING_DOMAIN"]]
    assert address_list(b"Doe, John <j@x.test>") == [
        [None, None, "Doe", "MISSING_DOMAIN"],
        ["John", None, "j", "x.test"],
    ]
    for junk in (
        b"@@@<<<>>>:::;;;",
        b'"unterminated',
        b"(unterminated",
        b"a: b: c@d;",
        b"\x00\xff",
    ):
        result = address_list(junk)
        assert result is None or all(len(a) == 4 for a in result), junk


def test_message_without_blank_line_still_has_an_envelope() -> None:
    summary = build_summary(b"Subject: hi\r\nFrom: a@x.test")
    assert summary.envelope[1] == "hi"
    assert summary.envelope[2] == [[None, None, "a", "x.test"]]


ADDRESS_PIECES = [
    "a", "b.c", "x@y.test", "Jo", " ", "  ", "\t", ".", ",", ";", ":", "<", ">", "@", '"',
    '"Q R"', "(c)", "\\", "[1.2.3.4]", "\u00e9", "\u00a0", "=?utf-8?q?x?=", "<x@y.test>",
    "Jo <x@y.test>", ", ",
]  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(ADDRESS_PIECES), max_size=12))
def test_fast_path_agrees_with_the_full_parser(pieces: list[str]) -> None:
    text = "".join(pieces)
    simple = _simple_address_list(text)
    if simple is not None:
        assert simple == _full_address_list(text), text

"""FETCH response data (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY; RFC 7162 MODSEQ)."""

from __future__ import annotations

import base64
import datetime
from pathlib import Path

import pytest

from pymta.imap.command import FetchAttr, FetchItem, Section, SectionText
from pymta.imap.errors import Code, Refused
from pymta.imap.fetch import (
    META_COLUMNS,
    FetchRenderer,
    UnknownCte,
    WireForms,
    format_date_time,
)
from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire
from pymta.mime.summary import build_summary
from pymta.store.model import CachedSummary, MessageMeta

UTC = datetime.UTC

PLAIN = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: Lunch\r\n"
    b"  on Friday\r\n"
    b"Date: Mon, 1 Jan 2024 12:00:00 +0100\r\n"
    b"\r\n"
    b"Shall we?\r\n"
)

PAYLOAD = bytes(range(256))
B64 = base64.encodebytes(PAYLOAD)  # 76-column lines, LF ends

NESTED = (
    b"From: a@example.org\r\n"
    b"Subject: nested\r\n"
    b'Content-Type: multipart/mixed; boundary="outer"\r\n'
    b"\r\n"
    b"preamble\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b"caf=C3=A9 au l=\r\n"
    b"ait\r\n"
    b"--outer\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n" + B64.replace(b"\n", b"\r\n") + b"--outer\r\n"
    b"Content-Type: message/rfc822\r\n"
    b"\r\n"
    b"Subject: inner\r\n"
    b'Content-Type: multipart/alternative; boundary="inner"\r\n'
    b"\r\n"
    b"--inner\r\n"
    b"Content-Type: text/plain\r\n"
    b"\r\n"
    b"inner text\r\n"
    b"--inner\r\n"
    b"Content-Type: text/html\r\n"
    b"\r\n"
    b"<p>inner</p>\r\n"
    b"--inner--\r\n"
    b"--outer\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Transfer-Encoding: x-uuencode\r\n"
    b"\r\n"
    b"begin 644 x\r\n"
    b"--outer--\r\n"
)


def meta(
    raw: bytes = PLAIN,
    *,
    uid: int = 7,
    flags: str = "",
    keywords: tuple[str, ...] = (),
    modseq: int = 42,
    when: float = 1_700_000_000.0,
) -> MessageMeta:
    return MessageMeta(
        uid=uid,
        flags=flags,
        keywords=keywords,
        modseq=modseq,
        internal_date=when,
        size=len(raw),
        directory=Path("/nonexistent"),
        filename=f"cur/{uid}:2,{flags}",
    )


class Files:
    """A reader that serves fixed bytes and counts reads."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.reads = 0

    def __call__(self, m: MessageMeta) -> bytes:
        self.reads += 1
        return self.raw


def fetch(raw: bytes, *items: FetchItem, **kw: object) -> bytes:
    renderer = FetchRenderer(tz=UTC, reader=Files(raw))
    return renderer.render(renderer.plan(items), meta(raw, **kw))  # type: ignore[arg-type]


def body(
    *part: int,
    text: SectionText | None = None,
    fields: tuple[str, ...] = (),
    peek: bool = False,
    partial: tuple[int, int] | None = None,
) -> FetchItem:
    return FetchItem(FetchAttr.BODY_SECTION, Section(part, text, fields), peek, partial)


def binary(*part: int, partial: tuple[int, int] | None = None) -> FetchItem:
    return FetchItem(FetchAttr.BINARY, Section(part), False, partial)


def lit(data: bytes) -> bytes:
    return b"{%d}\r\n%s" % (len(data), data)


# -- meta items -------------------------------------------------------------------------------


def test_flags_uid_modseq_size() -> None:
    out = fetch(
        PLAIN,
        FetchItem(FetchAttr.FLAGS),
        FetchItem(FetchAttr.UID),
        FetchItem(FetchAttr.MODSEQ),
        FetchItem(FetchAttr.RFC822_SIZE),
        flags="FS",
        keywords=("$Junk",),
    )
    assert out == b"FLAGS (\\Flagged \\Seen $Junk) UID 7 MODSEQ (42) RFC822.SIZE %d" % len(PLAIN)


def test_no_flags_is_an_empty_list() -> None:
    assert fetch(PLAIN, FetchItem(FetchAttr.FLAGS)) == b"FLAGS ()"


def test_internaldate_in_the_server_timezone() -> None:
    # RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz"
    assert format_date_time(1_700_000_000, UTC) == b'"14-Nov-2023 22:13:20 +0000"'
    tz = datetime.timezone(datetime.timedelta(hours=-7, minutes=-30))
    assert format_date_time(1_700_000_000, tz) == b'"14-Nov-2023 14:43:20 -0730"'
    assert fetch(PLAIN, FetchItem(FetchAttr.INTERNALDATE), when=0.0) == (
        b'INTERNALDATE "01-Jan-1970 00:00:00 +0000"'
    )


def test_uid_fetch_adds_uid_first() -> None:
    renderer = FetchRenderer(tz=UTC)
    plan = renderer.plan([FetchItem(FetchAttr.FLAGS)], uid=True)
    assert [i.attr for i in plan.items] == [FetchAttr.UID, FetchAttr.FLAGS]
    assert renderer.render(plan, meta(flags="S")) == b"UID 7 FLAGS (\\Seen)"
    # Asked for explicitly: kept where the client put it, not repeated.
    plan = renderer.plan([FetchItem(FetchAttr.FLAGS), FetchItem(FetchAttr.UID)], uid=True)
    assert renderer.render(plan, meta()) == b"FLAGS () UID 7"


def test_responses_builds_whole_lines_without_reading_files() -> None:
    reader = Files(PLAIN)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    plan = renderer.plan([FetchItem(FetchAttr.FLAGS)], uid=True)
    metas = [meta(uid=10, flags="S"), meta(uid=11), meta(uid=12, keywords=("Work",))]
    assert renderer.responses(plan, [1, 2, 3], metas) == (
        b"* 1 FETCH (UID 10 FLAGS (\\Seen))\r\n"
        b"* 2 FETCH (UID 11 FLAGS ())\r\n"
        b"* 3 FETCH (UID 12 FLAGS (Work))\r\n"
    )
    assert reader.reads == 0


def test_render_many_matches_render() -> None:
    renderer = FetchRenderer(tz=UTC, reader=Files(NESTED))
    items = [
        FetchItem(FetchAttr.UID),
        FetchItem(FetchAttr.FLAGS),
        FetchItem(FetchAttr.INTERNALDATE),
        FetchItem(FetchAttr.ENVELOPE),
        body(2, text=SectionText.MIME, peek=True),
    ]
    plan = renderer.plan(items)
    metas = [meta(NESTED, uid=u) for u in (1, 2, 3)]
    assert renderer.render_many(plan, metas) == [renderer.render(plan, m) for m in metas]


# -- rows of the index ------------------------------------------------------------------------


def test_plan_names_the_columns_its_rows_need() -> None:
    renderer = FetchRenderer(tz=UTC)
    assert renderer.plan([FetchItem(FetchAttr.FLAGS)], uid=True).columns == (
        "uid",
        "flags",
        "keywords",
    )
    plan = renderer.plan([FetchItem(FetchAttr.BODYSTRUCTURE), FetchItem(FetchAttr.MODSEQ)])
    assert plan.columns == ("uid", "bodystructure", "modseq")
    assert not plan.full and plan.needs_summary
    # An item that reads the message: the rows carry what its MessageMeta is made of.
    plan = renderer.plan([body(peek=True), FetchItem(FetchAttr.ENVELOPE)])
    assert plan.columns == (*META_COLUMNS, "envelope")
    assert plan.full


def test_rows_responses_render_index_rows_like_metas() -> None:
    reader = Files(PLAIN)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    items = [
        FetchItem(FetchAttr.FLAGS),
        FetchItem(FetchAttr.INTERNALDATE),
        FetchItem(FetchAttr.RFC822_SIZE),
        FetchItem(FetchAttr.MODSEQ),
    ]
    plan = renderer.plan(items, uid=True)
    metas = [meta(uid=10, flags="S"), meta(uid=11, flags="FS", keywords=("$Work", "x"))]
    stored = {"uid": 0, "flags": 1, "keywords": 2, "modseq": 3, "internal_date": 4, "size": 5}
    index_rows = [
        (m.uid, m.flags, " ".join(m.keywords), m.modseq, m.internal_date, m.size) for m in metas
    ]
    rows = [tuple(r[stored[c]] for c in plan.columns) for r in index_rows]
    out = renderer.rows_responses(plan, [4, 9], rows, Path("/nonexistent"))
    assert out == renderer.responses(plan, [4, 9], metas)
    assert out.startswith(
        b'* 4 FETCH (UID 10 FLAGS (\\Seen) INTERNALDATE "14-Nov-2023 22:13:20 +0000" '
    )
    assert b"* 9 FETCH (UID 11 FLAGS (\\Flagged \\Seen $Work x) " in out
    assert reader.reads == 0


def test_cached_forms_are_concatenated_and_a_missing_one_needs_the_file_columns() -> None:
    reader = Files(NESTED)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    plan = renderer.plan([FetchItem(FetchAttr.BODYSTRUCTURE)], uid=True)
    rows = [(1, b"(BS1)"), (2, b"(BS2)")]
    assert not plan.missing_summaries(rows)
    assert renderer.rows_responses(plan, [1, 2], rows, Path("/x")) == (
        b"* 1 FETCH (UID 1 BODYSTRUCTURE (BS1))\r\n* 2 FETCH (UID 2 BODYSTRUCTURE (BS2))\r\n"
    )
    # A message whose form the index lacks is parsed from its file: that takes the plan
    # over rows with the file columns.
    assert plan.missing_summaries([(1, b"(BS1)"), (2, None)])
    with pytest.raises(LookupError):
        renderer.rows_responses(plan, [1, 2], [(1, b"(BS1)"), (2, None)], Path("/x"))
    full = plan.with_files()
    assert full.columns == (*META_COLUMNS, "bodystructure")
    m = meta(NESTED, uid=2)
    rows = [(1, "", "", 1, 0.0, 9, "cur/1", b"(BS1)"), (2, "", "", 1, 0.0, 9, "cur/2", None)]
    out = renderer.rows_responses(full, [1, 2], rows, Path("/x"))
    expected = bodystructure_wire(build_summary(NESTED).bodystructure)
    assert out.endswith(b"* 2 FETCH (UID 2 BODYSTRUCTURE %s)\r\n" % expected)
    assert reader.reads == 1
    assert renderer.render(plan, m) == b"UID 2 BODYSTRUCTURE " + expected


# -- ENVELOPE / BODY / BODYSTRUCTURE ----------------------------------------------------------


def test_summary_items_from_wire_forms_do_not_read_the_file() -> None:
    reader = Files(PLAIN)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    plan = renderer.plan(
        [
            FetchItem(FetchAttr.ENVELOPE),
            FetchItem(FetchAttr.BODY),
            FetchItem(FetchAttr.BODYSTRUCTURE),
        ]
    )
    forms = WireForms(b"(ENV)", b"(BODY)", b"(BS)")
    assert renderer.render(plan, meta(), forms) == b"ENVELOPE (ENV) BODY (BODY) BODYSTRUCTURE (BS)"
    assert reader.reads == 0


def test_summary_items_from_cached_json_and_from_the_file_agree() -> None:
    s = build_summary(NESTED)
    cached = CachedSummary(7, s.envelope, s.bodystructure, s.message_id, s.subject, 0)
    reader = Files(NESTED)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    plan = renderer.plan(
        [
            FetchItem(FetchAttr.ENVELOPE),
            FetchItem(FetchAttr.BODY),
            FetchItem(FetchAttr.BODYSTRUCTURE),
        ]
    )
    expected = b"ENVELOPE %s BODY %s BODYSTRUCTURE %s" % (
        envelope_wire(s.envelope),
        body_wire(s.bodystructure),
        bodystructure_wire(s.bodystructure),
    )
    assert renderer.render(plan, meta(NESTED), cached) == expected
    assert reader.reads == 0
    # No summary at all (index lost it): parsed from the file.
    assert renderer.render(plan, meta(NESTED), None) == expected
    assert reader.reads == 1


# -- BODY[section] ----------------------------------------------------------------------------


def test_whole_message_and_rfc822_forms() -> None:
    header, _, text = PLAIN.partition(b"\r\n\r\n")
    header += b"\r\n\r\n"
    assert fetch(PLAIN, body()) == b"BODY[] " + lit(PLAIN)
    assert fetch(PLAIN, body(peek=True)) == b"BODY[] " + lit(PLAIN)
    assert fetch(PLAIN, FetchItem(FetchAttr.RFC822)) == b"RFC822 " + lit(PLAIN)
    assert fetch(PLAIN, FetchItem(FetchAttr.RFC822_HEADER)) == b"RFC822.HEADER " + lit(header)
    assert fetch(PLAIN, FetchItem(FetchAttr.RFC822_TEXT)) == b"RFC822.TEXT " + lit(text)
    assert fetch(PLAIN, body(text=SectionText.HEADER)) == b"BODY[HEADER] " + lit(header)
    assert fetch(PLAIN, body(text=SectionText.TEXT)) == b"BODY[TEXT] " + lit(text)


def test_header_fields_keep_folding_order_and_blank_line() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS, fields=("SUBJECT", "FROM")))
    wanted = b"From: Alice <alice@example.org>\r\nSubject: Lunch\r\n  on Friday\r\n\r\n"
    assert out == b"BODY[HEADER.FIELDS (SUBJECT FROM)] " + lit(wanted)


def test_header_fields_not() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS_NOT, fields=("SUBJECT", "DATE")))
    wanted = b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\n\r\n"
    assert out == b"BODY[HEADER.FIELDS.NOT (SUBJECT DATE)] " + lit(wanted)


def test_header_fields_matching_nothing_is_the_blank_line() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS, fields=("X-NONE",)))
    assert out == b"BODY[HEADER.FIELDS (X-NONE)] " + lit(b"\r\n")


def test_header_of_a_message_without_body_has_no_blank_line() -> None:
    # RFC 9051 §6.4.5.1: "except in the case of a message that has no body and no blank line"
    raw = b"Subject: only\r\nFrom: x@y\r\n"
    assert fetch(raw, body(text=SectionText.HEADER)) == b"BODY[HEADER] " + lit(raw)
    out = fetch(raw, body(text=SectionText.HEADER_FIELDS, fields=("FROM",)))
    assert out == b"BODY[HEADER.FIELDS (FROM)] " + lit(b"From: x@y\r\n")
    assert fetch(raw, body(text=SectionText.TEXT)) == b'BODY[TEXT] ""'


def test_field_name_that_is_no_atom_is_quoted() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS, fields=("A]B",)))
    assert out.startswith(b'BODY[HEADER.FIELDS ("A]B")] ')


def test_parts_of_a_multipart() -> None:
    assert fetch(NESTED, body(1)) == b"BODY[1] " + lit(b"caf=C3=A9 au l=\r\nait")
    mime = (
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n"
        b"\r\n"
    )
    assert fetch(NESTED, body(1, text=SectionText.MIME)) == b"BODY[1.MIME] " + lit(mime)
    assert fetch(NESTED, body(2)) == b"BODY[2] " + lit(B64.replace(b"\n", b"\r\n")[:-2])


def test_nested_message_sections() -> None:
    inner_header = (
        b'Subject: inner\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
    )
    out = fetch(NESTED, body(3, text=SectionText.HEADER))
    assert out == b"BODY[3.HEADER] " + lit(inner_header)
    out = fetch(NESTED, body(3, text=SectionText.HEADER_FIELDS, fields=("SUBJECT",)))
    assert out == b"BODY[3.HEADER.FIELDS (SUBJECT)] " + lit(b"Subject: inner\r\n\r\n")
    assert fetch(NESTED, body(3, 1)) == b"BODY[3.1] " + lit(b"inner text")
    assert fetch(NESTED, body(3, 2)) == b"BODY[3.2] " + lit(b"<p>inner</p>")
    assert fetch(NESTED, body(3, 2, text=SectionText.MIME)) == b"BODY[3.2.MIME] " + lit(
        b"Content-Type: text/html\r\n\r\n"
    )
    whole_inner = fetch(NESTED, body(3))
    assert whole_inner.startswith(b"BODY[3] {") and b"Subject: inner" in whole_inner
    text = fetch(NESTED, body(3, text=SectionText.TEXT))
    assert text.startswith(b"BODY[3.TEXT] {") and text.endswith(b"--inner--")


def test_single_part_message_has_part_1() -> None:
    # RFC 9051 §6.4.5.1: a non-multipart message has only part 1, its body.
    assert fetch(PLAIN, body(1)) == b"BODY[1] " + lit(b"Shall we?\r\n")


def test_missing_part_and_header_of_a_non_message_part_are_nil() -> None:
    assert fetch(NESTED, body(9)) == b"BODY[9] NIL"
    assert fetch(NESTED, body(3, 9, 9)) == b"BODY[3.9.9] NIL"
    assert fetch(NESTED, body(1, text=SectionText.HEADER)) == b"BODY[1.HEADER] NIL"


# -- partials (RFC 9051 §6.4.5) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ((0, 4), b"BODY[]<0> {4}\r\nFrom"),
        ((6, 5), b"BODY[]<6> {5}\r\nAlice"),
        ((0, 100_000), b"BODY[]<0> " + lit(PLAIN)),  # truncated, still a partial
        ((len(PLAIN) - 2, 10), b"BODY[]<%d> {2}\r\n\r\n" % (len(PLAIN) - 2)),
        ((len(PLAIN), 10), b'BODY[]<%d> ""' % len(PLAIN)),  # at the end: empty
        ((len(PLAIN) + 50, 10), b'BODY[]<%d> ""' % (len(PLAIN) + 50)),  # beyond
    ],
)
def test_partial_of_the_whole_message(partial: tuple[int, int], expected: bytes) -> None:
    assert fetch(PLAIN, body(partial=partial)) == expected


def test_partial_of_header_fields_applies_after_subsetting() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS, fields=("SUBJECT",), partial=(9, 5)))
    assert out == b"BODY[HEADER.FIELDS (SUBJECT)]<9> {5}\r\nLunch"


# -- BINARY (RFC 3516) ------------------------------------------------------------------------


def test_binary_decodes_quoted_printable() -> None:
    decoded = "café au lait".encode()
    assert fetch(NESTED, binary(1)) == b"BINARY[1] " + lit(decoded)
    size = FetchItem(FetchAttr.BINARY_SIZE, Section((1,)))
    assert fetch(NESTED, size) == b"BINARY.SIZE[1] %d" % len(decoded)


def test_binary_decodes_base64_and_uses_literal8_for_nul() -> None:
    assert fetch(NESTED, binary(2)) == b"BINARY[2] ~{256}\r\n" + PAYLOAD
    size = FetchItem(FetchAttr.BINARY_SIZE, Section((2,)))
    assert fetch(NESTED, size) == b"BINARY.SIZE[2] 256"


def test_binary_partial_counts_decoded_octets() -> None:
    assert fetch(NESTED, binary(2, partial=(65, 3))) == b"BINARY[2]<65> {3}\r\nABC"
    assert fetch(NESTED, binary(1, partial=(300, 3))) == b'BINARY[1]<300> ""'


def test_binary_of_identity_encoded_and_missing_parts() -> None:
    assert fetch(NESTED, binary(3, 1)) == b"BINARY[3.1] " + lit(b"inner text")
    assert fetch(NESTED, binary(8)) == b"BINARY[8] NIL"
    size = FetchItem(FetchAttr.BINARY_SIZE, Section((8,)))
    assert fetch(NESTED, size) == b"BINARY.SIZE[8] 0"


def test_binary_of_unknown_encoding_refuses_with_unknown_cte() -> None:
    with pytest.raises(UnknownCte) as info:
        fetch(NESTED, binary(4))
    assert isinstance(info.value, Refused)
    assert info.value.code is Code.UNKNOWN_CTE
    with pytest.raises(UnknownCte):
        fetch(NESTED, FetchItem(FetchAttr.BINARY_SIZE, Section((4,))))


def test_binary_of_damaged_base64_still_decodes() -> None:
    raw = (
        b"Content-Type: application/octet-stream\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"\r\n"
        b"aGVs!bG8\r\n"
    )
    assert fetch(raw, binary(1)) == b"BINARY[1] " + lit(b"hello")


# -- bare LF files (a Maildir taken over) -----------------------------------------------------


def test_bare_lf_message_is_sent_with_crlf_consistently_with_its_sizes() -> None:
    lf = NESTED.replace(b"\r\n", b"\n")
    structure = build_summary(lf).bodystructure
    # The sizes cached at delivery count CRLF; the bytes sent must match them.
    assert build_summary(NESTED).bodystructure == structure
    assert fetch(lf, body()) == b"BODY[] " + lit(NESTED)
    assert fetch(lf, body(3, 2)) == b"BODY[3.2] " + lit(b"<p>inner</p>")
    assert fetch(lf, body(1, text=SectionText.MIME)) == fetch(
        NESTED, body(1, text=SectionText.MIME)
    )
    assert fetch(lf, body(partial=(0, 25))) == b"BODY[]<0> " + lit(NESTED[:25])
    assert fetch(lf, binary(2)) == fetch(NESTED, binary(2))


def test_mixed_line_ends_become_crlf() -> None:
    raw = b"Subject: x\r\n\r\none\ntwo\r\n"
    assert fetch(raw, body(text=SectionText.TEXT)) == b"BODY[TEXT] " + lit(b"one\r\ntwo\r\n")


def test_text_part_binary_gets_crlf_line_ends() -> None:
    # RFC 3516 §6: textual sections always go out with CRLF.
    encoded = base64.b64encode(b"line1\nline2\n")
    raw = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n" + encoded
    assert fetch(raw, binary(1)) == b"BINARY[1] " + lit(b"line1\r\nline2\r\n")


# -- \Seen (RFC 9051 §6.4.5) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "seen"),
    [
        (body(), True),
        (body(1, text=SectionText.MIME), True),
        (body(peek=True), False),
        (FetchItem(FetchAttr.RFC822), True),
        (FetchItem(FetchAttr.RFC822_TEXT), True),
        (FetchItem(FetchAttr.RFC822_HEADER), False),
        (FetchItem(FetchAttr.BINARY, Section((1,))), True),
        (FetchItem(FetchAttr.BINARY, Section((1,)), peek=True), False),
        (FetchItem(FetchAttr.BINARY_SIZE, Section((1,))), False),
        (FetchItem(FetchAttr.ENVELOPE), False),
        (FetchItem(FetchAttr.FLAGS), False),
    ],
)
def test_which_items_set_seen(item: FetchItem, seen: bool) -> None:
    assert FetchRenderer().plan([item]).sets_seen is seen


def test_with_flags_adds_flags_once() -> None:
    renderer = FetchRenderer(tz=UTC, reader=Files(PLAIN))
    plan = renderer.plan([body(text=SectionText.TEXT)])
    flagged = plan.with_flags()
    assert renderer.render(flagged, meta(flags="S")) == (
        b"BODY[TEXT] " + lit(b"Shall we?\r\n") + b" FLAGS (\\Seen)"
    )
    assert flagged.with_flags() is flagged


# -- reading ----------------------------------------------------------------------------------


def test_file_is_read_once_per_message_and_not_at_all_when_given() -> None:
    reader = Files(NESTED)
    renderer = FetchRenderer(tz=UTC, reader=reader)
    plan = renderer.plan([body(1), body(2), binary(2), FetchItem(FetchAttr.RFC822_SIZE)])
    renderer.render(plan, meta(NESTED))
    assert reader.reads == 1
    renderer.render(plan, meta(NESTED), raw=NESTED)
    assert reader.reads == 1
    renderer.render_many(plan, [meta(NESTED), meta(NESTED)])
    assert reader.reads == 3


def test_default_reader_reads_the_maildir_file(tmp_path: Path) -> None:
    (tmp_path / "cur").mkdir()
    (tmp_path / "cur" / "1:2,").write_bytes(PLAIN)
    m = MessageMeta(1, "", (), 1, 0.0, len(PLAIN), tmp_path, "cur/1:2,")
    renderer = FetchRenderer(tz=UTC)
    assert renderer.render(renderer.plan([body(peek=True)]), m) == b"BODY[] " + lit(PLAIN)


def test_percent_in_a_quoted_field_name_does_not_break_formatting() -> None:
    out = fetch(PLAIN, body(text=SectionText.HEADER_FIELDS, fields=("X%D",)))
    assert out == b'BODY[HEADER.FIELDS ("X%D")] ' + lit(b"\r\n")

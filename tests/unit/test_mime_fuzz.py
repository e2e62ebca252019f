"""Random and mutated messages: the summary never raises and its sizes add up."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pymta.mime.bodystructure import (
    MimeLimits,
    PartSpan,
    body_without_extensions,
    iter_sections,
)
from pymta.mime.summary import MessageSummary, build_summary, summarize

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def crlf_octets(data: bytes) -> int:
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def check_summary(raw: bytes, summary: MessageSummary) -> None:
    """The invariants the store and the IMAP server rely on."""
    # JSON-able, and valid Unicode throughout (SQLite and ensure_ascii=False both work).
    for value in (summary.envelope, summary.bodystructure, summary.parts):
        text = json.dumps(value, ensure_ascii=False)
        text.encode("utf-8")
    assert json.loads(json.dumps(summary.bodystructure)) == summary.bodystructure
    rows = json.loads(json.dumps(summary.parts))
    assert [PartSpan.from_json(row) for row in rows] == summary.parts

    envelope = summary.envelope
    assert len(envelope) == 10
    for k in (0, 1, 8, 9):
        assert envelope[k] is None or isinstance(envelope[k], str)
    for k in range(2, 8):
        addresses = envelope[k]
        assert addresses is None or (isinstance(addresses, list) and addresses)
        for address in addresses or []:
            assert isinstance(address, list) and len(address) == 4
            assert all(item is None or isinstance(item, str) for item in address)

    root = summary.parts[0]
    assert root == PartSpan("", 0, 0, len(raw), summary.header_bytes)
    assert 0 <= summary.header_bytes <= len(raw)

    sections = list(iter_sections(summary.bodystructure))
    assert [number for number, _ in sections] == [p.section for p in summary.parts[1:]]
    spans = {p.section: p for p in summary.parts}
    assert len(spans) == len(summary.parts)
    for (number, node), span in zip(sections, summary.parts[1:], strict=True):
        assert span.section == number
        assert 0 <= span.header_offset <= span.body_offset <= span.end_offset <= len(raw)
        body = raw[span.body_offset : span.end_offset]
        if isinstance(node[0], list):  # multipart: parts lie inside its body, in order
            position = span.body_offset
            for index in range(1, len(node)):
                child = spans.get(f"{number}.{index}")
                if child is None:
                    break
                assert position <= child.header_offset
                assert child.end_offset <= span.end_offset
                position = child.end_offset
            continue
        assert node[6] == crlf_octets(body), number
        if node[0] == "TEXT":
            assert node[7] == body.count(b"\n")
        if node[0] == "MESSAGE" and node[1] in ("RFC822", "GLOBAL"):
            assert node[9] == body.count(b"\n")
            assert span.text_offset is not None
            assert span.body_offset <= span.text_offset <= span.end_offset
        else:
            assert span.text_offset is None

    top = summary.bodystructure
    if not isinstance(top[0], list):
        one = spans["1"]
        assert (one.header_offset, one.body_offset, one.end_offset) == (
            0,
            summary.header_bytes,
            len(raw),
        )
    body_without_extensions(summary.bodystructure)


# --- generators ------------------------------------------------------------------------------

HEADER_NAMES = [
    "From", "To", "Cc", "Bcc", "Sender", "Reply-To", "Subject", "Date", "Message-ID",
    "In-Reply-To", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition",
    "Content-ID", "Content-Description", "Content-Language", "Content-Location", "Content-MD5",
]  # fmt: skip
VALUE_PIECES = [
    "a@b.test", "<x@y.test>", '"Q, R" <q@r.test>', "g: a@b, c@d;", ";", ":", ",", "(", ")",
    '"', "\\", "<", ">", "@", "=?utf-8?q?x?=", "text/plain", "multipart/mixed", "message/rfc822",
    "multipart/digest", "; boundary=b", '; boundary="b"', "; name*0*=utf-8''%E2", "; name*1=x",
    "; charset=us-ascii", "base64", "attachment", "en, de", " ", "\t", "\u00e9",
]  # fmt: skip


@st.composite
def header_value(draw: st.DrawFn) -> bytes:
    pieces = draw(st.lists(st.sampled_from(VALUE_PIECES), max_size=6))
    text = "".join(pieces).encode("utf-8")
    if draw(st.booleans()):
        text += draw(st.binary(max_size=8))
    return text


@st.composite
def entity(draw: st.DrawFn, depth: int = 0) -> bytes:
    """A MIME entity: maybe a multipart (recursively), a message/rfc822, or a leaf."""
    eol = draw(st.sampled_from([b"\r\n", b"\n"]))
    headers = [
        draw(st.sampled_from(HEADER_NAMES)).encode() + b": " + draw(header_value()) + eol
        for _ in range(draw(st.integers(0, 4)))
    ]
    kind = draw(st.sampled_from(["leaf", "multipart", "message"] if depth < 3 else ["leaf"]))
    if kind == "multipart":
        boundary = draw(st.sampled_from([b"b", b"b1", b"=_x", b"b b"]))
        headers.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"' + eol)
        body = draw(st.binary(max_size=10)) + eol
        for _ in range(draw(st.integers(0, 3))):
            body += b"--" + boundary + eol + draw(entity(depth + 1)) + eol
        if draw(st.booleans()):
            body += b"--" + boundary + b"--" + eol
    elif kind == "message":
        headers.append(b"Content-Type: message/rfc822" + eol)
        body = draw(entity(depth + 1))
    else:
        body = draw(st.binary(max_size=40))
    order = draw(st.permutations(headers))
    return b"".join(order) + eol + body


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(entity()))
    for _ in range(draw(st.integers(0, 4))):
        if not raw:
            break
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "truncate", "duplicate"]))
        if action == "insert":
            raw[at:at] = draw(st.sampled_from([b"\r\n", b"\n", b"--", b"--b", b"\r\n\r\n", b":"]))
        elif action == "delete":
            del raw[at : at + draw(st.integers(1, 8))]
        elif action == "truncate":
            del raw[at:]
        else:
            raw[at:at] = raw[max(0, at - 20) : at]
    return bytes(raw)


# --- properties ------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=3000))
def test_random_bytes(raw: bytes) -> None:
    check_summary(raw, build_summary(raw))


@FUZZ
@given(entity())
def test_generated_messages(raw: bytes) -> None:
    check_summary(raw, build_summary(raw))


@FUZZ
@given(mutated())
def test_mutated_messages(raw: bytes) -> None:
    check_summary(raw, build_summary(raw))


@settings(max_examples=100, deadline=None)
@given(mutated(), st.integers(1, 4), st.integers(1, 6))
def test_mutated_messages_under_tight_limits(raw: bytes, depth: int, parts: int) -> None:
    check_summary(raw, build_summary(raw, MimeLimits(max_depth=depth, max_parts=parts)))


def test_summarize_falls_back_instead_of_raising(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(raw: bytes, limits: MimeLimits) -> object:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("pymta.mime.summary.analyze", broken)
    raw = b"Subject: x\nplain\n\nline one\nline two\n"
    summary = summarize(raw)
    assert "mime_summary_failed" in caplog.text
    assert summary.envelope == [None] * 10
    check_summary(raw, summary)

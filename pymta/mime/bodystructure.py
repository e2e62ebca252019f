"""IMAP BODYSTRUCTURE (RFC 9051 §7.5.2, §9) and part positions, from raw message bytes.

A body structure is a JSON-able list in the order of the RFC 9051 §9 grammar, with None
for NIL:

    body-type-basic  [TYPE, SUBTYPE, params, id, description, encoding, octets,
                      md5, disposition, language, location]
    body-type-text   [TYPE, SUBTYPE, params, id, description, encoding, octets, lines,
                      md5, disposition, language, location]
    body-type-msg    [TYPE, SUBTYPE, params, id, description, encoding, octets,
                      envelope, body, lines, md5, disposition, language, location]
    body-type-mpart  [body, body, ..., SUBTYPE, params, disposition, language, location]

params is a flat list [NAME, value, NAME, value, ...] or None; disposition is
[TYPE, params] or None; language is a list of tags or None. TYPE, SUBTYPE, the encoding,
the disposition type and parameter names are upper-cased (as in the RFC 9051 examples);
parameter values are kept as written. What follows md5 (or params for a multipart) is
extension data, which `body_without_extensions` removes for FETCH BODY.

Sizes: octets and lines describe the body as IMAP sends it, i.e. with CRLF line ends
(RFC 5322 §2.1; RFC 9051 §2.3.4 "[RFC5322] size"). For CRLF mail that is the stored byte
count; for bare-LF mail each LF counts two octets, and the IMAP server must send such a
section with CRLF line ends so the literal matches. lines is the number of LF octets in
the body, excluding the line break that belongs to the next boundary (RFC 2046 §5.1.1), as
Dovecot and Cyrus count.

Part positions (`PartSpan`) are offsets into the stored bytes, one per IMAP section
(RFC 9051 §6.4.5.1), in pre-order: the message itself (section ""), then "1", "1.1", ...

Limits: nesting deeper than `MimeLimits.max_depth` or more than `max_parts` parts stops
the descent; a multipart or message/rfc822 entity met there is reported as an opaque
APPLICATION/OCTET-STREAM part covering its bytes. Never raises on any input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from pymta.mime.envelope import ENVELOPE_FIELDS, build_envelope
from pymta.mime.headers import (
    decode_text,
    decode_text_codec,
    header_end,
    merge_rfc2231,
    parse_content_type,
    parse_disposition,
    parse_encoding,
    parse_fields,
    parse_language,
)

Body = list[object]

MIME_FIELDS = frozenset(
    {
        b"content-type",
        b"content-transfer-encoding",
        b"content-id",
        b"content-description",
        b"content-md5",
        b"content-disposition",
        b"content-language",
        b"content-location",
    }
)
_MESSAGE_FIELDS = MIME_FIELDS | ENVELOPE_FIELDS


@dataclass(frozen=True)
class MimeLimits:
    """Caps on the structure one message may make us build."""

    # Nested multipart / message levels. Dovecot's default (mail_max_nested_mime_parts
    # after CVE-2020-12100) is 100; it also keeps recursion far from Python's limit.
    max_depth: int = 100
    # Body parts in one message. Dovecot's default total MIME part limit is 10000.
    max_parts: int = 10_000


DEFAULT_LIMITS = MimeLimits()


class PartSpan(NamedTuple):
    """Where one IMAP section lies in the stored message (byte offsets, end exclusive).

    - section: "" for the message itself, else the RFC 9051 §6.4.5.1 part number ("1.2").
    - [header_offset, body_offset): the part's MIME header with its blank line
      (BODY[n.MIME]); empty for the message itself.
    - [body_offset, end_offset): the part's body (BODY[n]); for section "" the whole
      message (BODY[]).
    - text_offset: only for the message itself and message/rfc822 (message/global) parts:
      where the encapsulated message's body starts, so [body_offset, text_offset) is
      BODY[n.HEADER] (BODY[HEADER]) and [text_offset, end_offset) is BODY[n.TEXT]. None
      for other parts.

    JSON turns a span into a list; `PartSpan.from_json` turns it back.
    """

    section: str
    header_offset: int
    body_offset: int
    end_offset: int
    text_offset: int | None = None

    @classmethod
    def from_json(cls, row: Sequence[object]) -> PartSpan:
        """Rebuild a span from its JSON list; ValueError if the row is not one."""
        if len(row) != 5:
            raise ValueError("part span: expected 5 fields")
        section, header_offset, body_offset, end_offset, text_offset = row
        if not (
            isinstance(section, str)
            and isinstance(header_offset, int)
            and isinstance(body_offset, int)
            and isinstance(end_offset, int)
            and (text_offset is None or isinstance(text_offset, int))
        ):
            raise ValueError("part span: bad field types")
        return cls(section, header_offset, body_offset, end_offset, text_offset)


class Analysis(NamedTuple):
    envelope: list[object]
    bodystructure: Body
    parts: list[PartSpan]
    header_bytes: int


def analyze(raw: bytes, limits: MimeLimits = DEFAULT_LIMITS) -> Analysis:
    """ENVELOPE, BODYSTRUCTURE and part positions of one stored message."""
    walk = _Walk(raw, limits)
    envelope, body, header_bytes = _message(walk, "", 0, 0, len(raw), 0)
    return Analysis(envelope, body, walk.spans, header_bytes)


def find_part(parts: Sequence[PartSpan], section: str) -> PartSpan | None:
    """The span of an RFC 9051 §6.4.5.1 part number ("" for the message), or None."""
    for span in parts:
        if span.section == section:
            return span
    return None


def iter_sections(body: Body, parent: str = "") -> Iterator[tuple[str, Body]]:
    """(part number, body structure) of every numbered part of a message's body, in the
    order of `analyze`'s spans (after section ""). RFC 9051 §6.4.5.1 numbering: the parts of
    a multipart body are parent.1, parent.2, ...; a body that is not multipart is parent.1."""
    if _is_multipart(body):
        for index, child in enumerate(_subparts(body), 1):
            yield from _numbered(child, _child(parent, index))
    else:
        yield from _numbered(body, _child(parent, 1))


def find_body(body: Body, section: str) -> Body | None:
    """The body structure of part `section` ("1.2"), e.g. for its encoding; None if absent."""
    for number, node in iter_sections(body):
        if number == section:
            return node
    return None


def _numbered(body: Body, number: str) -> Iterator[tuple[str, Body]]:
    yield number, body
    if _is_multipart(body):
        for index, child in enumerate(_subparts(body), 1):
            yield from _numbered(child, _child(number, index))
    elif _is_message(body):
        inner = body[8]
        if isinstance(inner, list):
            yield from iter_sections(inner, number)


def _is_multipart(body: Body) -> bool:
    return bool(body) and isinstance(body[0], list)


def _is_message(body: Body) -> bool:
    return len(body) >= 10 and body[0] == "MESSAGE" and body[1] in ("RFC822", "GLOBAL")


def _subparts(body: Body) -> list[Body]:
    parts: list[Body] = []
    for item in body:
        if not isinstance(item, list):
            break
        parts.append(item)
    return parts


def body_without_extensions(body: Body) -> Body:
    """The FETCH BODY form of a BODYSTRUCTURE: the same without extension data.

    RFC 9051 §7.5.2: "Extension data is never returned with the BODY fetch"; §9
    body-ext-1part / body-ext-mpart "MUST NOT be returned on non-extensible BODY fetch".
    """
    if _is_multipart(body):
        parts = _subparts(body)
        # The parts, then the subtype; body-ext-mpart follows it.
        return [*(body_without_extensions(p) for p in parts), *body[len(parts) : len(parts) + 1]]
    if body and body[0] == "TEXT":
        return body[:8]
    if _is_message(body):
        inner = body[8]
        stripped = body_without_extensions(inner) if isinstance(inner, list) else inner
        return [*body[:8], stripped, body[9]]
    return body[:7]


# --- the walk ------------------------------------------------------------------------------


class _ContentType(NamedTuple):
    type: str
    subtype: str
    params: tuple[tuple[str, str], ...]
    codec: str  # how the field was decoded, to turn the boundary back into bytes


# RFC 2045 §5.2: "Content-type: text/plain; charset=us-ascii" is the default.
_TEXT_PLAIN = _ContentType("TEXT", "PLAIN", (("CHARSET", "US-ASCII"),), "utf-8")
# RFC 2046 §5.1.5: in a multipart/digest the default is message/rfc822.
_MESSAGE_RFC822 = _ContentType("MESSAGE", "RFC822", (), "utf-8")


class _Walk:
    """State of one `analyze` call: the bytes, the limits and the spans found so far."""

    __slots__ = ("crlf_only", "limits", "raw", "spans")

    def __init__(self, raw: bytes, limits: MimeLimits) -> None:
        self.raw = raw
        self.limits = limits
        self.spans: list[PartSpan] = []
        # Mail received over SMTP has no bare LF; then octets are plain byte counts.
        self.crlf_only = raw.count(b"\n") == raw.count(b"\r\n")

    def octets(self, start: int, end: int) -> int:
        """Size of raw[start:end] with every bare LF sent as CRLF (RFC 9051 §7.5.2 body size)."""
        size = end - start
        if self.crlf_only or size <= 0:
            return max(size, 0)
        return size + self.raw.count(b"\n", start, end) - self.raw.count(b"\r\n", start, end)

    def lines(self, start: int, end: int) -> int:
        """RFC 9051 §9 body-fld-lines: LF octets in raw[start:end]."""
        return self.raw.count(b"\n", start, end)

    def at_limit(self, depth: int) -> bool:
        return depth >= self.limits.max_depth or len(self.spans) >= self.limits.max_parts


def _message(
    walk: _Walk, section: str, header_offset: int, start: int, end: int, depth: int
) -> tuple[list[object], Body, int]:
    """An RFC 5322 message in raw[start:end]: its envelope, its body structure, and where
    its body starts. Records the message's span (with text_offset) before its parts'."""
    text_offset = header_end(walk.raw, start, end)
    walk.spans.append(PartSpan(section, header_offset, start, end, text_offset))
    fields = parse_fields(walk.raw, start, text_offset, _MESSAGE_FIELDS)
    body = _entity(walk, None, section, start, text_offset, end, fields, depth, _TEXT_PLAIN)
    return build_envelope(fields), body, text_offset


def _entity(
    walk: _Walk,
    number: str | None,
    parent: str,
    header_offset: int,
    body_offset: int,
    end: int,
    fields: Mapping[bytes, bytes],
    depth: int,
    default: _ContentType,
) -> Body:
    """One MIME entity (RFC 2045 §2.4). `number` is its part number; None when it is the
    body of the message at section `parent`, which numbers it `parent.1` unless it is a
    multipart (RFC 9051 §6.4.5.1: a multipart body has no number of its own)."""
    ctype = _content_type(fields, default)
    if ctype.type == "MULTIPART":
        if walk.at_limit(depth):
            return _opaque(
                walk, number or _child(parent, 1), header_offset, body_offset, end, fields
            )
        boundary = _param(ctype.params, "BOUNDARY")
        ranges: list[tuple[int, int]] = []
        if boundary:
            room = max(1, walk.limits.max_parts - len(walk.spans))
            delimiter = boundary.encode(ctype.codec)
            ranges = split_multipart(walk.raw, body_offset, end, delimiter, room)
        if ranges:
            return _multipart(
                walk, number, parent, header_offset, body_offset, end, fields, depth, ctype, ranges
            )
        # RFC 2046 §5.1.1: a multipart needs a boundary and at least one body part. Without
        # them the Content-Type cannot be used, and RFC 2045 §5.2 says to fall back to
        # text/plain; the client then at least sees the text.
        ctype = _TEXT_PLAIN
    if number is None:
        number = _child(parent, 1)
    if ctype.type == "MESSAGE" and ctype.subtype in ("RFC822", "GLOBAL"):
        if walk.at_limit(depth):
            return _opaque(walk, number, header_offset, body_offset, end, fields)
        body = _basic_fields(walk, ctype, fields, body_offset, end)
        envelope, inner, _ = _message(walk, number, header_offset, body_offset, end, depth + 1)
        body += [envelope, inner, walk.lines(body_offset, end)]
        body += _extension_1part(fields)
        return body
    walk.spans.append(PartSpan(number, header_offset, body_offset, end))
    body = _basic_fields(walk, ctype, fields, body_offset, end)
    if ctype.type == "TEXT":
        body.append(walk.lines(body_offset, end))
    body += _extension_1part(fields)
    return body


def _multipart(
    walk: _Walk,
    number: str | None,
    parent: str,
    header_offset: int,
    body_offset: int,
    end: int,
    fields: Mapping[bytes, bytes],
    depth: int,
    ctype: _ContentType,
    ranges: list[tuple[int, int]],
) -> Body:
    """RFC 9051 §9 body-type-mpart: the parts, the subtype, then body-ext-mpart."""
    if number is not None:
        walk.spans.append(PartSpan(number, header_offset, body_offset, end))
        parent = number
    # RFC 2046 §5.1.5: in a digest, a part without Content-Type is message/rfc822.
    default = _MESSAGE_RFC822 if ctype.subtype == "DIGEST" else _TEXT_PLAIN
    body: Body = []
    for index, (start, stop) in enumerate(ranges, 1):
        if index > 1 and len(walk.spans) >= walk.limits.max_parts:
            break
        text_offset = header_end(walk.raw, start, stop)
        part_fields = parse_fields(walk.raw, start, text_offset, MIME_FIELDS)
        body.append(
            _entity(
                walk,
                _child(parent, index),
                parent,
                start,
                text_offset,
                stop,
                part_fields,
                depth + 1,
                default,
            )
        )
    body.append(ctype.subtype)
    body.append(_flat(ctype.params))
    body += _disposition_language_location(fields)
    return body


def _opaque(
    walk: _Walk,
    number: str,
    header_offset: int,
    body_offset: int,
    end: int,
    fields: Mapping[bytes, bytes],
) -> Body:
    """A multipart or message past the limits, reported as one opaque leaf."""
    walk.spans.append(PartSpan(number, header_offset, body_offset, end))
    ctype = _ContentType("APPLICATION", "OCTET-STREAM", (), "utf-8")
    return _basic_fields(walk, ctype, fields, body_offset, end) + _extension_1part(fields)


def split_multipart(
    raw: bytes, start: int, end: int, boundary: bytes, max_parts: int
) -> list[tuple[int, int]]:
    """Ranges of the body parts of the multipart body raw[start:end] (RFC 2046 §5.1.1).

        multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
                          body-part *encapsulation close-delimiter
                          transport-padding [CRLF epilogue]
        encapsulation := delimiter transport-padding CRLF body-part
        delimiter := CRLF dash-boundary
        close-delimiter := delimiter "--"

    The line break before a delimiter belongs to the delimiter, not to the part. A line
    that continues past the boundary with anything but transport padding (LWSP) is body
    text, e.g. a nested part's longer boundary. Bare LF line ends are accepted. Without a
    close delimiter the last part runs to `end`. At most `max_parts` ranges are returned.
    """
    dash = b"--" + boundary
    needle = b"\n" + dash
    ranges: list[tuple[int, int]] = []
    part_start = -1
    search_from = start
    at = start if raw.startswith(dash, start, end) else -1
    while True:
        if at < 0:
            hit = raw.find(needle, search_from, end)
            if hit < 0:
                break
            at = hit + 1
        after = at + len(dash)
        closing = raw.startswith(b"--", after, end)
        if not closing:
            pad = after
            while pad < end and raw[pad] in (0x20, 0x09):
                pad += 1
            if pad < end and raw[pad] not in (0x0D, 0x0A):
                search_from, at = at, -1
                continue
        if part_start >= 0:
            stop = at - 1 if at > start else at
            if stop > part_start and raw[stop - 1] == 0x0D:
                stop -= 1
            ranges.append((part_start, max(stop, part_start)))
            if len(ranges) >= max_parts:
                return ranges
        if closing:
            return ranges
        newline = raw.find(b"\n", after, end)
        if newline < 0:
            part_start = end
            break
        part_start = newline + 1
        search_from, at = newline, -1
    if part_start >= 0:
        ranges.append((part_start, end))
    return ranges


# --- fields --------------------------------------------------------------------------------


def _content_type(fields: Mapping[bytes, bytes], default: _ContentType) -> _ContentType:
    value = fields.get(b"content-type")
    if value is None:
        return default
    text, codec = decode_text_codec(value)
    parsed = parse_content_type(text)
    if parsed is None:
        # RFC 2045 §5.2: a syntactically invalid Content-Type means text/plain us-ascii.
        return _TEXT_PLAIN
    mtype, subtype, params = parsed
    merged = merge_rfc2231(params)
    if mtype == "TEXT" and subtype == "PLAIN" and not any(n == "CHARSET" for n, _ in merged):
        # RFC 2046 §4.1.2: without a charset parameter, text/plain is US-ASCII.
        merged.insert(0, ("CHARSET", "US-ASCII"))
    return _ContentType(mtype, subtype, tuple(merged), codec)


def _basic_fields(
    walk: _Walk, ctype: _ContentType, fields: Mapping[bytes, bytes], start: int, end: int
) -> Body:
    """RFC 9051 §9: media type, subtype, then body-fields."""
    encoding = fields.get(b"content-transfer-encoding")
    return [
        ctype.type,
        ctype.subtype,
        _flat(ctype.params),
        _nstring(fields, b"content-id"),
        _nstring(fields, b"content-description"),
        "7BIT" if encoding is None else parse_encoding(decode_text(encoding)),
        walk.octets(start, end),
    ]


def _extension_1part(fields: Mapping[bytes, bytes]) -> Body:
    """RFC 9051 §9 body-ext-1part: md5, disposition, language, location."""
    return [_nstring(fields, b"content-md5"), *_disposition_language_location(fields)]


def _disposition_language_location(fields: Mapping[bytes, bytes]) -> Body:
    """RFC 9051 §9 body-fld-dsp, body-fld-lang, body-fld-loc."""
    disposition: list[object] | None = None
    value = fields.get(b"content-disposition")
    if value is not None:
        parsed = parse_disposition(decode_text(value))
        if parsed is not None:
            disposition = [parsed[0], _flat(merge_rfc2231(parsed[1]))]
    language: list[str] | None = None
    value = fields.get(b"content-language")
    if value is not None:
        language = parse_language(decode_text(value))
    return [disposition, language, _nstring(fields, b"content-location")]


def _nstring(fields: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = fields.get(name)
    return decode_text(value) if value else None


def _flat(params: Sequence[tuple[str, str]]) -> list[str] | None:
    """RFC 9051 §9 body-fld-param: ("NAME" "value" ...) or NIL when there are none."""
    return [item for pair in params for item in pair] or None


def _param(params: Sequence[tuple[str, str]], name: str) -> str | None:
    for key, value in params:
        if key == name:
            return value
    return None


def _child(parent: str, index: int) -> str:
    return f"{parent}.{index}" if parent else str(index)

"""Message text as IMAP SEARCH compares it (RFC 9051 §6.4.4): header fields unfolded and
RFC 2047-decoded, text parts with their transfer encoding and charset undone, all of it
case-folded (Unicode case folding: "SHOULD be case insensitive for characters within the
ASCII range"; folding the rest too is what users expect).

- `header_form`, `address_text`, `sent_day`: one header value as searched;
- `search_forms(envelope)`: those of an ENVELOPE's fields, which the store keeps in its
  index at delivery so a SUBJECT / FROM / TO / CC search reads one column;
- `MessageText(raw)`: one message's header fields, header blocks and text parts, for the
  keys that must read the file (HEADER of other fields, BODY, TEXT);
- `decode_words`: the RFC 2047 decoder.

Unlike the rest of `pymta.mime` (which keeps header text as written, as IMAP returns it),
everything here decodes: it produces text to compare, never text to send.
"""

from __future__ import annotations

import binascii
import datetime
import email.utils
import re
from dataclasses import dataclass

from .bodystructure import DEFAULT_LIMITS, split_multipart
from .headers import (
    decode_text,
    header_end,
    merge_rfc2231,
    parse_content_type,
    parse_encoding,
    parse_fields,
)

# Where the searchable text fields sit in an ENVELOPE (RFC 9051 §7.5.2; `mime.envelope`).
ENVELOPE_TEXT = {"date": 0, "subject": 1, "in-reply-to": 8, "message-id": 9}
ENVELOPE_ADDRESSES = {"from": 2, "to": 5, "cc": 6, "bcc": 7}

_WSP_RUN = re.compile(r"[ \t\r\n]+")


def header_form(text: str) -> str:
    """Header text as searched: RFC 2047-decoded, white space runs as one space (so a
    folded line matches as it reads), case-folded. Search strings get the same treatment."""
    text = decode_words(text)
    if "  " in text or "\t" in text or "\n" in text:
        text = _WSP_RUN.sub(" ", text)
    return text.casefold()


def address_text(addresses: object) -> str | None:
    """An ENVELOPE address list as searchable text: `name <mailbox@host>, ...`, names
    RFC 2047-decoded, case-folded; None when there is no address."""
    if not isinstance(addresses, list) or not addresses:
        return None
    out: list[str] = []
    for a in addresses:
        if not isinstance(a, list) or len(a) != 4:
            continue
        name, _adl, mailbox, host = a
        if mailbox is None:
            continue  # RFC 9051 §7.5.2: end of a group
        if host is None:
            out.append(f"{mailbox}:")  # start of a group: its name
            continue
        spec = f"{mailbox}@{host}"
        out.append(f"{name} <{spec}>" if isinstance(name, str) else spec)
    return header_form(", ".join(out))


def sent_day(value: str) -> int | None:
    """The day written in a Date: header, as a proleptic ordinal; its timezone ignored
    (RFC 9051 §6.4.4 SENTBEFORE: "disregarding time and timezone"). None if unreadable."""
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed is None:
        return None
    try:
        return datetime.date(parsed[0], parsed[1], parsed[2]).toordinal()
    except (TypeError, ValueError, OverflowError):
        return None


# -- the ENVELOPE fields, precomputed ----------------------------------------------------------


@dataclass(frozen=True)
class SearchForms:
    """The searchable forms of one message's ENVELOPE fields (`header_form`,
    `address_text`; None: the field is absent, or has no address) and its sent day."""

    date: str | None
    subject: str | None
    from_: str | None
    to: str | None
    cc: str | None
    bcc: str | None
    in_reply_to: str | None
    message_id: str | None
    sent: int | None  # `sent_day` of the Date: header


def search_forms(envelope: list[object]) -> SearchForms:
    """`SearchForms` of an ENVELOPE (`mime.envelope`, as nested lists); all None for
    anything that is not one."""
    if len(envelope) < 10:
        return SearchForms(None, None, None, None, None, None, None, None, None)

    def text(name: str) -> str | None:
        value = envelope[ENVELOPE_TEXT[name]]
        return header_form(value) if isinstance(value, str) else None

    def addresses(name: str) -> str | None:
        return address_text(envelope[ENVELOPE_ADDRESSES[name]])

    date = envelope[0]
    return SearchForms(
        date=text("date"),
        subject=text("subject"),
        from_=addresses("from"),
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        in_reply_to=text("in-reply-to"),
        message_id=text("message-id"),
        sent=sent_day(date) if isinstance(date, str) else None,
    )


# -- one message's text -----------------------------------------------------------------------


class MessageText:
    """One message's searchable text, each piece computed on first use."""

    __slots__ = ("_body", "_header_end", "_headers", "_raw")

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._header_end = header_end(raw, 0, len(raw))
        self._headers: str | None = None
        self._body: str | None = None

    def header_values(self, name: str) -> list[str]:
        """Every occurrence of a top-level header field, unfolded, decoded, case-folded."""
        return [
            header_form(decode_text(v))
            for v in header_values(self._raw, 0, self._header_end, name.encode("ascii", "replace"))
        ]

    def sent_day(self) -> int | None:
        values = header_values(self._raw, 0, self._header_end, b"date")
        return sent_day(decode_text(values[0])) if values else None

    def header_text(self) -> str:
        """Every header block (the message's, the parts' MIME headers, encapsulated
        messages'), decoded and case-folded: what TEXT searches besides the body."""
        if self._headers is None:
            self._walk()
        return self._headers or ""

    def body_text(self) -> str:
        """The decoded text of the TEXT parts (RFC 9051 §6.4.4 allows leaving out other
        terminal parts), case-folded: what BODY searches."""
        if self._body is None:
            self._walk()
        return self._body or ""

    def _walk(self) -> None:
        walk = _TextWalk(self._raw)
        walk.entity(0, len(self._raw), 0, ("TEXT", "PLAIN"))
        self._headers = "\n".join(walk.headers).casefold()
        self._body = "\n".join(walk.bodies).casefold()


_CONTENT_FIELDS = frozenset({b"content-type", b"content-transfer-encoding"})


class _TextWalk:
    """Collects the header text and the decoded text parts of one message, descending into
    multiparts and encapsulated messages (RFC 2046 §5) within `MimeLimits`."""

    __slots__ = ("bodies", "headers", "parts", "raw")

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.headers: list[str] = []
        self.bodies: list[str] = []
        self.parts = 0

    def entity(self, start: int, end: int, depth: int, default: tuple[str, str]) -> None:
        """The MIME entity raw[start:end]: its header, then its body by media type."""
        raw = self.raw
        body_start = header_end(raw, start, end)
        self.headers.append(decode_words(decode_text(unfold(raw[start:body_start]))))
        self.parts += 1
        limits = DEFAULT_LIMITS
        if depth >= limits.max_depth or self.parts > limits.max_parts:
            return
        fields = parse_fields(raw, start, body_start, _CONTENT_FIELDS)
        mtype, subtype = default
        params: list[tuple[str, str]] = []
        value = fields.get(b"content-type")
        if value is not None:
            parsed = parse_content_type(decode_text(value))
            if parsed is None:
                mtype, subtype = "TEXT", "PLAIN"  # RFC 2045 §5.2
            else:
                mtype, subtype, raw_params = parsed
                params = merge_rfc2231(raw_params)
        if mtype == "MULTIPART" and self._multipart(body_start, end, depth, subtype, params):
            return
        if mtype == "MESSAGE" and subtype in ("RFC822", "GLOBAL"):
            self.entity(body_start, end, depth + 1, ("TEXT", "PLAIN"))
            return
        if mtype not in ("TEXT", "MULTIPART"):
            return  # RFC 9051 §6.4.4: other terminal parts MAY be left out
        data = raw[body_start:end]
        encoding = fields.get(b"content-transfer-encoding")
        if encoding is not None:
            data = decode_transfer(data, parse_encoding(decode_text(encoding)))
        charset = next((v for k, v in params if k == "CHARSET"), "")
        self.bodies.append(decode_charset(data, charset))

    def _multipart(
        self, start: int, end: int, depth: int, subtype: str, params: list[tuple[str, str]]
    ) -> bool:
        """The parts of a multipart body; False when it has none (RFC 2045 §5.2: then it
        is read as text/plain)."""
        boundary = next((v for k, v in params if k == "BOUNDARY"), None)
        if not boundary:
            return False
        delimiter = boundary.encode("utf-8", "replace")
        ranges = split_multipart(self.raw, start, end, delimiter, DEFAULT_LIMITS.max_parts)
        # RFC 2046 §5.1.5: in a digest, a part without Content-Type is message/rfc822.
        default = ("MESSAGE", "RFC822") if subtype == "DIGEST" else ("TEXT", "PLAIN")
        for part_start, part_end in ranges:
            self.entity(part_start, part_end, depth + 1, default)
        return bool(ranges)


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def decode_transfer(data: bytes, encoding: str) -> bytes:
    """RFC 2045 §6: undo base64 / quoted-printable; anything else is searched as it is."""
    if encoding == "QUOTED-PRINTABLE":
        return binascii.a2b_qp(data)
    if encoding != "BASE64":
        return data
    try:
        return binascii.a2b_base64(data)
    except (binascii.Error, ValueError):
        # RFC 2045 §6.8: ignore what is not base64; decode what is whole before the damage.
        cleaned = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
        return binascii.a2b_base64(cleaned[: len(cleaned) - len(cleaned) % 4])


_UTF8_ALIASES = frozenset({"", "us-ascii", "ascii", "utf-8", "utf8"})


def decode_charset(data: bytes, charset: str) -> str:
    """Bytes of a text part as str: its charset when Python knows it; UTF-8 when it is
    valid; else Latin-1 (no byte is lost, nothing raises)."""
    name = charset.strip().lower()
    if name not in _UTF8_ALIASES:
        try:
            return data.decode(name, "replace")
        except (LookupError, ValueError):
            pass
    return decode_text(data)


_FOLD = re.compile(rb"\r?\n(?=[ \t])")


def unfold(header: bytes) -> bytes:
    """RFC 5322 §2.2.3: line breaks followed by WSP removed."""
    return _FOLD.sub(b"", header)


def header_values(raw: bytes, start: int, end: int, name: bytes) -> list[bytes]:
    """Every occurrence of field `name` (lower-case) in the header block raw[start:end],
    unfolded and stripped (RFC 5322 §2.2.3)."""
    found: list[bytes] = []
    current: list[bytes] | None = None
    for line in raw[start:end].split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        if current is not None:
            found.append(b"".join(current).strip(b" \t"))
            current = None
        colon = line.find(b":")
        if colon > 0 and line[:colon].rstrip(b" \t").lower() == name:
            current = [line[colon + 1 :]]
    if current is not None:
        found.append(b"".join(current).strip(b" \t"))
    return found


# -- RFC 2047 encoded words -------------------------------------------------------------------

# RFC 2047 §2: encoded-word = "=?" charset "?" encoding "?" encoded-text "?="
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=")
# RFC 2047 §6.2: whitespace between two adjacent encoded words is ignored.
_BETWEEN_WORDS = re.compile(r"(\?=)[ \t\r\n]+(?==\?[^?\s]+\?[BbQq]\?)")


def decode_words(text: str) -> str:
    """Header text with its RFC 2047 encoded words decoded. A word whose charset or
    encoding cannot be decoded is left as written."""
    if "=?" not in text:
        return text
    if text.count("=?") > 1:
        text = _BETWEEN_WORDS.sub(r"\1", text)
    return _ENCODED_WORD.sub(_decode_word, text)


def _decode_word(m: re.Match[str]) -> str:
    charset = m.group(1).split("*", 1)[0]  # RFC 2231 §5: charset*language
    encoded = m.group(3).encode("ascii", "replace")
    try:
        if m.group(2) in "Bb":
            data = binascii.a2b_base64(encoded + b"=" * (-len(encoded) % 4))
        else:
            # RFC 2047 §4.2: "_" is a space, "=XX" an octet (binascii's header mode).
            data = binascii.a2b_qp(encoded, header=True)
        name = charset.lower()
        return decode_text(data) if name in _UTF8_ALIASES else data.decode(name, "replace")
    except (binascii.Error, ValueError, LookupError):
        return m.group(0)

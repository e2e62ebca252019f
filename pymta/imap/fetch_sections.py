"""The FETCH items read from the message itself: RFC822, RFC822.HEADER, RFC822.TEXT,
BODY[section]<partial>, BINARY[section]<partial> and BINARY.SIZE[section] (RFC 9051 §6.4.5,
§7.5.2; RFC 3516).

`message_item(item)` gives such an item's name, as a piece of the plan's format string,
and its value as a function of a `Message`: the message's bytes (read on first use,
through the renderer's reader), its MIME analysis (`mime.bodystructure`) and its decoded
BINARY sections. `fetch.py` compiles the other items and gives every row that needs its
file one `Message`, shared by its items, so a file is read at most once.

Line ends: a message stored with bare LF (a Maildir taken over from another server) is
sent with CRLF, the form on which RFC822.SIZE and the BODYSTRUCTURE sizes are computed
(`pymta.mime`, RFC 9051 §2.3.4); section offsets and partials refer to that form.
"""

from __future__ import annotations

import binascii
import logging
import re
from collections.abc import Callable, Sequence

from pymta.mime.bodystructure import Analysis, PartSpan, analyze, find_body, find_part
from pymta.mime.headers import header_end
from pymta.mime.imapform import string_wire
from pymta.store.model import MessageMeta

from .command import FetchAttr, FetchItem, Section, SectionText
from .errors import Code, Refused
from .rows import Reader

log = logging.getLogger(__name__)


# Encodings whose decoding is the identity (RFC 2045 §6.2).
_IDENTITY_CTE = frozenset({"7BIT", "8BIT", "BINARY"})
# A bare LF: one not preceded by CR.
_BARE_LF = re.compile(rb"(?<!\r)\n")
# RFC 9051 §9 ATOM-CHAR, for echoing header-fld-name as an atom when it is one.
_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")


class UnknownCte(Refused):
    """BINARY of a part whose Content-Transfer-Encoding we cannot decode: the command
    fails with NO [UNKNOWN-CTE] (RFC 3516 §4.3, RFC 9051 §6.4.5)."""

    def __init__(self, uid: int, section: str, encoding: str) -> None:
        super().__init__("Unknown Content-Transfer-Encoding", Code.UNKNOWN_CTE)
        self.uid = uid
        self.section = section
        self.encoding = encoding


# The items that read the message: `message_item` compiles them.
RAW_ATTRS = frozenset(
    {
        FetchAttr.RFC822,
        FetchAttr.RFC822_HEADER,
        FetchAttr.RFC822_TEXT,
        FetchAttr.BODY_SECTION,
        FetchAttr.BINARY,
        FetchAttr.BINARY_SIZE,
    }
)

# An item's value, from the message.
MessageFn = Callable[["Message"], bytes]


def message_item(item: FetchItem) -> tuple[bytes, MessageFn]:
    """(format piece, value) of an item in RAW_ATTRS; names as RFC 9051 §7.5.2 gives them."""
    attr = item.attr
    # RFC 9051 §6.4.5 (RFC 3501 §6.4.5): RFC822 is BODY[], RFC822.HEADER is
    # BODY.PEEK[HEADER], RFC822.TEXT is BODY[TEXT], each answered under its own name.
    if attr is FetchAttr.RFC822:
        return b"RFC822 %s", lambda msg: _literal(msg.raw)
    if attr is FetchAttr.RFC822_HEADER:
        return b"RFC822.HEADER %s", lambda msg: _literal(msg.header())
    if attr is FetchAttr.RFC822_TEXT:
        return b"RFC822.TEXT %s", lambda msg: _literal(msg.text())
    section = item.section or Section()
    if attr is FetchAttr.BODY_SECTION:
        # RFC 9051 §7.5.2: "BODY" section ["<" number ">"] SP nstring — the section as
        # asked (BODY.PEEK answers as BODY), with the origin octet of a partial.
        name = b"BODY[" + section_spec(section) + b"]" + _origin(item.partial)
        return _piece(name), _body_section(section, item.partial)
    if attr is FetchAttr.BINARY:
        # RFC 3516 §4.3: "BINARY" section-binary ["<" number ">"] SP (nstring / literal8)
        name = b"BINARY[" + _dotted(section.part).encode() + b"]" + _origin(item.partial)
        return _piece(name), _binary(section, item.partial)
    if attr is FetchAttr.BINARY_SIZE:
        name = b"BINARY.SIZE[" + _dotted(section.part).encode() + b"]"
        return _piece(name), _binary_size(section)
    raise ValueError(f"unknown fetch attribute {attr!r}")


# -- the message and its sections -----------------------------------------------------------


class Message:
    """One message's bytes, read on first use, with bare LFs sent as CRLF; its MIME
    analysis and decoded BINARY sections, computed on first use."""

    __slots__ = ("_analysis", "_decoded", "_raw", "_reader", "meta")

    def __init__(self, meta: MessageMeta, raw: bytes | None, reader: Reader) -> None:
        self.meta = meta
        self._raw = None if raw is None else _crlf(raw)
        self._reader = reader
        self._analysis: Analysis | None = None
        self._decoded: dict[str, bytes | None] | None = None

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = _crlf(self._reader(self.meta))
        return self._raw

    def analysis(self) -> Analysis:
        if self._analysis is None:
            self._analysis = analyze(self.raw)
        return self._analysis

    def header(self) -> bytes:
        """RFC822.HEADER / BODY[HEADER]: the header with its blank line."""
        raw = self.raw
        return raw[: header_end(raw, 0, len(raw))]

    def text(self) -> bytes:
        """RFC822.TEXT / BODY[TEXT]: what follows the blank line."""
        raw = self.raw
        return raw[header_end(raw, 0, len(raw)) :]

    def span(self, part: tuple[int, ...]) -> PartSpan | None:
        """Where part `part` lies; the message itself for ()."""
        if not part:
            raw = self.raw
            return PartSpan("", 0, 0, len(raw), header_end(raw, 0, len(raw)))
        return find_part(self.analysis().parts, _dotted(part))

    def section(self, section: Section) -> bytes | None:
        """The text of BODY[section] (RFC 9051 §6.4.5.1), None when there is no such part
        (or HEADER/TEXT is asked of a part that is not a message)."""
        span = self.span(section.part)
        if span is None:
            return None
        raw = self.raw
        text = section.text
        if text is None:
            return raw[span.body_offset : span.end_offset]
        if text is SectionText.MIME:
            return raw[span.header_offset : span.body_offset]
        if span.text_offset is None:
            # RFC 9051 §6.4.5.1: HEADER/TEXT only "provided that the numeric part
            # specifier refers to a part of type MESSAGE/RFC822 or MESSAGE/GLOBAL".
            return None
        if text is SectionText.TEXT:
            return raw[span.text_offset : span.end_offset]
        header = raw[span.body_offset : span.text_offset]
        if text is SectionText.HEADER:
            return header
        return header_subset(header, section.fields, text is SectionText.HEADER_FIELDS)

    def binary(self, part: tuple[int, ...]) -> bytes | None:
        """BINARY[part] content, decoded (RFC 3516 §4.2); None when there is no such part."""
        key = _dotted(part)
        if self._decoded is None:
            self._decoded = {}
        elif key in self._decoded:
            return self._decoded[key]
        span = self.span(part)
        if span is None:
            data = None
        else:
            data = self.raw[span.body_offset : span.end_offset]
            node = find_body(self.analysis().bodystructure, key) if part else None
            data = _decode_part(self.meta.uid, key, node, data)
        self._decoded[key] = data
        return data


def _crlf(raw: bytes) -> bytes:
    """The message as IMAP sends it: every bare LF as CRLF (RFC 9051 §2.3.4, RFC 5322 §2.1)."""
    if raw.count(b"\n") == raw.count(b"\r\n"):
        return raw
    return _BARE_LF.sub(b"\r\n", raw)


def _decode_part(uid: int, section: str, node: list[object] | None, data: bytes) -> bytes:
    """Undo the part's Content-Transfer-Encoding (RFC 2045 §6). Multiparts and messages
    (and the whole message, node None) are sent as they are: RFC 2045 §6.4 allows them
    only identity encodings, and RFC 9051 §6.4.5 lets BINARY name leaf parts only."""
    if node is None or not node or isinstance(node[0], list):
        return data
    if node[0] == "MESSAGE" and len(node) >= 10 and isinstance(node[8], list):
        return data
    encoding = node[5] if len(node) > 5 and isinstance(node[5], str) else "7BIT"
    if encoding in _IDENTITY_CTE:
        decoded = data
    elif encoding == "BASE64":
        decoded = _base64(data)
    elif encoding == "QUOTED-PRINTABLE":
        decoded = binascii.a2b_qp(data)
    else:
        log.info("imap.unknown_cte uid=%d section=%s encoding=%s", uid, section, encoding)
        raise UnknownCte(uid, section, encoding)
    if node[0] == "TEXT" and decoded is not data:
        # RFC 3516 §6: textual sections are always sent with CRLF line ends.
        decoded = _crlf(decoded)
    return decoded


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


def _base64(data: bytes) -> bytes:
    """Lenient base64 (RFC 2045 §6.8: characters outside the alphabet are ignored)."""
    try:
        return binascii.a2b_base64(data)
    except binascii.Error:
        clean = _NOT_BASE64.sub(b"", data.split(b"=", 1)[0])
        if len(clean) % 4 == 1:
            clean = clean[:-1]
        return binascii.a2b_base64(clean + b"=" * (-len(clean) % 4))


def header_subset(header: bytes, names: Sequence[str], keep: bool) -> bytes:
    """HEADER.FIELDS (keep=True) / HEADER.FIELDS.NOT (keep=False) of a CRLF header block.

    RFC 9051 §6.4.5.1: fields whose name matches (ASCII case-insensitively, otherwise
    exactly) one of `names`, or does not; folded lines stay with their field; the blank
    line is included when the header has one. A line that is no field (no colon) matches
    no name.
    """
    wanted = {n.lower().encode("utf-8", "replace") for n in names}
    blank = b""
    if header.endswith(b"\r\n\r\n"):
        header, blank = header[:-2], b"\r\n"
    elif header == b"\r\n":
        return b"\r\n"
    out: list[bytes] = []
    take = False
    for line in header.splitlines(keepends=True):
        if line[:1] in (b" ", b"\t"):
            if take:
                out.append(line)
            continue
        colon = line.find(b":")
        name = line[:colon].rstrip(b" \t").lower() if colon > 0 else None
        take = (name in wanted) == keep if name is not None else not keep
        if take:
            out.append(line)
    return b"".join(out) + blank


# -- the section items ----------------------------------------------------------------------


def _body_section(section: Section, partial: tuple[int, int] | None) -> MessageFn:
    def value(msg: Message) -> bytes:
        data = msg.section(section)
        return b"NIL" if data is None else _literal(_partial(data, partial))

    return value


def _binary(section: Section, partial: tuple[int, int] | None) -> MessageFn:
    def value(msg: Message) -> bytes:
        data = msg.binary(section.part)
        return b"NIL" if data is None else _literal(_partial(data, partial), binary=True)

    return value


def _binary_size(section: Section) -> MessageFn:
    def value(msg: Message) -> bytes:
        data = msg.binary(section.part)
        # RFC 3516 §4.3: the size FETCH BINARY would send; 0 for a part that is not there.
        return b"%d" % (0 if data is None else len(data))

    return value


def _origin(partial: tuple[int, int] | None) -> bytes:
    return b"" if partial is None else b"<%d>" % partial[0]


def _piece(name: bytes) -> bytes:
    """A format piece for an item name that may hold "%" (a quoted field name)."""
    return name.replace(b"%", b"%%") + b" %s"


def section_spec(section: Section) -> bytes:
    """RFC 9051 §9 section-spec as the client wrote it (field names upper-cased)."""
    part = _dotted(section.part)
    if section.text is None:
        return part.encode()
    text = section.text.value
    spec = f"{part}.{text}" if part else text
    out = spec.encode()
    if section.text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        out += b" (" + b" ".join(_astring(f) for f in section.fields) + b")"
    return out


def _astring(name: str) -> bytes:
    """header-fld-name = astring: an atom when it is one, else a string."""
    if _ATOM.fullmatch(name) and "]" not in name:
        return name.encode()
    return string_wire(name)


def _dotted(part: tuple[int, ...]) -> str:
    return ".".join(map(str, part))


def _partial(data: bytes, partial: tuple[int, int] | None) -> bytes:
    """RFC 9051 §6.4.5: <offset.length>; past the end gives the empty string."""
    if partial is None:
        return data
    offset, length = partial
    return data[offset : offset + length]


def _literal(data: bytes, *, binary: bool = False) -> bytes:
    """A literal (RFC 9051 §4.3); literal8 `~{n}` for BINARY data holding NUL (RFC 3516
    §4.3: "If the domain of the decoded data is "8bit" and the data does not contain the
    NUL octet, the server SHOULD return the data in a <string>"). The empty string is "".
    Message text holding NUL in a BODY[] fetch is sent as it is stored."""
    if not data:
        return b'""'
    if binary and b"\x00" in data:
        return b"~{%d}\r\n%s" % (len(data), data)
    return b"{%d}\r\n%s" % (len(data), data)

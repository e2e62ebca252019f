"""FETCH response data (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY; RFC 7162 MODSEQ).

`FetchRenderer.plan(items)` compiles the requested `FetchItem`s once per command into a
`FetchPlan`; `FetchRenderer.render(plan, meta, summary, raw)` then gives the bytes between
`* n FETCH (` and `)` for one message, and `render_many` / `responses` do it for many.

What each item is rendered from:

- FLAGS, UID, MODSEQ, RFC822.SIZE, INTERNALDATE — the `MessageMeta` (flag strings are
  cached per distinct (letters, keywords), so a 20,000-message FLAGS fetch is a loop of
  dictionary look-ups);
- ENVELOPE, BODY, BODYSTRUCTURE — the summary: `WireForms` (bytes the store caches, a
  concatenation) or a `CachedSummary` (JSON lists, rendered with `mime.imapform`); when
  neither has the form, the message file is parsed;
- BODY[...], BINARY[...], RFC822, RFC822.HEADER, RFC822.TEXT — the message bytes, given
  as `raw` or read through the renderer's `reader`.

Line ends: a message stored with bare LF (a Maildir taken over from another server) is
sent with CRLF, the form on which RFC822.SIZE and the BODYSTRUCTURE sizes are computed
(`pymta.mime`, RFC 9051 §2.3.4); section offsets and partials refer to that form.

\\Seen: `FetchPlan.sets_seen` says whether the command implicitly sets \\Seen (RFC 9051
§6.4.5: BODY[...] and BINARY[...] without .PEEK, RFC822, RFC822.TEXT). The session sets
the flag before rendering and renders with `plan.with_flags()` for the messages whose
flags changed ("they SHOULD be included as part of the FETCH responses").
"""

from __future__ import annotations

import binascii
import datetime
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pymta.mime.bodystructure import Analysis, PartSpan, analyze, find_body, find_part
from pymta.mime.headers import header_end
from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire, string_wire
from pymta.store.model import CachedSummary, MessageMeta

from .command import FetchAttr, FetchItem, Section, SectionText
from .errors import Code, Refused

log = logging.getLogger(__name__)

Reader = Callable[[MessageMeta], bytes]

_MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# Encodings whose decoding is the identity (RFC 2045 §6.2).
_IDENTITY_CTE = frozenset({"7BIT", "8BIT", "BINARY"})
# A bare LF: one not preceded by CR.
_BARE_LF = re.compile(rb"(?<!\r)\n")
# RFC 9051 §9 ATOM-CHAR, for echoing header-fld-name as an atom when it is one.
_ATOM = re.compile(r"[!#$&'+,\-./0-9:;<=>?@A-Z\[^_`a-z|}~]+")
# Distinct flag sets remembered by one renderer; a folder rarely has more than a few dozen.
_FLAG_CACHE_ENTRIES = 4096


class UnknownCte(Refused):
    """BINARY of a part whose Content-Transfer-Encoding we cannot decode: the command
    fails with NO [UNKNOWN-CTE] (RFC 3516 §4.3, RFC 9051 §6.4.5)."""

    def __init__(self, uid: int, section: str, encoding: str) -> None:
        super().__init__("Unknown Content-Transfer-Encoding", Code.UNKNOWN_CTE)
        self.uid = uid
        self.section = section
        self.encoding = encoding


@dataclass(frozen=True)
class WireForms:
    """The FETCH forms of one message as the store may cache them (`mime.imapform`)."""

    envelope: bytes | None = None
    body: bytes | None = None
    bodystructure: bytes | None = None


Summary = WireForms | CachedSummary | None

# One compiled item's value: (meta, summary, message or None) -> bytes or int, formatted
# into the plan's format string. The message is None on the fast path (no item needs it).
_Getter = Callable[[MessageMeta, Summary, "_Message | None"], bytes | int]
# An item that needs the message: `FetchRenderer._with_message` makes it a getter.
_MessageFn = Callable[[MessageMeta, Summary, "_Message"], bytes]


@dataclass(frozen=True)
class FetchPlan:
    """A FETCH command's items, compiled once by `FetchRenderer.plan`: a format string
    (`b"UID %d FLAGS %s"`) and one value getter per item."""

    items: tuple[FetchItem, ...]
    fmt: bytes
    getters: tuple[_Getter, ...]
    sets_seen: bool  # some item implicitly sets \Seen (RFC 9051 §6.4.5)
    needs_raw: bool  # some item needs the message bytes
    needs_summary: bool  # ENVELOPE, BODY or BODYSTRUCTURE: pass the summary
    renderer: FetchRenderer

    def with_flags(self) -> FetchPlan:
        """The same plan with FLAGS added (for messages whose \\Seen was just set)."""
        if any(i.attr is FetchAttr.FLAGS for i in self.items):
            return self
        return self.renderer.plan((*self.items, FetchItem(FetchAttr.FLAGS)))


def sets_seen(items: Iterable[FetchItem]) -> bool:
    """Whether fetching these items implicitly sets \\Seen (RFC 9051 §6.4.5, RFC 3516 §4.2)."""
    for item in items:
        if item.attr in (FetchAttr.RFC822, FetchAttr.RFC822_TEXT):
            return True
        if item.attr in (FetchAttr.BODY_SECTION, FetchAttr.BINARY) and not item.peek:
            return True
    return False


_RAW_ATTRS = frozenset(
    {
        FetchAttr.RFC822,
        FetchAttr.RFC822_HEADER,
        FetchAttr.RFC822_TEXT,
        FetchAttr.BODY_SECTION,
        FetchAttr.BINARY,
        FetchAttr.BINARY_SIZE,
    }
)
_SUMMARY_ATTRS = frozenset({FetchAttr.ENVELOPE, FetchAttr.BODY, FetchAttr.BODYSTRUCTURE})


def read_file(meta: MessageMeta) -> bytes:
    """The default reader: the message file itself."""
    return meta.path.read_bytes()


class FetchRenderer:
    """Renders FETCH data. One per session (or per server): it only caches flag strings.

    - `tz`: the server's timezone for INTERNALDATE; None means the system's local time.
    - `reader`: how to get a message's bytes when `render` is not given them (called in
      the caller's thread: run bulk body fetches off the event loop).
    """

    def __init__(self, *, tz: datetime.tzinfo | None = None, reader: Reader = read_file) -> None:
        self._tz = tz
        self._reader = reader
        self._flag_cache: dict[tuple[str, tuple[str, ...]], bytes] = {}

    # -- planning ---------------------------------------------------------------------

    def plan(self, items: Iterable[FetchItem], *, uid: bool = False) -> FetchPlan:
        """Compile the items of one FETCH. `uid`: a UID FETCH, whose responses MUST
        include UID (RFC 9051 §6.4.9); it is added first when not asked for."""
        items = tuple(items)
        if uid and not any(i.attr is FetchAttr.UID for i in items):
            items = (FetchItem(FetchAttr.UID), *items)
        compiled = [self._compile(i) for i in items]
        return FetchPlan(
            items=items,
            fmt=b" ".join(piece for piece, _ in compiled),
            getters=tuple(getter for _, getter in compiled),
            sets_seen=sets_seen(items),
            needs_raw=any(i.attr in _RAW_ATTRS for i in items),
            needs_summary=any(i.attr in _SUMMARY_ATTRS for i in items),
            renderer=self,
        )

    def _compile(self, item: FetchItem) -> tuple[bytes, _Getter]:
        """(format piece, value getter) of one item; names as RFC 9051 §7.5.2 gives them."""
        attr = item.attr
        if attr is FetchAttr.FLAGS:
            return b"%s", self.flags
        if attr is FetchAttr.UID:
            return b"UID %d", _uid
        if attr is FetchAttr.MODSEQ:
            # RFC 7162 §3.1.4.1: "MODSEQ" SP "(" permsg-modsequence ")"
            return b"MODSEQ (%d)", _modseq
        if attr is FetchAttr.RFC822_SIZE:
            return b"RFC822.SIZE %d", _size
        if attr is FetchAttr.INTERNALDATE:
            return b"INTERNALDATE %s", lambda meta, summary, msg: self.internal_date(meta)
        if attr is FetchAttr.ENVELOPE:
            return b"ENVELOPE %s", self._with_message(_envelope)
        if attr is FetchAttr.BODY:
            return b"BODY %s", self._with_message(_body)
        if attr is FetchAttr.BODYSTRUCTURE:
            return b"BODYSTRUCTURE %s", self._with_message(_bodystructure)
        # RFC 9051 §6.4.5 (RFC 3501 §6.4.5): RFC822 is BODY[], RFC822.HEADER is
        # BODY.PEEK[HEADER], RFC822.TEXT is BODY[TEXT], each answered under its own name.
        if attr is FetchAttr.RFC822:
            return b"RFC822 %s", self._with_message(lambda m, s, msg: _literal(msg.raw))
        if attr is FetchAttr.RFC822_HEADER:
            return b"RFC822.HEADER %s", self._with_message(lambda m, s, msg: _literal(msg.header()))
        if attr is FetchAttr.RFC822_TEXT:
            return b"RFC822.TEXT %s", self._with_message(lambda m, s, msg: _literal(msg.text()))
        section = item.section or Section()
        if attr is FetchAttr.BODY_SECTION:
            # RFC 9051 §7.5.2: "BODY" section ["<" number ">"] SP nstring — the section as
            # asked (BODY.PEEK answers as BODY), with the origin octet of a partial.
            name = b"BODY[" + section_spec(section) + b"]" + _origin(item.partial)
            return _piece(name), self._with_message(_body_section(section, item.partial))
        if attr is FetchAttr.BINARY:
            # RFC 3516 §4.3: "BINARY" section-binary ["<" number ">"] SP (nstring / literal8)
            name = b"BINARY[" + _dotted(section.part).encode() + b"]" + _origin(item.partial)
            return _piece(name), self._with_message(_binary(section, item.partial))
        if attr is FetchAttr.BINARY_SIZE:
            name = b"BINARY.SIZE[" + _dotted(section.part).encode() + b"]"
            return _piece(name), self._with_message(_binary_size(section))
        raise ValueError(f"unknown fetch attribute {attr!r}")

    def _with_message(self, fn: _MessageFn) -> _Getter:
        """A getter that is handed the message, made on the spot on the fast path."""
        reader = self._reader

        def getter(meta: MessageMeta, summary: Summary, msg: _Message | None) -> bytes:
            return fn(meta, summary, _Message(meta, None, reader) if msg is None else msg)

        return getter

    # -- rendering --------------------------------------------------------------------

    def render(
        self,
        plan: FetchPlan,
        meta: MessageMeta,
        summary: Summary = None,
        raw: bytes | None = None,
    ) -> bytes:
        """The data of `* n FETCH (...)` for one message. `raw`: the message bytes when
        the caller already has them; otherwise they are read only if an item needs them.
        Raises `UnknownCte` (a `Refused`) for BINARY of an undecodable part, and whatever
        the reader raises when the file is gone."""
        msg = None
        if raw is not None or plan.needs_raw or (plan.needs_summary and not _complete(summary)):
            msg = _Message(meta, raw, self._reader)
        return plan.fmt % tuple([g(meta, summary, msg) for g in plan.getters])

    def render_many(
        self,
        plan: FetchPlan,
        metas: Sequence[MessageMeta],
        summaries: Sequence[Summary] | None = None,
    ) -> list[bytes]:
        """`render` for many messages (summaries aligned with metas, or None)."""
        return self._lines(plan, plan.fmt, None, metas, summaries)

    def responses(
        self,
        plan: FetchPlan,
        seqs: Sequence[int],
        metas: Sequence[MessageMeta],
        summaries: Sequence[Summary] | None = None,
    ) -> bytes:
        """Complete `* n FETCH (...)` lines (RFC 9051 §7.5.2) for aligned seqs and metas:
        the fast path for FETCH 1:* of flags, envelopes and structures."""
        line = b"* %d FETCH (" + plan.fmt + b")\r\n"
        return b"".join(self._lines(plan, line, seqs, metas, summaries))

    def _lines(
        self,
        plan: FetchPlan,
        fmt: bytes,
        seqs: Sequence[int] | None,
        metas: Sequence[MessageMeta],
        summaries: Sequence[Summary] | None,
    ) -> list[bytes]:
        """`fmt` filled for each message (preceded by its seq when `seqs` is given);
        unrolled for one- and two-item plans: this loop is the whole cost of
        `UID FETCH 1:* (FLAGS)` (RFC 9051 §6.4.9 adds the UID)."""
        n = len(metas)
        if (seqs is not None and len(seqs) != n) or (summaries is not None and len(summaries) != n):
            raise ValueError("seqs, metas and summaries differ in length")
        getters = plan.getters
        sums: Sequence[Summary] = [None] * n if summaries is None else summaries
        if plan.needs_raw or plan.needs_summary:
            # One message object per message that needs its file, shared by its items: the
            # file is read at most once.
            reader = self._reader
            needs_raw = plan.needs_raw
            out = []
            for i, (m, s) in enumerate(zip(metas, sums, strict=True)):
                msg = _Message(m, None, reader) if needs_raw or not _complete(s) else None
                values = tuple([g(m, s, msg) for g in getters])
                out.append(fmt % (values if seqs is None else (seqs[i], *values)))
            return out
        if seqs is None:
            if len(getters) == 1:
                (g0,) = getters
                return [fmt % g0(m, s, None) for m, s in zip(metas, sums, strict=True)]
            return [
                fmt % tuple([g(m, s, None) for g in getters])
                for m, s in zip(metas, sums, strict=True)
            ]
        if len(getters) == 1:
            (g0,) = getters
            return [fmt % (q, g0(m, s, None)) for q, m, s in zip(seqs, metas, sums, strict=True)]
        if len(getters) == 2:
            g0, g1 = getters
            return [
                fmt % (q, g0(m, s, None), g1(m, s, None))
                for q, m, s in zip(seqs, metas, sums, strict=True)
            ]
        return [
            fmt % (q, *[g(m, s, None) for g in getters])
            for q, m, s in zip(seqs, metas, sums, strict=True)
        ]

    # -- the meta items ---------------------------------------------------------------

    def flags(self, meta: MessageMeta, summary: Summary = None, msg: object = None) -> bytes:
        """`FLAGS (...)`, RFC 9051 §7.5.2; cached per distinct flag set."""
        key = (meta.flags, meta.keywords)
        text = self._flag_cache.get(key)
        if text is None:
            if len(self._flag_cache) >= _FLAG_CACHE_ENTRIES:
                self._flag_cache.clear()
            names = " ".join(meta.imap_flags)
            text = b"FLAGS (%s)" % names.encode("ascii", "replace")
            self._flag_cache[key] = text
        return text

    def internal_date(self, meta: MessageMeta) -> bytes:
        """RFC 9051 §9 date-time: DQUOTE date-day-fixed "-" date-month "-" date-year SP
        time SP zone DQUOTE, in the server's timezone."""
        return format_date_time(meta.internal_date, self._tz)


def format_date_time(timestamp: float, tz: datetime.tzinfo | None = None) -> bytes:
    """`"17-Jul-1996 02:44:25 -0700"` (RFC 9051 §9 date-time) for a POSIX timestamp."""
    if tz is None:
        t = time.localtime(timestamp)
        year, month, day, hour, minute, second = t[:6]
        offset = t.tm_gmtoff // 60
    else:
        d = datetime.datetime.fromtimestamp(timestamp, tz)
        year, month, day, hour, minute, second = (
            d.year,
            d.month,
            d.day,
            d.hour,
            d.minute,
            d.second,
        )
        delta = d.utcoffset()
        offset = 0 if delta is None else int(delta.total_seconds()) // 60
    sign = b"+" if offset >= 0 else b"-"
    offset = abs(offset)
    return b'"%02d-%s-%04d %02d:%02d:%02d %s%02d%02d"' % (
        day,
        _MONTHS[month - 1],
        year,
        hour,
        minute,
        second,
        sign,
        offset // 60,
        offset % 60,
    )


# -- the summary items ----------------------------------------------------------------------


def _complete(summary: Summary) -> bool:
    """Whether the summary has every form, so no summary item needs the file."""
    if isinstance(summary, WireForms):
        return not (
            summary.envelope is None or summary.body is None or summary.bodystructure is None
        )
    if isinstance(summary, CachedSummary):
        return not (summary.envelope is None or summary.bodystructure is None)
    return False


def _uid(meta: MessageMeta, summary: Summary, msg: _Message | None) -> int:
    return meta.uid


def _modseq(meta: MessageMeta, summary: Summary, msg: _Message | None) -> int:
    return meta.modseq


def _size(meta: MessageMeta, summary: Summary, msg: _Message | None) -> int:
    return meta.size


def _envelope(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
    if isinstance(summary, WireForms) and summary.envelope is not None:
        return summary.envelope
    if isinstance(summary, CachedSummary) and summary.envelope is not None:
        return envelope_wire(summary.envelope)
    return envelope_wire(msg.analysis().envelope)


def _body(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
    if isinstance(summary, WireForms) and summary.body is not None:
        return summary.body
    if isinstance(summary, CachedSummary) and summary.bodystructure is not None:
        return body_wire(summary.bodystructure)
    return body_wire(msg.analysis().bodystructure)


def _bodystructure(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
    if isinstance(summary, WireForms) and summary.bodystructure is not None:
        return summary.bodystructure
    if isinstance(summary, CachedSummary) and summary.bodystructure is not None:
        return bodystructure_wire(summary.bodystructure)
    return bodystructure_wire(msg.analysis().bodystructure)


# -- the message and its sections -----------------------------------------------------------


class _Message:
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


def _body_section(section: Section, partial: tuple[int, int] | None) -> _MessageFn:
    def value(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
        data = msg.section(section)
        return b"NIL" if data is None else _literal(_partial(data, partial))

    return value


def _binary(section: Section, partial: tuple[int, int] | None) -> _MessageFn:
    def value(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
        data = msg.binary(section.part)
        return b"NIL" if data is None else _literal(_partial(data, partial), binary=True)

    return value


def _binary_size(section: Section) -> _MessageFn:
    def value(meta: MessageMeta, summary: Summary, msg: _Message) -> bytes:
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

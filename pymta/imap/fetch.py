"""FETCH response data (RFC 9051 §6.4.5, §7.5.2; RFC 3516 BINARY; RFC 7162 MODSEQ).

`FetchRenderer.plan(items)` compiles the requested `FetchItem`s once per command into a
`FetchPlan`: a format string (`b"UID %d FLAGS %s"`), the index columns the items need
(`plan.columns`, named as `Store.fetch_rows` names them, "uid" first) and one value getter
per item. `rows_responses(plan, seqs, rows, directory)` then gives the complete
`* n FETCH (...)` lines for rows laid out as `plan.columns`: per message a few tuple
look-ups and one `%`, no object, so `UID FETCH 1:* (FLAGS)` of 20,000 messages is a few
milliseconds. `render`, `render_many` and `responses` do the same for `MessageMeta`s
(with summaries), as the store's STORE result and the tests have them.

What each item is rendered from:

- FLAGS, UID, MODSEQ, RFC822.SIZE, INTERNALDATE — the message's columns (flag strings are
  cached per distinct (letters, keywords), so FLAGS is one dictionary look-up);
- ENVELOPE, BODY, BODYSTRUCTURE — the wire bytes the store caches (a concatenation); when
  a message has none, its file is parsed: that needs a plan with the file columns
  (`plan.with_files()`; `missing_summaries` says when);
- BODY[...], BINARY[...], RFC822, RFC822.HEADER, RFC822.TEXT — the message bytes, read
  through the renderer's `reader` (plans with these items always carry the file columns).

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
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from pymta.mime.bodystructure import Analysis, PartSpan, analyze, find_body, find_part
from pymta.mime.headers import header_end
from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire, string_wire
from pymta.store.flags import imap_flags
from pymta.store.model import CachedSummary, MessageMeta

from .command import FetchAttr, FetchItem, Section, SectionText
from .errors import Code, Refused

log = logging.getLogger(__name__)

Reader = Callable[[MessageMeta], bytes]
Row = tuple[Any, ...]

# The columns of a plan that reads message files, first and in this order: a row's
# `MessageMeta` is built from them (`file` relative to the folder's directory).
META_COLUMNS = ("uid", "flags", "keywords", "modseq", "internal_date", "size", "file")
# The store's cached wire forms, and the summary attribute each comes from.
WIRE_COLUMNS = ("envelope", "body", "bodystructure")

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

# One compiled item's value: (row, message or None) -> bytes or int, formatted into the
# plan's format string; the message is None unless an item needs the file.
_Getter = Callable[[Row, "_Message | None"], bytes | int]
# The same for many rows at once, as one iterator built of C-level maps (the fast path: no
# item needs a file); None for the items that read the message.
_Vector = Callable[[Sequence[Row]], Iterable[Any]]
# An item that needs the message.
_MessageFn = Callable[["_Message"], bytes]
# How to get a row's `MessageMeta` (position, row), for the items that read the file.
_MetaOf = Callable[[int, Row], MessageMeta]


@dataclass(frozen=True)
class FetchPlan:
    """A FETCH command's items, compiled once by `FetchRenderer.plan`: a format string,
    the columns its rows need and one value getter per item."""

    items: tuple[FetchItem, ...]
    fmt: bytes
    getters: tuple[_Getter, ...]
    vectors: tuple[_Vector | None, ...]
    columns: tuple[str, ...]  # `Store.fetch_rows` columns, "uid" first
    wire: tuple[int, ...]  # positions of the wire-form columns in a row
    full: bool  # the rows start with META_COLUMNS: messages can be read
    sets_seen: bool  # some item implicitly sets \Seen (RFC 9051 §6.4.5)
    needs_raw: bool  # some item needs the message bytes
    renderer: FetchRenderer

    @property
    def needs_summary(self) -> bool:
        """ENVELOPE, BODY or BODYSTRUCTURE: the rows carry cached wire forms."""
        return bool(self.wire)

    def with_flags(self) -> FetchPlan:
        """The same plan with FLAGS added (for messages whose \\Seen was just set)."""
        if any(i.attr is FetchAttr.FLAGS for i in self.items):
            return self
        return self.renderer.plan((*self.items, FetchItem(FetchAttr.FLAGS)), full=self.full)

    def with_files(self) -> FetchPlan:
        """The same plan over rows that carry the file columns (META_COLUMNS first)."""
        return self if self.full else self.renderer.plan(self.items, full=True)

    def missing_summaries(self, rows: Sequence[Row]) -> bool:
        """Whether some row lacks a wire form (the message's file must be parsed)."""
        return any(None in map(itemgetter(i), rows) for i in self.wire)


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
# `MessageMeta` attribute of each meta column.
_META_ATTRS = {
    "uid": "uid",
    "flags": "flags",
    "keywords": "keywords",
    "modseq": "modseq",
    "internal_date": "internal_date",
    "size": "size",
    "file": "filename",
}


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
        self._flag_texts = _FlagTexts()

    # -- planning ---------------------------------------------------------------------

    def plan(
        self, items: Iterable[FetchItem], *, uid: bool = False, full: bool = False
    ) -> FetchPlan:
        """Compile the items of one FETCH. `uid`: a UID FETCH, whose responses MUST
        include UID (RFC 9051 §6.4.9); it is added first when not asked for. `full`: rows
        carry META_COLUMNS first (always so when an item reads the message)."""
        items = tuple(items)
        if uid and not any(i.attr is FetchAttr.UID for i in items):
            items = (FetchItem(FetchAttr.UID), *items)
        needs_raw = any(i.attr in _RAW_ATTRS for i in items)
        full = full or needs_raw
        columns: list[str] = list(META_COLUMNS) if full else ["uid"]

        def column(name: str) -> int:
            if name not in columns:
                columns.append(name)
            return columns.index(name)

        compiled = [self._compile(i, column) for i in items]
        return FetchPlan(
            items=items,
            fmt=b" ".join(piece for piece, _, _ in compiled),
            getters=tuple(getter for _, getter, _ in compiled),
            vectors=tuple(vector for _, _, vector in compiled),
            columns=tuple(columns),
            wire=tuple(i for i, c in enumerate(columns) if c in WIRE_COLUMNS),
            full=full,
            sets_seen=sets_seen(items),
            needs_raw=needs_raw,
            renderer=self,
        )

    def _compile(self, item: FetchItem, column: Callable[[str], int]) -> _Compiled:
        """(format piece, value getter, vector) of one item; names as RFC 9051 §7.5.2
        gives them."""
        attr = item.attr
        if attr is FetchAttr.FLAGS:
            return b"%s", *self._flags(column("flags"), column("keywords"))
        if attr is FetchAttr.UID:
            return b"UID %d", *_value(column("uid"))
        if attr is FetchAttr.MODSEQ:
            # RFC 7162 §3.1.4.1: "MODSEQ" SP "(" permsg-modsequence ")"
            return b"MODSEQ (%d)", *_value(column("modseq"))
        if attr is FetchAttr.RFC822_SIZE:
            return b"RFC822.SIZE %d", *_value(column("size"))
        if attr is FetchAttr.INTERNALDATE:
            return b"INTERNALDATE %s", *self._internal_date(column("internal_date"))
        if attr is FetchAttr.ENVELOPE:
            return b"ENVELOPE %s", *_cached(column("envelope"), _envelope)
        if attr is FetchAttr.BODY:
            return b"BODY %s", *_cached(column("body"), _body)
        if attr is FetchAttr.BODYSTRUCTURE:
            return b"BODYSTRUCTURE %s", *_cached(column("bodystructure"), _bodystructure)
        # RFC 9051 §6.4.5 (RFC 3501 §6.4.5): RFC822 is BODY[], RFC822.HEADER is
        # BODY.PEEK[HEADER], RFC822.TEXT is BODY[TEXT], each answered under its own name.
        if attr is FetchAttr.RFC822:
            return b"RFC822 %s", _read(lambda msg: _literal(msg.raw)), None
        if attr is FetchAttr.RFC822_HEADER:
            return b"RFC822.HEADER %s", _read(lambda msg: _literal(msg.header())), None
        if attr is FetchAttr.RFC822_TEXT:
            return b"RFC822.TEXT %s", _read(lambda msg: _literal(msg.text())), None
        section = item.section or Section()
        if attr is FetchAttr.BODY_SECTION:
            # RFC 9051 §7.5.2: "BODY" section ["<" number ">"] SP nstring — the section as
            # asked (BODY.PEEK answers as BODY), with the origin octet of a partial.
            name = b"BODY[" + section_spec(section) + b"]" + _origin(item.partial)
            return _piece(name), _read(_body_section(section, item.partial)), None
        if attr is FetchAttr.BINARY:
            # RFC 3516 §4.3: "BINARY" section-binary ["<" number ">"] SP (nstring / literal8)
            name = b"BINARY[" + _dotted(section.part).encode() + b"]" + _origin(item.partial)
            return _piece(name), _read(_binary(section, item.partial)), None
        if attr is FetchAttr.BINARY_SIZE:
            name = b"BINARY.SIZE[" + _dotted(section.part).encode() + b"]"
            return _piece(name), _read(_binary_size(section)), None
        raise ValueError(f"unknown fetch attribute {attr!r}")

    def _flags(self, fi: int, ki: int) -> tuple[_Getter, _Vector]:
        texts, pair = self._flag_texts, itemgetter(fi, ki)

        def getter(row: Row, msg: _Message | None) -> bytes:
            return texts[(row[fi], row[ki])]

        return getter, lambda rows: map(texts.__getitem__, map(pair, rows))

    def _internal_date(self, i: int) -> tuple[_Getter, _Vector]:
        tz = self._tz

        def date(timestamp: float) -> bytes:
            return format_date_time(timestamp, tz)

        return lambda row, msg: date(row[i]), lambda rows: map(date, map(itemgetter(i), rows))

    # -- rendering rows ---------------------------------------------------------------

    def rows_responses(
        self, plan: FetchPlan, seqs: Sequence[int], rows: Sequence[Row], directory: Path
    ) -> bytes:
        """Complete `* n FETCH (...)` lines (RFC 9051 §7.5.2) for aligned seqs and rows
        laid out as `plan.columns` (`Store.fetch_rows` of them); `directory` is the
        folder's, for the items that read message files. Raises `UnknownCte` (a
        `Refused`) for BINARY of an undecodable part, and whatever the reader raises when
        a file is gone."""
        line = b"* %d FETCH (" + plan.fmt + b")\r\n"
        meta_of = _row_meta(directory) if plan.full else _no_meta
        return b"".join(self._lines(plan, line, seqs, rows, meta_of))

    def _lines(
        self,
        plan: FetchPlan,
        fmt: bytes,
        seqs: Sequence[int] | None,
        rows: Sequence[Row],
        meta_of: _MetaOf,
    ) -> list[bytes]:
        """`fmt` filled for each row (preceded by its seq when `seqs` is given). When no
        row needs its message, the values come item by item from the plan's vectors: this
        is the whole cost of `UID FETCH 1:* (FLAGS)` (RFC 9051 §6.4.9 adds the UID), about
        a quarter of a microsecond per message. Otherwise rows that need their message (an
        item reads it, or a wire form is missing) get a `_Message` each, shared by its
        items, so a file is read at most once."""
        if seqs is not None and len(seqs) != len(rows):
            raise ValueError("seqs and rows differ in length")
        if plan.needs_raw or plan.missing_summaries(rows):
            return self._slow_lines(plan, fmt, seqs, rows, meta_of)
        # The fast path: one column of values per item, zipped and formatted in C.
        columns = [vector(rows) for vector in plan.vectors if vector is not None]
        values = zip(*columns, strict=True) if seqs is None else zip(seqs, *columns, strict=True)
        return list(map(fmt.__mod__, values))

    def _slow_lines(
        self,
        plan: FetchPlan,
        fmt: bytes,
        seqs: Sequence[int] | None,
        rows: Sequence[Row],
        meta_of: _MetaOf,
    ) -> list[bytes]:
        reader, getters, wire = self._reader, plan.getters, plan.wire
        out = []
        for n, row in enumerate(rows):
            msg = None
            if plan.needs_raw or any(row[i] is None for i in wire):
                msg = _Message(meta_of(n, row), None, reader)
            values = tuple([g(row, msg) for g in getters])
            out.append(fmt % (values if seqs is None else (seqs[n], *values)))
        return out

    # -- rendering MessageMetas -------------------------------------------------------

    def render(
        self,
        plan: FetchPlan,
        meta: MessageMeta,
        summary: Summary = None,
        raw: bytes | None = None,
    ) -> bytes:
        """The data of `* n FETCH (...)` for one message. `raw`: the message bytes when
        the caller already has them; otherwise they are read only if an item needs them.
        Raises like `rows_responses`."""
        (row,) = _meta_rows(plan, [meta], None if summary is None else [summary])
        msg = None
        if raw is not None or plan.needs_raw or any(row[i] is None for i in plan.wire):
            msg = _Message(meta, raw, self._reader)
        return plan.fmt % tuple([g(row, msg) for g in plan.getters])

    def render_many(
        self,
        plan: FetchPlan,
        metas: Sequence[MessageMeta],
        summaries: Sequence[Summary] | None = None,
    ) -> list[bytes]:
        """`render` for many messages (summaries aligned with metas, or None)."""
        rows = _meta_rows(plan, metas, summaries)
        return self._lines(plan, plan.fmt, None, rows, lambda n, row: metas[n])

    def responses(
        self,
        plan: FetchPlan,
        seqs: Sequence[int],
        metas: Sequence[MessageMeta],
        summaries: Sequence[Summary] | None = None,
    ) -> bytes:
        """`rows_responses` for aligned seqs and metas (and summaries, or None)."""
        line = b"* %d FETCH (" + plan.fmt + b")\r\n"
        rows = _meta_rows(plan, metas, summaries)
        return b"".join(self._lines(plan, line, seqs, rows, lambda n, row: metas[n]))


_Compiled = tuple[bytes, _Getter, _Vector | None]


class _FlagTexts(dict[tuple[str, str | tuple[str, ...]], bytes]):
    """`FLAGS (...)` by (letters, keywords), computed on first use: a folder has few
    distinct pairs, so a FLAGS fetch is one look-up per message."""

    def __missing__(self, key: tuple[str, str | tuple[str, ...]]) -> bytes:
        if len(self) >= _FLAG_CACHE_ENTRIES:
            self.clear()
        letters, keywords = key
        kws = tuple(keywords.split()) if isinstance(keywords, str) else keywords
        text = b"FLAGS (%s)" % " ".join(imap_flags(letters, kws)).encode("ascii", "replace")
        self[key] = text
        return text


def _value(i: int) -> tuple[_Getter, _Vector]:
    """An item whose value is column i as it is."""
    get = itemgetter(i)
    return (lambda row, msg: get(row)), (lambda rows: map(get, rows))


def _cached(i: int, from_file: _MessageFn) -> tuple[_Getter, _Vector]:
    """A summary item: the cached wire form, else computed from the message's file (the
    vector is only used when every row has the form)."""

    def getter(row: Row, msg: _Message | None) -> Any:
        value = row[i]
        if value is not None:
            return value
        assert msg is not None  # `_lines` gives one to a row without the wire form
        return from_file(msg)

    return getter, lambda rows: map(itemgetter(i), rows)


def _read(fn: _MessageFn) -> _Getter:
    """An item that reads the message (`_lines` gives every row one)."""

    def getter(row: Row, msg: _Message | None) -> bytes:
        assert msg is not None
        return fn(msg)

    return getter


def _row_meta(directory: Path) -> _MetaOf:
    """A row's `MessageMeta`, from the META_COLUMNS a full plan's rows start with."""

    def meta_of(n: int, row: Row) -> MessageMeta:
        uid, flags, keywords, modseq, date, size, file = row[:7]
        kws = tuple(keywords.split()) if isinstance(keywords, str) else tuple(keywords)
        return MessageMeta(uid, flags, kws, modseq, date, size, directory, file)

    return meta_of


def _no_meta(n: int, row: Row) -> MessageMeta:
    raise LookupError("the plan's rows carry no file columns (use plan.with_files())")


def _meta_rows(
    plan: FetchPlan, metas: Sequence[MessageMeta], summaries: Sequence[Summary] | None
) -> list[Row]:
    """Rows laid out as `plan.columns` from metas (and aligned summaries): meta columns
    by attribute, wire columns from the summary (a `CachedSummary` rendered now)."""
    if summaries is not None and len(summaries) != len(metas):
        raise ValueError("metas and summaries differ in length")
    columns = plan.columns
    if not plan.wire:
        get = attrgetter(*(_META_ATTRS[c] for c in columns))
        if len(columns) == 1:
            return [(get(m),) for m in metas]
        return list(map(get, metas))
    sums: Sequence[Summary] = [None] * len(metas) if summaries is None else summaries
    return [
        tuple(_wire_of(s, c) if c in WIRE_COLUMNS else getattr(m, _META_ATTRS[c]) for c in columns)
        for m, s in zip(metas, sums, strict=True)
    ]


def _wire_of(summary: Summary, column: str) -> bytes | None:
    if isinstance(summary, WireForms):
        value: bytes | None = getattr(summary, column)
        return value
    if isinstance(summary, CachedSummary):
        if column == "envelope":
            return None if summary.envelope is None else envelope_wire(summary.envelope)
        if summary.bodystructure is None:
            return None
        if column == "body":
            return body_wire(summary.bodystructure)
        return bodystructure_wire(summary.bodystructure)
    return None


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


# -- the summary items, from the file ---------------------------------------------------------


def _envelope(msg: _Message) -> bytes:
    return envelope_wire(msg.analysis().envelope)


def _body(msg: _Message) -> bytes:
    return body_wire(msg.analysis().bodystructure)


def _bodystructure(msg: _Message) -> bytes:
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
    def value(msg: _Message) -> bytes:
        data = msg.section(section)
        return b"NIL" if data is None else _literal(_partial(data, partial))

    return value


def _binary(section: Section, partial: tuple[int, int] | None) -> _MessageFn:
    def value(msg: _Message) -> bytes:
        data = msg.binary(section.part)
        return b"NIL" if data is None else _literal(_partial(data, partial), binary=True)

    return value


def _binary_size(section: Section) -> _MessageFn:
    def value(msg: _Message) -> bytes:
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

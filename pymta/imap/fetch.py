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
  through the renderer's `reader` (plans with these items always carry the file columns);
  those items, the message's sections, BINARY decoding and line ends are
  `fetch_sections.py`'s.

\\Seen: `FetchPlan.sets_seen` says whether the command implicitly sets \\Seen (RFC 9051
§6.4.5: BODY[...] and BINARY[...] without .PEEK, RFC822, RFC822.TEXT). The session sets
the flag before rendering and renders with `plan.with_flags()` for the messages whose
flags changed ("they SHOULD be included as part of the FETCH responses").
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any

from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire
from pymta.store.flags import imap_flags
from pymta.store.model import CachedSummary, MessageMeta

from .command import FetchAttr, FetchItem
from .fetch_sections import RAW_ATTRS, Message, MessageFn, UnknownCte, message_item
from .rows import META_COLUMNS, Reader, Row, read_file

__all__ = [
    "META_COLUMNS",
    "WIRE_COLUMNS",
    "FetchPlan",
    "FetchRenderer",
    "Reader",
    "Row",
    "Summary",
    "UnknownCte",
    "WireForms",
    "format_date_time",
    "read_file",
    "sets_seen",
]

# The store's cached wire forms, and the summary attribute each comes from.
WIRE_COLUMNS = ("envelope", "body", "bodystructure")

_MONTHS = b"Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
# Distinct flag sets remembered by one renderer; a folder rarely has more than a few dozen.
_FLAG_CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class WireForms:
    """The FETCH forms of one message as the store may cache them (`mime.imapform`)."""

    envelope: bytes | None = None
    body: bytes | None = None
    bodystructure: bytes | None = None


Summary = WireForms | CachedSummary | None

# One compiled item's value: (row, message or None) -> bytes or int, formatted into the
# plan's format string; the message is None unless an item needs the file.
_Getter = Callable[[Row, Message | None], bytes | int]
# The same for many rows at once, as one iterator built of C-level maps (the fast path: no
# item needs a file); None for the items that read the message.
_Vector = Callable[[Sequence[Row]], Iterable[Any]]
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
        needs_raw = any(i.attr in RAW_ATTRS for i in items)
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
        # RFC822, BODY[...], BINARY[...] and the like: read from the message.
        piece, value = message_item(item)
        return piece, _read(value), None

    def _flags(self, fi: int, ki: int) -> tuple[_Getter, _Vector]:
        texts, pair = self._flag_texts, itemgetter(fi, ki)

        def getter(row: Row, msg: Message | None) -> bytes:
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
        item reads it, or a wire form is missing) get a `Message` each, shared by its
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
                msg = Message(meta_of(n, row), None, reader)
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
            msg = Message(meta, raw, self._reader)
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


def _cached(i: int, from_file: MessageFn) -> tuple[_Getter, _Vector]:
    """A summary item: the cached wire form, else computed from the message's file (the
    vector is only used when every row has the form)."""

    def getter(row: Row, msg: Message | None) -> Any:
        value = row[i]
        if value is not None:
            return value
        assert msg is not None  # `_lines` gives one to a row without the wire form
        return from_file(msg)

    return getter, lambda rows: map(itemgetter(i), rows)


def _read(fn: MessageFn) -> _Getter:
    """An item that reads the message (`_lines` gives every row one)."""

    def getter(row: Row, msg: Message | None) -> bytes:
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


def _envelope(msg: Message) -> bytes:
    return envelope_wire(msg.analysis().envelope)


def _body(msg: Message) -> bytes:
    return body_wire(msg.analysis().bodystructure)


def _bodystructure(msg: Message) -> bytes:
    return bodystructure_wire(msg.analysis().bodystructure)

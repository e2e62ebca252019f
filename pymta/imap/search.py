"""SEARCH evaluation (RFC 9051 §6.4.4, RFC 5032 WITHIN, RFC 5182 SEARCHRES, RFC 7162 MODSEQ).
The result and its SEARCH / ESEARCH responses (RFC 4731, RFC 9051 §7.3.4) are
`search_results.py`'s; its names are importable from here too.

A `SearchKey` tree is compiled once into one predicate per message, then run over the
folder's index rows in mailbox order: `Store.fetch_rows` of `search_columns(key)`, just
the columns the key reads, one query per SEARCH and nothing kept between searches. Keys
cost one of three levels (`search_plan.py` works out the columns and the costs), and
AND/OR evaluate their operands cheapest first, so the costly ones run only on messages
the cheap ones let through:

0. the message's own columns: flags, keywords, sequence numbers, UIDs, size, internal
   date, WITHIN, MODSEQ;
1. the search forms the store keeps with each message's summary (`mime.text.search_forms`:
   decoded, case-folded ENVELOPE fields): SUBJECT, FROM, TO, CC, BCC, HEADER of those and
   of Date / In-Reply-To / Message-ID, SENTBEFORE/ON/SINCE. A SUBJECT search is one
   column and one substring test per message;
2. the message file: HEADER of other fields, BODY, TEXT. Files are read one at a time
   through the injected reader, only for messages that reached such a key, and each at
   most once per search (`mime.text.MessageText`: transfer encodings and charsets of
   text parts are decoded, RFC 9051 §6.4.4: "content transfer encodings and [MIME-HDRS]
   strings ... MUST be decoded before comparing text").

Matching: substring, case-insensitive by Unicode case folding (RFC 9051 §6.4.4: "SHOULD be
case insensitive for characters within the ASCII range"), header text RFC 2047-decoded.
Search strings arrive as str (the parser decodes them as UTF-8; US-ASCII is a subset).

Dates (RFC 9051 §6.4.4): BEFORE/ON/SINCE compare the internal date's day in the server's
timezone; SENTBEFORE/ON/SINCE the day written in the Date: header, its timezone ignored.
A message without a readable Date: is compared by its internal date (as RFC 5256 §2.2
does for sorting).
"""

from __future__ import annotations

import bisect
import datetime
import logging
import time
from collections.abc import Callable, Collection, Sequence
from pathlib import Path

from pymta.mime.text import MessageText, header_form
from pymta.store.model import MessageMeta

from .command import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSequence,
    SearchSize,
    SearchWithin,
    SeqRange,
)
from .rows import META_COLUMNS, Reader, Row, read_file
from .search_plan import (
    CHEAP,
    FIELD_COLUMNS,
    FILE,
    FLAG_LETTERS,
    SENT_COLUMN,
    SUMMARY,
    indexed_field,
    needs_files,
    search_columns,
)
from .search_results import (
    SearchResult,
    esearch_data,
    esearch_suppressed,
    saved_result,
    search_response,
    sequence_set,
)

__all__ = [
    "FIELD_COLUMNS",
    "META_COLUMNS",
    "SENT_COLUMN",
    "SUPPORTED_CHARSETS",
    "Clock",
    "Predicate",
    "Reader",
    "Row",
    "SearchResult",
    "Searcher",
    "esearch_data",
    "esearch_suppressed",
    "needs_files",
    "read_file",
    "saved_result",
    "search_columns",
    "search_response",
    "sequence_set",
]

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# RFC 9051 §6.4.4: "Servers MUST support US-ASCII and UTF-8 charsets". Anything else is
# answered NO [BADCHARSET (US-ASCII UTF-8)] by the session.
SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")


# -- evaluation -------------------------------------------------------------------------------

Predicate = Callable[[int, Row], bool]


class Searcher:
    """Evaluates SEARCH keys. Collaborators are injected: `tz` is the server's timezone for
    internal dates (None: the system's local time), `clock` gives "now" for WITHIN,
    `reader` reads a message file (it may raise FileNotFoundError / OSError for a message
    gone meanwhile, which then matches no file key)."""

    def __init__(
        self,
        *,
        tz: datetime.tzinfo | None = None,
        clock: Clock = time.time,
        reader: Reader = read_file,
    ) -> None:
        self._tz = tz
        self._clock = clock
        self._reader = reader

    def search(
        self,
        key: SearchKey,
        rows: Sequence[Row],
        columns: Sequence[str],
        *,
        seqs: Sequence[int] | None = None,
        directory: Path | None = None,
        max_seq: int | None = None,
        max_uid: int | None = None,
        saved: Collection[int] = (),
    ) -> SearchResult:
        """The messages among `rows` (laid out as `columns`, which must hold those of
        `search_columns(key)`; in mailbox order) that match `key`.

        `seqs` are the rows' sequence numbers (default 1, 2, ...); `directory` the
        folder's, that the rows' "file" is relative to. `max_seq` / `max_uid` are what "*"
        means (RFC 9051 §9 seq-number: the highest number in use, i.e. the session's view,
        which may hold expunged messages not yet announced); they default to the last of
        `rows`. `saved` is the "$" set, as UIDs (RFC 5182).
        """
        if seqs is None:
            seqs = range(1, len(rows) + 1)
        if len(seqs) != len(rows):
            raise ValueError("seqs and rows differ in length")
        if max_seq is None:
            max_seq = seqs[-1] if seqs else 0
        if max_uid is None:
            max_uid = rows[-1][0] if rows else 0
        missing = set(search_columns(key)) - set(columns)
        if missing:
            raise ValueError(f"search rows lack columns {sorted(missing)!r}")
        run = _Run(self, columns, directory or Path(), max_seq, max_uid, frozenset(saved))
        predicate = run.compile(key)[1]
        matched = [(q, row) for q, row in zip(seqs, rows, strict=True) if predicate(q, row)]
        top = 0
        if matched and "modseq" in columns:
            at = list(columns).index("modseq")
            top = max(row[at] for _, row in matched)
        if run.files.opened:
            log.debug("imap.search_files opened=%d matched=%d", run.files.opened, len(matched))
        return SearchResult([q for q, _ in matched], [row[0] for _, row in matched], top)

    @property
    def reader(self) -> Reader:
        return self._reader

    def now(self) -> float:
        return self._clock()

    def day_start(self, day: datetime.date) -> float:
        """The first second of `day` in the server's timezone, as a POSIX timestamp."""
        if self._tz is None:
            return time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1))
        return datetime.datetime(day.year, day.month, day.day, tzinfo=self._tz).timestamp()

    def day_of(self, timestamp: float) -> int:
        """The day (proleptic ordinal) of a timestamp in the server's timezone."""
        if self._tz is None:
            t = time.localtime(timestamp)
            return datetime.date(t.tm_year, t.tm_mon, t.tm_mday).toordinal()
        return datetime.datetime.fromtimestamp(timestamp, self._tz).date().toordinal()


class _Run:
    """One search: the compiled predicates and the per-search state they share."""

    def __init__(
        self,
        searcher: Searcher,
        columns: Sequence[str],
        directory: Path,
        max_seq: int,
        max_uid: int,
        saved: frozenset[int],
    ) -> None:
        self.searcher = searcher
        self.at = {name: i for i, name in reversed(list(enumerate(columns)))}
        self.max_seq = max_seq
        self.max_uid = max_uid
        self.saved = saved
        meta_of = _row_meta(self.at, directory) if "file" in self.at else None
        self.files = _Files(searcher.reader, meta_of)

    def compile(self, key: SearchKey) -> tuple[int, Predicate]:
        """(cost, predicate) of a key."""
        at = self.at
        if isinstance(key, SearchAnd):
            return self._and(key.keys)
        if isinstance(key, SearchOr):
            return self._or(key.left, key.right)
        if isinstance(key, SearchNot):
            cost, inner = self.compile(key.key)
            return cost, lambda seq, r: not inner(seq, r)
        if isinstance(key, SearchAll):
            return CHEAP, lambda seq, r: True
        if isinstance(key, SearchFlag):
            return CHEAP, _flag(key, at)
        if isinstance(key, SearchSequence):
            return CHEAP, self._sequence(key)
        if isinstance(key, SearchSize):
            size, si = key.size, at["size"]
            if key.larger:
                return CHEAP, lambda seq, r: r[si] > size
            return CHEAP, lambda seq, r: r[si] < size
        if isinstance(key, SearchModseq):
            # RFC 7162 §3.1.5: messages whose mod-sequence is "equal to or greater than".
            value, mi = key.modseq, at["modseq"]
            return CHEAP, lambda seq, r: r[mi] >= value
        if isinstance(key, SearchWithin):
            return CHEAP, self._within(key)
        if isinstance(key, SearchDate):
            if key.field is DateField.INTERNAL:
                return CHEAP, self._internal_date(key)
            return SUMMARY, self._sent_date(key)
        if isinstance(key, SearchHeader):
            return self._header(key)
        if isinstance(key, SearchBody):
            return FILE, self._body(key)
        raise ValueError(f"unknown search key {key!r}")

    def _and(self, keys: Sequence[SearchKey]) -> tuple[int, Predicate]:
        if not keys:
            return CHEAP, lambda seq, r: True
        # Cheapest first, so a message reaches a file key only if every cheap key matched.
        compiled = sorted((self.compile(k) for k in keys), key=lambda c: c[0])
        cost = compiled[-1][0]
        preds = [p for _, p in compiled]
        if len(preds) == 1:
            return cost, preds[0]
        if len(preds) == 2:
            first, second = preds
            return cost, lambda seq, r: first(seq, r) and second(seq, r)
        return cost, lambda seq, r: all(p(seq, r) for p in preds)

    def _or(self, left: SearchKey, right: SearchKey) -> tuple[int, Predicate]:
        (_, p1), (c2, p2) = sorted((self.compile(left), self.compile(right)), key=lambda c: c[0])
        return c2, lambda seq, r: p1(seq, r) or p2(seq, r)

    def _sequence(self, key: SearchSequence) -> Predicate:
        if key.set.saved:
            saved = self.saved  # RFC 5182 §2.1: "$" is the saved result, kept as UIDs
            return lambda seq, r: r[0] in saved
        star = self.max_uid if key.uid else self.max_seq
        lows, highs = _merge_ranges(key.set.ranges, star)
        if key.uid:
            return lambda seq, r: _in_ranges(r[0], lows, highs)
        return lambda seq, r: _in_ranges(seq, lows, highs)

    def _within(self, key: SearchWithin) -> Predicate:
        # RFC 5032 §2: the target is now minus the interval; OLDER matches an internal date
        # "less recent than or equal to" it, YOUNGER "more recent than or equal to" it.
        target, di = self.searcher.now() - key.seconds, self.at["internal_date"]
        if key.older:
            return lambda seq, r: r[di] <= target
        return lambda seq, r: r[di] >= target

    def _internal_date(self, key: SearchDate) -> Predicate:
        # RFC 9051 §6.4.4: the internal date's day, "disregarding time and timezone", taken
        # in the server's timezone: compare with the bounds of that day.
        start = self.searcher.day_start(key.date)
        end = self.searcher.day_start(key.date + datetime.timedelta(days=1))
        di = self.at["internal_date"]
        if key.op is DateOp.BEFORE:
            return lambda seq, r: r[di] < start
        if key.op is DateOp.SINCE:
            return lambda seq, r: r[di] >= start
        return lambda seq, r: start <= r[di] < end

    def _sent_date(self, key: SearchDate) -> Predicate:
        day = key.date.toordinal()
        si, di = self.at[SENT_COLUMN], self.at["internal_date"]
        day_of = self.searcher.day_of

        def sent(r: Row) -> int:
            value = r[si]
            return value if isinstance(value, int) else day_of(r[di])

        if key.op is DateOp.BEFORE:
            return lambda seq, r: sent(r) < day
        if key.op is DateOp.SINCE:
            return lambda seq, r: sent(r) >= day
        return lambda seq, r: sent(r) == day

    def _header(self, key: SearchHeader) -> tuple[int, Predicate]:
        needle = header_form(key.value) if key.value.strip() else key.value
        field = indexed_field(key)
        if field is not None:
            i = self.at[FIELD_COLUMNS[field]]

            def indexed(seq: int, r: Row) -> bool:
                value = r[i]
                return value is not None and needle in value

            return SUMMARY, indexed
        name, files = key.field.lower(), self.files

        def in_file(seq: int, r: Row) -> bool:
            doc = files.get(r)
            return doc is not None and any(needle in v for v in doc.header_values(name))

        return FILE, in_file

    def _body(self, key: SearchBody) -> Predicate:
        needle = key.text.casefold()
        files = self.files
        include_headers = key.include_headers

        def predicate(seq: int, r: Row) -> bool:
            doc = files.get(r)
            if doc is None:
                return False
            if include_headers and needle in doc.header_text():
                return True
            return needle in doc.body_text()

        return predicate


def _flag(key: SearchFlag, at: dict[str, int]) -> Predicate:
    present = key.present
    name = key.flag.lower()
    if name == "\\recent":
        # \Recent is not kept (RFC 9051 removed it): no message is recent. RECENT and NEW
        # match nothing, OLD everything.
        return lambda seq, r: not present
    letter = FLAG_LETTERS.get(name)
    if letter is not None:
        fi = at["flags"]
        if present:
            return lambda seq, r: letter in r[fi]
        return lambda seq, r: letter not in r[fi]
    if name.startswith("\\"):
        return lambda seq, r: not present  # a system flag we do not know is never set
    ki = at["keywords"]

    def has_keyword(seq: int, r: Row) -> bool:
        # RFC 9051 §9 note 5: flag names are case-insensitive.
        keywords = r[ki]
        if not keywords:
            return not present
        words = keywords.split() if isinstance(keywords, str) else keywords
        return any(k.lower() == name for k in words) == present

    return has_keyword


def _merge_ranges(ranges: Sequence[SeqRange], star: int) -> tuple[list[int], list[int]]:
    """Inclusive ranges with "*" resolved (RFC 9051 §9 seq-range: unordered), merged and
    sorted as parallel lists of lows and highs for bisection."""
    spans = []
    for r in ranges:
        first = star if r.first is None else r.first
        last = star if r.last is None else r.last
        spans.append((min(first, last), max(first, last)))
    spans.sort()
    lows: list[int] = []
    highs: list[int] = []
    for lo, hi in spans:
        if highs and lo <= highs[-1] + 1:
            highs[-1] = max(highs[-1], hi)
        else:
            lows.append(lo)
            highs.append(hi)
    return lows, highs


def _in_ranges(n: int, lows: list[int], highs: list[int]) -> bool:
    i = bisect.bisect_right(lows, n) - 1
    return i >= 0 and n <= highs[i]


# -- message files ----------------------------------------------------------------------------


def _row_meta(at: dict[str, int], directory: Path) -> Callable[[Row], MessageMeta]:
    """A row's `MessageMeta` (for the reader), from its META_COLUMNS."""
    ui, fi, ki, mi, di, si, pi = (at[c] for c in META_COLUMNS)

    def meta_of(r: Row) -> MessageMeta:
        keywords = r[ki]
        kws = tuple(keywords.split()) if isinstance(keywords, str) else tuple(keywords)
        return MessageMeta(r[ui], r[fi], kws, r[mi], r[di], r[si], directory, r[pi])

    return meta_of


class _Files:
    """The file of the message being evaluated: read on first need, kept until the search
    moves to the next message (so several file keys read it once)."""

    __slots__ = ("_doc", "_meta_of", "_reader", "_uid", "opened")

    def __init__(self, reader: Reader, meta_of: Callable[[Row], MessageMeta] | None) -> None:
        self._reader = reader
        self._meta_of = meta_of
        self._uid = -1
        self._doc: MessageText | None = None
        self.opened = 0

    def get(self, row: Row) -> MessageText | None:
        uid = row[0]
        if uid != self._uid:
            self._uid = uid
            if self._meta_of is None:
                raise ValueError("search rows lack the file columns")
            meta = self._meta_of(row)
            try:
                raw = self._reader(meta)
            except OSError as exc:
                # Expunged or renamed meanwhile: the message matches no file key.
                log.info("imap.search_unreadable uid=%d error=%s", uid, type(exc).__name__)
                self._doc = None
            else:
                self.opened += 1
                self._doc = MessageText(raw)
        return self._doc

"""SEARCH evaluation (RFC 9051 §6.4.4, RFC 5032 WITHIN, RFC 5182 SEARCHRES, RFC 7162 MODSEQ)
and the ESEARCH result (RFC 4731, RFC 9051 §7.3.4).

A `SearchKey` tree is compiled once into one predicate per message, then run over the
messages in mailbox order. Keys cost one of three levels, and AND/OR evaluate their
operands cheapest first, so the costly ones run only on messages the cheap ones let
through:

0. the `MessageMeta`: flags, keywords, sequence numbers, UIDs, size, internal date, WITHIN,
   MODSEQ;
1. the `SummaryCache`: decoded, case-folded ENVELOPE fields (SUBJECT, FROM, TO, CC, BCC,
   HEADER of an envelope field, SENTBEFORE/ON/SINCE). The session fills it from the store's
   cached summaries before searching (`summary_fields`, `SummaryCache.missing/add`), once
   per selected mailbox: a SUBJECT search is then one dictionary look-up and one substring
   test per message;
2. the message file: HEADER of other fields, BODY, TEXT. Files are read one at a time
   through the injected reader, only for messages that reached such a key, and each at
   most once per search. Transfer encodings and charsets of text parts are decoded, so a
   base64 body is searchable (RFC 9051 §6.4.4: "content transfer encodings and [MIME-HDRS]
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

import binascii
import bisect
import datetime
import email.utils
import logging
import re
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from pymta.mime.bodystructure import DEFAULT_LIMITS, split_multipart
from pymta.mime.headers import (
    decode_text,
    header_end,
    merge_rfc2231,
    parse_content_type,
    parse_encoding,
    parse_fields,
)
from pymta.store.flags import LETTER_NAMES
from pymta.store.model import CachedSummary, MessageMeta

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
    SearchReturn,
    SearchSequence,
    SearchSize,
    SearchWithin,
    SeqRange,
)

log = logging.getLogger(__name__)

Reader = Callable[[MessageMeta], bytes]
Clock = Callable[[], float]

# RFC 9051 §6.4.4: "Servers MUST support US-ASCII and UTF-8 charsets". Anything else is
# answered NO [BADCHARSET (US-ASCII UTF-8)] by the session.
SUPPORTED_CHARSETS = ("US-ASCII", "UTF-8")

# Summary fields the cache can hold: the text fields of the ENVELOPE (RFC 9051 §7.5.2),
# indexed as in `mime.envelope`, and "sent", the day of the Date: header.
_TEXT_FIELDS = {"date": 0, "subject": 1, "in-reply-to": 8, "message-id": 9}
_ADDRESS_FIELDS = {"from": 2, "to": 5, "cc": 6, "bcc": 7}
SENT = "sent"

_FLAG_LETTERS = {name.lower(): letter for letter, name in LETTER_NAMES.items()}

_CHEAP, _SUMMARY, _FILE = 0, 1, 2


@dataclass(frozen=True)
class SearchResult:
    """The matching messages in mailbox order, and the highest MODSEQ among them (RFC 7162
    §3.1.5, 0 when nothing matched)."""

    seqs: list[int]
    uids: list[int]
    highest_modseq: int


# -- the summary cache ------------------------------------------------------------------------

_MISSING = object()


class SummaryCache:
    """Per selected mailbox: decoded, case-folded header values by UID, one table per field.

    A message's summary never changes, so entries stay valid until the message is
    expunged (`forget`). Only the fields a search needed are kept.
    """

    def __init__(self) -> None:
        self._tables: dict[str, dict[int, str | int | None]] = {}

    def missing(self, uids: Iterable[int], fields: Collection[str]) -> list[int]:
        """The UIDs lacking one of `fields`: ask the store for their summaries."""
        tables = [self._tables.get(f, {}) for f in fields]
        return [u for u in uids if any(u not in t for t in tables)]

    def add(self, summaries: Iterable[CachedSummary], fields: Collection[str]) -> None:
        """Fill `fields` from the store's summaries (those without an envelope are skipped:
        their messages are searched in the file)."""
        tables = [(f, self._tables.setdefault(f, {})) for f in fields]
        for s in summaries:
            envelope = s.envelope
            if not isinstance(envelope, list) or len(envelope) < 10:
                continue
            for name, table in tables:
                table[s.uid] = _envelope_value(envelope, name)

    def forget(self, uids: Iterable[int]) -> None:
        gone = set(uids)
        for table in self._tables.values():
            for u in gone:
                table.pop(u, None)

    def table(self, name: str) -> dict[int, str | int | None]:
        return self._tables.setdefault(name, {})


def _envelope_value(envelope: list[object], name: str) -> str | int | None:
    if name == SENT:
        date = envelope[0]
        return sent_day(date) if isinstance(date, str) else None
    index = _TEXT_FIELDS.get(name)
    if index is not None:
        value = envelope[index]
        return header_form(value) if isinstance(value, str) else None
    index = _ADDRESS_FIELDS[name]
    return address_text(envelope[index])


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


def summary_fields(key: SearchKey) -> frozenset[str]:
    """The `SummaryCache` fields a search needs, so the session can fill the cache first."""
    found: set[str] = set()
    _collect_fields(key, found)
    return frozenset(found)


def _collect_fields(key: SearchKey, found: set[str]) -> None:
    if isinstance(key, SearchAnd):
        for k in key.keys:
            _collect_fields(k, found)
    elif isinstance(key, SearchOr):
        _collect_fields(key.left, found)
        _collect_fields(key.right, found)
    elif isinstance(key, SearchNot):
        _collect_fields(key.key, found)
    elif isinstance(key, SearchHeader):
        name = _cached_field(key)
        if name is not None:
            found.add(name)
    elif isinstance(key, SearchDate) and key.field is DateField.SENT:
        found.add(SENT)


def _cached_field(key: SearchHeader) -> str | None:
    """The cache field that answers a header key, or None when the file must be read.

    Sender and Reply-To are not cached: the ENVELOPE copies From into them when they are
    absent (RFC 9051 §7.5.2). An empty address search is a presence test, and the ENVELOPE
    cannot tell an empty address field from a missing one.
    """
    name = key.field.lower()
    if name in _TEXT_FIELDS:
        return name
    if name in _ADDRESS_FIELDS and key.value:
        return name
    return None


def needs_files(key: SearchKey) -> bool:
    """Whether the search may read message files (run it off the event loop then)."""
    return _cost(key) >= _FILE


def _cost(key: SearchKey) -> int:
    if isinstance(key, SearchAnd):
        return max((_cost(k) for k in key.keys), default=_CHEAP)
    if isinstance(key, SearchOr):
        return max(_cost(key.left), _cost(key.right))
    if isinstance(key, SearchNot):
        return _cost(key.key)
    if isinstance(key, SearchBody):
        return _FILE
    if isinstance(key, SearchHeader):
        return _SUMMARY if _cached_field(key) is not None else _FILE
    if isinstance(key, SearchDate) and key.field is DateField.SENT:
        return _SUMMARY
    return _CHEAP


# -- evaluation -------------------------------------------------------------------------------

Predicate = Callable[[int, MessageMeta], bool]


def read_file(meta: MessageMeta) -> bytes:
    """The default reader: the message file itself."""
    return meta.path.read_bytes()


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
        messages: Sequence[tuple[int, MessageMeta]],
        *,
        cache: SummaryCache | None = None,
        max_seq: int | None = None,
        max_uid: int | None = None,
        saved: Collection[int] = (),
    ) -> SearchResult:
        """The messages among `messages` ((seq, meta) in mailbox order) that match `key`.

        `max_seq` / `max_uid` are what "*" means (RFC 9051 §9 seq-number: the highest number
        in use, i.e. the session's view, which may hold expunged messages not yet announced);
        they default to the last of `messages`. `saved` is the "$" set, as UIDs (RFC 5182).
        """
        if max_seq is None:
            max_seq = messages[-1][0] if messages else 0
        if max_uid is None:
            max_uid = messages[-1][1].uid if messages else 0
        run = _Run(self, cache or SummaryCache(), max_seq, max_uid, frozenset(saved))
        predicate = run.compile(key)[1]
        seqs: list[int] = []
        uids: list[int] = []
        top = 0
        for seq, meta in messages:
            if predicate(seq, meta):
                seqs.append(seq)
                uids.append(meta.uid)
                if meta.modseq > top:
                    top = meta.modseq
        if run.files.opened:
            log.debug("imap.search_files opened=%d matched=%d", run.files.opened, len(seqs))
        return SearchResult(seqs, uids, top)

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
        cache: SummaryCache,
        max_seq: int,
        max_uid: int,
        saved: frozenset[int],
    ) -> None:
        self.searcher = searcher
        self.cache = cache
        self.max_seq = max_seq
        self.max_uid = max_uid
        self.saved = saved
        self.files = _Files(searcher.reader)

    def compile(self, key: SearchKey) -> tuple[int, Predicate]:
        """(cost, predicate) of a key."""
        if isinstance(key, SearchAnd):
            return self._and(key.keys)
        if isinstance(key, SearchOr):
            return self._or(key.left, key.right)
        if isinstance(key, SearchNot):
            cost, inner = self.compile(key.key)
            return cost, lambda seq, m: not inner(seq, m)
        if isinstance(key, SearchAll):
            return _CHEAP, lambda seq, m: True
        if isinstance(key, SearchFlag):
            return _CHEAP, _flag(key)
        if isinstance(key, SearchSequence):
            return _CHEAP, self._sequence(key)
        if isinstance(key, SearchSize):
            size = key.size
            if key.larger:
                return _CHEAP, lambda seq, m: m.size > size
            return _CHEAP, lambda seq, m: m.size < size
        if isinstance(key, SearchModseq):
            # RFC 7162 §3.1.5: messages whose mod-sequence is "equal to or greater than".
            value = key.modseq
            return _CHEAP, lambda seq, m: m.modseq >= value
        if isinstance(key, SearchWithin):
            return _CHEAP, self._within(key)
        if isinstance(key, SearchDate):
            if key.field is DateField.INTERNAL:
                return _CHEAP, self._internal_date(key)
            return _SUMMARY, self._sent_date(key)
        if isinstance(key, SearchHeader):
            return self._header(key)
        if isinstance(key, SearchBody):
            return _FILE, self._body(key)
        raise ValueError(f"unknown search key {key!r}")

    def _and(self, keys: Sequence[SearchKey]) -> tuple[int, Predicate]:
        if not keys:
            return _CHEAP, lambda seq, m: True
        # Cheapest first, so a message reaches a file key only if every cheap key matched.
        compiled = sorted((self.compile(k) for k in keys), key=lambda c: c[0])
        cost = compiled[-1][0]
        preds = [p for _, p in compiled]
        if len(preds) == 1:
            return cost, preds[0]
        if len(preds) == 2:
            first, second = preds
            return cost, lambda seq, m: first(seq, m) and second(seq, m)
        return cost, lambda seq, m: all(p(seq, m) for p in preds)

    def _or(self, left: SearchKey, right: SearchKey) -> tuple[int, Predicate]:
        (_, p1), (c2, p2) = sorted((self.compile(left), self.compile(right)), key=lambda c: c[0])
        return c2, lambda seq, m: p1(seq, m) or p2(seq, m)

    def _sequence(self, key: SearchSequence) -> Predicate:
        if key.set.saved:
            saved = self.saved  # RFC 5182 §2.1: "$" is the saved result, kept as UIDs
            return lambda seq, m: m.uid in saved
        star = self.max_uid if key.uid else self.max_seq
        lows, highs = _merge_ranges(key.set.ranges, star)
        if key.uid:
            return lambda seq, m: _in_ranges(m.uid, lows, highs)
        return lambda seq, m: _in_ranges(seq, lows, highs)

    def _within(self, key: SearchWithin) -> Predicate:
        # RFC 5032 §2: the target is now minus the interval; OLDER matches an internal date
        # "less recent than or equal to" it, YOUNGER "more recent than or equal to" it.
        target = self.searcher.now() - key.seconds
        if key.older:
            return lambda seq, m: m.internal_date <= target
        return lambda seq, m: m.internal_date >= target

    def _internal_date(self, key: SearchDate) -> Predicate:
        # RFC 9051 §6.4.4: the internal date's day, "disregarding time and timezone", taken
        # in the server's timezone: compare with the bounds of that day.
        start = self.searcher.day_start(key.date)
        end = self.searcher.day_start(key.date + datetime.timedelta(days=1))
        if key.op is DateOp.BEFORE:
            return lambda seq, m: m.internal_date < start
        if key.op is DateOp.SINCE:
            return lambda seq, m: m.internal_date >= start
        return lambda seq, m: start <= m.internal_date < end

    def _sent_date(self, key: SearchDate) -> Predicate:
        day = key.date.toordinal()
        table = self.cache.table(SENT)
        files = self.files
        day_of = self.searcher.day_of

        def sent(m: MessageMeta) -> int:
            value = table.get(m.uid, _MISSING)
            if value is _MISSING:
                doc = files.get(m)
                value = doc.sent_day() if doc is not None else None
            return value if isinstance(value, int) else day_of(m.internal_date)

        if key.op is DateOp.BEFORE:
            return lambda seq, m: sent(m) < day
        if key.op is DateOp.SINCE:
            return lambda seq, m: sent(m) >= day
        return lambda seq, m: sent(m) == day

    def _header(self, key: SearchHeader) -> tuple[int, Predicate]:
        needle = header_form(key.value) if key.value.strip() else key.value
        name = key.field.lower()
        files = self.files

        def in_file(m: MessageMeta) -> bool:
            doc = files.get(m)
            if doc is None:
                return False
            return any(needle in v for v in doc.header_values(name))

        cached = _cached_field(key)
        if cached is None:
            return _FILE, lambda seq, m: in_file(m)
        table = self.cache.table(cached)

        def predicate(seq: int, m: MessageMeta) -> bool:
            value = table.get(m.uid, _MISSING)
            if value is _MISSING:
                return in_file(m)  # no cached summary: read the file
            return isinstance(value, str) and needle in value

        return _SUMMARY, predicate

    def _body(self, key: SearchBody) -> Predicate:
        needle = key.text.casefold()
        files = self.files
        include_headers = key.include_headers

        def predicate(seq: int, m: MessageMeta) -> bool:
            doc = files.get(m)
            if doc is None:
                return False
            if include_headers and needle in doc.header_text():
                return True
            return needle in doc.body_text()

        return predicate


def _flag(key: SearchFlag) -> Predicate:
    present = key.present
    name = key.flag.lower()
    if name == "\\recent":
        # \Recent is not kept (RFC 9051 removed it): no message is recent. RECENT and NEW
        # match nothing, OLD everything.
        return lambda seq, m: not present
    letter = _FLAG_LETTERS.get(name)
    if letter is not None:
        if present:
            return lambda seq, m: letter in m.flags
        return lambda seq, m: letter not in m.flags
    if name.startswith("\\"):
        return lambda seq, m: not present  # a system flag we do not know is never set

    def has_keyword(seq: int, m: MessageMeta) -> bool:
        # RFC 9051 §9 note 5: flag names are case-insensitive.
        return any(k.lower() == name for k in m.keywords) == present

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


class _Files:
    """The file of the message being evaluated: read on first need, kept until the search
    moves to the next message (so several file keys read it once)."""

    __slots__ = ("_doc", "_reader", "_uid", "opened")

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._uid = -1
        self._doc: _Doc | None = None
        self.opened = 0

    def get(self, meta: MessageMeta) -> _Doc | None:
        if meta.uid != self._uid:
            self._uid = meta.uid
            try:
                raw = self._reader(meta)
            except OSError as exc:
                # Expunged or renamed meanwhile: the message matches no file key.
                log.info("imap.search_unreadable uid=%d error=%s", meta.uid, type(exc).__name__)
                self._doc = None
            else:
                self.opened += 1
                self._doc = _Doc(raw)
        return self._doc


class _Doc:
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
            data = _decode_transfer(data, parse_encoding(decode_text(encoding)))
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


def _decode_transfer(data: bytes, encoding: str) -> bytes:
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


_NOT_BASE64 = re.compile(rb"[^A-Za-z0-9+/]")


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


def unfold(header: bytes) -> bytes:
    """RFC 5322 §2.2.3: line breaks followed by WSP removed."""
    return re.sub(rb"\r?\n(?=[ \t])", b"", header)


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


# -- results ----------------------------------------------------------------------------------


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Ascending numbers as an RFC 9051 §9 sequence-set: `1:3,5,8:9`."""
    out: list[bytes] = []
    first = last = -2
    for n in sorted(numbers):
        if n == last + 1:
            last = n
            continue
        if first >= 0:
            out.append(b"%d" % first if first == last else b"%d:%d" % (first, last))
        first = last = n
    if first >= 0:
        out.append(b"%d" % first if first == last else b"%d:%d" % (first, last))
    return b",".join(out)


def search_response(numbers: Sequence[int], highest_modseq: int | None = None) -> bytes:
    """`SEARCH 2 5 9` (RFC 9051 §7.3.5 / RFC 3501 §7.2.5), with `(MODSEQ n)` when the
    search used MODSEQ and found something (RFC 7162 §3.1.5)."""
    out = b"SEARCH"
    if numbers:
        out += b" " + b" ".join(b"%d" % n for n in numbers)
        if highest_modseq is not None:
            out += b" (MODSEQ %d)" % highest_modseq
    return out


def esearch_data(
    numbers: Sequence[int],
    options: Collection[SearchReturn],
    highest_modseq: int | None = None,
) -> bytes:
    """The search-return-data of an ESEARCH response (RFC 4731 §3.1, RFC 9051 §6.4.4):
    `MIN 2 MAX 9 ALL 2,5,9 COUNT 3`, without "ESEARCH (TAG ...) UID". `numbers` are seqs
    or UIDs in ascending order. `RETURN ()` means ALL. MIN, MAX and ALL are left out when
    nothing matched; COUNT is always there when asked; MODSEQ follows when given and
    something matched (RFC 7162 §3.1.5)."""
    opts = set(options) - {SearchReturn.SAVE} if options else {SearchReturn.ALL}
    out: list[bytes] = []
    if numbers:
        if SearchReturn.MIN in opts:
            out.append(b"MIN %d" % min(numbers))
        if SearchReturn.MAX in opts:
            out.append(b"MAX %d" % max(numbers))
        if SearchReturn.ALL in opts:
            out.append(b"ALL " + sequence_set(numbers))
    if SearchReturn.COUNT in opts:
        out.append(b"COUNT %d" % len(numbers))
    if numbers and highest_modseq is not None:
        out.append(b"MODSEQ %d" % highest_modseq)
    return b" ".join(out)


def esearch_suppressed(options: Collection[SearchReturn]) -> bool:
    """RFC 9051 §6.4.4 / RFC 5182 §2.1: SAVE alone suppresses the ESEARCH response."""
    return bool(options) and set(options) == {SearchReturn.SAVE}


def saved_result(result: SearchResult, options: Collection[SearchReturn]) -> list[int] | None:
    """What SAVE stores in the search result variable, as UIDs (RFC 5182 §2.4): all the
    matches, or only MIN and/or MAX when those are the only other options; None when SAVE
    was not asked for (the variable is left as it is, RFC 9051 §6.4.4.1)."""
    if SearchReturn.SAVE not in options:
        return None
    others = set(options) - {SearchReturn.SAVE}
    uids = result.uids
    if not uids or not others or others & {SearchReturn.ALL, SearchReturn.COUNT}:
        return list(uids)
    chosen = []
    if SearchReturn.MIN in others:
        chosen.append(uids[0])
    if SearchReturn.MAX in others and uids[-1] not in chosen:
        chosen.append(uids[-1])
    return chosen

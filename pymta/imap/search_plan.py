"""What a SEARCH reads, known from its key before it runs (RFC 9051 §6.4.4): the
`Store.fetch_rows` columns it needs (`search_columns`) and what each key costs (`cost`:
CHEAP, SUMMARY or FILE, the three levels `search.py`'s docstring describes). `needs_files`
says whether a search may read message files, so that it runs off the event loop.
`search.py` evaluates the key over the rows.
"""

from __future__ import annotations

from pymta.store.flags import LETTER_NAMES

from .command import (
    DateField,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchSize,
    SearchWithin,
)
from .rows import META_COLUMNS

# The index columns of a message's own data; a search that reads files needs all of them
# (a `MessageMeta` is built from them for the reader).
# Header fields answered from the index: the text fields of the ENVELOPE (RFC 9051
# §7.5.2) as `mime.text.search_forms` gives them, and the Date: header's day.
FIELD_COLUMNS = {
    "date": "search_date",
    "subject": "search_subject",
    "from": "search_from",
    "to": "search_to",
    "cc": "search_cc",
    "bcc": "search_bcc",
    "in-reply-to": "search_in_reply_to",
    "message-id": "search_message_id",
}
SENT_COLUMN = "sent_day"
_ADDRESS_FIELDS = frozenset({"from", "to", "cc", "bcc"})

# The flags the "flags" column holds as letters (`store.flags`), by lower-case name.
FLAG_LETTERS = {name.lower(): letter for letter, name in LETTER_NAMES.items()}

# What a key costs: the message's own columns, the summary's search forms, the file.
CHEAP, SUMMARY, FILE = 0, 1, 2


def search_columns(key: SearchKey) -> tuple[str, ...]:
    """The `Store.fetch_rows` columns a search for `key` reads: "uid" first, every
    `META_COLUMNS` when it may read files, then the search forms it compares."""
    needed: set[str] = set()
    _collect(key, needed)
    if cost(key) >= FILE:
        needed.update(META_COLUMNS)
    order = (*META_COLUMNS, *FIELD_COLUMNS.values(), SENT_COLUMN)
    return ("uid", *(c for c in order if c in needed and c != "uid"))


def _collect(key: SearchKey, needed: set[str]) -> None:
    if isinstance(key, SearchAnd):
        for k in key.keys:
            _collect(k, needed)
    elif isinstance(key, SearchOr):
        _collect(key.left, needed)
        _collect(key.right, needed)
    elif isinstance(key, SearchNot):
        _collect(key.key, needed)
    elif isinstance(key, SearchFlag):
        name = key.flag.lower()
        if name in FLAG_LETTERS:
            needed.add("flags")
        elif not name.startswith("\\"):
            needed.add("keywords")
    elif isinstance(key, SearchSize):
        needed.add("size")
    elif isinstance(key, SearchModseq):
        needed.add("modseq")
    elif isinstance(key, SearchWithin):
        needed.add("internal_date")
    elif isinstance(key, SearchDate):
        needed.add("internal_date")  # SENT* falls back to it without a Date: header
        if key.field is DateField.SENT:
            needed.add(SENT_COLUMN)
    elif isinstance(key, SearchHeader):
        field = indexed_field(key)
        if field is not None:
            needed.add(FIELD_COLUMNS[field])


def indexed_field(key: SearchHeader) -> str | None:
    """The field whose search form answers a header key, or None when the file must be
    read.

    Sender and Reply-To are not kept: the ENVELOPE copies From into them when they are
    absent (RFC 9051 §7.5.2). An empty address search is a presence test, and the ENVELOPE
    cannot tell an empty address field from a missing one.
    """
    name = key.field.lower()
    if name not in FIELD_COLUMNS:
        return None
    if name in _ADDRESS_FIELDS and not key.value:
        return None
    return name


def needs_files(key: SearchKey) -> bool:
    """Whether the search may read message files (run it off the event loop then)."""
    return cost(key) >= FILE


def cost(key: SearchKey) -> int:
    """CHEAP, SUMMARY or FILE: the cost of the costliest key in `key`."""
    if isinstance(key, SearchAnd):
        return max((cost(k) for k in key.keys), default=CHEAP)
    if isinstance(key, SearchOr):
        return max(cost(key.left), cost(key.right))
    if isinstance(key, SearchNot):
        return cost(key.key)
    if isinstance(key, SearchBody):
        return FILE
    if isinstance(key, SearchHeader):
        return SUMMARY if indexed_field(key) is not None else FILE
    if isinstance(key, SearchDate) and key.field is DateField.SENT:
        return SUMMARY
    return CHEAP

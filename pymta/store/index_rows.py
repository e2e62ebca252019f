"""The index's rows as Python sees them, and the SQL columns they map to.

`FolderRow`, `MessageRow`, `SummaryColumns` and `FolderStats` are what `index.Index`
hands out and takes; the column lists and `*_from_row` / `summary_values` convert between
them and SQLite tuples. `MESSAGE_FIELDS` / `SUMMARY_FIELDS` name the columns `Index.fetch`
can return. The tables themselves are described in schema.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pymta.mime.text import SearchForms

from .schema import KEY_SHIFT as _KEY_SHIFT

MAX_UID = 2**32 - 1  # RFC 9051 §2.3.1.1

FOLDER_COLUMNS = (
    "id, name, uidvalidity, uidnext, highestmodseq, special_use, subscribed, "
    "new_mtime_ns, cur_mtime_ns, settled, vanished_floor"
)
MESSAGE_COLUMNS = "uid, base, subdir, filename, flags, keywords, modseq, internal_date, size"
SUMMARY_COLUMNS = (
    "header_bytes, message_id, subject, envelope, bodystructure, "
    "envelope_wire, body_wire, bodystructure_wire, "
    "search_date, search_subject, search_from, search_to, search_cc, search_bcc, "
    "search_in_reply_to, search_message_id, sent_day, searchable"
)
SUMMARY_PLACEHOLDERS = ",".join("?" * (1 + len(SUMMARY_COLUMNS.split(","))))

# `fetch` columns: public name -> SQL over `messages m LEFT JOIN summaries s`.
MESSAGE_FIELDS: dict[str, str] = {
    "uid": "m.uid",
    "flags": "m.flags",
    "keywords": "m.keywords",
    "modseq": "m.modseq",
    "internal_date": "m.internal_date",
    "size": "m.size",
    "file": "m.subdir || '/' || m.filename",
}
SUMMARY_FIELDS: dict[str, str] = {
    "header_bytes": "s.header_bytes",
    "message_id": "s.message_id",
    "subject": "s.subject",
    "envelope_json": "s.envelope",
    "bodystructure_json": "s.bodystructure",
    "envelope": "s.envelope_wire",
    "body": "s.body_wire",
    "bodystructure": "s.bodystructure_wire",
    # The ENVELOPE fields as SEARCH compares them (`mime.text.search_forms`); NULL when
    # the field is absent (or not computed yet: `searchable` 0).
    "search_date": "s.search_date",
    "search_subject": "s.search_subject",
    "search_from": "s.search_from",
    "search_to": "s.search_to",
    "search_cc": "s.search_cc",
    "search_bcc": "s.search_bcc",
    "search_in_reply_to": "s.search_in_reply_to",
    "search_message_id": "s.search_message_id",
    "sent_day": "s.sent_day",
}


@dataclass(frozen=True)
class FolderRow:
    id: int
    name: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    special_use: str | None
    subscribed: bool
    new_mtime_ns: int
    cur_mtime_ns: int
    settled: bool
    vanished_floor: int = 0

    def mtime(self, subdir: str) -> int:
        return self.new_mtime_ns if subdir == "new" else self.cur_mtime_ns


@dataclass(frozen=True)
class MessageRow:
    uid: int
    base: str
    subdir: str
    filename: str
    flags: str
    keywords: tuple[str, ...]
    modseq: int
    internal_date: float
    size: int


@dataclass(frozen=True)
class SummaryColumns:
    """A message summary as stored: JSON text, plain columns, the IMAP wire forms and the
    search forms (None until computed)."""

    header_bytes: int | None
    message_id: str | None
    subject: str | None
    envelope: str | None
    bodystructure: str | None
    envelope_wire: bytes | None = None
    body_wire: bytes | None = None
    bodystructure_wire: bytes | None = None
    search: SearchForms | None = None

    @property
    def complete(self) -> bool:
        return self.search is not None and None not in (
            self.envelope,
            self.envelope_wire,
            self.body_wire,
            self.bodystructure_wire,
        )


@dataclass(frozen=True)
class FolderStats:
    messages: int
    unseen: int
    size: int
    deleted: int = 0


def db_text(value: str | None) -> str | None:
    """A str SQLite can store: header text may carry surrogate escapes of raw bytes."""
    if value is None:
        return None
    try:
        raw = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = value.encode("utf-8", "replace")
    return raw.decode("utf-8", "replace")


def to_json(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def summary_key(folder_id: int, uid: int) -> int:
    return (folder_id << _KEY_SHIFT) + uid


def folder_from_row(row: Sequence[Any]) -> FolderRow:
    """A `FOLDER_COLUMNS` tuple as a `FolderRow`."""
    (fid, name, uidvalidity, uidnext, hms, special, subscribed, new_m, cur_m, settled, floor) = row
    return FolderRow(
        int(fid),
        str(name),
        int(uidvalidity),
        int(uidnext),
        int(hms),
        None if special is None else str(special),
        bool(subscribed),
        int(new_m),
        int(cur_m),
        bool(settled),
        int(floor),
    )


def message_from_row(row: Sequence[Any]) -> MessageRow:
    """A `MESSAGE_COLUMNS` tuple as a `MessageRow`."""
    (uid, base, subdir, filename, flags, keywords, modseq, idate, size) = row
    return MessageRow(
        int(uid),
        str(base),
        str(subdir),
        str(filename),
        str(flags),
        tuple(str(keywords).split()),
        int(modseq),
        float(idate),
        int(size),
    )


def summary_from_row(row: Sequence[Any]) -> SummaryColumns:
    """A `SUMMARY_COLUMNS` tuple as `SummaryColumns`."""
    hb, mid, subject, env, body, env_w, body_w, bs_w = row[:8]
    searchable = row[17]
    return SummaryColumns(
        None if hb is None else int(hb),
        mid,
        subject,
        env,
        body,
        None if env_w is None else bytes(env_w),
        None if body_w is None else bytes(body_w),
        None if bs_w is None else bytes(bs_w),
        SearchForms(*row[8:17]) if searchable else None,
    )


_NO_SEARCH = (None,) * 9 + (0,)


def summary_values(s: SummaryColumns) -> tuple[object, ...]:
    """`SummaryColumns` as the values of `SUMMARY_COLUMNS`, in that order."""
    f = s.search
    search = (
        _NO_SEARCH
        if f is None
        else (
            db_text(f.date),
            db_text(f.subject),
            db_text(f.from_),
            db_text(f.to),
            db_text(f.cc),
            db_text(f.bcc),
            db_text(f.in_reply_to),
            db_text(f.message_id),
            f.sent,
            1,
        )
    )
    return (
        s.header_bytes,
        s.message_id,
        s.subject,
        s.envelope,
        s.bodystructure,
        s.envelope_wire,
        s.body_wire,
        s.bodystructure_wire,
        *search,
    )

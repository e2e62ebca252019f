"""What the index caches per message, and filling it in for messages that lack it.

A delivered, appended, copied or moved message gets its summary in the same transaction
as its row: `mime.summary.summarize` (JSON for the structured fields), the IMAP wire
bytes of ENVELOPE, BODY and BODYSTRUCTURE (`mime.imapform`), so a FETCH of those is one
index read, and the ENVELOPE fields as SEARCH compares them (`mime.text.search_forms`),
so a SUBJECT search is one column read. Messages the store did not write itself (adopted
files, a rebuilt index) and those of an index migrated from an older version (JSON
without wire or search forms) are filled in on first request, from the stored JSON when
there is some, else from the file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from pymta.mime.imapform import body_wire, bodystructure_wire, envelope_wire
from pymta.mime.summary import summarize
from pymta.mime.text import SearchForms, search_forms

from .index import FolderRow, Index, MessageRow, SummaryColumns, db_text, to_json

log = logging.getLogger(__name__)

_FILL_BATCH = 500  # summaries stored per transaction while filling (keeps the lock short)
_EMPTY = SummaryColumns(None, None, None, None, None)


def summary_columns(raw: bytes) -> SummaryColumns:
    """`mime.summary.summarize` as index columns. A parser failure must not lose mail: the
    message is stored without a summary (computed again when asked for) and logged."""
    try:
        s = summarize(raw)
        return SummaryColumns(
            s.header_bytes,
            db_text(s.message_id),
            db_text(s.subject),
            to_json(s.envelope),
            to_json(s.bodystructure),
            envelope_wire(s.envelope),
            body_wire(s.bodystructure),
            bodystructure_wire(s.bodystructure),
            _search_forms(s.envelope),
        )
    except Exception:
        log.exception("store.summary_failed size=%d", len(raw))
        return _EMPTY


def _search_forms(envelope: object) -> SearchForms | None:
    """The search forms of an ENVELOPE; None (left to be computed again) if that fails,
    so a bug there costs only the search columns."""
    try:
        return search_forms(envelope if isinstance(envelope, list) else [])
    except Exception:
        log.exception("store.search_forms_failed")
        return None


def completed(s: SummaryColumns) -> SummaryColumns:
    """A stored summary (JSON) completed with the wire and search forms it lacks, without
    reading the file; returned as it is if the JSON cannot be read."""
    try:
        envelope = json.loads(s.envelope) if s.envelope is not None else None
        body = json.loads(s.bodystructure) if s.bodystructure is not None else None
        return SummaryColumns(
            s.header_bytes,
            s.message_id,
            s.subject,
            s.envelope,
            s.bodystructure,
            s.envelope_wire if s.envelope_wire is not None else envelope_wire(envelope),
            s.body_wire if s.body_wire is not None else body_wire(body),
            s.bodystructure_wire if s.bodystructure_wire is not None else bodystructure_wire(body),
            s.search if s.search is not None else _search_forms(envelope),
        )
    except Exception:
        log.exception("store.summary_wire_failed")
        return s


def fill_summaries(index: Index, row: FolderRow, fdir: Path, uids: Sequence[int] | None) -> int:
    """Compute and store the summaries that `uids` (None: the whole folder) lack; returns
    how many were stored. Runs without any lock but the index's (around its statements):
    a message expunged or replaced meanwhile is simply not written (`Index.set_summary`)."""
    with index.reading():
        missing = index.uncached(row.id, uids)
    stored = 0
    for start in range(0, len(missing), _FILL_BATCH):
        computed: list[tuple[MessageRow, SummaryColumns]] = []
        for m, cols in missing[start : start + _FILL_BATCH]:
            if cols is not None and cols.envelope is not None:
                cols = completed(cols)
            else:
                try:
                    raw = (fdir / m.subdir / m.filename).read_bytes()
                except FileNotFoundError:
                    continue  # renamed or removed behind our back: the next access rescans
                cols = summary_columns(raw)
            computed.append((m, cols))
        if computed:
            with index.transaction():
                for m, cols in computed:
                    index.set_summary(row.id, m.uid, m.base, cols)
            stored += len(computed)
    if stored:
        log.info("store.summaries_filled folder=%s count=%d", row.name, stored)
    return stored

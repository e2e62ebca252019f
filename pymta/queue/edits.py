"""The edits the queue makes to an envelope, each run under the envelope's lock.

Each takes the `QueueEntry` as it is on disk now, changes it in place and says what to do
with it (`Change`: save, remove, nothing); `Spool.transact` reads the envelope under its
lock, calls it and carries that out (run in an I/O thread). `record_attempt` records a
delivery attempt's results (and gives up on an entry past `max_age_s`); the others mark
failures reported or the delay warning sent, postpone an entry, make it due, hold or
release it. `retry_delay` is the backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from pymta.config.model import QueueConfig
from pymta.queue.model import DELIVERED, FAILED, PENDING, QueueEntry
from pymta.queue.outcomes import Result
from pymta.queue.spool import Change

log = logging.getLogger(__name__)

# Used when retry_intervals_s is empty: RFC 5321 §4.5.4.1 asks for at least 30 minutes
# between retries; Postfix starts at 300 s. We keep the config's default first step.
_FALLBACK_RETRY_S = 60.0


def retry_delay(config: QueueConfig, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th attempt; the last interval repeats."""
    intervals = config.retry_intervals_s or (_FALLBACK_RETRY_S,)
    return intervals[min(max(attempts, 1) - 1, len(intervals) - 1)]


def record_attempt(
    entry: QueueEntry,
    *,
    results: Mapping[int, Result],
    now: float,
    attempted: bool,
    config: QueueConfig,
    reports_failures: bool,
) -> Change:
    """(In a thread, under the envelope's lock.) Record an attempt on what is on disk.

    `reports_failures`: whether there is an `on_failed` hook; without one a failed
    recipient counts as reported at once (nobody to tell).
    """
    if attempted:
        entry.attempts += 1
        for index, result in results.items():
            rcpt = entry.recipients[index]
            if rcpt.status != PENDING:
                continue
            rcpt.attempts += 1
            if result.kind == "delivered":
                rcpt.status = DELIVERED
                continue
            rcpt.last_error = entry.last_error = result.detail
            if result.kind == "permanent":
                rcpt.status = FAILED
        # RFC 5321 §4.5.4.1: give up after a few days. Like Postfix, the attempt that
        # finds the entry past max_age_s is the last one.
        if now - entry.created > config.max_age_s:
            for index in results:
                rcpt = entry.recipients[index]
                if rcpt.status == PENDING:
                    rcpt.status = FAILED
                    last = f"; last error: {rcpt.last_error}" if rcpt.last_error else ""
                    rcpt.last_error = f"expired{last}"
                    log.info("queue expired id=%s rcpt=%s", entry.id, rcpt.address)
        entry.next_attempt = now + retry_delay(config, entry.attempts)
    unreported = entry.unreported_failures()
    if not reports_failures:
        for rcpt in unreported:
            rcpt.reported = True  # nobody to tell
    if not entry.pending() and not entry.unreported_failures():
        return Change.REMOVE
    changed = attempted or (not reports_failures and bool(unreported))
    return Change.SAVE if changed else Change.NOTHING


def postpone(entry: QueueEntry, *, until: float) -> Change:
    entry.next_attempt = max(entry.next_attempt, until)
    return Change.SAVE


def mark_reported(entry: QueueEntry, *, indexes: Sequence[int]) -> Change:
    for index in indexes:
        entry.recipients[index].reported = True
    if not entry.pending() and not entry.unreported_failures():
        return Change.REMOVE
    return Change.SAVE


def mark_warned(entry: QueueEntry) -> Change:
    if entry.warned:
        return Change.NOTHING
    entry.warned = True
    return Change.SAVE


def make_due(entry: QueueEntry, *, now: float) -> Change:
    if entry.held or entry.next_attempt <= now:
        return Change.NOTHING
    entry.next_attempt = now
    return Change.SAVE


def set_held(entry: QueueEntry, *, held: bool) -> Change:
    if entry.held == held:
        return Change.NOTHING
    entry.held = held
    return Change.SAVE

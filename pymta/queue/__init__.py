"""The durable outbound queue: spool, scheduler with backoff, transports, admin operations.

Holds messages that could not be delivered at once (remote recipients; local deliveries
that failed for now) and delivers them later through `Transport`s it is given by name; the
local transport comes from `server.py`, so this package never imports `delivery/` or
`store/`.

Invariants:
- Nothing is lost: `Queue.enqueue` returns only when the message and its envelope are
  fsynced and renamed into `<spool_dir>` and the directory is fsynced (directory fsyncs of
  concurrent enqueues are group-committed). A kill -9 at any moment leaves a consistent
  spool; at start, temp files and message files without an envelope are removed.
- The envelope file makes an entry exist: written last, removed first.
- Every change to an envelope (by the scheduler or by an admin process such as the CLI)
  is a read-modify-write under `flock` on the envelope file, written as temp → fsync →
  rename → directory fsync. The scheduler re-reads the envelope before each attempt and
  records outcomes onto what is on disk then, so an admin's delete, hold or flush is
  honoured and a deleted entry is never written back.
- At-least-once delivery: a delivery in flight at a crash is attempted again. Likewise
  `on_failed` (the bounce hook) is called once per failed recipient, again only if the
  process died before recording that it returned. `on_success` (RFC 3461 success
  reports) is best effort, called after the outcome is recorded and never retried: a
  missing success report is acceptable, a second delivery is not.
- An envelope that does not decode is logged and moved to `<spool_dir>/corrupt/`; it never
  stops the scheduler, and neither does a transport that raises (temporary failure).

Modules:
- `model.py`: entries, recipients, outcomes, the `Transport` protocol, the envelope codec.
- `spool.py`: the spool on disk: layout, locked read-modify-write, group-committed fsyncs.
- `scheduler.py`: `Queue`: enqueue, the scheduler, the report hooks, admin operations.
- `outcomes.py`: one attempt's results, from the transports, and their log lines.
- `edits.py`: the changes made to an envelope under its lock; `retry_delay` (the backoff).
- `remote.py`: the remote SMTP transport (MX hosts or a smarthost, opportunistic TLS).
- `connection_cache.py`: the remote transport's cache of idle SMTP sessions.
- `mx.py`: MX and address lookup for the remote transport.
- `dsn.py`: bounces, delay warnings and success reports (RFC 3464); mail-loop detection.
- `dkim.py`: DKIM signing of submitted mail.
"""

from __future__ import annotations

from pymta.queue.edits import retry_delay
from pymta.queue.model import (
    DELIVERED,
    FAILED,
    PENDING,
    CorruptEnvelope,
    Outcome,
    OutcomeKind,
    QueueEntry,
    QueueRecipient,
    Transport,
)
from pymta.queue.scheduler import OnFailed, OnSuccess, Queue

__all__ = [
    "DELIVERED",
    "FAILED",
    "PENDING",
    "CorruptEnvelope",
    "OnFailed",
    "OnSuccess",
    "Outcome",
    "OutcomeKind",
    "Queue",
    "QueueEntry",
    "QueueRecipient",
    "Transport",
    "retry_delay",
]

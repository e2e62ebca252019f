"""A delivery attempt's results: what the transports said about each recipient, and its log.

`call_transport` turns one transport's `Outcome`s into a `Result` per recipient index; a
transport that raises, or says nothing of a recipient, leaves it temporarily failed (the
queue never stops for a transport). `log_attempt` writes one line per recipient. Recording
the results onto the envelope is `edits.record_attempt`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from pymta.queue.model import OutcomeKind, QueueEntry, SuccessAction, Transport

log = logging.getLogger(__name__)

OUTCOME_KINDS: tuple[OutcomeKind, ...] = ("delivered", "temporary", "permanent")


@dataclass(frozen=True)
class Result:
    """What one attempt did for one recipient (an `Outcome`, by recipient index)."""

    kind: OutcomeKind
    detail: str
    dsn_action: SuccessAction | None = None  # for "delivered": see `Outcome.dsn_action`


async def call_transport(
    transport: Transport, entry: QueueEntry, indexes: list[int], message: bytes
) -> dict[int, Result]:
    """Deliver to the recipients at `indexes`; a result for each (a transport that raises,
    or gives no outcome for one, is a temporary failure)."""
    recipients = [entry.recipients[i] for i in indexes]
    try:
        outcomes = await transport.deliver(entry, recipients, message)
    except Exception as exc:
        log.warning(
            "queue transport_error id=%s transport=%s error=%r",
            entry.id,
            transport.name,
            exc,
            exc_info=True,
        )
        detail = f"transport error: {exc.__class__.__name__}: {exc}"
        return {i: Result("temporary", detail) for i in indexes}
    by_identity = {id(r): i for r, i in zip(recipients, indexes, strict=True)}
    results: dict[int, Result] = {}
    for outcome in outcomes:
        index = by_identity.get(id(outcome.recipient))
        if index is None or outcome.kind not in OUTCOME_KINDS:
            log.warning(
                "queue bad_outcome id=%s transport=%s rcpt=%s kind=%s",
                entry.id,
                transport.name,
                outcome.recipient.address,
                outcome.kind,
            )
            continue
        results[index] = Result(outcome.kind, outcome.detail, outcome.dsn_action)
    for index in indexes:
        results.setdefault(index, Result("temporary", "no outcome from transport"))
    return results


def log_attempt(entry: QueueEntry, results: Mapping[int, Result], now: float) -> None:
    """One log line per recipient attempted."""
    for index, result in sorted(results.items()):
        rcpt = entry.recipients[index]
        log.info(
            'queue attempt id=%s rcpt=%s transport=%s outcome=%s detail="%s" delay=%.1fs',
            entry.id,
            rcpt.address,
            rcpt.transport,
            result.kind,
            _quoted(result.detail),
            now - entry.created,
        )


def _quoted(text: str) -> str:
    """A value safe inside "..." in a one-line log record."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", "\\r").replace("\n", "\\n")

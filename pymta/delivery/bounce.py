"""Reports to the sender: the queue's `on_failed` hook turns failed recipients into a DSN,
`on_delayed` into a delay warning, and `on_success` (the queue's and the deliverer's) sends
the success reports of RFC 3461 ("delivered", "relayed", "expanded").

The DSN (built by `queue.dsn`, RFC 3464) is sent from the null sender, so it can never
bounce itself (RFC 5321 §4.5.5), and is routed like any message: to a local mailbox, or
into the queue for a remote sender. A DSN that cannot be stored now raises, so the queue
keeps the failure and calls again later (a success report's caller logs and drops it);
one that has nowhere to go is logged and dropped. One log line per DSN sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from pymta.queue import QueueEntry, QueueRecipient
from pymta.queue.dsn import build_bounce, build_delay_warning, build_success
from pymta.queue.model import SuccessAction

from .deliver import Deliverer
from .verdicts import SessionInfo

log = logging.getLogger(__name__)


class Bouncer:
    def __init__(
        self,
        deliverer: Deliverer,
        hostname: str,
        *,
        max_age_s: float = 5 * 24 * 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deliverer = deliverer
        self._hostname = hostname
        self._max_age_s = max_age_s
        self._clock = clock

    async def warn(self, entry: QueueEntry, delayed: Sequence[QueueRecipient]) -> None:
        """The queue's `on_delayed` hook: a delay warning (RFC 3464 Action: delayed)."""
        if entry.message_path is None:
            return
        original = await asyncio.to_thread(entry.message_path.read_bytes)
        dsn = build_delay_warning(
            entry,
            delayed,
            original,
            reporting_mta=self._hostname,
            postmaster=f"postmaster@{self._hostname}",
            now=self._clock(),
            will_retry_until=entry.created + self._max_age_s,
        )
        if dsn is not None:
            await self._send(entry, delayed, dsn, "delay warning")

    async def __call__(self, entry: QueueEntry, failed: Sequence[QueueRecipient]) -> None:
        if entry.message_path is None:
            return
        original = await asyncio.to_thread(entry.message_path.read_bytes)
        dsn = build_bounce(
            entry,
            failed,
            original,
            reporting_mta=self._hostname,
            postmaster=f"postmaster@{self._hostname}",
            now=self._clock(),
        )
        if dsn is None:  # null sender, or NOTIFY asked for no failure report
            log.info("bounce suppressed id=%s sender=<%s>", entry.id, entry.sender)
            return
        await self._send(entry, failed, dsn, "bounce")

    async def report_success(
        self,
        entry: QueueEntry,
        succeeded: Sequence[QueueRecipient],
        action: SuccessAction,
        original: bytes,
    ) -> None:
        """`on_success`: a "delivered", "relayed" or "expanded" report (RFC 3461 §5.2.2 (b),
        §5.2.3 (a), §5.2.7.3 (c)) for the recipients that asked NOTIFY=SUCCESS."""
        dsn = build_success(
            entry,
            succeeded,
            original,
            action=action,
            reporting_mta=self._hostname,
            postmaster=f"postmaster@{self._hostname}",
            now=self._clock(),
        )
        if dsn is not None:  # None: the null sender, or nobody asked
            await self._send(entry, succeeded, dsn, f"{action} report")

    async def _send(
        self, entry: QueueEntry, about: Sequence[QueueRecipient], dsn: bytes, kind: str
    ) -> None:
        session = SessionInfo(peer_ip="127.0.0.1", helo=self._hostname, listener="bounce")
        outcome = await self._deliverer.deliver(session, "", [entry.sender], dsn)
        if outcome.accepted:
            log.info(
                "%s sent id=%s to=<%s> rcpts=%s routes=%s",
                kind,
                entry.id,
                entry.sender,
                ",".join(r.address for r in about),
                ",".join(f"{a}:{how}" for a, how in outcome.routes),
            )
        elif outcome.temporary:
            raise OSError(f"{kind} for {entry.id} could not be stored now")
        else:
            log.warning("%s dropped id=%s to=<%s> reason=no route", kind, entry.id, entry.sender)

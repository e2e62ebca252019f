"""Delivery: routes a message and writes it durably, to mailboxes or to the queue.

Invariant: `deliver()` reports `accepted` only when every route is on disk and fsynced —
each local copy in its Maildir, everything else (remote recipients, local copies that
failed temporarily) in the queue. Only then may the front end reply 250.

Hook points for later issues: `before_routing` stages (the filter pipeline) see the message
before any route is taken; `folder_chooser` (Sieve) picks the folder of each local copy.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pymta.directory.model import Directory, Mailbox
from pymta.queue import Outcome, Queue, QueueEntry, QueueRecipient
from pymta.store import MailboxRef, Store, StoreError

from .router import Expansion, LocalRoute, Router
from .verdicts import DeliveryOutcome, Refusal, SessionInfo

log = logging.getLogger(__name__)

LOCAL_TRANSPORT = "local"
REMOTE_TRANSPORT = "remote"


class FolderChooser(Protocol):
    """Picks the folder a local copy lands in (Sieve plugs in here)."""

    async def choose(self, mailbox: Mailbox, sender: str, message: bytes) -> str: ...


class Inbox:
    """The default FolderChooser: everything goes to INBOX."""

    async def choose(self, mailbox: Mailbox, sender: str, message: bytes) -> str:
        return "INBOX"


# A stage of the filter pipeline: it may refuse the whole message (returns a reason) or let
# it pass (returns None). The filter issue replaces this with its verdict objects.
BeforeRouting = Callable[[SessionInfo, str, Sequence[str], bytes], Awaitable[str | None]]


def mailbox_ref(mailbox: Mailbox) -> MailboxRef:
    return MailboxRef(kind=mailbox.kind, name=mailbox.name, domain=mailbox.domain)


def queue_target(mailbox: Mailbox) -> str:
    """How a local mailbox is named in a queue entry."""
    return f"user:{mailbox.name}" if mailbox.kind == "user" else f"public:{mailbox.name}"


def trace_headers(sender: str, recipient: str) -> bytes:
    """Return-Path (RFC 5321 §4.4: added at final delivery) and Delivered-To (as Postfix's
    local delivery adds it, also used for loop detection)."""
    return f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode(
        "utf-8", "surrogateescape"
    )


@dataclass
class DirectoryHolder:
    """The current directory snapshot; SIGHUP swaps `directory`, in-flight work keeps its own."""

    directory: Directory


class Deliverer:
    def __init__(
        self,
        directory: DirectoryHolder,
        store: Store,
        queue: Queue,
        *,
        folder_chooser: FolderChooser | None = None,
        before_routing: Sequence[BeforeRouting] = (),
    ) -> None:
        self._directory = directory
        self.store = store
        self.queue = queue
        self.folder_chooser: FolderChooser = folder_chooser or Inbox()
        self.before_routing = tuple(before_routing)

    @property
    def router(self) -> Router:
        return Router(self._directory.directory)

    # -- MAIL and RCPT time ------------------------------------------------------------

    async def check_sender(self, session: SessionInfo, sender: str) -> None:
        """Inbound senders are not restricted yet: SPF (filter issue) and the submission
        rule "only your own addresses" (submission issue) plug in here."""
        return None

    async def check_recipient(
        self, session: SessionInfo, sender: str, recipient: str
    ) -> Refusal | None:
        router = self.router
        refusal = router.check_recipient(session, sender, recipient)
        if refusal is not None:
            return refusal
        mailboxes = [r.mailbox for r in router.expand([recipient], hidden_copies=False).local]
        if mailboxes and all([await self.over_quota(m) for m in mailboxes]):
            return Refusal.OVER_QUOTA
        return None

    async def over_quota(self, mailbox: Mailbox) -> bool:
        """A mailbox is over quota once its usage reached the quota. The message that
        crosses the line is still delivered (as Dovecot's quota_grace allows), so a quota
        never cuts a mailbox off in the middle of a delivery."""
        if not mailbox.quota_bytes:
            return False
        usage = await self.store.usage(mailbox_ref(mailbox))
        return usage.bytes >= mailbox.quota_bytes

    # -- DATA time ---------------------------------------------------------------------

    async def deliver(
        self, session: SessionInfo, sender: str, recipients: Sequence[str], message: bytes
    ) -> DeliveryOutcome:
        for stage in self.before_routing:
            reason = await stage(session, sender, recipients, message)
            if reason is not None:
                return DeliveryOutcome(accepted=False, detail=f"filtered: {reason}")
        expansion = self.router.expand(recipients)
        return await self._deliver_expansion(sender, expansion, message)

    async def _deliver_expansion(
        self, sender: str, expansion: Expansion, message: bytes
    ) -> DeliveryOutcome:
        results = await asyncio.gather(
            *(self.deliver_copy(sender, route, message) for route in expansion.local)
        )
        routes: list[tuple[str, str]] = []
        to_queue: list[QueueRecipient] = []
        for route, error in zip(expansion.local, results, strict=True):
            if error is None:
                routes.append((str(route.mailbox), "local"))
            else:
                routes.append((str(route.mailbox), "queued"))
                to_queue.append(
                    QueueRecipient(
                        address=route.recipient,
                        transport=LOCAL_TRANSPORT,
                        target=queue_target(route.mailbox),
                        last_error=error,
                    )
                )
        for remote in expansion.remote:
            routes.append((remote.address, "queued"))
            to_queue.append(
                QueueRecipient(address=remote.address, transport=REMOTE_TRANSPORT, target="")
            )
        queue_id: str | None = None
        if to_queue:
            try:
                entry = await self.queue.enqueue(sender, to_queue, message)
            except OSError as exc:
                # The local copies already written stay; the client will retry and those
                # mailboxes may get a second copy (at-least-once, never lost).
                log.error("enqueue failed error=%r", exc)
                return DeliveryOutcome(
                    accepted=False, temporary=True, routes=tuple(routes), detail="queue failed"
                )
            queue_id = entry.id
        for skipped in expansion.skipped:
            routes.append((skipped, "skipped-disabled"))
        if not expansion.local and not expansion.remote:
            return DeliveryOutcome(accepted=False, routes=tuple(routes), detail="no route")
        return DeliveryOutcome(accepted=True, queue_id=queue_id, routes=tuple(routes))

    async def deliver_copy(self, sender: str, route: LocalRoute, message: bytes) -> str | None:
        """Deliver one local copy durably; None on success, else why to retry it later."""
        raw = trace_headers(sender, route.recipient) + message
        if await self.over_quota(route.mailbox):
            return "over quota"
        try:
            folder = await self.folder_chooser.choose(route.mailbox, sender, raw)
            await self.store.deliver(mailbox_ref(route.mailbox), raw, folder=folder)
        except (OSError, StoreError) as exc:
            log.error("local delivery failed mailbox=%s error=%r", route.mailbox, exc)
            return f"store error: {exc.__class__.__name__}"
        return None


class LocalTransport:
    """The queue's transport for local mailboxes: retries deliveries that failed for now."""

    name = LOCAL_TRANSPORT

    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer

    def _mailbox(self, target: str) -> Mailbox | None:
        directory = self._deliverer.router.directory
        kind, _, name = target.partition(":")
        if kind == "user":
            user = directory.user(name)
            return user.mailbox if user is not None else None
        if kind == "public":
            return directory.public_mailbox(name)
        return None

    async def deliver(
        self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
    ) -> Sequence[Outcome]:
        outcomes: list[Outcome] = []
        for rcpt in recipients:
            mailbox = self._mailbox(rcpt.target)
            if mailbox is None:
                outcomes.append(Outcome(rcpt, "permanent", "mailbox no longer exists"))
                continue
            if not mailbox.enabled:
                outcomes.append(Outcome(rcpt, "permanent", "mailbox disabled"))
                continue
            route = LocalRoute(mailbox, rcpt.address)
            error = await self._deliverer.deliver_copy(entry.sender, route, message)
            if error is None:
                outcomes.append(Outcome(rcpt, "delivered", f"delivered to {mailbox}"))
            else:
                outcomes.append(Outcome(rcpt, "temporary", error))
        return outcomes

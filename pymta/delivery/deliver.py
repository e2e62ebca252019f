"""Delivery: routes a message and writes it durably, to mailboxes or to the queue.

Invariant: `deliver()` reports `accepted` only when every route is on disk and fsynced —
each local copy in its Maildir, everything else (remote recipients, local copies that
failed temporarily) in the queue. Only then may the front end reply 250.

The client's DSN parameters (RFC 3461) travel with every route: ENVID and RET on the queue
entry, NOTIFY and ORCPT on each queued recipient, taken from the envelope recipient the
route came from (an ORCPT naming that recipient is added when the client gave none, RFC
3461 §5.2.1 (d)). An alias with one destination passes them on as they are (§5.2.7.2);
one with several passes them on without SUCCESS and is itself reported "expanded"
(§5.2.7.3 (c)). Success reports for copies delivered at once go out through `on_success`
after the message is safe; a report that cannot be sent is logged, never retried (a
missing report is acceptable, a second delivery is not).

Hook points for later issues: `before_routing` stages (the filter pipeline) see the message
before any route is taken; `folder_chooser` (Sieve) picks the folder of each local copy.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from pymta.directory.model import Directory, Mailbox
from pymta.queue import DELIVERED, Outcome, Queue, QueueEntry, QueueRecipient
from pymta.queue.dsn import orcpt_for
from pymta.queue.model import DsnRequest, IdGenerator, RcptDsn, SuccessAction
from pymta.queue.scheduler import OnSuccess
from pymta.store import MailboxRef, Store, StoreError

from .router import Expansion, LocalRoute, Route, Router
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


class DsnPlan:
    """The RFC 3461 parameters each route of one message carries, and the aliases that get
    an "expanded" report.

    Every route inherits the NOTIFY and ORCPT of the envelope recipient it came from
    (`Route.recipient`), with an ORCPT naming that recipient when the client gave none
    (RFC 3461 §5.2.1 (d), as Postfix does). An alias with exactly one destination passes
    them on unchanged (§5.2.7.2); one with several passes them on less SUCCESS, NOTIFY=
    SUCCESS alone becoming NEVER (as Postfix does: the sender asked for no failure notices),
    and if SUCCESS was asked the alias is reported "expanded" (§5.2.7.3 (c)). A domain's
    hidden copy (`copy_inbound_to`) carries no NOTIFY of the client's: it must never
    produce a success report that would reveal it.
    """

    def __init__(
        self,
        router: Router,
        recipients: Sequence[str],
        expansion: Expansion,
        request: DsnRequest,
    ) -> None:
        self._by_recipient: dict[str, RcptDsn] = {}
        self.expanded: list[QueueRecipient] = []
        asked = False
        for rcpt in dict.fromkeys(recipients):
            params = request.recipient(rcpt)
            orcpt = params.orcpt or orcpt_for(rcpt)
            notify = params.notify
            asked = asked or bool(notify)
            if "SUCCESS" in notify and _destination_count(router, rcpt) > 1:
                self.expanded.append(_reported(rcpt, "", notify, orcpt))
                notify = tuple(n for n in notify if n != "SUCCESS") or ("NEVER",)
            self._by_recipient[rcpt] = RcptDsn(notify, orcpt)
        self._hidden_local: frozenset[Mailbox] = frozenset()
        self._hidden_remote: frozenset[str] = frozenset()
        if asked and (expansion.local or expansion.remote):
            visible = router.expand(recipients, hidden_copies=False)
            self._hidden_local = frozenset(r.mailbox for r in expansion.local) - {
                r.mailbox for r in visible.local
            }
            self._hidden_remote = frozenset(r.address for r in expansion.remote) - {
                r.address for r in visible.remote
            }

    def for_route(self, route: Route) -> RcptDsn:
        params = self._by_recipient.get(route.recipient) or RcptDsn(
            orcpt=orcpt_for(route.recipient)
        )
        hidden = (
            route.mailbox in self._hidden_local
            if isinstance(route, LocalRoute)
            else route.address in self._hidden_remote
        )
        return RcptDsn(orcpt=params.orcpt) if hidden else params


def _destination_count(router: Router, recipient: str) -> int:
    """How many destinations `recipient` leads to by itself (aliases followed)."""
    alone = router.expand([recipient], hidden_copies=False)
    return len(alone.local) + len(alone.remote)


def _reported(address: str, transport: str, notify: Sequence[str], orcpt: str) -> QueueRecipient:
    """A recipient as a success report names it."""
    return QueueRecipient(
        address=address, transport=transport, status=DELIVERED, notify=tuple(notify), orcpt=orcpt
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
        on_success: OnSuccess | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`on_success` sends the success reports (RFC 3461 §5.2.3, §5.2.7.3) of copies
        delivered at once; the queue has its own hook for those it delivers later."""
        self._directory = directory
        self.store = store
        self.queue = queue
        self.folder_chooser: FolderChooser = folder_chooser or Inbox()
        self.before_routing = tuple(before_routing)
        self._on_success = on_success
        self._clock = clock
        self._report_ids = IdGenerator()  # for reports about messages that were not queued

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
        self,
        session: SessionInfo,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        dsn: DsnRequest | None = None,
    ) -> DeliveryOutcome:
        for stage in self.before_routing:
            reason = await stage(session, sender, recipients, message)
            if reason is not None:
                return DeliveryOutcome(accepted=False, detail=f"filtered: {reason}")
        router = self.router
        expansion = router.expand(recipients)
        request = dsn or DsnRequest()
        plan = DsnPlan(router, recipients, expansion, request)
        return await self._deliver_expansion(sender, expansion, message, request, plan)

    async def _deliver_expansion(
        self,
        sender: str,
        expansion: Expansion,
        message: bytes,
        request: DsnRequest,
        plan: DsnPlan,
    ) -> DeliveryOutcome:
        results = await asyncio.gather(
            *(self.deliver_copy(sender, route, message) for route in expansion.local)
        )
        routes: list[tuple[str, str]] = []
        to_queue: list[QueueRecipient] = []
        delivered: list[QueueRecipient] = []
        for route, error in zip(expansion.local, results, strict=True):
            params = plan.for_route(route)
            if error is None:
                routes.append((str(route.mailbox), "local"))
                delivered.append(
                    _reported(route.recipient, LOCAL_TRANSPORT, params.notify, params.orcpt or "")
                )
            else:
                routes.append((str(route.mailbox), "queued"))
                to_queue.append(
                    QueueRecipient(
                        address=route.recipient,
                        transport=LOCAL_TRANSPORT,
                        target=queue_target(route.mailbox),
                        last_error=error,
                        notify=params.notify,
                        orcpt=params.orcpt,
                    )
                )
        for remote in expansion.remote:
            params = plan.for_route(remote)
            routes.append((remote.address, "queued"))
            to_queue.append(
                QueueRecipient(
                    address=remote.address,
                    transport=REMOTE_TRANSPORT,
                    target="",
                    notify=params.notify,
                    orcpt=params.orcpt,
                )
            )
        queue_id: str | None = None
        if to_queue:
            try:
                # RFC 3461 §5.2.1 (a), (b): ENVID and RET go on with the message.
                entry = await self.queue.enqueue(
                    sender, to_queue, message, envid=request.envid, ret=request.ret
                )
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
        reports: dict[SuccessAction, list[QueueRecipient]] = {
            "delivered": delivered,  # RFC 3461 §5.2.3 (a)
            "expanded": plan.expanded,  # RFC 3461 §5.2.7.3 (c)
        }
        await self._report_success(sender, request, queue_id, reports, message)
        return DeliveryOutcome(accepted=True, queue_id=queue_id, routes=tuple(routes))

    async def _report_success(
        self,
        sender: str,
        request: DsnRequest,
        queue_id: str | None,
        reports: Mapping[SuccessAction, Iterable[QueueRecipient]],
        message: bytes,
    ) -> None:
        """Success reports for what happened at DATA time; only for recipients whose
        NOTIFY has SUCCESS, never to the null sender (RFC 3461 §5.2)."""
        if self._on_success is None or sender == "":
            return
        wanted = {
            action: [r for r in rcpts if "SUCCESS" in r.notify] for action, rcpts in reports.items()
        }
        if not any(wanted.values()):
            return
        now = self._clock()
        entry = QueueEntry(
            id=queue_id or self._report_ids.next(now),
            sender=sender,
            recipients=[r for rcpts in wanted.values() for r in rcpts],
            created=now,
            next_attempt=now,
            envid=request.envid,
            ret=request.ret,
            size=len(message),
        )
        for action, rcpts in wanted.items():
            if not rcpts:
                continue
            try:
                await self._on_success(entry, rcpts, action, message)
            except Exception:
                # The message is delivered: a lost report is acceptable, a retry is not.
                log.exception("delivery success_report_failed id=%s action=%s", entry.id, action)

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

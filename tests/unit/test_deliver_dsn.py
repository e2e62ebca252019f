"""The delivery layer and the client's DSN parameters (RFC 3461): what each route carries
into the queue, aliases (§5.2.7), and the success reports of copies delivered at once.

A real store and a real queue (no scheduler runs) under tmp_path; the directory is parsed
from the TOML below, as in test_router.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pymta.config.loader import parse_config
from pymta.config.model import QueueConfig
from pymta.delivery.deliver import Deliverer, DirectoryHolder
from pymta.delivery.verdicts import DeliveryOutcome, SessionInfo
from pymta.directory.local import LocalDirectory
from pymta.queue import Queue, QueueEntry, QueueRecipient
from pymta.queue.model import DsnRequest, RcptDsn, SuccessAction
from pymta.store import Store

CONFIG = """
[server]
hostname = "mx.example.test"
data_dir = "/tmp/unused"

[[domains]]
name = "example.test"

[[domains]]
name = "archived.test"
copy_inbound_to = "archive"

[[directory.users]]
name = "alice"
domain = "example.test"

[[directory.users]]
name = "bob"
domain = "example.test"

[[directory.users]]
name = "archive"
domain = "example.test"

[[directory.users]]
name = "carol"
domain = "archived.test"

[[addresses]]
address = "solo@example.test"
destinations = ["alice"]

[[addresses]]
address = "info@example.test"
destinations = ["alice", "bob"]

[[addresses]]
address = "fwd@example.test"
destinations = ["someone@remote.test"]

[[addresses]]
address = "team@example.test"
destinations = ["alice", "friend@remote.test", "other@remote.test"]
"""

SENDER = "sender@outside.test"
MESSAGE = b"From: sender@outside.test\r\nSubject: hello\r\n\r\nbody\r\n"
OUTSIDE = SessionInfo(peer_ip="192.0.2.1")
T0 = 1_700_000_000.0


@dataclass
class Reports:
    """The deliverer's `on_success` hook: records each report it is asked to send."""

    calls: list[tuple[SuccessAction, QueueEntry, list[QueueRecipient], bytes]] = field(
        default_factory=list
    )
    fail: bool = False

    async def __call__(
        self,
        entry: QueueEntry,
        recipients: Sequence[QueueRecipient],
        action: SuccessAction,
        message: bytes,
    ) -> None:
        self.calls.append((action, entry, list(recipients), message))
        if self.fail:
            raise OSError(28, "No space left on device")

    def about(self) -> list[tuple[SuccessAction, str, tuple[str, ...], str | None]]:
        return [
            (action, r.address, r.notify, r.orcpt)
            for action, _, rcpts, _ in self.calls
            for r in rcpts
        ]


@dataclass
class World:
    deliverer: Deliverer
    queue: Queue
    store: Store
    reports: Reports
    data_dir: Path

    async def deliver(
        self, *recipients: str, sender: str = SENDER, dsn: DsnRequest | None = None
    ) -> DeliveryOutcome:
        return await self.deliverer.deliver(OUTSIDE, sender, list(recipients), MESSAGE, dsn=dsn)

    def queued(self) -> list[QueueRecipient]:
        return [r for entry in self.queue.list() for r in entry.recipients]

    def inbox(self, user: str) -> list[Path]:
        return sorted(
            (self.data_dir / "mail" / "example.test" / user / "Maildir" / "new").glob("*")
        )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    directory = DirectoryHolder(LocalDirectory(parse_config(CONFIG, source=Path("test.toml"))))
    store = Store(tmp_path / "data", hostname="mx.example.test")
    queue = Queue(tmp_path / "queue", QueueConfig())
    reports = Reports()
    deliverer = Deliverer(directory, store, queue, on_success=reports, clock=lambda: T0)
    yield World(deliverer, queue, store, reports, tmp_path / "data")
    queue.close()
    await store.close()


def request(ret: str | None = None, envid: str | None = None, **rcpts: RcptDsn) -> DsnRequest:
    """DsnRequest(recipients={"alice@example.test": ...}) from alice=RcptDsn(...)."""
    return DsnRequest(
        ret=ret,
        envid=envid,
        recipients={f"{name}@example.test": params for name, params in rcpts.items()},
    )


# -- what the queue keeps (RFC 3461 §5.2.1) ---------------------------------------------------


async def test_without_parameters_each_route_names_its_recipient_in_orcpt(world: World) -> None:
    """RFC 3461 §5.2.1 (d): an ORCPT MAY be added; it MUST be the RCPT TO address."""
    outcome = await world.deliver("fwd@example.test", "alice@example.test")
    assert outcome.accepted
    [entry] = world.queue.list()
    assert (entry.envid, entry.ret) == (None, None)
    [queued] = entry.recipients
    assert (queued.address, queued.notify, queued.orcpt) == (
        "someone@remote.test",
        (),
        "rfc822;fwd@example.test",
    )
    assert world.reports.calls == []
    assert len(world.inbox("alice")) == 1


async def test_parameters_go_on_with_the_message_unchanged(world: World) -> None:
    """RFC 3461 §5.2.1 (a)-(d), and §5.2.7.2: a one-destination alias keeps them."""
    dsn = request(
        ret="FULL",
        envid="Env+2BId",
        fwd=RcptDsn(("SUCCESS", "FAILURE"), "rfc822;Fwd+2Bx@Example.TEST"),
    )
    assert (await world.deliver("fwd@example.test", dsn=dsn)).accepted
    [entry] = world.queue.list()
    assert (entry.envid, entry.ret) == ("Env+2BId", "FULL")
    [queued] = entry.recipients
    assert (queued.address, queued.notify, queued.orcpt) == (
        "someone@remote.test",
        ("SUCCESS", "FAILURE"),
        "rfc822;Fwd+2Bx@Example.TEST",
    )
    assert world.reports.calls == []  # queued: the queue reports when it delivers


async def test_null_sender_keeps_its_parameters_but_gets_no_report(world: World) -> None:
    dsn = request(alice=RcptDsn(("SUCCESS",)))
    assert (await world.deliver("alice@example.test", sender="", dsn=dsn)).accepted
    assert world.reports.calls == []  # RFC 3461 §5.2


# -- success at DATA time (RFC 3461 §5.2.3) --------------------------------------------------


async def test_local_delivery_with_notify_success_is_reported_delivered(world: World) -> None:
    dsn = request(
        envid="E1",
        ret="HDRS",
        alice=RcptDsn(("SUCCESS",), "rfc822;Alice@Example.test"),
        bob=RcptDsn(("FAILURE",)),
    )
    assert (await world.deliver("alice@example.test", "bob@example.test", dsn=dsn)).accepted
    [(action, entry, rcpts, message)] = world.reports.calls
    assert action == "delivered"
    assert [(r.address, r.orcpt) for r in rcpts] == [
        ("alice@example.test", "rfc822;Alice@Example.test")
    ]
    assert (entry.sender, entry.envid, entry.ret, entry.created) == (SENDER, "E1", "HDRS", T0)
    assert message == MESSAGE
    assert len(world.inbox("alice")) == 1 and len(world.inbox("bob")) == 1


async def test_a_single_destination_alias_is_reported_like_its_mailbox(world: World) -> None:
    """RFC 3461 §5.2.7.2: no report of its own; the parameters go on to the mailbox."""
    assert (
        await world.deliver("solo@example.test", dsn=request(solo=RcptDsn(("SUCCESS",))))
    ).accepted
    assert world.reports.about() == [
        ("delivered", "solo@example.test", ("SUCCESS",), "rfc822;solo@example.test")
    ]


async def test_a_failing_report_does_not_undo_the_delivery(world: World) -> None:
    world.reports.fail = True
    outcome = await world.deliver("alice@example.test", dsn=request(alice=RcptDsn(("SUCCESS",))))
    assert outcome.accepted
    assert len(world.reports.calls) == 1
    assert len(world.inbox("alice")) == 1


# -- aliases with several destinations (RFC 3461 §5.2.7.3 (c)) --------------------------------


async def test_an_alias_with_several_destinations_is_reported_expanded(world: World) -> None:
    dsn = request(info=RcptDsn(("SUCCESS",), "rfc822;Info@example.test"))
    assert (await world.deliver("info@example.test", dsn=dsn)).accepted
    # One "expanded" report for the alias, none for alice's and bob's copies.
    assert world.reports.about() == [
        ("expanded", "info@example.test", ("SUCCESS",), "rfc822;Info@example.test")
    ]
    assert len(world.inbox("alice")) == 1 and len(world.inbox("bob")) == 1


async def test_destinations_of_an_expanded_alias_get_notify_without_success(world: World) -> None:
    dsn = request(envid="E2", team=RcptDsn(("SUCCESS", "FAILURE", "DELAY")))
    assert (await world.deliver("team@example.test", dsn=dsn)).accepted
    [entry] = world.queue.list()
    assert entry.envid == "E2"  # ENVID, RET, ORCPT: propagated to every destination
    assert [(r.address, r.notify, r.orcpt) for r in entry.recipients] == [
        ("friend@remote.test", ("FAILURE", "DELAY"), "rfc822;team@example.test"),
        ("other@remote.test", ("FAILURE", "DELAY"), "rfc822;team@example.test"),
    ]
    assert [a for a, *_ in world.reports.about()] == ["expanded"]


async def test_success_alone_on_an_expanded_alias_becomes_never(world: World) -> None:
    """Nothing left once SUCCESS is removed: the sender asked for no failure notices."""
    assert (
        await world.deliver("team@example.test", dsn=request(team=RcptDsn(("SUCCESS",))))
    ).accepted
    assert {r.notify for r in world.queued()} == {("NEVER",)}


async def test_an_expanded_alias_without_success_passes_notify_on(world: World) -> None:
    assert (
        await world.deliver("team@example.test", dsn=request(team=RcptDsn(("NEVER",))))
    ).accepted
    assert {r.notify for r in world.queued()} == {("NEVER",)}
    assert world.reports.calls == []


async def test_a_hidden_copy_is_never_reported(world: World) -> None:
    """A domain's copy_inbound_to gets no NOTIFY of the client's, so no report reveals it."""
    dsn = DsnRequest(recipients={"carol@archived.test": RcptDsn(("SUCCESS",))})
    assert (await world.deliver("carol@archived.test", dsn=dsn)).accepted
    assert world.reports.about() == [
        ("delivered", "carol@archived.test", ("SUCCESS",), "rfc822;carol@archived.test")
    ]
    assert len(world.inbox("archive")) == 1  # the hidden copy was delivered all the same

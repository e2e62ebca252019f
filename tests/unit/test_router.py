"""The router over a directory snapshot: RCPT decisions and expansion, no I/O."""

from __future__ import annotations

from pathlib import Path

import pytest

from pymta.config.loader import parse_config
from pymta.delivery.router import Router
from pymta.delivery.verdicts import Refusal, SessionInfo
from pymta.directory.local import LocalDirectory

CONFIG = """
[server]
hostname = "mx.example.test"
data_dir = "/tmp/unused"

[[domains]]
name = "example.test"
copy_inbound_to = "archive"

[[domains]]
name = "other.test"

[[domains]]
name = "catch.test"
add_user_addresses = false
accept_unknown_recipients = true
catch_all = "bob"

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
name = "gone"
domain = "example.test"
enabled = false

[[addresses]]
address = "info@example.test"
destinations = ["alice", "bob", "gone"]

[[addresses]]
address = "team@example.test"
destinations = ["info@example.test", "alice", "friend@remote.test"]

[[addresses]]
address = "postmaster"
destinations = ["alice"]

[[addresses]]
address = "staff@other.test"
destinations = ["bob"]
internal = true

[[addresses]]
address = "loop1@other.test"
destinations = ["loop2@other.test"]

[[addresses]]
address = "loop2@other.test"
destinations = ["loop1@other.test", "alice"]
"""

OUTSIDE = SessionInfo(peer_ip="192.0.2.1")
AUTHENTICATED = SessionInfo(peer_ip="192.0.2.1", authenticated_user="alice")


@pytest.fixture
def router() -> Router:
    return Router(LocalDirectory(parse_config(CONFIG, source=Path("test.toml"))))


def names(router: Router, *rcpts: str) -> list[str]:
    return sorted(str(r.mailbox) for r in router.expand(list(rcpts)).local)


def test_rcpt_decisions(router: Router) -> None:
    sender = "someone@outside.test"
    check = router.check_recipient
    assert check(OUTSIDE, sender, "alice@example.test") is None
    assert check(OUTSIDE, sender, "ALICE@EXAMPLE.TEST") is None
    assert check(OUTSIDE, sender, "nobody@example.test") is Refusal.UNKNOWN_USER
    assert check(OUTSIDE, sender, "victim@remote.test") is Refusal.RELAY_DENIED
    assert check(AUTHENTICATED, sender, "victim@remote.test") is None
    assert check(OUTSIDE, sender, "gone@example.test") is Refusal.MAILBOX_DISABLED
    assert check(OUTSIDE, sender, "staff@other.test") is Refusal.INTERNAL_ONLY
    assert check(OUTSIDE, "alice@example.test", "staff@other.test") is None
    assert check(AUTHENTICATED, sender, "staff@other.test") is None
    assert check(OUTSIDE, sender, "whatever@catch.test") is None
    assert check(OUTSIDE, sender, "alice@catch.test") is None  # caught, not a user address


def test_expansion_follows_aliases_and_gives_each_mailbox_one_copy(router: Router) -> None:
    expansion = router.expand(["team@example.test", "alice@example.test"])
    assert names(router, "team@example.test", "alice@example.test") == [
        "alice@example.test",
        "archive@example.test",  # the domain's hidden copy
        "bob@example.test",
    ]
    assert [r.address for r in expansion.remote] == ["friend@remote.test"]
    assert expansion.skipped == ("gone@example.test",)


def test_hidden_copy_only_for_its_domain(router: Router) -> None:
    assert names(router, "postmaster@other.test") == ["alice@example.test"]
    assert names(router, "postmaster@example.test") == [
        "alice@example.test",
        "archive@example.test",
    ]


def test_alias_loops_end(router: Router) -> None:
    assert names(router, "loop1@other.test") == ["alice@example.test"]


def test_delivered_to_is_the_envelope_recipient(router: Router) -> None:
    [route] = router.expand(["whatever@catch.test"]).local
    assert (str(route.mailbox), route.recipient) == ("bob@example.test", "whatever@catch.test")

"""The authenticator: login names and addresses, disabled users, throttling, a directory
that is down, and password checks off the event loop."""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from passlib.hash import sha512_crypt

from pymta.auth.authenticator import Authenticator, AuthResult, AuthStatus
from pymta.auth.passwords import Passwords
from pymta.auth.throttle import Throttle
from pymta.config.loader import parse_config
from pymta.config.model import Limits, Secret
from pymta.directory.local import LocalDirectory
from pymta.directory.model import Directory

# Cheap $6$ hashes keep the tests fast; the dummy hash is a real argon2id one.
ALICE_HASH = sha512_crypt.using(rounds=1000).hash("alice-pw")
CONFIG = f"""
[server]
hostname = "mx.example.test"
data_dir = "/tmp/unused"

[[domains]]
name = "example.test"

[[domains]]
name = "catch.test"
add_user_addresses = false
accept_unknown_recipients = true
catch_all = "alice"

[[directory.users]]
name = "alice"
domain = "example.test"
password_hash = "{ALICE_HASH}"

[[directory.users]]
name = "gone"
domain = "example.test"
enabled = false
password_hash = "{sha512_crypt.using(rounds=1000).hash("gone-pw")}"

[[directory.users]]
name = "nopass"
domain = "example.test"

[[addresses]]
address = "a.liddell@example.test"
destinations = ["alice"]

[[addresses]]
address = "team@example.test"
destinations = ["alice", "gone"]
"""
LIMITS = replace(
    Limits(),
    auth_failure_delay_s=2.0,
    auth_max_failures_per_ip=3,
    auth_max_failures_per_user=10,
    auth_failure_window_s=600.0,
)
IP = "192.0.2.10"


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@dataclass
class Holder:
    directory: Directory


class RecordingPasswords(Passwords):
    """Real verification, recording the thread it ran on and the hash it was given."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: list[threading.Thread] = []
        self.hashes: list[str] = []

    def verify(self, stored: Secret | None, password: str) -> bool:
        self.threads.append(threading.current_thread())
        self.hashes.append("" if stored is None else stored.reveal())
        return super().verify(stored, password)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def passwords() -> RecordingPasswords:
    return RecordingPasswords()


@pytest.fixture
def holder() -> Holder:
    return Holder(LocalDirectory(parse_config(CONFIG, source=Path("test.toml"))))


@pytest.fixture
def auth(holder: Holder, passwords: RecordingPasswords, clock: FakeClock) -> Authenticator:
    return Authenticator(holder, passwords, Throttle(LIMITS, clock), clock)


async def login(auth: Authenticator, name: str, password: str, ip: str = IP) -> AuthResult:
    return await auth.authenticate(name, password, peer_ip=ip, protocol="imap")


@pytest.mark.parametrize("name", ["alice", "ALICE", "alice@example.test", "A.Liddell@Example.TEST"])
async def test_user_name_or_own_address_logs_in(auth: Authenticator, name: str) -> None:
    result = await login(auth, name, "alice-pw")
    assert result.status is AuthStatus.OK and result.ok
    assert result.user is not None and result.user.name == "alice"


@pytest.mark.parametrize(
    "name",
    [
        "team@example.test",  # an address of several users is no one's own
        "whoever@catch.test",  # a catch-all is not an address of the user
        "alice@elsewhere.test",
        "",
    ],
)
async def test_addresses_that_are_not_the_users_own_fail(auth: Authenticator, name: str) -> None:
    assert (await login(auth, name, "alice-pw")).status is AuthStatus.FAILED


async def test_wrong_password_disabled_and_passwordless_users_fail_after_the_delay(
    auth: Authenticator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="pymta.auth.authenticator")
    assert (await login(auth, "alice", "wrong")).status is AuthStatus.FAILED
    assert (await login(auth, "gone", "gone-pw", "192.0.2.11")).status is AuthStatus.FAILED
    assert (await login(auth, "nopass", "", "192.0.2.12")).status is AuthStatus.FAILED
    assert clock.slept == [2.0, 2.0, 2.0]
    reasons = [r.getMessage().rsplit("reason=", 1)[1] for r in caplog.records]
    assert reasons == ["bad_password", "disabled", "no_password"]
    text = caplog.text
    assert "wrong" not in text and "gone-pw" not in text and "$6$" not in text
    assert "auth failed user='alice' ip=192.0.2.10 protocol=imap reason=bad_password" in text


async def test_unknown_user_is_checked_against_a_dummy_hash(
    auth: Authenticator, passwords: RecordingPasswords
) -> None:
    """No timing difference between "no such user" and "wrong password"."""
    assert (await login(auth, "mallory", "guess")).status is AuthStatus.FAILED
    assert (await login(auth, "nopass", "guess")).status is AuthStatus.FAILED
    assert len(passwords.hashes) == 2
    assert all(h.startswith("$argon2id$") for h in passwords.hashes)


async def test_password_check_runs_off_the_event_loop(
    auth: Authenticator, passwords: RecordingPasswords
) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        assert (await login(auth, "mallory", "guess")).status is AuthStatus.FAILED  # argon2
    finally:
        task.cancel()
    assert passwords.threads and threading.main_thread() not in passwords.threads
    assert ticks > 1  # the loop kept running while the hash was checked


async def test_throttled_logins_are_refused_without_checking_the_password(
    auth: Authenticator, passwords: RecordingPasswords, clock: FakeClock
) -> None:
    for _ in range(3):
        assert (await login(auth, "alice", "wrong")).status is AuthStatus.FAILED
    assert clock.slept == [2.0, 4.0, 8.0]
    checked = len(passwords.hashes)
    result = await login(auth, "alice", "alice-pw")  # even the right password
    assert result.status is AuthStatus.THROTTLED
    assert len(passwords.hashes) == checked
    assert (await login(auth, "alice", "alice-pw", "192.0.2.99")).ok  # another peer
    clock.t += 601.0
    assert (await login(auth, "alice", "alice-pw")).ok  # the window has passed


async def test_failures_count_against_the_user_whatever_name_was_typed(
    holder: Holder, passwords: RecordingPasswords, clock: FakeClock
) -> None:
    limits = replace(LIMITS, auth_max_failures_per_ip=100, auth_max_failures_per_user=2)
    auth = Authenticator(holder, passwords, Throttle(limits, clock), clock)
    await login(auth, "alice", "x", "198.51.100.1")
    await login(auth, "a.liddell@example.test", "x", "198.51.100.2")
    assert (await login(auth, "ALICE@example.test", "alice-pw", "198.51.100.3")).status is (
        AuthStatus.THROTTLED
    )


class DownDirectory:
    @property
    def directory(self) -> Directory:
        raise ConnectionRefusedError("ldap://directory.example.test")


async def test_directory_down_is_unavailable(
    passwords: RecordingPasswords, clock: FakeClock
) -> None:
    auth = Authenticator(DownDirectory(), passwords, Throttle(LIMITS, clock), clock)
    assert (await login(auth, "alice", "alice-pw")).status is AuthStatus.UNAVAILABLE
    assert passwords.hashes == [] and clock.slept == []


async def test_overlong_password_fails_unchecked(
    auth: Authenticator, passwords: RecordingPasswords
) -> None:
    assert (await login(auth, "alice", "x" * 5000)).status is AuthStatus.FAILED
    assert passwords.hashes == []

"""Failed-login throttling arithmetic with an injected clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pymta.auth.throttle import MAX_DELAY_S, Throttle, peer_key
from pymta.config.model import Limits

LIMITS = replace(
    Limits(),
    auth_failure_delay_s=2.0,
    auth_max_failures_per_ip=5,
    auth_max_failures_per_user=3,
    auth_failure_window_s=600.0,
)


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_delay_doubles_per_failure_of_the_peer_up_to_15_seconds(clock: FakeClock) -> None:
    limits = replace(LIMITS, auth_max_failures_per_ip=100, auth_max_failures_per_user=100)
    throttle = Throttle(limits, clock)
    assert throttle.delay("192.0.2.1") == 0.0
    delays = [throttle.failure("192.0.2.1", f"user{n}") for n in range(6)]
    assert delays == [2.0, 4.0, 8.0, MAX_DELAY_S, MAX_DELAY_S, MAX_DELAY_S]
    assert throttle.delay("192.0.2.2") == 0.0  # another peer pays nothing


def test_peer_is_refused_past_its_maximum_within_the_window(clock: FakeClock) -> None:
    throttle = Throttle(LIMITS, clock)
    for n in range(5):
        assert not throttle.refused("127.0.0.1", f"user{n}")  # loopback is not exempt
        throttle.failure("127.0.0.1", f"user{n}")
    assert throttle.refused("127.0.0.1", "someone")
    clock.t += 599.0
    assert throttle.refused("127.0.0.1", "someone")
    clock.t += 2.0  # the first failures leave the window
    assert not throttle.refused("127.0.0.1", "someone")
    assert throttle.tracked() == (0, 0)  # and are forgotten


def test_user_is_refused_past_its_maximum_from_any_peer(clock: FakeClock) -> None:
    throttle = Throttle(LIMITS, clock)
    for n in range(3):
        throttle.failure(f"198.51.100.{n}", "alice")
    assert throttle.refused("203.0.113.9", "alice")
    assert not throttle.refused("203.0.113.9", "bob")


def test_success_forgets_only_that_users_failures_from_that_peer(clock: FakeClock) -> None:
    throttle = Throttle(LIMITS, clock)
    throttle.failure("192.0.2.1", "alice")
    throttle.failure("192.0.2.1", "alice")
    throttle.failure("192.0.2.1", "bob")
    throttle.failure("192.0.2.7", "alice")
    throttle.success("192.0.2.1", "alice")
    assert throttle.delay("192.0.2.1") == 2.0  # bob's failure still counts for the peer
    throttle.failure("192.0.2.8", "alice")
    throttle.failure("192.0.2.9", "alice")
    assert throttle.refused("192.0.2.1", "alice")  # 3 failures of alice from elsewhere


def test_ipv6_peers_are_counted_by_their_64(clock: FakeClock) -> None:
    assert peer_key("2001:db8:1:2::5") == peer_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert peer_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert peer_key("fe80::1%eth0") == "fe80::/64"
    assert peer_key("unix") == "unix"
    throttle = Throttle(LIMITS, clock)
    throttle.failure("2001:db8:1:2::5", "a")
    assert throttle.delay("2001:db8:1:2::99") == 2.0


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = Throttle(LIMITS, clock, max_tracked=100)
    for n in range(1000):
        throttle.failure(f"10.0.{n // 256}.{n % 256}", f"user{n}")
        clock.t += 0.001
    peers, users = throttle.tracked()
    assert peers <= 100 and users <= 100
    for _ in range(50):
        throttle.failure("192.0.2.1", "alice")
    assert throttle.refused("192.0.2.1", "alice")  # a long run costs a bounded entry

"""Failed-login throttling, one object per server, shared by every protocol.

Each failure is remembered (time, peer, user) for `Limits.auth_failure_window_s`. A failed
login is answered only after a delay that doubles with the peer's recent failures:
`auth_failure_delay_s * 2 ** (failures - 1)`, at most `MAX_DELAY_S` (Dovecot's auth
penalty: 2 s doubling up to 15 s). A peer with `auth_max_failures_per_ip` recent failures,
or a user with `auth_max_failures_per_user` (from anywhere: a distributed guess at one
account), is refused without its password being checked. Loopback is not exempt.

A success of user U from peer P forgets the failures of U from P, and only those: other
users' failures from P still count against P, and U's failures from elsewhere against U.

Peers are counted by address; an IPv6 peer by its /64 (one subscriber's allocation, which
an attacker can walk through), an IPv4-mapped one as IPv4. Memory is bounded: at most
`max_tracked` peers and users are remembered (the stalest are forgotten first), each with
no more failures than its limit needs, and entries leave once their window has passed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict, deque
from typing import Protocol

from pymta.config.model import Limits

MAX_DELAY_S = 15.0  # Dovecot's AUTH_PENALTY_MAX_SECONDS
IPV6_PREFIX = 64


class Clock(Protocol):
    """Time for the throttle and the authenticator; tests inject a fake one."""

    def now(self) -> float:
        """Seconds on a monotonic clock."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def peer_key(ip: str) -> str:
    """What failures are counted by: the address, an IPv6 one as its /64."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return ip  # not an address (a Unix socket, a test): counted as given
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX), strict=False))
    return str(address)


# Failures of one peer: (time, user); of one user: (time, peer key). Oldest first.
_Failures = deque[tuple[float, str]]


class Throttle:
    def __init__(self, limits: Limits, clock: Clock, *, max_tracked: int = 100_000) -> None:
        self.limits = limits  # replaced on a config reload
        self._clock = clock
        self._max_tracked = max_tracked
        self._peers: OrderedDict[str, _Failures] = OrderedDict()
        self._users: OrderedDict[str, _Failures] = OrderedDict()

    def refused(self, ip: str, user: str) -> bool:
        """Whether a login of `user` from `ip` is refused without checking the password:
        the peer or the user has reached its maximum of failures within the window."""
        now = self._clock.now()
        self._evict(self._peers, now)
        self._evict(self._users, now)
        peer = self._recent(self._peers, peer_key(ip), now)
        by_user = self._recent(self._users, user, now)
        return (
            len(peer) >= self.limits.auth_max_failures_per_ip
            or len(by_user) >= self.limits.auth_max_failures_per_user
        )

    def delay(self, ip: str) -> float:
        """How long a failed login from `ip` waits before it is answered, now."""
        failures = len(self._recent(self._peers, peer_key(ip), self._clock.now()))
        if failures == 0:
            return 0.0
        base = self.limits.auth_failure_delay_s
        return min(MAX_DELAY_S, base * 2.0 ** min(failures - 1, 32))

    def failure(self, ip: str, user: str) -> float:
        """Record a failed login; returns the delay before it may be answered."""
        now = self._clock.now()
        key = peer_key(ip)
        self._add(self._peers, key, (now, user), self.limits.auth_max_failures_per_ip, now)
        self._add(self._users, user, (now, key), self.limits.auth_max_failures_per_user, now)
        return self.delay(ip)

    def success(self, ip: str, user: str) -> None:
        """Forget the failures of `user` from `ip` (and only those)."""
        key = peer_key(ip)
        self._drop(self._peers, key, user)
        self._drop(self._users, user, key)

    def tracked(self) -> tuple[int, int]:
        """(peers, users) remembered now (for tests and metrics)."""
        return len(self._peers), len(self._users)

    # -- bookkeeping --------------------------------------------------------------------

    def _recent(self, table: OrderedDict[str, _Failures], key: str, now: float) -> _Failures:
        failures = table.get(key)
        if failures is None:
            return deque()
        horizon = now - self.limits.auth_failure_window_s
        while failures and failures[0][0] <= horizon:
            failures.popleft()
        if not failures:
            del table[key]
        return failures

    def _add(
        self,
        table: OrderedDict[str, _Failures],
        key: str,
        entry: tuple[float, str],
        limit: int,
        now: float,
    ) -> None:
        self._recent(table, key, now)
        failures = table.get(key)
        if failures is None:
            # One more than the limit is all "reached the limit" and the delay need.
            failures = table[key] = deque(maxlen=max(1, limit) + 1)
        failures.append(entry)
        table.move_to_end(key)
        self._evict(table, now)

    def _evict(self, table: OrderedDict[str, _Failures], now: float) -> None:
        """Forget entries whose last failure left the window (the stalest come first),
        and the stalest beyond `max_tracked`."""
        horizon = now - self.limits.auth_failure_window_s
        while table:
            key, failures = next(iter(table.items()))
            if len(table) > self._max_tracked or failures[-1][0] <= horizon:
                del table[key]
            else:
                break

    @staticmethod
    def _drop(table: OrderedDict[str, _Failures], key: str, other: str) -> None:
        failures = table.get(key)
        if failures is None:
            return
        kept = [f for f in failures if f[1] != other]
        if not kept:
            del table[key]
            return
        failures.clear()
        failures.extend(kept)

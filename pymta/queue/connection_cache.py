"""The remote transport's connection cache: idle SMTP sessions by address.

A session whose transaction ended cleanly goes back to the `SessionPool`, shared by every
`deliver` call of the transport, like Postfix's connection cache
(`smtp_connection_cache_time_limit`, `smtp_connection_reuse_time_limit`): the next delivery
to that address reuses it without a new TCP and TLS handshake. A cached session idle for
`idle_s` is closed with QUIT (in the background), none is reused once `max_age_s` old, and
`close()` quits them all at shutdown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiosmtplib

# What ends a session attempt without a usable reply: the network, a timeout, a protocol
# error of the client library.
SESSION_ERRORS = (aiosmtplib.SMTPException, OSError, asyncio.TimeoutError)


@dataclass(frozen=True)
class Relay:
    """One address of one host we talk to."""

    host: str
    ip: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}[{self.ip}]:{self.port}"


@dataclass
class Session:
    """An open SMTP session with one address, in use or idle in the pool."""

    smtp: aiosmtplib.SMTP
    relay: Relay
    tls: str  # "TLSv1.3" or "none"
    opened: float  # monotonic time of the connection
    idle_since: float = 0.0


class SessionPool:
    """Idle sessions by address, shared by every `deliver` call (a connection cache).

    `take` hands out the most recently used live session of an address that is younger
    than `max_age_s`; `give_back` keeps at most `per_relay` idle sessions per address; a
    timer closes (QUIT, in the background) those idle longer than `idle_s`.
    """

    def __init__(
        self,
        *,
        idle_s: float,
        max_age_s: float,
        per_relay: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._idle_s = idle_s
        self._max_age_s = max_age_s
        self._per_relay = per_relay
        self._clock = clock
        self._idle: dict[Relay, list[Session]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._quitting: set[asyncio.Task[None]] = set()

    def take(self, relay: Relay) -> Session | None:
        sessions = self._idle.get(relay)
        now = self._clock()
        while sessions:
            session = sessions.pop()
            if session.smtp.is_connected and now - session.opened < self._max_age_s:
                if not sessions:
                    del self._idle[relay]
                return session
            self._quit_later(session)
        self._idle.pop(relay, None)
        return None

    def give_back(self, session: Session) -> None:
        sessions = self._idle.setdefault(session.relay, [])
        too_old = self._clock() - session.opened >= self._max_age_s
        if not session.smtp.is_connected or too_old or len(sessions) >= self._per_relay:
            if not sessions:
                del self._idle[session.relay]
            self._quit_later(session)
            return
        session.idle_since = self._clock()
        sessions.append(session)
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._idle_s, self._sweep)

    def _sweep(self) -> None:
        self._timer = None
        now = self._clock()
        for relay in list(self._idle):
            keep = []
            for session in self._idle[relay]:
                if now - session.idle_since >= self._idle_s:
                    self._quit_later(session)
                else:
                    keep.append(session)
            if keep:
                self._idle[relay] = keep
            else:
                del self._idle[relay]
        if self._idle:
            oldest = min(s.idle_since for group in self._idle.values() for s in group)
            delay = max(0.0, oldest + self._idle_s - now)
            self._timer = asyncio.get_running_loop().call_later(delay, self._sweep)

    def _quit_later(self, session: Session) -> None:
        task = asyncio.get_running_loop().create_task(_quit(session.smtp))
        self._quitting.add(task)
        task.add_done_callback(self._quitting.discard)

    @property
    def idle(self) -> int:
        return sum(len(group) for group in self._idle.values())

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for group in self._idle.values():
            for session in group:
                self._quit_later(session)
        self._idle.clear()
        if self._quitting:
            await asyncio.gather(*self._quitting, return_exceptions=True)


async def _quit(smtp: aiosmtplib.SMTP) -> None:
    try:
        await smtp.quit(timeout=10)
    except SESSION_ERRORS:
        smtp.close()

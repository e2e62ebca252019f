"""Checking a login name and password against the directory, for every protocol.

`Authenticator.authenticate(login, password, peer_ip=..., protocol=...)` answers an
`AuthResult`: status OK with the user, or FAILED / THROTTLED / UNAVAILABLE:

- The login is the user's name ("alice") or one of the user's own addresses
  ("alice@example.test", any case): an address that the directory resolves, directly and
  not through a catch-all, to that user alone. Disabled users fail.
- The password hash is verified on a worker thread (argon2id costs about 50 ms of CPU),
  never on the event loop. An unknown user, or one without a password, is verified
  against a dummy hash, so the answer takes as long as for a wrong password.
- Failures go through the shared `Throttle`: a failed login is answered only after its
  delay; a peer or user past its limit is refused (THROTTLED) without its password being
  checked.
- A directory that cannot be reached (a backend raising OSError, as the LDAP one will)
  gives UNAVAILABLE: the protocol answers with a temporary error (IMAP NO [UNAVAILABLE]).

Logs one line per attempt: `auth ok` / `auth failed user=.. ip=.. protocol=.. reason=..`,
never the password or a hash.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

from pymta.config.model import Secret
from pymta.directory.model import Directory, User

from .throttle import Clock, Throttle

log = logging.getLogger(__name__)

MAX_LOGIN_CHARS = 320  # RFC 5321 §4.5.3.1: 64 octets of local part, 255 of domain, "@"
MAX_PASSWORD_CHARS = 4096  # longer is refused unchecked (the hash work grows with it)


class DirectorySource(Protocol):
    """Where the current directory snapshot is (`delivery.deliver.DirectoryHolder`)."""

    @property
    def directory(self) -> Directory: ...


class PasswordCheck(Protocol):
    """`auth.passwords.Passwords`."""

    def hash(self, password: str) -> Secret: ...

    def verify(self, stored: Secret | None, password: str) -> bool: ...


class AuthStatus(enum.Enum):
    OK = "ok"
    FAILED = "failed"  # wrong name or password, disabled user (IMAP NO [AUTHENTICATIONFAILED])
    THROTTLED = "throttled"  # too many failures lately; the password was not checked
    UNAVAILABLE = "unavailable"  # the directory could not be asked (IMAP NO [UNAVAILABLE])


@dataclass(frozen=True)
class AuthResult:
    status: AuthStatus
    user: User | None = None  # set exactly when status is OK

    @property
    def ok(self) -> bool:
        return self.status is AuthStatus.OK


FAILED = AuthResult(AuthStatus.FAILED)
THROTTLED = AuthResult(AuthStatus.THROTTLED)
UNAVAILABLE = AuthResult(AuthStatus.UNAVAILABLE)


class LoginCheck(Protocol):
    """What the protocol front ends (SMTP AUTH, IMAP, POP3) call: `Authenticator`, or a
    test double. Throttling and password checks live behind it, so every protocol fails
    logins the same way."""

    async def authenticate(
        self, login: str, password: str, *, peer_ip: str, protocol: str
    ) -> AuthResult: ...


class Authenticator:
    def __init__(
        self,
        directory: DirectorySource,
        passwords: PasswordCheck,
        throttle: Throttle,
        clock: Clock,
        *,
        executor: Executor | None = None,
    ) -> None:
        """`executor` runs the password checks (None: the event loop's default one)."""
        self._directory = directory
        self._passwords = passwords
        self._throttle = throttle
        self._clock = clock
        self._executor = executor
        # Same scheme and cost as real hashes: verifying against it takes as long.
        self._dummy = passwords.hash(secrets.token_urlsafe(24))

    async def authenticate(
        self, login: str, password: str, *, peer_ip: str, protocol: str
    ) -> AuthResult:
        try:
            user = self.resolve(login)
        except OSError as exc:
            log.error(
                "auth unavailable user=%r ip=%s protocol=%s error=%s",
                _shown(login),
                peer_ip,
                protocol,
                type(exc).__name__,
            )
            return UNAVAILABLE
        # Count failures against the user when there is one, whatever name was typed.
        key = user.name if user is not None else login.lower()[:MAX_LOGIN_CHARS]
        if self._throttle.refused(peer_ip, key):
            self._log_failure(login, peer_ip, protocol, "throttled")
            await self._clock.sleep(self._throttle.delay(peer_ip))
            return THROTTLED
        stored = user.password_hash if user is not None else None
        matched = False
        if len(password) <= MAX_PASSWORD_CHARS:
            loop = asyncio.get_running_loop()
            matched = await loop.run_in_executor(
                self._executor, self._passwords.verify, stored or self._dummy, password
            )
        if matched and user is not None and stored is not None and user.enabled:
            self._throttle.success(peer_ip, key)
            log.info("auth ok user=%s ip=%s protocol=%s", user.name, peer_ip, protocol)
            return AuthResult(AuthStatus.OK, user)
        if user is None:
            reason = "unknown_user"
        elif stored is None:
            reason = "no_password"
        elif not user.enabled:
            reason = "disabled"
        else:
            reason = "bad_password"
        delay = self._throttle.failure(peer_ip, key)
        self._log_failure(login, peer_ip, protocol, reason)
        await self._clock.sleep(delay)
        return FAILED

    def resolve(self, login: str) -> User | None:
        """The user a login name means: a user name, or an address of that user's own
        (one destination, the user; not through a catch-all). OSError: directory down."""
        if not login or len(login) > MAX_LOGIN_CHARS:
            return None
        directory = self._directory.directory
        if "@" not in login:
            return directory.user(login.lower())
        entry = directory.lookup(login)
        if entry is None or entry.catch_all or len(entry.destinations) != 1:
            return None
        name = entry.destinations[0].user
        return None if name is None else directory.user(name)

    @staticmethod
    def _log_failure(login: str, ip: str, protocol: str, reason: str) -> None:
        log.warning(
            "auth failed user=%r ip=%s protocol=%s reason=%s", _shown(login), ip, protocol, reason
        )


def _shown(login: str) -> str:
    """A login name fit for a log line (it comes from the network): bounded; %r escapes."""
    return login if len(login) <= 64 else login[:64] + "..."

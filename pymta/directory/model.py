"""The directory's values and its interface."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from pymta.config.model import DestinationRef, DomainConfig, Secret


@dataclass(frozen=True)
class Mailbox:
    """A place mail can be stored: a user's mailbox or a public mailbox."""

    kind: Literal["user", "public"]
    name: str
    domain: str | None  # the user's domain (the directory under mail/); None for public
    enabled: bool = True
    quota_bytes: int = 0  # effective quota, 0: unlimited

    def __str__(self) -> str:
        return f"{self.name}@{self.domain}" if self.kind == "user" else f"public:{self.name}"


@dataclass(frozen=True)
class User:
    name: str
    domain: str
    password_hash: Secret | None
    enabled: bool
    quota_bytes: int  # effective quota, 0: unlimited
    groups: tuple[str, ...]

    @property
    def mailbox(self) -> Mailbox:
        return Mailbox("user", self.name, self.domain, self.enabled, self.quota_bytes)


@dataclass(frozen=True)
class AddressEntry:
    """What one address means, one level deep."""

    address: str  # the address looked up, lower-cased
    destinations: tuple[DestinationRef, ...]
    internal: bool = False
    catch_all: bool = False  # reached through a domain's catch-all


class Directory(Protocol):
    def domain(self, name: str) -> DomainConfig | None: ...

    def is_local_domain(self, name: str) -> bool: ...

    def lookup(self, address: str) -> AddressEntry | None: ...

    def user(self, name: str) -> User | None: ...

    def users(self) -> list[User]: ...

    def public_mailbox(self, name: str) -> Mailbox | None: ...

    def public_mailboxes(self) -> list[Mailbox]: ...

    def addresses_of(self, mailbox: Mailbox) -> list[str]: ...

"""The router: recipient checks at RCPT time and expansion of recipients into routes.

Pure functions of a directory snapshot: no I/O. Expansion follows aliases recursively
(with loop detection and a depth limit), adds each domain's hidden copy, and gives every
mailbox at most one copy of a message however many addresses lead to it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from pymta.config.model import DestinationRef
from pymta.directory.local import split_address
from pymta.directory.model import Directory, Mailbox

from .verdicts import Refusal, SessionInfo

log = logging.getLogger(__name__)

# How deep aliases may nest (Postfix's virtual_alias_recursion_limit is 1000, but a config
# file that needs more than a handful of levels is a mistake we would rather report).
MAX_ALIAS_DEPTH = 20


@dataclass(frozen=True)
class LocalRoute:
    mailbox: Mailbox
    recipient: str  # the envelope recipient this copy is for (Delivered-To)


@dataclass(frozen=True)
class RemoteRoute:
    address: str  # where to relay
    recipient: str  # the envelope recipient it came from


Route = LocalRoute | RemoteRoute


@dataclass(frozen=True)
class Expansion:
    local: tuple[LocalRoute, ...]
    remote: tuple[RemoteRoute, ...]
    # Mailboxes skipped because they are disabled, for the log.
    skipped: tuple[str, ...] = ()


class Router:
    def __init__(self, directory: Directory) -> None:
        self.directory = directory

    def sender_is_local(self, sender: str) -> bool:
        parts = split_address(sender)
        return parts is not None and self.directory.is_local_domain(parts[1])

    def check_recipient(self, session: SessionInfo, sender: str, recipient: str) -> Refusal | None:
        """The RCPT decision, except quota (which needs the store; see `Deliverer`)."""
        parts = split_address(recipient)
        if parts is None or not self.directory.is_local_domain(parts[1]):
            # RFC 5321 §3.6.2: relaying only for authenticated clients; never an open relay.
            return None if session.authenticated_user else Refusal.RELAY_DENIED
        entry = self.directory.lookup(recipient)
        if entry is None:
            return Refusal.UNKNOWN_USER
        if entry.internal and not session.authenticated_user and not self.sender_is_local(sender):
            return Refusal.INTERNAL_ONLY
        expansion = self.expand([recipient], hidden_copies=False)
        if not expansion.local and not expansion.remote:
            return Refusal.MAILBOX_DISABLED if expansion.skipped else Refusal.UNKNOWN_USER
        return None

    def expand(self, recipients: Sequence[str], *, hidden_copies: bool = True) -> Expansion:
        """Routes for `recipients`: one LocalRoute per distinct mailbox, and the domains'
        hidden copies (`copy_inbound_to`) unless `hidden_copies` is off."""
        walk = _Expansion(self.directory)
        first_rcpt_of_domain: dict[str, str] = {}
        for rcpt in recipients:
            parts = split_address(rcpt)
            if parts is not None:
                first_rcpt_of_domain.setdefault(parts[1], rcpt)
            walk.address(rcpt, rcpt, 0, frozenset())
        # The domain's hidden copy (copy_inbound_to), once per domain and message.
        for domain_name, rcpt in first_rcpt_of_domain.items() if hidden_copies else ():
            domain = self.directory.domain(domain_name)
            if domain is not None and domain.copy_inbound_to is not None:
                walk.destination(domain.copy_inbound_to, rcpt, 1, frozenset())
        return Expansion(
            tuple(walk.local.values()), tuple(walk.remote.values()), tuple(walk.skipped)
        )


class _Expansion:
    """One walk over the alias graph, collecting routes as it goes."""

    def __init__(self, directory: Directory) -> None:
        self.directory = directory
        self.local: dict[Mailbox, LocalRoute] = {}
        self.remote: dict[str, RemoteRoute] = {}
        self.skipped: list[str] = []

    def address(self, address: str, rcpt: str, depth: int, seen: frozenset[str]) -> None:
        parts = split_address(address)
        if parts is None or not self.directory.is_local_domain(parts[1]):
            self.remote.setdefault(address.lower(), RemoteRoute(address, rcpt))
            return
        key = f"{parts[0]}@{parts[1]}"
        if key in seen or depth > MAX_ALIAS_DEPTH:
            log.warning("alias loop or too deep address=%s rcpt=%s", key, rcpt)
            return
        entry = self.directory.lookup(address)
        if entry is None:
            log.warning("destination resolves to nothing address=%s rcpt=%s", key, rcpt)
            return
        for ref in entry.destinations:
            self.destination(ref, rcpt, depth + 1, seen | {key})

    def destination(self, ref: DestinationRef, rcpt: str, depth: int, seen: frozenset[str]) -> None:
        mailbox: Mailbox | None = None
        if ref.user is not None:
            user = self.directory.user(ref.user)
            mailbox = user.mailbox if user is not None else None
        elif ref.public is not None:
            mailbox = self.directory.public_mailbox(ref.public)
        elif ref.address is not None:
            self.address(ref.address, rcpt, depth, seen)
            return
        if mailbox is None:
            log.warning("destination resolves to nothing destination=%s rcpt=%s", ref, rcpt)
        elif not mailbox.enabled:
            self.skipped.append(str(mailbox))
        else:
            self.local.setdefault(mailbox, LocalRoute(mailbox, rcpt))

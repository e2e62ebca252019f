"""The submission rule "only your own addresses" (issue 5), pure over the directory.

An authenticated user owns an address when the directory resolves it, directly and not
through a domain's catch-all, to a list of destinations that names the user: their own
addresses (user@domain, `add_user_addresses`) and every [[addresses]] entry that lists
them. The envelope sender and every From: address of a submitted message must be owned.
"""

from __future__ import annotations

import email.policy
from collections.abc import Sequence
from typing import Protocol

from pymta.directory.model import Directory


class DirectorySource(Protocol):
    """Where the current directory snapshot is (`delivery.deliver.DirectoryHolder`)."""

    @property
    def directory(self) -> Directory: ...


def owns(directory: Directory, user: str, address: str) -> bool:
    """`user` (a user name) owns `address` (any case)."""
    if not address or "@" not in address:
        return False
    entry = directory.lookup(address)
    if entry is None or entry.catch_all:
        return False
    return any(ref.user == user for ref in entry.destinations)


def from_addresses(message: bytes) -> list[str] | None:
    """The addresses of the message's From: field; None when there is not exactly one
    From: field or it cannot be parsed (RFC 5322 §3.6: exactly one From)."""
    head = message.split(b"\r\n\r\n", 1)[0].decode("utf-8", "surrogateescape")
    values: list[str] = []
    current: str | None = None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):  # a folded line (RFC 5322 §2.2.3)
            if current == "from":
                values[-1] += line
            continue
        name, colon, value = line.partition(":")
        current = name.strip().lower() if colon else None
        if current == "from":
            values.append(value)
    if len(values) != 1:
        return None
    try:
        header = email.policy.default.header_factory("from", values[0].strip())
        found = getattr(header, "addresses", ())
    except Exception:  # the email package raises assorted errors on garbage
        return None
    addresses = [a.addr_spec for a in found if a.username and a.domain]
    return addresses or None


class SenderOwnership:
    """The rule over the current directory; `enforce=False` relaxes it (everything owned)."""

    def __init__(self, directory: DirectorySource, *, enforce: bool = True) -> None:
        self._directory = directory
        self.enforce = enforce

    def sender_owned(self, user: str, sender: str) -> bool:
        """The envelope sender (MAIL FROM; "" is the null path, never owned)."""
        return not self.enforce or owns(self._directory.directory, user, sender)

    def header_owned(self, user: str, addresses: Sequence[str] | None) -> bool:
        """Every From: address (`from_addresses` of the message) is owned by `user`."""
        if not self.enforce:
            return True
        directory = self._directory.directory
        return addresses is not None and all(owns(directory, user, a) for a in addresses)

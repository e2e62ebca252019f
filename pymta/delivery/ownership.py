"""The submission rule "only your own addresses" (issue 5), pure over the directory.

An authenticated user owns an address when the directory resolves it, directly and not
through a domain's catch-all, to a list of destinations that names the user: their own
addresses (user@domain, `add_user_addresses`) and every [[addresses]] entry that lists
them. The envelope sender and every From: address of a submitted message must be owned.
"""

from __future__ import annotations

import email.policy
import re
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


# RFC 5322 §3.2.3 atext, §3.4.1 dot-atom local part, and a host name. Every repetition
# below is separated by a character the repeated part cannot contain, so a match or a
# failure takes linear time whatever the input (no backtracking blow-up on, say, a From:
# of ten thousand blanks).
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_HOST = r"[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
_ADDR = rf"{_ATEXT}(?:\.{_ATEXT})*@{_HOST}"
# A display name of plain words (atext separated by blanks: a §3.2.5 phrase without the
# dots of obs-phrase, which the email package reads its own way), or one quoted string
# without escapes or line ends.
_NAME = rf'(?:"[^"\\\r\n]*"|{_ATEXT}(?:[ \t]+{_ATEXT})*)'
# The shapes nearly every From: has, read without the email package (whose parser is a
# large share of a submission's CPU): `local@domain`, or `name <local@domain>`, once the
# value's outer blanks are stripped. Anything else (comments, groups, lists, escapes)
# goes to the full parser; a test checks that both agree on every value this accepts.
_SIMPLE_FROM = re.compile(rf"(?:(?:{_NAME}[ \t]*)?<({_ADDR})>|({_ADDR}))")


def simple_from_address(value: str) -> str | None:
    """The one address of a From: value of a common shape, or None (parse it fully)."""
    match = _SIMPLE_FROM.fullmatch(value.strip(" \t"))
    if match is None:
        return None
    address = match[1] or match[2]
    # The email package decodes an encoded-word even inside an address (RFC 2047 §5 forbids
    # it there); leave such an address to it, so both paths always agree.
    return None if "=?" in address else address


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
    simple = simple_from_address(values[0])
    if simple is not None:
        return [simple]
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

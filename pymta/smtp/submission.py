"""Submission (RFC 6409) on top of the inbound front end: AUTH, the sender rule, DKIM.

AUTH itself is `connection.InboundSMTP.smtp_AUTH`; this module holds what the submission
transaction adds around the shared `InboundPolicy`:

- `SubmissionStage.check_sender`: the envelope sender must be the user's (553 5.7.1);
- `SubmissionStage.prepare`: at the end of DATA, the From: addresses must be the user's
  (550 5.7.1); then the message is DKIM-signed when its From: domain has a key
  (a signing failure is 451 4.3.0, logged).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

from pymta.delivery.ownership import from_addresses
from pymta.delivery.verdicts import SessionInfo
from pymta.queue.dkim import normalize_domain
from pymta.smtp import codes
from pymta.smtp.codes import Reply

log = logging.getLogger(__name__)


class Ownership(Protocol):
    """`delivery.ownership.SenderOwnership`."""

    def sender_owned(self, user: str, sender: str) -> bool: ...

    def header_owned(self, user: str, addresses: Sequence[str] | None) -> bool: ...


class Signer(Protocol):
    """`queue.dkim.DkimSigner`: `sign_async` raises `DkimError` when a key is unusable."""

    async def sign_async(self, message: bytes, domain: str) -> bytes | None: ...


class SubmissionStage:
    def __init__(self, ownership: Ownership, signer: Signer | None = None) -> None:
        self._ownership = ownership
        self._signer = signer

    def check_sender(self, session: SessionInfo, sender: str) -> Reply | None:
        """MAIL FROM on a submission listener (after AUTH)."""
        user = session.authenticated_user
        if user is None:
            return codes.AUTH_REQUIRED  # RFC 4954 §4: nothing without AUTH
        if not self._ownership.sender_owned(user, sender):
            log.info("submission sender_refused user=%s sender=<%s>", user, sender)
            return codes.SENDER_NOT_OWNED
        return None

    async def prepare(self, session: SessionInfo, message: bytes) -> bytes | Reply:
        """The message to deliver (signed when possible), or the reply refusing it.

        `message` starts with our Received field; the DKIM-Signature goes before it.
        """
        user = session.authenticated_user
        if user is None:
            return codes.AUTH_REQUIRED
        addresses = from_addresses(message)  # parsed once, for both checks below
        if not self._ownership.header_owned(user, addresses):
            log.info("submission from_refused user=%s", user)
            return codes.FROM_NOT_OWNED
        if self._signer is None:
            return message
        domain = signing_domain(addresses)
        if domain is None:
            return message
        try:
            signature = await self._signer.sign_async(message, domain)
        except Exception as exc:  # DkimError, or anything dkimpy lets through
            log.error("submission dkim_failed domain=%s error=%s", domain, exc)
            return codes.DKIM_FAILED
        return message if signature is None else signature + message


def signing_domain(addresses: Sequence[str] | None) -> str | None:
    """The domain whose DKIM key signs a message with these From: addresses: their one
    domain as lower-case A-labels; None for no From or mailboxes of several domains (RFC
    5322 §3.6.2 allows several; whose key would sign?). RFC 6376 §5.4: From is signed."""
    if not addresses:
        return None
    domains = {normalize_domain(a.rpartition("@")[2]) for a in addresses}
    return domains.pop() if len(domains) == 1 else None

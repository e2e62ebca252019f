"""What the SMTP front end calls: the inbound policy and the connection gate.

Both are implemented outside `smtp/` (the policy by `delivery/`, the gate by the server
wiring) and passed in; `smtp/` only holds these interfaces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pymta.delivery.verdicts import DeliveryOutcome, Refusal, SessionInfo
from pymta.queue.model import DsnRequest
from pymta.smtp.codes import Reply


class InboundPolicy(Protocol):
    """The decisions of one mail transaction, in the order SMTP asks for them.

    `sender` is the reverse-path without angle brackets; "" is the null reverse-path
    (RFC 5321 §4.5.5, bounces).
    """

    async def check_sender(self, session: SessionInfo, sender: str) -> Reply | None:
        """None: sender accepted (port 25: syntax only for now); else the MAIL reply."""
        ...

    async def check_recipient(
        self, session: SessionInfo, sender: str, recipient: str
    ) -> Refusal | None:
        """None: recipient accepted; else why not (mapped by `codes.refusal_reply`)."""
        ...

    async def deliver(
        self,
        session: SessionInfo,
        sender: str,
        recipients: Sequence[str],
        message: bytes,
        *,
        dsn: DsnRequest | None = None,
    ) -> DeliveryOutcome:
        """Deliver `message`: our Received header first, every line ending CRLF.

        Return-Path and Delivered-To are the delivery layer's to add, per mailbox. `dsn`
        holds the RFC 3461 parameters the client gave (None: a caller without an SMTP
        transaction, such as a report we send ourselves).
        """
        ...


class ConnectionGate(Protocol):
    """Total and per-IP connection limits, shared by every listener."""

    def acquire(self, ip: str) -> bool:
        """Count one more connection from `ip`; False (and nothing counted) if over."""
        ...

    def release(self, ip: str) -> None:
        """The connection counted by a successful `acquire(ip)` has ended."""
        ...

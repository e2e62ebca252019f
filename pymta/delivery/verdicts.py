"""What the delivery layer answers the front ends: plain values, no protocol codes.

Front ends map these to their own replies (SMTP: `smtp/codes.py`), so `delivery/` never
imports a protocol module.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Refusal(enum.Enum):
    """Why a recipient is refused at RCPT time."""

    UNKNOWN_USER = "unknown_user"  # SMTP 550 5.1.1
    RELAY_DENIED = "relay_denied"  # SMTP 554 5.7.1 (not our domain, not authenticated)
    INTERNAL_ONLY = "internal_only"  # SMTP 550 5.7.1 (internal address, outside sender)
    MAILBOX_DISABLED = "mailbox_disabled"  # SMTP 550 5.2.1
    OVER_QUOTA = "over_quota"  # SMTP 452 4.2.2
    TEMPORARY = "temporary"  # SMTP 451 4.3.0 (directory or store unavailable)


@dataclass(frozen=True)
class SessionInfo:
    """What the delivery layer knows of the client (filled by the front end)."""

    peer_ip: str
    helo: str = ""
    authenticated_user: str | None = None  # None on port 25
    tls: str | None = None  # e.g. "TLSv1.3:TLS_AES_256_GCM_SHA384"; None without TLS
    listener: str = ""


@dataclass(frozen=True)
class DeliveryOutcome:
    """The result of delivering one message (the SMTP reply to DATA / BDAT LAST).

    `accepted`: every recipient is on disk (a mailbox or the queue), fsynced: reply 250.
    Otherwise `temporary` says 451 (try again) or 554 (permanent), and nothing of the
    message must be considered delivered by the client.
    """

    accepted: bool
    temporary: bool = False
    queue_id: str | None = None  # set when part of the message went to the queue
    # Where it went, for the transaction log line: ("alice@example.test", "local"), ...
    routes: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    detail: str = ""  # for the log, never for the client

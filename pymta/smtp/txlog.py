"""The one log line per mail transaction.

`smtp transaction id=.. client=.. helo=.. from=<..> rcpts=<..>,<..> size=.. msgid=..
outcome=.. reply=.. routes=rcpt:route,.. tls=.. listener=..` — never the message body,
never credentials. Values that are not plain tokens are JSON-quoted, so a client cannot
forge fields or lines through its HELO name or addresses.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pymta.delivery.verdicts import SessionInfo

log = logging.getLogger(__name__)

_PLAIN = re.compile(r"[!#-~]+")  # printable ASCII without space or '"'


def log_value(value: str) -> str:
    """`value` as it may appear after `key=` in a log line."""
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value)


def angle(address: str) -> str:
    return f"<{address}>"


@dataclass(frozen=True)
class Transaction:
    """What one transaction log line says."""

    transaction_id: str
    session: SessionInfo
    sender: str
    recipients: Sequence[str]
    outcome: str  # accepted, temporary, rejected, refused, error
    reply: str  # the code and enhanced code we answered, e.g. "250 2.0.0"
    size: int | None = None
    message_id: str | None = None
    routes: tuple[tuple[str, str], ...] = ()
    queue_id: str | None = None
    detail: str = ""  # from the delivery layer, for the log only

    def line(self) -> str:
        fields: list[tuple[str, str]] = [
            ("id", self.transaction_id),
            ("client", self.session.peer_ip),
            ("helo", self.session.helo or "-"),
            ("from", angle(self.sender)),
            ("rcpts", ",".join(angle(r) for r in self.recipients) or "-"),
            ("size", "-" if self.size is None else str(self.size)),
            ("msgid", self.message_id or "-"),
            ("outcome", self.outcome),
            ("reply", self.reply),
            ("routes", ",".join(f"{r}:{d}" for r, d in self.routes) or "-"),
            ("tls", self.session.tls or "-"),
            ("listener", self.session.listener or "-"),
        ]
        if self.queue_id:
            fields.append(("queue_id", self.queue_id))
        if self.detail:
            fields.append(("detail", self.detail))
        return "smtp transaction " + " ".join(f"{k}={log_value(v)}" for k, v in fields)


def log_transaction(transaction: Transaction) -> None:
    log.info("%s", transaction.line())

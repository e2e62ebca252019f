"""The queue's values: entries, recipients, outcomes, the transport interface, entry IDs.

Also the envelope codec: `entry_to_json` / `entry_from_json` turn an entry into the bytes
of its envelope file and back; anything that does not decode to a well-formed entry raises
`CorruptEnvelope`. Nothing here touches the disk.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"
STATUSES = (PENDING, DELIVERED, FAILED)

OutcomeKind = Literal["delivered", "temporary", "permanent"]

# RFC 3464 §2.3.3: the Action of a success report (RFC 3461 §5.2.2 (b), §5.2.3 (a),
# §5.2.7.3 (c)).
SuccessAction = Literal["delivered", "relayed", "expanded"]

ENVELOPE_VERSION = 1

_T = TypeVar("_T")

# An ID: microseconds since the epoch (14 hex digits, good until the year 4253) then 10
# random hex digits. Sorting IDs sorts entries by arrival; only [0-9a-f-] appear, so an ID
# is safe as a file name and cannot name anything outside the spool.
ID_RE = re.compile(r"[0-9a-f]{14}-[0-9a-f]{10}")


def is_valid_id(value: str) -> bool:
    return ID_RE.fullmatch(value) is not None


class IdGenerator:
    """Unique, time-sortable IDs; strictly increasing within one generator."""

    def __init__(self) -> None:
        self._last_us = 0

    def next(self, now: float) -> str:
        us = max(int(now * 1_000_000), self._last_us + 1)
        self._last_us = us
        return f"{us:014x}-{secrets.token_hex(5)}"


@dataclass(frozen=True)
class RcptDsn:
    """One recipient's RFC 3461 parameters: §4.1 NOTIFY (keywords upper-cased; () when
    not given) and §4.2 ORCPT ("addr-type;xtext", exactly as received; None when not given)."""

    notify: tuple[str, ...] = ()
    orcpt: str | None = None


@dataclass(frozen=True)
class DsnRequest:
    """The RFC 3461 parameters of one SMTP transaction: §4.3 RET ("FULL" / "HDRS"), §4.4
    ENVID (xtext, exactly as received) and each accepted recipient's `RcptDsn`, by the
    address as given in RCPT TO (the first RCPT wins for an address given twice)."""

    ret: str | None = None
    envid: str | None = None
    recipients: Mapping[str, RcptDsn] = field(default_factory=dict)

    def recipient(self, address: str) -> RcptDsn:
        return self.recipients.get(address, _NO_RCPT_DSN)


_NO_RCPT_DSN = RcptDsn()


@dataclass
class QueueRecipient:
    address: str
    transport: str  # the name of the Transport that delivers to this recipient
    target: str = ""  # opaque to the queue; the transport's own (e.g. a local mailbox)
    status: str = PENDING  # pending | delivered | failed
    attempts: int = 0
    last_error: str = ""
    # RFC 3461 §4.1 NOTIFY (upper-case keywords; () when the client gave none) and §4.2 ORCPT.
    notify: tuple[str, ...] = ()
    orcpt: str | None = None  # RFC 3461 §4.2 "addr-type;xtext", kept xtext-encoded as received
    # For a failed recipient: `on_failed` has been told (and returned). Until then the
    # scheduler keeps the entry and tries again, so a bounce is never lost to a crash.
    reported: bool = False


@dataclass
class QueueEntry:
    id: str
    sender: str  # "" is the null sender (RFC 5321 §4.5.5)
    recipients: list[QueueRecipient]
    created: float  # epoch seconds
    next_attempt: float  # epoch seconds
    attempts: int = 0
    last_error: str = ""
    held: bool = False
    envid: str | None = None  # RFC 3461 §4.4 ENVID, kept xtext-encoded as received
    ret: str | None = None  # RFC 3461 §4.3 RET: "FULL" or "HDRS"
    size: int = 0  # the message file's length in bytes
    # A delay warning went to the sender (RFC 3464 Action: delayed); sent at most once.
    warned: bool = False
    # Where the message file is; set when the entry comes from a spool, never stored.
    message_path: Path | None = field(default=None, compare=False, repr=False)

    def pending(self) -> list[QueueRecipient]:
        return [r for r in self.recipients if r.status == PENDING]

    def unreported_failures(self) -> list[QueueRecipient]:
        return [r for r in self.recipients if r.status == FAILED and not r.reported]


@dataclass(frozen=True)
class Outcome:
    """What a transport says of one recipient it was given.

    `dsn_action` matters for a "delivered" outcome whose recipient asked for a success
    report (RFC 3461 §4.1 NOTIFY=SUCCESS): "delivered" for final delivery (§5.2.3),
    "relayed" when handed to a server that does not offer DSN (§5.2.2 (b)), None when the
    next server offers DSN and so reports itself (§5.2.1): no report from us then.
    """

    recipient: QueueRecipient
    kind: OutcomeKind
    detail: str
    dsn_action: SuccessAction | None = "delivered"


class Transport(Protocol):
    """Delivers a queued message to some of its recipients.

    `deliver` returns one Outcome per recipient it was given (a recipient left out counts as
    temporary). It may raise: the queue then treats all of those recipients as temporary.
    It must not change the entry or the recipients; the queue records the outcomes.
    """

    name: str

    async def deliver(
        self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
    ) -> Sequence[Outcome]: ...


class CorruptEnvelope(ValueError):
    """An envelope file that does not decode to a well-formed entry."""


def entry_to_json(entry: QueueEntry) -> bytes:
    data = {
        "version": ENVELOPE_VERSION,
        "id": entry.id,
        "sender": entry.sender,
        "created": entry.created,
        "next_attempt": entry.next_attempt,
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "held": entry.held,
        "envid": entry.envid,
        "ret": entry.ret,
        "size": entry.size,
        "warned": entry.warned,
        "recipients": [
            {
                "address": r.address,
                "transport": r.transport,
                "target": r.target,
                "status": r.status,
                "attempts": r.attempts,
                "last_error": r.last_error,
                "notify": list(r.notify),
                "orcpt": r.orcpt,
                "reported": r.reported,
            }
            for r in entry.recipients
        ],
    }
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"


def entry_from_json(raw: bytes) -> QueueEntry:
    """Decode an envelope file; raises CorruptEnvelope for anything malformed."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptEnvelope(f"not JSON: {exc}") from None
    fields = _Fields(data, "envelope")
    if fields.get("version", int) != ENVELOPE_VERSION:
        raise CorruptEnvelope(f"unknown envelope version {data.get('version')!r}")
    entry_id = fields.get("id", str)
    if not is_valid_id(entry_id):
        raise CorruptEnvelope(f"bad id {entry_id!r}")
    raw_recipients = fields.get("recipients", list)
    if not raw_recipients:
        raise CorruptEnvelope("no recipients")
    return QueueEntry(
        id=entry_id,
        sender=fields.get("sender", str),
        recipients=[_recipient_from_json(r, i) for i, r in enumerate(raw_recipients)],
        created=fields.number("created"),
        next_attempt=fields.number("next_attempt"),
        attempts=fields.get("attempts", int),
        last_error=fields.get("last_error", str),
        held=fields.get("held", bool),
        envid=fields.optional_str("envid"),
        ret=fields.optional_str("ret"),
        size=fields.get("size", int),
        warned=fields.optional_bool("warned"),
    )


def _recipient_from_json(data: object, index: int) -> QueueRecipient:
    fields = _Fields(data, f"recipients[{index}]")
    status = fields.get("status", str)
    if status not in STATUSES:
        raise CorruptEnvelope(f"recipients[{index}].status: unknown {status!r}")
    notify = fields.get("notify", list)
    if not all(isinstance(n, str) for n in notify):
        raise CorruptEnvelope(f"recipients[{index}].notify: expected strings")
    return QueueRecipient(
        address=fields.get("address", str),
        transport=fields.get("transport", str),
        target=fields.get("target", str),
        status=status,
        attempts=fields.get("attempts", int),
        last_error=fields.get("last_error", str),
        notify=tuple(notify),
        orcpt=fields.optional_str("orcpt"),
        reported=fields.get("reported", bool),
    )


class _Fields:
    """Typed access to one JSON object; every failure names the field."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, dict):
            raise CorruptEnvelope(f"{where}: expected an object")
        self._data: dict[str, Any] = data
        self._where = where

    def _raw(self, key: str) -> object:
        if key not in self._data:
            raise CorruptEnvelope(f"{self._where}.{key}: missing")
        return self._data[key]

    def get(self, key: str, kind: type[_T]) -> _T:
        value = self._raw(key)
        # bool is an int in Python; an int field holding true/false is still corrupt.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CorruptEnvelope(f"{self._where}.{key}: expected {kind.__name__}")
        return value

    def number(self, key: str) -> float:
        value = self._raw(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CorruptEnvelope(f"{self._where}.{key}: expected a number")
        return float(value)

    def optional_bool(self, key: str) -> bool:
        """A bool that older envelopes may lack (then False)."""
        return key in self._data and self.get(key, bool)

    def optional_str(self, key: str) -> str | None:
        value = self._raw(key)
        if value is not None and not isinstance(value, str):
            raise CorruptEnvelope(f"{self._where}.{key}: expected a string or null")
        return value

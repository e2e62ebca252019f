"""The aiosmtpd handler: our policy in its MAIL, RCPT and DATA hooks.

Each hook returns the reply line; aiosmtpd writes it. The hooks ask the injected
`InboundPolicy` and map its answers to `codes`; an exception escaping the policy is
logged with a correlation id and answered 451 4.3.0, and the session goes on.
BDAT LAST ends in the same `handle_DATA` as DATA does, and hands the policy the
transaction's DSN parameters (RFC 3461), kept on our `TransactionEnvelope`.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from aiosmtpd.smtp import Envelope, Session

from pymta.config.model import Limits
from pymta.delivery.verdicts import DeliveryOutcome, SessionInfo
from pymta.queue.model import DsnRequest, RcptDsn
from pymta.smtp import codes
from pymta.smtp.codes import Reply
from pymta.smtp.message import (
    has_control_characters,
    message_id,
    normalize_line_endings,
    received_header,
    with_protocol,
)
from pymta.smtp.policy import InboundPolicy
from pymta.smtp.submission import SubmissionStage
from pymta.smtp.txlog import Transaction, log_transaction

log = logging.getLogger(__name__)


class Connection(Protocol):
    """What the hooks need of the SMTP connection (the `server` aiosmtpd passes in)."""

    def session_info(self) -> SessionInfo: ...


class TransactionEnvelope(Envelope):
    """aiosmtpd's envelope plus the transaction's DSN parameters (RFC 3461 §4).

    `InboundSMTP` fills them in: `ret` and `envid` when MAIL is accepted, and one `RcptDsn`
    per accepted RCPT, so `rcpt_dsn` runs parallel to `rcpt_tos`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ret: str | None = None  # RFC 3461 §4.3, upper-cased
        self.envid: str | None = None  # RFC 3461 §4.4, xtext as received
        self.rcpt_dsn: list[RcptDsn] = []

    def dsn_request(self) -> DsnRequest:
        recipients: dict[str, RcptDsn] = {}
        for address, params in zip(self.rcpt_tos, self.rcpt_dsn, strict=True):
            recipients.setdefault(address, params)  # an address given twice: the first RCPT
        return DsnRequest(ret=self.ret, envid=self.envid, recipients=recipients)


def new_transaction_id() -> str:
    """A short random id: Received "id", the 250 reply, the log line, error references."""
    return secrets.token_hex(6).upper()


def local_now() -> datetime:
    """Local time with its offset (RFC 5321 §4.4 prefers it to UT)."""
    return datetime.now(UTC).astimezone()


def reverse_path(mail_from: str | None) -> str:
    """aiosmtpd's MAIL address → the policy's sender: "" for the null path "<>"."""
    if mail_from is None or mail_from == "<>":
        return ""
    return mail_from


class InboundHandler:
    """aiosmtpd hooks over an `InboundPolicy`. One per listener; holds no session state."""

    def __init__(
        self,
        policy: InboundPolicy,
        *,
        limits: Limits,
        hostname: str,
        clock: Callable[[], datetime] = local_now,
        new_id: Callable[[], str] = new_transaction_id,
        submission: SubmissionStage | None = None,
    ) -> None:
        self._policy = policy
        self._submission = submission  # set on submission listeners (587 / 465)
        self._limits = limits
        self._hostname = hostname
        self._clock = clock
        self._new_id = new_id

    def _internal_error(self, stage: str, info: SessionInfo) -> str:
        ref = self._new_id()
        log.exception("smtp internal_error ref=%s stage=%s client=%s", ref, stage, info.peer_ip)
        return str(codes.INTERNAL_ERROR.format(ref=ref))

    async def handle_MAIL(
        self,
        server: Connection,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if has_control_characters(address):  # a CR or LF here would forge header lines
            return str(codes.BAD_SENDER_SYNTAX)
        info = server.session_info()
        if self._submission is not None:
            owned = self._submission.check_sender(info, reverse_path(address))
            if owned is not None:
                return str(owned)
        try:
            refused = await self._policy.check_sender(info, reverse_path(address))
        except Exception:
            return self._internal_error("mail", info)
        if refused is not None:
            return str(refused)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return str(codes.SENDER_OK)

    async def handle_RCPT(
        self,
        server: Connection,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if has_control_characters(address):
            return str(codes.BAD_RECIPIENT_SYNTAX)
        if len(envelope.rcpt_tos) >= self._limits.max_recipients:
            return str(codes.TOO_MANY_RECIPIENTS)  # RFC 5321 §4.5.3.1.10: 452, not 552
        info = server.session_info()
        try:
            refusal = await self._policy.check_recipient(
                info, reverse_path(envelope.mail_from), address
            )
        except Exception:
            return self._internal_error("rcpt", info)
        if refusal is not None:
            log.info(
                "smtp recipient_refused client=%s rcpt=<%s> reason=%s",
                info.peer_ip,
                address,
                refusal.value,
            )
            return str(codes.refusal_reply(refusal))
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return str(codes.RECIPIENT_OK)

    async def handle_DATA(self, server: Connection, session: Session, envelope: Envelope) -> str:
        """End of DATA or BDAT LAST: prepend Received, canonical CRLF, deliver."""
        info = server.session_info()
        transaction_id = self._new_id()
        sender = reverse_path(envelope.mail_from)
        recipients = tuple(envelope.rcpt_tos)
        trace = received_header(
            helo=info.helo,
            peer_ip=info.peer_ip,
            hostname=self._hostname,
            protocol=with_protocol(
                extended=session.extended_smtp,
                tls=info.tls is not None,
                authenticated=info.authenticated_user is not None,
                smtputf8=envelope.smtp_utf8,
            ),
            tls=info.tls,
            transaction_id=transaction_id,
            recipients=recipients,
            now=self._clock(),
        )
        # RFC 5321 §4.4: the trace line goes at the very beginning of the content.
        message = trace + normalize_line_endings(envelope.original_content or b"")
        outcome: DeliveryOutcome | None = None
        refusal: Reply | None = None
        try:
            if self._submission is not None:
                prepared = await self._submission.prepare(info, message)
                if isinstance(prepared, Reply):
                    refusal = prepared
                else:
                    message = prepared
            if refusal is None:
                outcome = await self._policy.deliver(
                    info, sender, recipients, message, dsn=_dsn_request(envelope)
                )
        except Exception:
            log.exception("smtp internal_error ref=%s stage=deliver", transaction_id)
            reply, verdict = codes.INTERNAL_ERROR.format(ref=transaction_id), "error"
        else:
            if refusal is not None:
                reply, verdict = refusal, "refused"
            else:
                assert outcome is not None
                reply, verdict = _outcome_reply(outcome, transaction_id)
        log_transaction(
            Transaction(
                transaction_id=transaction_id,
                session=info,
                sender=sender,
                recipients=recipients,
                outcome=verdict,
                reply=f"{reply.code} {reply.enhanced}",
                size=len(message),
                message_id=message_id(message),
                routes=outcome.routes if outcome else (),
                queue_id=outcome.queue_id if outcome else None,
                detail=outcome.detail if outcome else "",
            )
        )
        return str(reply)


def _dsn_request(envelope: Envelope) -> DsnRequest | None:
    return envelope.dsn_request() if isinstance(envelope, TransactionEnvelope) else None


def _outcome_reply(outcome: DeliveryOutcome, transaction_id: str) -> tuple[Reply, str]:
    if outcome.accepted:
        return codes.QUEUED.format(queue_id=transaction_id), "accepted"
    if outcome.temporary:
        return codes.TEMPORARY_FAILURE, "temporary"
    return codes.TRANSACTION_FAILED, "rejected"

"""The SMTP listener: `SmtpListener` makes one `connection.InboundSMTP` per accepted socket
and keeps track of them for a graceful stop.

`InboundSMTP` is re-exported here, next to the listener that makes it.
"""

from __future__ import annotations

import ssl

from pymta.auth.authenticator import LoginCheck
from pymta.config.model import Limits
from pymta.smtp.connection import InboundSMTP
from pymta.smtp.handler import InboundHandler
from pymta.smtp.policy import ConnectionGate, InboundPolicy
from pymta.smtp.submission import SubmissionStage

__all__ = ["InboundSMTP", "SmtpListener"]


class SmtpListener:
    """One SMTP listener (a `[listeners]` entry): makes a connection per accepted socket.

    The wiring passes `protocol_factory` to `loop.create_server` (with the TLS context
    as `ssl=` for an implicit-TLS listener); `tls_context` here is for STARTTLS.
    """

    def __init__(
        self,
        *,
        name: str,
        policy: InboundPolicy,
        limits: Limits,
        hostname: str,
        gate: ConnectionGate,
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        submission: SubmissionStage | None = None,
        authenticator: LoginCheck | None = None,
        plaintext_auth: bool = False,
    ) -> None:
        """`submission` (with `authenticator`) makes a submission listener (587 / 465):
        AUTH required before MAIL, the sender rule and DKIM signing."""
        if submission is not None and authenticator is None:
            raise ValueError("a submission listener needs an authenticator")
        self.name = name
        self._sasl_authenticator = authenticator
        self._plaintext_auth = plaintext_auth
        self._limits = limits
        self._hostname = hostname
        self._gate = gate
        self._tls_context = None if implicit_tls else tls_context
        self._implicit_tls = implicit_tls
        self._handler = InboundHandler(
            policy, limits=limits, hostname=hostname, submission=submission
        )
        self._connections: set[InboundSMTP] = set()

    def protocol_factory(self) -> InboundSMTP:
        return InboundSMTP(
            self._handler,
            limits=self._limits,
            hostname=self._hostname,
            gate=self._gate,
            listener=self.name,
            connections=self._connections,
            tls_context=self._tls_context,
            implicit_tls=self._implicit_tls,
            authenticator=self._sasl_authenticator,
            plaintext_auth=self._plaintext_auth,
        )

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    @property
    def busy(self) -> bool:
        """Some connection has a mail transaction open or is receiving a message."""
        return any(connection.in_transaction for connection in self._connections)

    def close_all(self) -> None:
        """Say 421 4.3.2 to every connection and close it (the end of a graceful stop)."""
        for connection in list(self._connections):
            connection.shut_down()

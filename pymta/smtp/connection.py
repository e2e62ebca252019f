"""The SMTP connection: aiosmtpd's `SMTP`, extended in a small subclass.

aiosmtpd owns the wire (its read loop, DATA, STARTTLS); this subclass adds what it
lacks, each in one place:

- enhanced status codes on aiosmtpd's own replies: `push` maps them (RFC 2034 §3);
- our EHLO keywords, HELO/EHLO without enhanced codes, no HELP keyword, VRFY/EXPN 502;
- the DSN parameters (RFC 3461): taken out of MAIL/RCPT before aiosmtpd sees them (it
  upper-cases parameters and knows none of these; `commandline.take_dsn`), kept on a
  `TransactionEnvelope`;
- AUTH (RFC 4954): when it may run and what the answer means; the SASL exchange itself
  is `auth_exchange.sasl_exchange`;
- BDAT (RFC 3030), read in slices (`bdat.read_octets`) into a `ChunkBuffer`, ending in
  the same DATA hook;
- the connection gate (421 4.7.0), command and data timeouts (421 4.4.2), limits;
- `session_info()` for the policy.

`server.SmtpListener` makes one `InboundSMTP` per connection and keeps track of them for
a graceful stop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any, AnyStr, cast

from aiosmtpd.smtp import SMTP, Envelope, syntax

from pymta.auth.authenticator import AuthStatus, LoginCheck
from pymta.auth.sasl import MECHANISMS
from pymta.config.model import Limits
from pymta.delivery.verdicts import SessionInfo
from pymta.smtp import codes
from pymta.smtp.auth_exchange import sasl_exchange
from pymta.smtp.bdat import bdat_refusal, read_octets
from pymta.smtp.chunking import BdatCommand, ChunkBuffer, bdat_command
from pymta.smtp.codes import Reply
from pymta.smtp.commandline import command_size_limits, split_path, take_dsn, unclosed_path
from pymta.smtp.dsn import (
    MAIL_KEYWORDS,
    RCPT_KEYWORDS,
    DsnParameterError,
    MailDsn,
    RcptDsn,
    mail_parameters,
    rcpt_parameters,
)
from pymta.smtp.handler import (
    InboundHandler,
    TransactionEnvelope,
    new_transaction_id,
    reverse_path,
)
from pymta.smtp.message import has_control_characters
from pymta.smtp.policy import ConnectionGate
from pymta.smtp.txlog import Transaction, log_transaction

log = logging.getLogger(__name__)


def _write_transport(transport: asyncio.BaseTransport) -> asyncio.WriteTransport:
    # A stream transport; uvloop's do not subclass asyncio.WriteTransport, so no isinstance.
    return cast(asyncio.WriteTransport, transport)


def _peer_ip(peername: Any) -> str:
    if isinstance(peername, tuple) and peername:
        return str(peername[0])
    return str(peername or "")


class InboundSMTP(SMTP):
    """One inbound SMTP connection."""

    def __init__(
        self,
        handler: InboundHandler,
        *,
        limits: Limits,
        hostname: str,
        gate: ConnectionGate,
        listener: str,
        connections: set[InboundSMTP],
        tls_context: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
        authenticator: LoginCheck | None = None,
        plaintext_auth: bool = False,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        # Our state first: aiosmtpd's __init__ already looks at our attributes.
        self._limits = limits
        self._sasl_authenticator = authenticator  # None: AUTH is not offered (port 25)
        self._plaintext_auth = plaintext_auth  # AUTH before TLS (loopback listeners only)
        self._auth_user: str | None = None  # the user name once AUTH succeeded
        self._gate = gate
        self._listener = listener
        self._connections = connections
        self._implicit_tls = implicit_tls
        self._peer = ""
        self._gated = False  # the gate counted this connection: release it once
        self._refused = False  # over the connection limits: never started
        self._greeted = False  # the first reply is the greeting (RFC 2034 §3 exempts it)
        self._in_data = False  # receiving DATA / BDAT octets or delivering them
        self._last_input = 0.0  # loop time of the last octets received
        self._data_reply_started = False  # a 354 went out in the current DATA command
        self._last_reply = ""  # the last reply line sent, for the transaction log
        self._chunks: ChunkBuffer | None = None
        # aiosmtpd sizes its StreamReader from this in __init__, so it is set first too.
        # RFC 5321 §4.5.3.1.6: a text line is 1000 octets with CRLF, + 1 for the
        # transparency dot (§4.5.2); longer DATA lines are answered 500 5.5.6 at the end.
        self.line_length_limit = limits.max_line_bytes + 1
        super().__init__(
            handler,
            data_size_limit=limits.max_message_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            hostname=hostname,
            ident="ESMTP pymta",
            tls_context=tls_context,
            timeout=limits.command_timeout_s,
            auth_exclude_mechanism=("LOGIN", "PLAIN"),
            loop=loop or asyncio.get_running_loop(),
        )
        line_limits = command_size_limits(limits.max_command_line_bytes)
        self.command_size_limit = line_limits.default
        self.command_size_limits = line_limits

    # -- what the handler and the listener see --------------------------------------------

    def session_info(self) -> SessionInfo:
        host_name = self.session.host_name if self.session is not None else None
        return SessionInfo(
            peer_ip=self._peer,
            helo=host_name or "",
            tls=self.tls_description(),
            listener=self._listener,
            authenticated_user=self._auth_user,
        )

    def tls_description(self) -> str | None:
        """ "TLSv1.3:TLS_AES_256_GCM_SHA384" once TLS runs (STARTTLS or implicit), else None."""
        if self.transport is None:
            return None
        ssl_object = self.transport.get_extra_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return None
        cipher = ssl_object.cipher()
        return f"{ssl_object.version()}:{cipher[0] if cipher else 'unknown'}"

    @property
    def in_transaction(self) -> bool:
        """A mail transaction is open (MAIL given) or octets are being received."""
        return self._in_data or bool(self.envelope is not None and self.envelope.mail_from)

    def shut_down(self) -> None:
        """Server stop: 421 4.3.2 and close (RFC 5321 §3.8)."""
        self._close_with(codes.SHUTTING_DOWN)

    # -- connection life ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # aiosmtpd calls this again with the TLS transport after STARTTLS: count and
        # greet only the TCP connection.
        if self._original_transport is None:
            self._peer = _peer_ip(transport.get_extra_info("peername"))
            if not self._gate.acquire(self._peer):
                self._refused = True
                log.warning("smtp connection_refused client=%s reason=limit", self._peer)
                _write_transport(transport).write(f"{codes.TOO_MANY_CONNECTIONS}\r\n".encode())
                transport.close()
                return
            self._gated = True
            self._connections.add(self)
            log.info("smtp connect client=%s listener=%s", self._peer, self._listener)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        if self._refused:
            # aiosmtpd's connection_lost expects a session it never had.
            asyncio.StreamReaderProtocol.connection_lost(self, error)
            return
        try:
            super().connection_lost(error)
        finally:
            self._connections.discard(self)
            if self._gated:
                self._gated = False
                self._gate.release(self._peer)
                log.info("smtp disconnect client=%s", self._peer)

    def eof_received(self) -> bool | None:
        if self._refused:
            return False
        result: bool | None = super().eof_received()
        return result

    def data_received(self, data: bytes) -> None:
        self._last_input = self.loop.time()
        super().data_received(data)

    # -- timeouts -------------------------------------------------------------------------

    def _enter_data(self) -> None:
        """DATA / BDAT: from now on only `data_timeout_s` without input ends the session
        (RFC 5321 §4.5.3.2.6), however long the transfer takes as a whole."""
        self._in_data = True
        self._last_input = self.loop.time()
        self._reset_timeout(self._limits.data_timeout_s)

    def _leave_data(self) -> None:
        self._in_data = False
        if self.transport is not None:
            self._reset_timeout()  # back to the command timeout (RFC 5321 §4.5.3.2.7)

    def _timeout_cb(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if self._in_data:
            quiet = self.loop.time() - self._last_input
            if quiet < self._limits.data_timeout_s:
                self._reset_timeout(self._limits.data_timeout_s - quiet)
                return
        log.info(
            "smtp timeout client=%s phase=%s", self._peer, "data" if self._in_data else "command"
        )
        self._close_with(codes.TIMEOUT)

    def _close_with(self, reply: Reply) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        _write_transport(transport).write(f"{reply}\r\n".encode())
        transport.close()

    # -- replies --------------------------------------------------------------------------

    async def push(self, status: AnyStr) -> None:
        """Every reply goes out here: aiosmtpd's own get enhanced status codes."""
        if isinstance(status, str):
            if self._greeted:
                status = codes.with_enhanced_code(status)  # type: ignore[assignment]
            self._greeted = True
            if status.startswith("354"):
                self._data_reply_started = True
            self._last_reply = status
        await super().push(status)

    async def _push_exempt(self, line: str) -> None:
        """A reply to HELO/EHLO: RFC 2034 §3 (4) exempts it from enhanced codes."""
        await super().push(line)

    async def handle_exception(self, error: Exception) -> str:
        """Anything escaping a command (a bug): log it with a reference, reply 451."""
        ref = new_transaction_id()
        log.error(
            "smtp internal_error ref=%s client=%s error=%s",
            ref,
            self._peer,
            type(error).__name__,
            exc_info=error,
        )
        return str(codes.INTERNAL_ERROR.format(ref=ref))

    # -- HELO / EHLO (RFC 5321 §4.1.1.1) --------------------------------------------------

    @syntax("EHLO hostname")
    async def smtp_EHLO(self, hostname: str | None) -> None:
        if not hostname or has_control_characters(hostname):
            await self._push_exempt(str(codes.EHLO_SYNTAX))
            return
        # RFC 5321 §4.1.4: EHLO resets the transaction.
        self._set_rset_state()  # type: ignore[no-untyped-call]
        assert self.session is not None
        self.session.extended_smtp = True
        self.session.host_name = hostname
        lines = [self.hostname, *self._ehlo_keywords()]
        for number, line in enumerate(lines, start=1):
            await self._push_exempt(f"250{' ' if number == len(lines) else '-'}{line}")

    def _ehlo_keywords(self) -> list[str]:
        keywords = [
            "PIPELINING",  # RFC 2920
            f"SIZE {self._limits.max_message_bytes}",  # RFC 1870
            "8BITMIME",  # RFC 6152
            "SMTPUTF8",  # RFC 6531
            "ENHANCEDSTATUSCODES",  # RFC 2034
            "CHUNKING",  # RFC 3030
            "DSN",  # RFC 3461 §3
        ]
        # RFC 3207 §4.2: STARTTLS is not offered once TLS runs.
        if self.tls_context is not None and self.tls_description() is None:
            keywords.append("STARTTLS")
        # RFC 4954 §4 / RFC 8314 §3.3: AUTH is offered only over TLS (or on a loopback
        # listener that allows plaintext AUTH), and not once authenticated.
        if self._auth_offered() and self._auth_user is None:
            keywords.append("AUTH " + " ".join(MECHANISMS))
        return keywords

    def _auth_offered(self) -> bool:
        return self._sasl_authenticator is not None and (
            self._plaintext_auth or self.tls_description() is not None
        )

    @syntax("HELO hostname")
    async def smtp_HELO(self, hostname: str | None) -> None:
        if not hostname or has_control_characters(hostname):
            await self._push_exempt(str(codes.HELO_SYNTAX))
            return
        self._set_rset_state()  # type: ignore[no-untyped-call]
        assert self.session is not None
        self.session.extended_smtp = False
        self.session.host_name = hostname
        await self._push_exempt(f"250 {self.hostname}")

    # -- commands we do not offer -----------------------------------------------------------

    async def smtp_VRFY(self, arg: str | None) -> None:
        await self.push(str(codes.NOT_IMPLEMENTED))  # RFC 5321 §7.3 allows refusing VRFY

    async def smtp_EXPN(self, arg: str | None) -> None:
        await self.push(str(codes.NOT_IMPLEMENTED))  # RFC 5321 §7.3

    async def smtp_HELP(self, arg: str | None) -> None:
        await self.push(str(codes.HELP))  # RFC 5321 §4.1.1.8; not an EHLO keyword

    # -- AUTH (RFC 4954) --------------------------------------------------------------------

    async def smtp_AUTH(self, arg: str | None) -> None:
        # aiosmtpd's own AUTH calls a synchronous authenticator; ours hashes on a worker
        # thread (argon2id), so the exchange is ours too.
        reply = await self._run_auth(arg)
        await self.push(str(reply))

    async def _run_auth(self, arg: str | None) -> Reply:
        assert self.session is not None and self.envelope is not None
        if self._sasl_authenticator is None:
            return codes.NOT_IMPLEMENTED  # inbound MX (port 25): no AUTH
        if not self.session.host_name:
            return codes.NEED_HELO
        if not self._auth_offered():
            return codes.MUST_STARTTLS  # RFC 4954 §4: not before TLS
        if self._auth_user is not None:
            return codes.ALREADY_AUTHENTICATED  # RFC 4954 §4
        if self.envelope.mail_from:
            return codes.AUTH_IN_TRANSACTION  # RFC 4954 §4
        # The 334 challenges bypass `push`: no enhanced code, not the logged last reply.
        step = await sasl_exchange(arg, send=super().push, reader=self._reader)
        if isinstance(step, Reply):
            return step
        result = await self._sasl_authenticator.authenticate(
            step.user, step.password, peer_ip=self._peer, protocol="smtp"
        )
        if result.status is AuthStatus.OK and result.user is not None:
            self._auth_user = result.user.name
            log.info("smtp auth client=%s user=%s", self._peer, result.user.name)
            return codes.AUTH_OK
        if result.status is AuthStatus.UNAVAILABLE:
            return codes.AUTH_UNAVAILABLE  # RFC 4954 §6: 454 4.7.0
        return codes.AUTH_FAILED  # failed or throttled alike (RFC 4954 §6: 535 5.7.8)

    # -- STARTTLS (RFC 3207) ----------------------------------------------------------------

    async def smtp_STARTTLS(self, arg: str | None) -> None:
        if self.tls_description() is not None:
            await self.push(str(codes.TLS_ALREADY_ACTIVE))  # RFC 3207 §4.2
            return
        # aiosmtpd's connection_made() empties the read buffer once the handshake is done:
        # commands pipelined after STARTTLS in plaintext are never executed (RFC 3207 §6,
        # CVE-2011-0411), and it starts a new session, so EHLO is required again (§4.2).
        await super().smtp_STARTTLS(arg)
        tls = self.tls_description()
        if tls is not None:
            self._auth_user = None  # RFC 3207 §4.2: forget what the plaintext session knew
            log.info("smtp starttls client=%s tls=%s", self._peer, tls)

    # -- transactions -----------------------------------------------------------------------

    def _create_envelope(self) -> Envelope:
        """Every transaction's envelope (aiosmtpd makes one after DATA, RSET, EHLO...)."""
        return TransactionEnvelope()

    def _set_post_data_state(self) -> None:
        """After DATA / BDAT LAST, and (through `_set_rset_state`) RSET, HELO, EHLO,
        STARTTLS: a new envelope, no chunks (RFC 3030 §2: RSET clears the chunks)."""
        super()._set_post_data_state()  # type: ignore[no-untyped-call]
        self._chunks = None

    async def smtp_MAIL(self, arg: str | None) -> None:
        assert self.session is not None and self.envelope is not None
        envelope = self.envelope
        # Syntax is checked where aiosmtpd would check it: after HELO and nesting.
        opening = bool(self.session.host_name) and not envelope.mail_from
        if opening and unclosed_path(arg, "FROM:"):
            await self.push(str(codes.BAD_SENDER_SYNTAX))
            return
        requested: MailDsn | None = None
        if opening and self.session.extended_smtp and arg is not None:
            try:
                arg, requested = take_dsn(
                    arg,
                    "FROM:",
                    MAIL_KEYWORDS,
                    mail_parameters,
                    local_part_limit=self.local_part_limit,
                )
            except DsnParameterError as exc:
                await self._refuse_dsn("mail", exc)
                return
        await super().smtp_MAIL(arg)
        accepted = requested is not None and bool(envelope.mail_from)
        if accepted and isinstance(envelope, TransactionEnvelope):
            assert requested is not None
            envelope.ret, envelope.envid = requested.ret, requested.envid

    async def smtp_RCPT(self, arg: str | None) -> None:
        assert self.session is not None and self.envelope is not None
        envelope = self.envelope
        if envelope.mail_from and unclosed_path(arg, "TO:"):
            await self.push(str(codes.BAD_RECIPIENT_SYNTAX))
            return
        requested: RcptDsn | None = None
        if envelope.mail_from and self.session.extended_smtp and arg is not None:
            try:
                arg, requested = take_dsn(
                    arg,
                    "TO:",
                    RCPT_KEYWORDS,
                    rcpt_parameters,
                    local_part_limit=self.local_part_limit,
                )
            except DsnParameterError as exc:
                await self._refuse_dsn("rcpt", exc)
                return
        accepted_before = len(envelope.rcpt_tos)
        await super().smtp_RCPT(arg)
        if len(envelope.rcpt_tos) > accepted_before and isinstance(envelope, TransactionEnvelope):
            envelope.rcpt_dsn.append(requested or RcptDsn())  # parallel to rcpt_tos

    async def _refuse_dsn(self, command: str, error: DsnParameterError) -> None:
        """RFC 3461 §4.5, §5.1: 501 for a bad or repeated DSN parameter; the session and
        the transaction go on."""
        log.info(
            'smtp dsn_parameter_refused client=%s command=%s detail="%s"',
            self._peer,
            command,
            error.detail,
        )
        await self.push(str(error.reply))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parser, replaced: `commandline.split_path`."""
        return split_path(arg, local_part_limit=self.local_part_limit)

    async def smtp_DATA(self, arg: str | None) -> None:
        if self._chunks is not None:
            await self.push(str(codes.DATA_AFTER_BDAT))  # RFC 3030 §2
            return
        envelope = self.envelope
        self._data_reply_started = False
        self._enter_data()
        try:
            # aiosmtpd reads lines up to CRLF only and ends at a line that is exactly
            # ".\r\n" (RFC 5321 §4.1.1.4): <LF>.<LF> and the like are content; the DATA
            # hook then makes every line ending CRLF (CVE-2023-51764 class).
            await super().smtp_DATA(arg)
        finally:
            self._leave_data()
        if self._data_reply_started and envelope is not None and envelope.content is None:
            # aiosmtpd refused the data itself (too long a line, too much data): log it.
            self._log_refused(envelope, self._last_reply, size=None)

    @syntax("BDAT <size> [LAST]")
    async def smtp_BDAT(self, arg: str | None) -> None:
        command = bdat_command(arg)
        if command is None:
            # RFC 3030 §2: the size is the only way to find where the chunk ends; without
            # it the octets that follow would be read as commands. So we answer 501 and
            # then close with 421 (RFC 5321 §3.8: a server closes only with a 421).
            log.info("smtp bdat_unparseable client=%s", self._peer)
            await self.push(str(codes.BDAT_SYNTAX))
            self._close_with(codes.SERVICE_UNAVAILABLE)
            return
        self._enter_data()
        try:
            await self._bdat(command)
        finally:
            self._leave_data()

    async def _bdat(self, command: BdatCommand) -> None:
        assert self.envelope is not None
        envelope = self.envelope
        refusal = bdat_refusal(command, envelope)
        if refusal is not None:
            # RFC 3030 §2: a refused chunk's octets MUST still be read and discarded.
            await read_octets(self._reader, command.size, None)
            if command.malformed:
                self._set_post_data_state()  # RFC 3030 §2: the state is indeterminate
            await self.push(str(refusal))
            return
        if self._chunks is None:
            self._chunks = ChunkBuffer(limit=self._limits.max_message_bytes)
        chunks = self._chunks
        await read_octets(self._reader, command.size, chunks)
        if chunks.overflow:
            # RFC 1870 §6.2 / RFC 3030 §2: read it all, then refuse; the transaction ends.
            self._log_refused(envelope, str(codes.MESSAGE_TOO_BIG), size=chunks.received)
            self._set_post_data_state()
            await self.push(str(codes.MESSAGE_TOO_BIG))
            return
        if not command.last:
            await self.push(str(codes.CHUNK_RECEIVED.format(size=command.size)))
            return
        envelope.content = envelope.original_content = chunks.content()
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    # -- the log of refused transactions ------------------------------------------------

    def _log_refused(self, envelope: Envelope, reply: str, *, size: int | None) -> None:
        log_transaction(
            Transaction(
                transaction_id="-",
                session=self.session_info(),
                sender=reverse_path(envelope.mail_from),
                recipients=tuple(envelope.rcpt_tos),
                outcome="refused",
                reply=" ".join(reply.split(" ", 2)[:2]),  # "552 5.3.4"
                size=size,
            )
        )

"""The remote SMTP transport: delivers queued mail to the domain's MX hosts, or a smarthost.

One `deliver` call groups the recipients by domain and handles the domains concurrently,
each under a per-domain semaphore (`concurrency_per_domain`) shared by every call on this
transport. For a domain it resolves the MX hosts (`mx.py`), then tries them in order, each
of their addresses in turn, until one accepts a session: a connection failure, a timeout, a
4xx/5xx greeting or a failed EHLO moves on to the next address (RFC 5321 §5.1). Once a
session is up, each recipient gets its own outcome from the RCPT reply and, for those
accepted, the DATA reply (RFC 5321 §4.2.5: the DATA reply covers every accepted
recipient). A session whose transaction ended cleanly goes back to a connection cache
(`connection_cache.py`) shared by every call, like Postfix's
(`smtp_connection_cache_time_limit`, `smtp_connection_reuse_time_limit`): the next delivery
to that address — another queue entry, or another domain sharing the MX — reuses it
without a new TCP and TLS handshake. A cached session idle for `cache_idle_s` (2 s) is
closed with QUIT, and none is reused once `cache_max_age_s` (300 s) old; `close()` quits
them all at shutdown.

TLS is opportunistic (RFC 7435, RFC 3207): STARTTLS whenever the server offers it, without
certificate verification (Postfix's `smtp_tls_security_level = may`); a failed handshake is
retried once in plaintext on a new connection, as Postfix does. Credentials for a smarthost
are sent only inside TLS (RFC 4954 §4).

One log line per recipient attempt: `remote delivery id=.. rcpt=.. relay=host[ip]:port
tls=TLSv1.3|none delay=..s status=sent|deferred|bounced reply=".."`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

import aiosmtplib

from pymta.config.model import Secret
from pymta.queue.connection_cache import SESSION_ERRORS, Relay, Session, SessionPool
from pymta.queue.dsn import HOP_LIMIT_ERROR, too_many_hops, xtext_encode
from pymta.queue.model import Outcome, OutcomeKind, QueueEntry, QueueRecipient, SuccessAction
from pymta.queue.mx import DnsError, Resolver, resolve_addresses, resolve_mx

log = logging.getLogger(__name__)

REMOTE_TRANSPORT = "remote"

# RFC 5321 §4.5.3.1.8: a server must accept at least 100 recipients per transaction.
MAX_RECIPIENTS_PER_TRANSACTION = 100

_STATUS_WORD: dict[OutcomeKind, str] = {
    "delivered": "sent",
    "temporary": "deferred",
    "permanent": "bounced",
}


def opportunistic_tls_context() -> ssl.SSLContext:
    """TLS for STARTTLS to an MX: encrypt, but verify nothing (RFC 7435 §1.3, Postfix `may`)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _HostFailed(Exception):
    """This address could not take the mail for now: try the next one."""


class _TlsFailed(_HostFailed):
    """STARTTLS was offered but did not work: try again in plaintext."""


async def _reset(smtp: aiosmtplib.SMTP) -> None:
    """End a transaction that will not reach DATA; a session that cannot is dropped."""
    try:
        await smtp.rset()
    except SESSION_ERRORS:
        smtp.close()


def _orcpt_param(orcpt: str) -> str:
    """RFC 3461 §4.2: ORCPT=addr-type;xtext. The queue keeps ENVID and ORCPT as they came
    in MAIL/RCPT, still xtext-encoded (RFC 3461 §4: relayed unchanged; `queue.dsn` decodes
    them for reports); a bare address is taken as rfc822 and encoded here."""
    addr_type, sep, address = orcpt.partition(";")
    if not sep:
        return f"ORCPT=rfc822;{xtext_encode(orcpt)}"
    return f"ORCPT={addr_type};{address}"


def _domain_of(address: str) -> str:
    return address.rpartition("@")[2].rstrip(".").lower()


def _reply_text(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {' '.join(exc.message.split())}"


class RemoteTransport:
    """Delivers queued recipients to other mail servers over SMTP (transport "remote")."""

    name = REMOTE_TRANSPORT

    def __init__(
        self,
        hostname: str,
        resolver: Resolver,
        *,
        concurrency_per_domain: int = 5,
        connect_timeout_s: float = 30.0,
        # RFC 5321 §4.5.3.2: a client SHOULD wait minutes per command (5 for MAIL/RCPT).
        command_timeout_s: float = 300.0,
        # RFC 5321 §4.5.3.2.6: 10 minutes for the reply to the end of DATA.
        data_timeout_s: float = 600.0,
        port: int = 25,
        relay_host: tuple[str, int] | None = None,
        relay_auth: tuple[str, Secret] | None = None,
        tls_context_factory: Callable[[], ssl.SSLContext] = opportunistic_tls_context,
        clock: Callable[[], float] = time.time,
        # Postfix: smtp_connection_cache_time_limit = 2s, smtp_connection_reuse_time_limit
        # = 300s.
        cache_idle_s: float = 2.0,
        cache_max_age_s: float = 300.0,
    ) -> None:
        if concurrency_per_domain < 1:
            raise ValueError("concurrency_per_domain must be at least 1")
        self._hostname = hostname
        self._resolver = resolver
        self._concurrency = concurrency_per_domain
        self._connect_timeout_s = connect_timeout_s
        self._command_timeout_s = command_timeout_s
        self._data_timeout_s = data_timeout_s
        self._port = port
        self._relay_host = relay_host
        self._relay_auth = relay_auth
        self._tls_context_factory = tls_context_factory
        # Built on first use and kept: create_default_context loads the CA bundle, too
        # costly to repeat for every connection.
        self._tls_context: ssl.SSLContext | None = None
        self._clock = clock
        # Per destination: its semaphore and how many deliveries hold or wait for it; an
        # entry is dropped when that count returns to zero, so the map stays small.
        self._limits: dict[str, tuple[asyncio.Semaphore, int]] = {}
        self._pool = SessionPool(
            idle_s=cache_idle_s, max_age_s=cache_max_age_s, per_relay=concurrency_per_domain
        )

    @property
    def cached_sessions(self) -> int:
        """Idle sessions in the connection cache."""
        return self._pool.idle

    async def close(self) -> None:
        """Quit every cached session (at shutdown)."""
        await self._pool.close()

    async def deliver(
        self, entry: QueueEntry, recipients: Sequence[QueueRecipient], message: bytes
    ) -> Sequence[Outcome]:
        if too_many_hops(message):
            # RFC 5321 §6.3: a message that has been relayed this often is in a loop;
            # bounce it rather than pass it on once more.
            log.warning("remote loop id=%s reason=too many Received headers", entry.id)
            return [Outcome(r, "permanent", HOP_LIMIT_ERROR) for r in recipients]
        groups: dict[str, list[QueueRecipient]] = {}
        for rcpt in recipients:
            key = "" if self._relay_host is not None else _domain_of(rcpt.address)
            groups.setdefault(key, []).append(rcpt)
        pool = self._pool
        results = await asyncio.gather(
            *(self._deliver_group(entry, d, rcpts, message, pool) for d, rcpts in groups.items())
        )
        by_rcpt = {id(o.recipient): o for group in results for o in group}
        return [by_rcpt[id(r)] for r in recipients]

    @asynccontextmanager
    async def _limit(self, key: str) -> AsyncIterator[None]:
        semaphore, users = self._limits.get(key, (asyncio.Semaphore(self._concurrency), 0))
        self._limits[key] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._limits[key]
            if users == 1:
                del self._limits[key]
            else:
                self._limits[key] = (semaphore, users - 1)

    async def _hosts(self, domain: str) -> list[tuple[str, int]]:
        if self._relay_host is not None:
            # A smarthost replaces the MX lookup altogether.
            return [self._relay_host]
        if domain.startswith("["):
            # RFC 5321 §5.1: an address literal names the host itself, no MX lookup.
            return [(domain, self._port)]
        if not domain:
            raise DnsError("address without a domain", permanent=True)
        return [(mx.host, self._port) for mx in await resolve_mx(domain, self._resolver)]

    async def _addresses(self, host: str) -> list[str]:
        try:
            literal = host.strip("[]")
            # RFC 5321 §4.1.3: an IPv6 address literal carries the tag "IPv6:".
            if literal.lower().startswith("ipv6:"):
                literal = literal[5:]
            return [str(ipaddress.ip_address(literal))]
        except ValueError:
            return await resolve_addresses(host, self._resolver)

    async def _deliver_group(
        self,
        entry: QueueEntry,
        domain: str,
        recipients: list[QueueRecipient],
        message: bytes,
        pool: SessionPool,
    ) -> list[Outcome]:
        key = domain or "relay:{}:{}".format(*(self._relay_host or ("", 0)))
        # The slot is held while this group delivers, and released when it is done, not at
        # the end of the call (a group waiting for another destination's slot must never
        # hold one: two calls could then wait for each other). So the limit counts
        # deliveries in progress; a finished group's idle session waits in the connection
        # cache (at most `concurrency_per_domain` per address) for the next delivery.
        async with self._limit(key):
            return await self._deliver_to_hosts(entry, domain, recipients, message, pool)

    async def _deliver_to_hosts(
        self,
        entry: QueueEntry,
        domain: str,
        recipients: list[QueueRecipient],
        message: bytes,
        pool: SessionPool,
    ) -> list[Outcome]:
        try:
            hosts = await self._hosts(domain)
        except DnsError as exc:
            kind: OutcomeKind = "permanent" if exc.permanent else "temporary"
            return [self._record(entry, r, None, "none", kind, exc.detail) for r in recipients]
        outcomes: list[Outcome] = []
        remaining = list(recipients)
        errors: list[DnsError | str] = []
        for host, port in hosts:
            try:
                addresses = await self._addresses(host)
            except DnsError as exc:
                errors.append(exc)
                continue
            for ip in addresses:
                relay = Relay(host, ip, port)
                try:
                    remaining = await self._deliver_via(
                        relay, entry, remaining, message, pool, outcomes
                    )
                except _HostFailed as exc:
                    log.info("remote host_failed id=%s relay=%s error=%s", entry.id, relay, exc)
                    errors.append(str(exc))
                    continue
                if not remaining:
                    return outcomes
        # Every host failed. Only if each one's name does not exist will retrying not help.
        permanent = bool(errors) and all(isinstance(e, DnsError) and e.permanent for e in errors)
        kind = "permanent" if permanent else "temporary"
        last = str(errors[-1]) if errors else "no mail exchanger"
        outcomes.extend(self._record(entry, r, None, "none", kind, last) for r in remaining)
        return outcomes

    async def _deliver_via(
        self,
        relay: Relay,
        entry: QueueEntry,
        recipients: list[QueueRecipient],
        message: bytes,
        pool: SessionPool,
        outcomes: list[Outcome],
    ) -> list[QueueRecipient]:
        """Deliver through one address; returns the recipients it could not handle.

        Raises _HostFailed when no session could be had at all.
        """
        reused = pool.take(relay)
        session = reused or await self._open(relay)
        remaining = list(recipients)
        try:
            while remaining:
                chunk = remaining[:MAX_RECIPIENTS_PER_TRANSACTION]
                outcomes.extend(await self._transaction(session, entry, chunk, message))
                remaining = remaining[len(chunk) :]
                reused = None
        except _HostFailed as exc:
            session.smtp.close()
            if reused is not None:
                # An idle session the server closed meanwhile says nothing of the host.
                return await self._deliver_via(relay, entry, remaining, message, pool, outcomes)
            if len(remaining) == len(recipients):
                raise
            # Part went through; the rest waits for the next address.
            log.info("remote session_lost relay=%s error=%s", relay, exc)
            return remaining
        pool.give_back(session)
        return []

    async def _open(self, relay: Relay) -> Session:
        try:
            return await self._connect(relay, starttls=True)
        except _TlsFailed as exc:
            # Postfix `may`: a failed STARTTLS is retried in plaintext (RFC 7435 §1.3).
            log.info("remote tls_failed relay=%s error=%s", relay, exc)
            return await self._connect(relay, starttls=False)

    async def _connect(self, relay: Relay, *, starttls: bool) -> Session:
        smtp = aiosmtplib.SMTP(
            hostname=relay.ip,
            port=relay.port,
            local_hostname=self._hostname,
            timeout=self._command_timeout_s,
            start_tls=False,
            validate_certs=False,
        )
        try:
            await smtp.connect(timeout=self._connect_timeout_s)
            await self._hello(smtp)
            tls = "none"
            if starttls and smtp.supports_extension("starttls"):
                await self._starttls(smtp, relay)
                tls = self._tls_description(smtp, relay)
            if self._relay_auth is not None:
                await self._login(smtp, relay, tls)
        except _HostFailed:
            smtp.close()
            raise
        except aiosmtplib.SMTPResponseException as exc:
            smtp.close()
            raise _HostFailed(f"host {relay} refused to talk to us: {_reply_text(exc)}") from None
        except SESSION_ERRORS as exc:
            smtp.close()
            raise _HostFailed(f"connect to {relay}: {exc or exc.__class__.__name__}") from None
        return Session(smtp, relay, tls, opened=time.monotonic())

    async def _starttls(self, smtp: aiosmtplib.SMTP, relay: Relay) -> None:
        try:
            if self._tls_context is None:
                self._tls_context = self._tls_context_factory()
            await smtp.starttls(server_hostname=relay.host, tls_context=self._tls_context)
            # RFC 3207 §4.2: forget what the server said before TLS and greet it again.
            await self._hello(smtp)
        except (*SESSION_ERRORS, ssl.SSLError) as exc:
            raise _TlsFailed(
                f"STARTTLS with {relay} failed: {exc or exc.__class__.__name__}"
            ) from None

    async def _hello(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPHeloError as exc:
            # RFC 5321 §3.2: a server that does not know EHLO answers 5xx; fall back to HELO.
            if not 500 <= exc.code < 600:
                raise
            await smtp.helo()

    def _tls_description(self, smtp: aiosmtplib.SMTP, relay: Relay) -> str:
        ssl_object = smtp.get_transport_info("ssl_object")
        if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
            return "none"
        version = ssl_object.version() or "TLS"
        cipher = ssl_object.cipher()
        log.info(
            "remote tls relay=%s version=%s cipher=%s verified=no",
            relay,
            version,
            cipher[0] if cipher else "?",
        )
        return version

    async def _login(self, smtp: aiosmtplib.SMTP, relay: Relay, tls: str) -> None:
        assert self._relay_auth is not None
        user, password = self._relay_auth
        # RFC 4954 §4: no plaintext password outside TLS.
        if tls == "none":
            raise _HostFailed(f"relay {relay} offers no TLS; not sending credentials")
        if not smtp.supports_extension("auth"):
            raise _HostFailed(f"relay {relay} does not offer AUTH")
        try:
            await smtp.login(user, password.reveal())
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise _HostFailed(f"relay {relay} refused our login: {_reply_text(exc)}") from None
        except aiosmtplib.SMTPException as exc:
            raise _HostFailed(f"relay {relay}: login failed: {exc}") from None

    def _mail_options(self, smtp: aiosmtplib.SMTP, entry: QueueEntry, message: bytes) -> list[str]:
        options: list[str] = []
        # RFC 1870 §6: announce the size so an oversized message is refused before DATA.
        if smtp.supports_extension("size") and entry.size > 0:
            options.append(f"SIZE={entry.size}")
        # RFC 6152 §3: 8-bit content is declared when the server supports it. (Without
        # 8BITMIME we send it as is, as Postfix does by default.)
        if smtp.supports_extension("8bitmime") and not message.isascii():
            options.append("BODY=8BITMIME")
        # RFC 3461 §4.3/§4.4: pass RET and ENVID on only to a server that offers DSN.
        if smtp.supports_extension("dsn"):
            if entry.ret:
                options.append(f"RET={entry.ret}")
            if entry.envid:
                options.append(f"ENVID={entry.envid}")  # stored as received: xtext
        return options

    def _rcpt_options(self, smtp: aiosmtplib.SMTP, rcpt: QueueRecipient) -> list[str]:
        options: list[str] = []
        # RFC 3461 §4.1/§4.2: NOTIFY and ORCPT, only to a server that offers DSN.
        if smtp.supports_extension("dsn"):
            if rcpt.notify:
                options.append("NOTIFY=" + ",".join(rcpt.notify))
            if rcpt.orcpt:
                options.append(_orcpt_param(rcpt.orcpt))
        return options

    async def _transaction(
        self,
        session: Session,
        entry: QueueEntry,
        recipients: list[QueueRecipient],
        message: bytes,
    ) -> list[Outcome]:
        """One MAIL/RCPT/DATA transaction; raises _HostFailed if the session breaks."""
        smtp, relay = session.smtp, session.relay

        def done(rcpt: QueueRecipient, kind: OutcomeKind, detail: str) -> Outcome:
            return self._record(entry, rcpt, relay, session.tls, kind, detail)

        def refused(exc: aiosmtplib.SMTPResponseException, command: str) -> tuple[OutcomeKind, str]:
            # RFC 5321 §4.2.1: 4yz is transient, 5yz permanent.
            kind: OutcomeKind = "permanent" if 500 <= exc.code < 600 else "temporary"
            return kind, f"host {relay} said: {_reply_text(exc)} (in reply to {command})"

        addresses = [entry.sender, *(r.address for r in recipients)]
        utf8 = not all(a.isascii() for a in addresses)
        if utf8 and not smtp.supports_extension("smtputf8"):
            # RFC 6531 §3.4: a UTF-8 address must not be sent to a server without SMTPUTF8.
            detail = f"host {relay} does not support SMTPUTF8, needed by the addresses"
            return [done(r, "permanent", detail) for r in recipients]
        encoding = "utf-8" if utf8 else "ascii"
        options = self._mail_options(smtp, entry, message)
        if utf8:
            options.append("SMTPUTF8")
        try:
            try:
                await smtp.mail(entry.sender, options=options, encoding=encoding)
            except aiosmtplib.SMTPResponseException as exc:
                kind, detail = refused(exc, "MAIL FROM")
                await _reset(smtp)
                return [done(r, kind, detail) for r in recipients]
            outcomes: list[Outcome] = []
            accepted: list[QueueRecipient] = []
            for rcpt in recipients:
                try:
                    await smtp.rcpt(
                        rcpt.address, options=self._rcpt_options(smtp, rcpt), encoding=encoding
                    )
                except aiosmtplib.SMTPResponseException as exc:
                    outcomes.append(done(rcpt, *refused(exc, "RCPT TO")))
                else:
                    accepted.append(rcpt)
            if not accepted:
                await _reset(smtp)
                return outcomes
            try:
                reply = await smtp.data(message, timeout=self._data_timeout_s)
            except aiosmtplib.SMTPResponseException as exc:
                # RFC 5321 §4.2.5: the one reply to DATA applies to every accepted recipient.
                kind, detail = refused(exc, "end of DATA")
                outcomes.extend(done(r, kind, detail) for r in accepted)
                return outcomes
        except SESSION_ERRORS as exc:
            raise _HostFailed(
                f"lost connection with {relay}: {exc or exc.__class__.__name__}"
            ) from None
        text = f"{reply.code} {' '.join(reply.message.split())}"
        # RFC 3461 §5.2.1: a server that offers DSN reports success itself; to one that
        # does not, the message is "relayed" (§5.2.2 (b)), which we report if asked.
        action: SuccessAction | None = None if smtp.supports_extension("dsn") else "relayed"
        detail = f"host {relay} said: {text}"
        outcomes.extend(
            self._record(entry, r, relay, session.tls, "delivered", detail, dsn_action=action)
            for r in accepted
        )
        return outcomes

    def _record(
        self,
        entry: QueueEntry,
        rcpt: QueueRecipient,
        relay: Relay | None,
        tls: str,
        kind: OutcomeKind,
        detail: str,
        *,
        dsn_action: SuccessAction | None = None,
    ) -> Outcome:
        log.info(
            'remote delivery id=%s rcpt=%s relay=%s tls=%s delay=%.1fs status=%s reply="%s"',
            entry.id,
            rcpt.address,
            relay if relay is not None else "none",
            tls,
            max(0.0, self._clock() - entry.created),
            _STATUS_WORD[kind],
            detail.replace('"', "'"),
        )
        return Outcome(rcpt, kind, detail, dsn_action=dsn_action)

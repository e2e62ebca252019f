"""Handlers of the AUTHORIZATION state: CAPA, STLS, USER, PASS, AUTH (RFC 1939 §4, §7;
RFC 2449 §5; RFC 2595 §4; RFC 5034 §4).

Passwords are checked by the shared authenticator (pymta.auth), which also throttles
failed logins for every protocol; SASL PLAIN and LOGIN exchanges are pymta.auth.sasl's.
No password crosses a connection without TLS unless the listener allows it. Once the
credentials are good, the maildrop is locked (or `-ERR [IN-USE]`) and listed: only then
is the session in TRANSACTION state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymta.auth import sasl
from pymta.auth.authenticator import AuthStatus
from pymta.store import MailboxRef

from .errors import Code, Done, Pop3Error
from .grammar import Command
from .maildrop import Maildrop

if TYPE_CHECKING:
    from .session import Pop3Session

MECHANISMS = ("PLAIN", "LOGIN")
IMPLEMENTATION = "pymta"
# Dovecot's wording for a password offered before TLS (its disable_plaintext_auth).
PLAINTEXT_REFUSED = "Plaintext authentication disallowed on non-secure (SSL/TLS) connections."


def capabilities(s: Pop3Session) -> list[bytes]:
    """RFC 2449 §5-§6 (and RFC 2595 §4 STLS, RFC 3206 §6 AUTH-RESP-CODE)."""
    caps = [b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE", b"PIPELINING"]
    if s.auth_allowed():
        # RFC 2449 §6.2, §6.3: announced in both states. Before TLS on a listener that
        # wants it, they are left out, as RFC 2595 §2.1 and Dovecot do.
        caps.append(b"USER")
        caps.append(b"SASL " + " ".join(MECHANISMS).encode())
    if not s.tls_active and s.config.starttls_available and not s.authenticated:
        caps.append(b"STLS")  # RFC 2595 §4: only when permitted in the current state
    caps.append(b"IMPLEMENTATION " + IMPLEMENTATION.encode())
    return caps


async def capa(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 2449 §5."""
    s.multiline(capabilities(s))
    return Done("Capability list follows")


async def stls(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 2595 §4: +OK, then the handshake; the session stays in AUTHORIZATION."""
    if s.tls_active:
        raise Pop3Error("Command not permitted when TLS active")  # RFC 2595 §4
    if not s.config.starttls_available:
        raise Pop3Error("TLS not available")
    s.request_tls()
    return Done("Begin TLS negotiation now")


def _require_auth_allowed(s: Pop3Session) -> None:
    if not s.auth_allowed():
        s.pending_user = None
        raise Pop3Error(PLAINTEXT_REFUSED)


async def user(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §7 USER: the answer says nothing about whether the user exists."""
    _require_auth_allowed(s)
    s.pending_user = cmd.params[0]
    return Done("Send your password")


async def pass_(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §7 PASS: the rest of the line is the password, spaces included."""
    _require_auth_allowed(s)
    login, s.pending_user = s.pending_user, None
    if login is None:
        raise Pop3Error("No username given")
    password = cmd.rest.decode("utf-8", "replace")
    return await _check(s, login, password, "user")


async def auth(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 5034 §4: AUTH mechanism [initial-response]; each challenge is "+ base64", each
    answer a base64 line, "*" cancels. A bare AUTH lists the mechanisms (the RFC 1734
    form older clients probe with; Dovecot answers it the same way)."""
    s.pending_user = None
    _require_auth_allowed(s)
    if not cmd.params:
        s.multiline([m.encode() for m in MECHANISMS])
        return Done("")
    initial: bytes | None = None
    if len(cmd.params) == 2:
        try:
            # RFC 5034 §4: "=" is an empty initial response.
            initial = sasl.decode_initial_response(cmd.params[1].encode("ascii", "replace"))
        except ValueError:
            raise Pop3Error("Invalid base64 data in initial response") from None
    exchange = sasl.SaslServer(MECHANISMS)
    step = exchange.start(cmd.params[0], initial)
    return await _sasl_step(s, cmd.params[0].lower(), exchange, step)


async def _sasl_step(
    s: Pop3Session, method: str, exchange: sasl.SaslServer, step: sasl.Step
) -> Done | None:
    if isinstance(step, sasl.Challenge):

        async def on_line(line: bytes) -> Done | None:
            return await _sasl_step(s, method, exchange, exchange.step(line.strip()))

        s.expect_line(on_line)
        s.continuation(step.wire)
        return None
    if isinstance(step, sasl.Credentials):
        return await _check(s, step.user, step.password, method)
    if step.reason is sasl.FailureReason.CANCELLED:
        raise Pop3Error("Authentication cancelled")  # RFC 5034 §4: "*" gets -ERR
    if step.reason is sasl.FailureReason.UNSUPPORTED:
        raise Pop3Error("Unsupported authentication mechanism")
    if step.reason is sasl.FailureReason.AUTHZID:
        # The identity may not act as another one (no master users yet).
        raise Pop3Error("Authorization identity not allowed", Code.AUTH)
    raise Pop3Error("Malformed authentication exchange")


async def _check(s: Pop3Session, login: str, password: str, method: str) -> Done | None:
    result = await s.config.authenticator.authenticate(
        login, password, peer_ip=s.peer_ip, protocol="pop3"
    )
    if result.status is AuthStatus.UNAVAILABLE:
        # RFC 3206 §4: our problem, and temporary.
        raise Pop3Error("Authentication temporarily unavailable", Code.SYS_TEMP)
    if result.status is not AuthStatus.OK or result.user is None:
        # FAILED and THROTTLED look the same to the client (the delay came first).
        s.failed_logins += 1
        raise Pop3Error("Authentication failed", Code.AUTH)  # RFC 3206 §5
    mailbox = result.user.mailbox
    if mailbox.domain is None:
        raise Pop3Error("Mailbox not available", Code.SYS_PERM)
    ref = MailboxRef("user", mailbox.name, mailbox.domain)
    lock = s.config.maildrops.acquire(ref)
    if lock is None:
        # RFC 2449 §8.1.2: the credentials were good, the maildrop is in use.
        raise Pop3Error("Mailbox is locked by another POP3 session", Code.IN_USE)
    try:
        maildrop = await Maildrop.open(s.store, ref)
    except BaseException:
        lock.release()
        raise
    s.log_in(result.user.name, maildrop, lock, method)
    return Done(f"Logged in, {maildrop.count} messages ({maildrop.size} octets)")

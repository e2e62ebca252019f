"""Handlers of the not-authenticated state: STARTTLS, LOGIN, AUTHENTICATE (RFC 9051 §6.2).

Passwords are checked by the shared authenticator (pymta.auth), which also throttles
failed logins for every protocol; SASL PLAIN and LOGIN exchanges are pymta.auth.sasl's.
No password crosses a connection without TLS unless the listener allows it (RFC 9051
§6.2.3 LOGINDISABLED, §11.1). The user's mailbox is resolved through the directory
snapshot current at login (SIGHUP swaps it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pymta.auth import sasl
from pymta.auth.authenticator import AuthStatus

from . import command as c
from .capabilities import AUTH_MECHANISMS, auth_allowed
from .errors import BadCommand, Code, Done, Refused

if TYPE_CHECKING:
    from .session import ImapSession


async def starttls(s: ImapSession, cmd: c.StartTls) -> Done | None:
    """RFC 9051 §6.2.1: OK, then the handshake; the client must ask CAPABILITY again."""
    if s.tls_active or not s.config.starttls_available:
        raise BadCommand("TLS not available")
    s.request_tls()
    return Done("Begin TLS negotiation now")


def _require_auth_allowed(s: ImapSession) -> None:
    if not auth_allowed(s.capability_state()):
        # RFC 9051 §6.2.3 / RFC 5530 §3: no plaintext passwords on this connection.
        raise Refused("Use STARTTLS first", Code.PRIVACYREQUIRED)


async def login(s: ImapSession, cmd: c.Login) -> Done | None:
    """RFC 9051 §6.2.3."""
    _require_auth_allowed(s)
    return await _check(s, cmd.user, cmd.password, "login")


async def authenticate(s: ImapSession, cmd: c.Authenticate) -> Done | None:
    """RFC 9051 §6.2.2 with SASL-IR (RFC 4959): the initial response may come with the
    command; each challenge is "+ base64", each answer a base64 line, "*" cancels."""
    _require_auth_allowed(s)
    exchange = sasl.SaslServer(AUTH_MECHANISMS)
    step = exchange.start(cmd.mechanism, cmd.initial_response)
    return await _sasl_step(s, cmd.tag, cmd.mechanism.lower(), exchange, step)


async def _sasl_step(
    s: ImapSession, tag: str, method: str, exchange: sasl.SaslServer, step: sasl.Step
) -> Done | None:
    if isinstance(step, sasl.Challenge):

        async def on_line(line: bytes) -> Done | None:
            return await _sasl_step(s, tag, method, exchange, exchange.step(line.strip()))

        s.expect_line(tag, "AUTHENTICATE", on_line)
        s.continuation(step.wire)
        return None
    if isinstance(step, sasl.Credentials):
        return await _check(s, step.user, step.password, method)
    if step.reason is sasl.FailureReason.CANCELLED:
        raise BadCommand("AUTHENTICATE cancelled")  # RFC 9051 §6.2.2
    if step.reason is sasl.FailureReason.UNSUPPORTED:
        raise Refused("Unsupported authentication mechanism", Code.CANNOT)
    if step.reason is sasl.FailureReason.AUTHZID:
        # RFC 5530 §3: the authentication identity may not act as the authorization
        # identity asked for (no master users yet).
        raise Refused("Authorization identity not allowed", Code.AUTHORIZATIONFAILED)
    raise BadCommand("Malformed authentication exchange")


async def _check(s: ImapSession, user: str, password: str, method: str) -> Done | None:
    result = await s.config.authenticator.authenticate(
        user, password, peer_ip=s.peer_ip, protocol="imap"
    )
    if result.status is AuthStatus.UNAVAILABLE:
        raise Refused("Authentication temporarily unavailable", Code.UNAVAILABLE)
    if result.status is not AuthStatus.OK or result.user is None:
        # FAILED and THROTTLED look the same to the client (the delay came first).
        s.failed_logins += 1
        raise Refused("Authentication failed", Code.AUTHENTICATIONFAILED)  # RFC 5530 §3
    s.log_in(result.user.name, result.user.mailbox, method)
    # RFC 9051 §6.2.2/§6.2.3: the new capabilities in the tagged OK.
    return Done("Logged in", "CAPABILITY " + s.capability_text())

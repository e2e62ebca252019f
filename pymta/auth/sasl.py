"""The server side of SASL PLAIN (RFC 4616) and LOGIN (draft-murchison-sasl-login), sans-I/O.

One `SaslServer` per AUTHENTICATE / AUTH exchange, the same for IMAP (RFC 9051 §6.2.2),
POP3 (RFC 5034) and SMTP submission (RFC 4954):

    server = SaslServer()
    step = server.start("PLAIN", initial_response)   # Challenge | Credentials | Failure
    while isinstance(step, Challenge):
        send(prefix + step.wire)                      # "+ " (IMAP, POP3) or "334 " (SMTP)
        step = server.step(next_line_without_crlf)

Base64: the three protocols carry challenges and responses alike, so this module does
the decoding of *continuation* lines (`step` takes the line as the client sent it: base64,
or "*" to cancel) and gives challenges as raw bytes plus their base64 `wire` form. The
*initial* response (SASL-IR, RFC 4959) is passed to `start` already decoded, because the
IMAP parser decodes it with its command (`imap.command.Authenticate`); SMTP and POP3 take
it from their command line through `decode_initial_response` ("=" is an empty response).

The outcome is only the credentials: checking them (and the throttle) is `Authenticator`'s
work. Failure reasons map to replies as RFC 9051 §6.2.2 asks: CANCELLED and MALFORMED are
the client's syntax (IMAP BAD, SMTP 501), UNSUPPORTED and AUTHZID are refusals (NO, with
[AUTHORIZATIONFAILED] for AUTHZID, RFC 5530 §3).
"""

from __future__ import annotations

import binascii
import enum
from base64 import b64encode
from dataclasses import dataclass, field

MECHANISMS = ("PLAIN", "LOGIN")
# RFC 4616 §2: servers MUST accept authzid, authcid and passwd of up to 255 octets each;
# we accept four times that, and no response longer than MAX_RESPONSE_BYTES at all.
MAX_FIELD_BYTES = 1024
MAX_RESPONSE_BYTES = 3 * MAX_FIELD_BYTES + 2
# draft-murchison-sasl-login §2.2: the challenges some clients insist on.
USERNAME_CHALLENGE = b"Username:"
PASSWORD_CHALLENGE = b"Password:"


class FailureReason(enum.Enum):
    CANCELLED = "cancelled"  # the client sent "*" (RFC 9051 §6.2.2: tagged BAD)
    MALFORMED = "malformed"  # bad base64, or a message the mechanism does not allow
    UNSUPPORTED = "unsupported"  # a mechanism we do not offer
    AUTHZID = "authzid"  # acting as another identity (master users come later)


@dataclass(frozen=True)
class Challenge:
    data: bytes

    @property
    def wire(self) -> bytes:
        """The challenge as base64, without the protocol's prefix or line end."""
        return b64encode(self.data)


@dataclass(frozen=True)
class Credentials:
    authzid: str  # "" when the client asked for none (PLAIN) or could not give one (LOGIN)
    user: str  # the authentication identity: a login name or an address
    password: str = field(repr=False)


@dataclass(frozen=True)
class Failure:
    reason: FailureReason


Step = Challenge | Credentials | Failure


class SaslError(Exception):
    """`step` called when no challenge is outstanding: a bug in the caller."""


def decode_initial_response(text: bytes) -> bytes:
    """RFC 4959 §3 / RFC 4954 §4: an initial response on the command line: "=" for an
    empty one, else base64. ValueError when it is not valid base64."""
    if text == b"=":
        return b""
    return _b64decode(text)


def _b64decode(text: bytes) -> bytes:
    """Strict base64: only the alphabet, correct padding, nothing after it."""
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc


def _text(value: bytes) -> str | None:
    """A field as text: UTF-8 (RFC 4616 §2), no NUL, not longer than MAX_FIELD_BYTES."""
    if len(value) > MAX_FIELD_BYTES or b"\x00" in value:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _plain(message: bytes) -> Step:
    """RFC 4616 §2: message = [authzid] UTF8NUL authcid UTF8NUL passwd"""
    parts = message.split(b"\x00")
    if len(parts) != 3:
        return Failure(FailureReason.MALFORMED)
    authzid, authcid, passwd = (_text(p) for p in parts)
    # authcid = 1*SAFE, passwd = 1*SAFE: neither may be empty.
    if authzid is None or not authcid or not passwd:
        return Failure(FailureReason.MALFORMED)
    if authzid and authzid.lower() != authcid.lower():
        return Failure(FailureReason.AUTHZID)
    return Credentials(authzid, authcid, passwd)


class SaslServer:
    """One exchange. `start` once, then `step` while the last result was a Challenge."""

    def __init__(self, mechanisms: tuple[str, ...] = MECHANISMS) -> None:
        self._mechanisms = mechanisms
        self._mechanism: str | None = None
        self._user: str | None = None  # LOGIN: the user name, once given
        self._waiting = False  # a challenge is outstanding

    def start(self, mechanism: str, initial_response: bytes | None) -> Step:
        """Begin with `mechanism` (any case) and the decoded initial response, if any
        (b"" for an empty one, None when the client sent none)."""
        if self._mechanism is not None:
            raise SaslError("exchange already started")
        mechanism = mechanism.upper()
        self._mechanism = mechanism
        if mechanism not in self._mechanisms or mechanism not in MECHANISMS:
            return Failure(FailureReason.UNSUPPORTED)
        if initial_response is None:
            # PLAIN: the client speaks first, so the server asks with an empty challenge
            # (RFC 4422 §5); LOGIN: the user name is asked for.
            return self._challenge(b"" if mechanism == "PLAIN" else USERNAME_CHALLENGE)
        return self._respond(initial_response)

    def step(self, line: bytes) -> Step:
        """The client's answer to the last challenge, as sent (base64, or "*")."""
        if not self._waiting:
            raise SaslError("no challenge is outstanding")
        self._waiting = False
        if line == b"*":  # RFC 9051 §6.2.2, RFC 4954 §4, RFC 5034 §4
            return Failure(FailureReason.CANCELLED)
        if len(line) > (MAX_RESPONSE_BYTES + 2) // 3 * 4:
            return Failure(FailureReason.MALFORMED)
        try:
            response = _b64decode(line)
        except ValueError:
            return Failure(FailureReason.MALFORMED)
        return self._respond(response)

    def _challenge(self, data: bytes) -> Challenge:
        self._waiting = True
        return Challenge(data)

    def _respond(self, response: bytes) -> Step:
        if len(response) > MAX_RESPONSE_BYTES:
            return Failure(FailureReason.MALFORMED)
        if self._mechanism == "PLAIN":
            return _plain(response)
        value = _text(response)
        if value is None:
            return Failure(FailureReason.MALFORMED)
        if self._user is None:
            if not value:
                return Failure(FailureReason.MALFORMED)
            self._user = value
            return self._challenge(PASSWORD_CHALLENGE)
        return Credentials("", self._user, value)

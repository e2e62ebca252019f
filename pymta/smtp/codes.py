"""Every SMTP reply pymta sends, as a named constant: code, enhanced code, generic text.

Code and tests use the same constants. Texts are generic on purpose: what went wrong in
detail goes to the log, never to the client.

Enhanced status codes (RFC 3463) are required on every 2xx/4xx/5xx reply except the
greeting and the replies to HELO/EHLO (RFC 2034 §3 (4)); 3xx replies never carry one
(RFC 2034 §4). `with_enhanced_code` is the one place that adds them to the replies
aiosmtpd writes itself ("250 OK", "503 Error: need MAIL command", ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from pymta.delivery.verdicts import Refusal


@dataclass(frozen=True)
class Reply:
    """One SMTP reply line: `str(reply)` is what goes on the wire (without CRLF)."""

    code: int
    enhanced: str  # "" only where RFC 2034 §3 exempts the reply (HELO/EHLO, 3xx)
    text: str

    def __str__(self) -> str:
        return " ".join(part for part in (str(self.code), self.enhanced, self.text) if part)

    def format(self, **fields: object) -> Reply:
        """The same reply with its `{placeholders}` filled in."""
        return replace(self, text=self.text.format(**fields))

    @property
    def is_positive(self) -> bool:
        return 200 <= self.code < 400

    @property
    def is_temporary(self) -> bool:
        return 400 <= self.code < 500


# -- 2xx ----------------------------------------------------------------------------------
OK = Reply(250, "2.0.0", "Ok")
SENDER_OK = Reply(250, "2.1.0", "Ok")
RECIPIENT_OK = Reply(250, "2.1.5", "Ok")
QUEUED = Reply(250, "2.0.0", "Ok: queued as {queue_id}")
CHUNK_RECEIVED = Reply(250, "2.0.0", "{size} octets received")  # RFC 3030 §2
HELP = Reply(214, "2.0.0", "See RFC 5321")  # RFC 5321 §4.1.1.8
READY_FOR_TLS = Reply(220, "2.0.0", "Ready to start TLS")  # RFC 3207 §4
CLOSING = Reply(221, "2.0.0", "Bye")
CANNOT_VRFY = Reply(252, "2.1.5", "Cannot VRFY user")
AUTH_OK = Reply(235, "2.7.0", "Authentication successful")  # RFC 4954 §6

# -- 3xx (never an enhanced code: RFC 2034 §4) -----------------------------------------
START_DATA = Reply(354, "", "End data with <CR><LF>.<CR><LF>")

# -- 4xx ----------------------------------------------------------------------------------
SERVICE_UNAVAILABLE = Reply(421, "4.3.0", "Service not available, closing connection")
TOO_MANY_CONNECTIONS = Reply(421, "4.7.0", "Too many connections, try again later")
TIMEOUT = Reply(421, "4.4.2", "Timeout, closing connection")
SHUTTING_DOWN = Reply(421, "4.3.2", "Shutting down, try again later")
TEMPORARY_FAILURE = Reply(451, "4.3.0", "Temporary failure, try again later")
INTERNAL_ERROR = Reply(451, "4.3.0", "Internal error ({ref})")
OVER_QUOTA = Reply(452, "4.2.2", "Mailbox full, try again later")
TOO_MANY_RECIPIENTS = Reply(452, "4.5.3", "Too many recipients")  # RFC 5321 §4.5.3.1.10
INSUFFICIENT_STORAGE = Reply(452, "4.3.1", "Insufficient system storage")
TLS_NOT_AVAILABLE = Reply(454, "4.7.0", "TLS not available")
AUTH_UNAVAILABLE = Reply(454, "4.7.0", "Temporary authentication failure")  # RFC 4954 §6
DKIM_FAILED = Reply(451, "4.3.0", "Temporary failure signing the message, try again later")
PARAMETERS_NOT_ACCOMMODATED = Reply(455, "4.5.4", "Server unable to accommodate parameters")

# -- 5xx: the client's syntax ----------------------------------------------------------
SYNTAX_ERROR = Reply(500, "5.5.2", "Syntax error")
COMMAND_UNRECOGNIZED = Reply(500, "5.5.1", "Command not recognized")
LINE_TOO_LONG = Reply(500, "5.5.6", "Line too long")  # RFC 5321 §4.5.3.1.4 / §4.5.3.1.6
PARAMETER_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
BDAT_SYNTAX = Reply(501, "5.5.4", "Syntax: BDAT <size> [LAST]")  # RFC 3030 §2
# RFC 3461 §5.1: a bad RET/ENVID/NOTIFY/ORCPT value; §4.5: one of them given twice.
DSN_PARAMETER_SYNTAX = Reply(501, "5.5.4", "Syntax error in parameter")
DSN_PARAMETER_REPEATED = Reply(501, "5.5.4", "Syntax error in parameters or arguments")
NOT_IMPLEMENTED = Reply(502, "5.5.1", "Command not implemented")
PARAMETER_NOT_IMPLEMENTED = Reply(504, "5.5.4", "Command parameter not implemented")
PARAMETERS_NOT_RECOGNIZED = Reply(555, "5.5.4", "Parameters not recognized or not implemented")
BAD_SENDER_SYNTAX = Reply(553, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = Reply(553, "5.1.3", "Bad recipient address syntax")
# Replies to HELO/EHLO carry no enhanced code (RFC 2034 §3).
HELO_SYNTAX = Reply(501, "", "Syntax: HELO hostname")
EHLO_SYNTAX = Reply(501, "", "Syntax: EHLO hostname")

# -- 5xx: commands out of sequence (RFC 5321 §4.1.4) --------------------------------------
BAD_SEQUENCE = Reply(503, "5.5.1", "Bad sequence of commands")
NEED_HELO = Reply(503, "5.5.1", "Send EHLO or HELO first")
NEED_MAIL = Reply(503, "5.5.1", "Need MAIL command")
NEED_RCPT = Reply(503, "5.5.1", "Need RCPT command")
NESTED_MAIL = Reply(503, "5.5.1", "Nested MAIL command")
DATA_AFTER_BDAT = Reply(503, "5.5.1", "DATA not allowed after BDAT")  # RFC 3030 §2
TLS_ALREADY_ACTIVE = Reply(503, "5.5.1", "TLS already active")  # RFC 3207 §4.2
MUST_STARTTLS = Reply(530, "5.7.0", "Must issue a STARTTLS command first")
AUTH_REQUIRED = Reply(530, "5.7.0", "Authentication required")  # RFC 4954 §6
ALREADY_AUTHENTICATED = Reply(503, "5.5.1", "Already authenticated")  # RFC 4954 §4
AUTH_IN_TRANSACTION = Reply(503, "5.5.1", "AUTH not permitted during a mail transaction")
AUTH_CANCELLED = Reply(501, "5.7.0", "Authentication cancelled")  # RFC 4954 §4
AUTH_SYNTAX = Reply(501, "5.5.2", "Cannot decode the authentication response")  # RFC 4954 §4
AUTH_MECHANISM = Reply(504, "5.5.4", "Unrecognized authentication type")  # RFC 4954 §6
AUTH_FAILED = Reply(535, "5.7.8", "Authentication credentials invalid")  # RFC 4954 §6
SENDER_NOT_OWNED = Reply(553, "5.7.1", "Sender address not owned by the authenticated user")
FROM_NOT_OWNED = Reply(550, "5.7.1", "From: address not owned by the authenticated user")

# -- 5xx: the request refused ---------------------------------------------------------
MESSAGE_TOO_BIG = Reply(552, "5.3.4", "Message size exceeds fixed maximum message size")
UNKNOWN_USER = Reply(550, "5.1.1", "Recipient address rejected: user unknown")
RELAY_DENIED = Reply(554, "5.7.1", "Relay access denied")
INTERNAL_ONLY = Reply(550, "5.7.1", "Recipient address rejected: access denied")
MAILBOX_DISABLED = Reply(550, "5.2.1", "Recipient address rejected: mailbox disabled")
ACTION_NOT_TAKEN = Reply(550, "5.0.0", "Requested action not taken")
MAILBOX_NAME_NOT_ALLOWED = Reply(553, "5.1.0", "Mailbox name not allowed")
TRANSACTION_FAILED = Reply(554, "5.0.0", "Transaction failed")
SECURITY_REQUIRED = Reply(554, "5.7.0", "Command refused due to lack of security")


REFUSALS: Mapping[Refusal, Reply] = {
    Refusal.UNKNOWN_USER: UNKNOWN_USER,
    Refusal.RELAY_DENIED: RELAY_DENIED,
    Refusal.INTERNAL_ONLY: INTERNAL_ONLY,
    Refusal.MAILBOX_DISABLED: MAILBOX_DISABLED,
    Refusal.OVER_QUOTA: OVER_QUOTA,
    Refusal.TEMPORARY: TEMPORARY_FAILURE,
}


def refusal_reply(refusal: Refusal) -> Reply:
    """The RCPT reply for a recipient the delivery layer refused."""
    return REFUSALS[refusal]


# -- aiosmtpd's own replies ---------------------------------------------------------------

# A reply aiosmtpd writes without an enhanced code gets the default reply for its code,
# or a more precise one when its text is one we know.
_DEFAULTS: Mapping[int, Reply] = {
    214: HELP,
    220: READY_FOR_TLS,  # the greeting is the only other 220, and it is exempt
    221: CLOSING,
    250: OK,
    252: CANNOT_VRFY,
    421: SERVICE_UNAVAILABLE,
    451: TEMPORARY_FAILURE,
    452: INSUFFICIENT_STORAGE,
    454: TLS_NOT_AVAILABLE,
    455: PARAMETERS_NOT_ACCOMMODATED,
    500: SYNTAX_ERROR,
    501: PARAMETER_SYNTAX,
    502: NOT_IMPLEMENTED,
    503: BAD_SEQUENCE,
    504: PARAMETER_NOT_IMPLEMENTED,
    530: MUST_STARTTLS,
    550: ACTION_NOT_TAKEN,
    552: MESSAGE_TOO_BIG,
    553: MAILBOX_NAME_NOT_ALLOWED,
    554: TRANSACTION_FAILED,
    555: PARAMETERS_NOT_RECOGNIZED,
}

_KNOWN_TEXTS: tuple[tuple[int, str, Reply], ...] = (
    (500, "Command line too long", LINE_TOO_LONG),
    (500, "Line too long", LINE_TOO_LONG),
    (500, "Error: command", COMMAND_UNRECOGNIZED),
    (503, "Error: send", NEED_HELO),
    (503, "Error: need MAIL", NEED_MAIL),
    (503, "Error: need RCPT", NEED_RCPT),
    (503, "Error: nested MAIL", NESTED_MAIL),
    (554, "Command refused due to lack of security", SECURITY_REQUIRED),
)

# RFC 2034 §4: status-code = class "." subject "." detail, followed by a space.
_ENHANCED_CODE = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}(?: |$)")


def known_reply(code: int, text: str) -> Reply:
    """Our reply for a reply aiosmtpd wrote as `<code> <text>` without an enhanced code."""
    for known_code, prefix, reply in _KNOWN_TEXTS:
        if code == known_code and text.startswith(prefix):
            return reply
    default = _DEFAULTS.get(code)
    if default is not None:
        return default
    return Reply(code, f"{code // 100}.0.0", text)


def with_enhanced_code(line: str) -> str:
    """`line` with an enhanced status code (RFC 2034 §3), mapped to our generic text.

    Lines that already carry one, 3xx lines and anything that is not a reply line are
    returned unchanged.
    """
    code_text, separator, text = line[:3], line[3:4], line[4:]
    if not (code_text.isascii() and code_text.isdigit()) or separator not in (" ", "-", ""):
        return line
    if code_text[0] not in "245" or _ENHANCED_CODE.match(text):
        return line
    reply = known_reply(int(code_text), text)
    return f"{code_text}{separator or ' '}{reply.enhanced} {reply.text}"

"""Authentication: password hashes, SASL PLAIN/LOGIN, checking logins, failed-login throttling.

- `passwords.Passwords`: argon2id hashes, and SHA512-CRYPT ($6$) for migrated Dovecot users.
- `sasl.SaslServer`: the sans-I/O server side of PLAIN and LOGIN (with SASL-IR and "*"
  cancellation), the same for IMAP, POP3 and SMTP submission; it yields `Credentials`.
- `authenticator.Authenticator`: login name or own address + password → an `AuthResult`
  (OK with the user, FAILED, THROTTLED or UNAVAILABLE), using `directory/` for who exists.
- `throttle.Throttle`: failed-login counting and delays, one object per server.

Invariants:
- A password or hash never reaches a log line or a repr: hashes travel as
  `config.model.Secret`, passwords in fields excluded from repr.
- Password verification (CPU-heavy) never runs on the event loop.
- An unknown user costs as much time as a wrong password (a dummy hash is verified).
- Every failed login is counted by the one shared `Throttle` and answered only after its
  delay; nothing (not loopback) is exempt.
Master users (`user*master`) come later, in `sasl` (authzid) and `authenticator`.
"""

from .authenticator import Authenticator, AuthResult, AuthStatus
from .passwords import Passwords
from .sasl import (
    MECHANISMS,
    Challenge,
    Credentials,
    Failure,
    FailureReason,
    SaslServer,
    Step,
    decode_initial_response,
)
from .throttle import Clock, MonotonicClock, Throttle

__all__ = [
    "MECHANISMS",
    "AuthResult",
    "AuthStatus",
    "Authenticator",
    "Challenge",
    "Clock",
    "Credentials",
    "Failure",
    "FailureReason",
    "MonotonicClock",
    "Passwords",
    "SaslServer",
    "Step",
    "Throttle",
    "decode_initial_response",
]

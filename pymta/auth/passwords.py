"""Password hashing and verification.

New hashes are argon2id (argon2-cffi's defaults, RFC 9106 "second recommended option").
`$6$` SHA512-CRYPT hashes are verified too, so users of a Dovecot passwd-file can be moved
over as they are; they should be re-hashed at the next password change.
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from passlib.hash import sha512_crypt

from pymta.config.model import Secret


class Passwords:
    """Hashes and verifies passwords; holds the (stateless) argon2 hasher."""

    def __init__(self) -> None:
        self._argon2 = PasswordHasher()

    def hash(self, password: str) -> Secret:
        return Secret(self._argon2.hash(password))

    def verify(self, stored: Secret | None, password: str) -> bool:
        """True when `password` matches `stored`; False for no hash or an unknown scheme."""
        if stored is None:
            return False
        value = stored.reveal()
        if value.startswith("$argon2"):
            try:
                return bool(self._argon2.verify(value, password))
            except (VerificationError, InvalidHashError):
                return False
        if value.startswith("$6$"):
            try:
                return bool(sha512_crypt.verify(password, value))
            except ValueError:
                return False
        return False

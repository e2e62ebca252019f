"""Password hashes: argon2id for new ones, SHA512-CRYPT from a Dovecot passwd-file."""

from __future__ import annotations

from passlib.hash import sha512_crypt

from pymta.auth.passwords import Passwords
from pymta.config.model import Secret


def test_new_hashes_are_argon2id_and_verify() -> None:
    p = Passwords()
    stored = p.hash("correct horse")
    assert stored.reveal().startswith("$argon2id$")
    assert p.verify(stored, "correct horse")
    assert not p.verify(stored, "correct horse ")


def test_dovecot_sha512_crypt_hashes_verify() -> None:
    # As `doveadm pw -s SHA512-CRYPT` writes them (without the {SHA512-CRYPT} prefix).
    stored = Secret(sha512_crypt.using(rounds=5000).hash("from-dovecot"))
    assert stored.reveal().startswith("$6$")
    p = Passwords()
    assert p.verify(stored, "from-dovecot")
    assert not p.verify(stored, "wrong")


def test_no_hash_unknown_scheme_or_garbage_never_verifies() -> None:
    p = Passwords()
    assert not p.verify(None, "")
    assert not p.verify(Secret("$1$salt$md5cryptisnotaccepted"), "x")
    assert not p.verify(Secret("$argon2id$garbage"), "x")
    assert not p.verify(Secret("$6$garbage"), "x")


def test_secret_never_prints() -> None:
    s = Passwords().hash("pw")
    assert "argon2" not in repr(s) and "argon2" not in str(s) and "argon2" not in f"{s}"

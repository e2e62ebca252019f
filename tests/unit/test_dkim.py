"""DKIM keys, TXT records and signing: what we sign, dkimpy verifies (RFC 6376, RFC 8463)."""

from __future__ import annotations

import base64
import logging
import os
import pwd
import re
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import dkim
import dkim.util
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from pymta.queue.dkim import (
    DkimError,
    DkimKeys,
    DkimSigner,
    KeyExists,
    normalize_domain,
    split_txt,
    zone_line,
)
from tests.tomlw import dumps

MSG = (
    b"Received: from client by mail.example.test\r\n"
    b"From: Alice <alice@example.test>\r\n"
    b"To: bob@remote.test\r\n"
    b"Cc: carol@remote.test\r\n"
    b"Subject: lunch\r\n"
    b"Date: Thu, 26 Nov 2026 03:00:00 +0000\r\n"
    b"Message-ID: <1@example.test>\r\n"
    b"\r\n"
    b"See you at noon.\r\n"
)


def dnsfunc_for(records: dict[str, str]) -> Callable[..., bytes | None]:
    """A dkimpy dnsfunc answering from `records` (name without the trailing dot)."""

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        value = records.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    return dnsfunc


def signature_tags(signature: bytes) -> dict[bytes, bytes]:
    value = signature.split(b":", 1)[1]
    return dkim.util.parse_tag_value(re.sub(rb"\s+", b"", value))


@pytest.fixture(scope="module")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[DkimKeys, str]:
    """One RSA key for example.test (2048-bit generation is slow enough to share)."""
    keys = DkimKeys(tmp_path_factory.mktemp("data"))
    _, record = keys.keygen("example.test")
    return keys, record


# -- keygen -------------------------------------------------------------------------------


def test_keygen_rsa_writes_a_2048_bit_pem_with_private_modes(tmp_path: Path) -> None:
    path, record = DkimKeys(tmp_path).keygen("Example.TEST")
    assert path == tmp_path / "dkim" / "example.test" / "default.key"
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "dkim").stat().st_mode) == 0o700
    assert record.startswith("v=DKIM1; k=rsa; p=")
    assert [p.name for p in path.parent.iterdir()] == ["default.key"]  # no temp left


def test_rsa_record_parses_and_holds_the_public_key(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, record = rsa_keys
    tags = dkim.util.parse_tag_value(record.encode())
    assert tags[b"v"] == b"DKIM1" and tags[b"k"] == b"rsa"
    public = dkim.crypto.parse_public_key(base64.b64decode(tags[b"p"]))
    private = serialization.load_pem_private_key(
        keys.path("example.test").read_bytes(), password=None
    )
    assert isinstance(private, rsa.RSAPrivateKey)
    assert public["modulus"] == private.public_key().public_numbers().n


def test_keygen_ed25519_record_is_the_raw_32_byte_key(tmp_path: Path) -> None:
    path, record = DkimKeys(tmp_path).keygen("example.test", "ed", algorithm="ed25519")
    assert path.name == "ed.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    tags = dkim.util.parse_tag_value(record.encode())
    assert tags[b"k"] == b"ed25519"  # RFC 8463 §4
    raw = base64.b64decode(tags[b"p"])
    assert len(raw) == 32
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    public = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    public.verify(private.sign(b"probe"), b"probe")  # raises if the record is another key


def test_keygen_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    keys = DkimKeys(tmp_path)
    path, record = keys.keygen("example.test", bits=1024)
    before = path.read_bytes()
    with pytest.raises(KeyExists):
        keys.keygen("example.test", bits=1024)
    assert path.read_bytes() == before
    _, new_record = keys.keygen("example.test", bits=1024, force=True)
    assert path.read_bytes() != before and new_record != record
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_keygen_refuses_short_rsa_keys(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1024"):
        DkimKeys(tmp_path).keygen("example.test", bits=512)  # RFC 8301 §3.2


@pytest.mark.parametrize(
    ("domain", "selector"),
    [
        ("../etc", "default"),
        ("example.test/..", "default"),
        ("example.test", "../../x"),
        ("example.test", "a/b"),
        ("localhost", "default"),
        ("example.test", ""),
    ],
)
def test_path_traversal_in_domain_or_selector_is_refused(
    tmp_path: Path, domain: str, selector: str
) -> None:
    keys = DkimKeys(tmp_path)
    with pytest.raises(ValueError):
        keys.keygen(domain, selector, bits=1024)
    assert keys.load(domain, selector) is None
    assert not (tmp_path / "dkim").exists()


def test_domains_are_lower_case_a_labels() -> None:
    assert normalize_domain("Bücher.Example.") == "xn--bcher-kva.example"
    assert normalize_domain("a..b") is None


def test_txt_split_into_255_character_strings_for_zone_files() -> None:
    value = "v=DKIM1; k=rsa; p=" + "A" * 600
    parts = split_txt(value)
    assert [len(p) for p in parts] == [255, 255, 108]
    assert "".join(parts) == value
    line = zone_line("example.test", "default", value)
    assert line.startswith("default._domainkey.example.test. IN TXT ")
    assert "".join(re.findall(r'"([^"]*)"', line)) == value


# -- signing ------------------------------------------------------------------------------


def test_signed_message_verifies_against_the_published_record(
    rsa_keys: tuple[DkimKeys, str],
) -> None:
    keys, record = rsa_keys
    signature = DkimSigner(keys).sign(MSG, "example.test")
    assert signature is not None and signature.startswith(b"DKIM-Signature: ")
    assert signature.endswith(b"\r\n")
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    assert dkim.verify(signature + MSG, dnsfunc=dns)
    assert not dkim.verify(signature + MSG.replace(b"noon", b"one"), dnsfunc=dns)


def test_openssl_rsa_signature_is_byte_for_byte_dkimpys_own(
    rsa_keys: tuple[DkimKeys, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # PKCS #1 v1.5 is deterministic: with the clock fixed, OpenSSL's signature and dkimpy's
    # pure-Python one over the same canonical headers are the same bytes.
    keys, _ = rsa_keys
    monkeypatch.setattr(dkim.time, "time", lambda: 1_700_000_000)
    key = keys.load("example.test")
    assert key is not None and key.rsa_key is not None
    ours = DkimSigner(keys).sign(MSG, "example.test")
    include = [n.encode() for n in ("from", "to", "cc", "subject", "date", "from")]
    theirs = dkim.sign(
        MSG,
        b"default",
        b"example.test",
        key.private.reveal().encode(),
        canonicalize=(b"relaxed", b"relaxed"),
        include_headers=include,
    )
    assert ours == theirs


def test_signature_uses_relaxed_canonicalisation_and_the_recommended_headers(
    rsa_keys: tuple[DkimKeys, str],
) -> None:
    keys, _ = rsa_keys
    signature = DkimSigner(keys).sign(MSG, "example.test")
    assert signature is not None
    tags = signature_tags(signature)
    assert tags[b"c"] == b"relaxed/relaxed"
    assert tags[b"a"] == b"rsa-sha256" and tags[b"d"] == b"example.test"
    assert tags[b"s"] == b"default"
    # RFC 6376 §5.4.1 fields present in the message, From once more (oversigned);
    # Received and Message-ID are not in the recommended set.
    assert tags[b"h"].split(b":") == [b"from", b"to", b"cc", b"subject", b"date", b"from"]


def test_oversigned_from_breaks_when_a_second_from_is_added(
    rsa_keys: tuple[DkimKeys, str],
) -> None:
    keys, record = rsa_keys
    signature = DkimSigner(keys).sign(MSG, "example.test")
    assert signature is not None
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    forged = signature + b"From: ceo@example.test\r\n" + MSG
    assert not dkim.verify(forged, dnsfunc=dns)


def test_added_unsigned_header_keeps_the_signature_valid(
    rsa_keys: tuple[DkimKeys, str],
) -> None:
    keys, record = rsa_keys
    signature = DkimSigner(keys).sign(MSG, "example.test")
    assert signature is not None
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    relayed = b"Received: from mail.example.test by mx.remote.test\r\n" + signature + MSG
    assert dkim.verify(relayed, dnsfunc=dns)


def test_lf_only_message_gets_an_lf_signature(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, record = rsa_keys
    message = MSG.replace(b"\r\n", b"\n")
    signature = DkimSigner(keys).sign(message, "example.test")
    assert signature is not None and b"\r" not in signature
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    assert dkim.verify(signature + message, dnsfunc=dns)


def test_no_key_for_the_domain_means_no_signature(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, _ = rsa_keys
    signer = DkimSigner(keys)
    assert signer.sign(MSG, "other.test") is None
    assert DkimSigner(keys, selector="s2024").sign(MSG, "example.test") is None


def test_message_without_from_is_not_signed(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, _ = rsa_keys
    message = MSG.replace(b"From: Alice <alice@example.test>\r\n", b"")
    assert DkimSigner(keys).sign(message, "example.test") is None


def test_from_must_be_in_the_signed_header_set(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, _ = rsa_keys
    with pytest.raises(ValueError, match="From"):
        DkimSigner(keys, headers=["subject"])


def test_unusable_key_file_raises_dkim_error(tmp_path: Path) -> None:
    keys = DkimKeys(tmp_path)
    path = keys.path("example.test")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    with pytest.raises(DkimError):
        DkimSigner(keys).sign(MSG, "example.test")


def test_ed25519_signature_verifies(tmp_path: Path) -> None:
    pytest.importorskip("nacl", reason="dkimpy signs and verifies Ed25519 through PyNaCl")
    keys = DkimKeys(tmp_path)
    _, record = keys.keygen("example.test", "ed", algorithm="ed25519")
    signature = DkimSigner(keys, selector="ed").sign(MSG, "example.test")
    assert signature is not None
    assert signature_tags(signature)[b"a"] == b"ed25519-sha256"
    dns = dnsfunc_for({"ed._domainkey.example.test": record})
    assert dkim.verify(signature + MSG, dnsfunc=dns)


async def test_sign_async_matches_sign(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, record = rsa_keys
    signature = await DkimSigner(keys).sign_async(MSG, "example.test")
    assert signature is not None
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    assert dkim.verify(signature + MSG, dnsfunc=dns)


def test_keys_are_cached_after_the_first_load(rsa_keys: tuple[DkimKeys, str]) -> None:
    keys, _ = rsa_keys
    assert keys.load("example.test") is keys.load("EXAMPLE.test")


def test_key_material_never_shows_in_repr_or_logs(
    rsa_keys: tuple[DkimKeys, str], caplog: pytest.LogCaptureFixture
) -> None:
    keys, _ = rsa_keys
    keys.forget()
    signer = DkimSigner(keys)
    with caplog.at_level(logging.DEBUG):
        assert signer.sign(MSG, "example.test") is not None
    loaded = keys.load("example.test")
    assert loaded is not None
    secret_b64 = "".join(loaded.private.reveal().splitlines()[1:-1])
    chunk = secret_b64[-80:-40]  # from the private primes' end, not the public modulus
    assert "dkim signed domain=example.test" in caplog.text
    for text in (repr(signer), repr(keys), repr(loaded), str(loaded), caplog.text):
        assert chunk not in text
        assert "PRIVATE KEY" not in text


# -- the CLI ------------------------------------------------------------------------------


def test_cli_keygen_prints_a_zone_line_that_verifies_a_signed_message(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    config = tmp_path / "pymta.toml"
    config.write_text(
        dumps(
            {
                "server": {"hostname": "mail.example.test", "data_dir": str(data_dir)},
                "domains": [{"name": "example.test"}],
            }
        )
    )

    def pymta(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "pymta", "-c", str(config), "dkim", "keygen", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )

    result = pymta("example.test", "--bits", "1024")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if not line.startswith(";")]
    assert len(lines) == 1
    name, _, strings = lines[0].partition(" IN TXT ")
    assert name == "default._domainkey.example.test."
    record = "".join(re.findall(r'"([^"]*)"', strings))

    signature = DkimSigner(DkimKeys(data_dir)).sign(MSG, "example.test")
    assert signature is not None
    dns = dnsfunc_for({"default._domainkey.example.test": record})
    assert dkim.verify(signature + MSG, dnsfunc=dns)

    again = pymta("example.test")
    assert again.returncode == 1 and "--force" in again.stderr
    assert pymta("../etc").returncode == 2


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can hand files to another user")
def test_cli_keygen_as_root_gives_the_key_to_the_server_user(tmp_path: Path) -> None:
    nobody = pwd.getpwnam("nobody")
    config = tmp_path / "pymta.toml"
    config.write_text(
        dumps(
            {
                "server": {
                    "hostname": "mail.example.test",
                    "data_dir": str(tmp_path / "data"),
                    "user": "nobody",
                },
                "domains": [{"name": "example.test"}],
            }
        )
    )
    command = ["-c", str(config), "dkim", "keygen", "example.test", "--ed25519"]
    result = subprocess.run(
        [sys.executable, "-m", "pymta", *command],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    key = tmp_path / "data" / "dkim" / "example.test" / "default.key"
    for owned in (key, key.parent, key.parent.parent):
        assert owned.stat().st_uid == nobody.pw_uid

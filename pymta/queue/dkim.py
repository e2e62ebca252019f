"""DKIM signing of submitted mail: key files, DNS records, and the signer (RFC 6376).

Keys live under `<data_dir>/dkim/<domain>/<selector>.key`, one PEM private key (PKCS#8)
per file, mode 0600 in directories of mode 0700. A key file is written to a temp file,
fsynced, then linked into place, so a reader never sees half a key and `keygen` without
`force` can never replace an existing key, even when two run at once.

`DkimSigner.sign` hands the work to dkimpy (relaxed/relaxed). dkimpy's own RSA is pure
Python (≈8 ms per 2048-bit signature, holding the GIL), so RSA keys sign through
`_OpenSslDKIM`, dkimpy with the private-key operation done by OpenSSL via `cryptography`
(≈0.3 ms, GIL released). It is still CPU work, so the event loop calls `sign_async`, which
runs it in a thread. Loaded keys are cached in
the `DkimKeys` object and travel in `Secret`, whose repr is redacted: no key material is
ever logged.

Ed25519 (RFC 8463): `keygen` needs only `cryptography`; signing goes through dkimpy, which
needs PyNaCl for Ed25519. Without it, loading an Ed25519 key raises `DkimError`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.util
import logging
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from pymta.config.model import Secret

log = logging.getLogger(__name__)

Algorithm = Literal["rsa", "ed25519"]

# RFC 6376 §5.4.1: the recommended header fields to sign (From is REQUIRED, §5.4).
RECOMMENDED_HEADERS: tuple[str, ...] = (
    "from",
    "reply-to",
    "subject",
    "date",
    "to",
    "cc",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
)

# RFC 6376 §8.15: naming a field once more than it occurs ("oversigning") makes a receiver
# treat an added instance as a change, so a second From: cannot be slipped in above ours.
OVERSIGNED_HEADERS: tuple[str, ...] = ("from",)

# RFC 8301 §3.2: signers MUST use RSA keys of at least 1024 bits and SHOULD use 2048.
MIN_RSA_BITS = 1024
TXT_STRING_MAX = 255  # RFC 1035 §3.3.14: one <character-string> is at most 255 octets

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
# RFC 6376 §3.1: selector = sub-domain *( "." sub-domain ); lower-cased for the file name.
_SELECTOR_RE = re.compile(
    r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?)*"
)


class DkimError(Exception):
    """A key exists for the domain but cannot be used (unreadable, wrong type, no PyNaCl)."""


class KeyExists(DkimError):
    """`keygen` without `force` found a key already in place."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"a key already exists: {path}")
        self.path = path


def normalize_domain(domain: str) -> str | None:
    """The domain as lower-case A-labels (RFC 5890), or None if it is not a host name.

    Also the guard against path traversal: only `label(.label)+` of letters, digits and
    hyphens ever reaches a file name.
    """
    name = domain.strip().rstrip(".")
    try:
        name = name.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    return name if len(name) <= 253 and _DOMAIN_RE.fullmatch(name) else None


def normalize_selector(selector: str) -> str | None:
    name = selector.strip().lower()
    return name if _SELECTOR_RE.fullmatch(name) else None


def txt_record_value(public_key: rsa.RSAPublicKey | ed25519.Ed25519PublicKey) -> str:
    """The TXT record for a public key (RFC 6376 §3.6.1; RFC 8463 §4 for Ed25519)."""
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        # RFC 8463 §4: p= is the raw 32-byte Ed25519 key, base64, not a SubjectPublicKeyInfo.
        raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return f"v=DKIM1; k=rsa; p={base64.b64encode(der).decode('ascii')}"


def split_txt(value: str, limit: int = TXT_STRING_MAX) -> list[str]:
    """Split a TXT value into character-strings of at most `limit` octets (RFC 1035 §3.3.14).

    Receivers concatenate the strings of one record without separators (RFC 6376 §3.6.2.2).
    """
    return [value[i : i + limit] for i in range(0, len(value), limit)] or [""]


def record_name(domain: str, selector: str) -> str:
    """Where the key record is published (RFC 6376 §3.6.2.1)."""
    return f"{selector}._domainkey.{domain}."


def zone_line(domain: str, selector: str, value: str) -> str:
    """One zone-file line publishing `value`, split into ≤255-character strings."""
    strings = " ".join(f'"{s}"' for s in split_txt(value))
    return f"{record_name(domain, selector)} IN TXT {strings}"


@dataclass(frozen=True)
class DkimKey:
    """A loaded signing key; `private` is in the form dkimpy takes, and never prints."""

    domain: str
    selector: str
    algorithm: Algorithm
    private: Secret
    txt_record: str
    # The same RSA key as a `cryptography` object, for `_OpenSslDKIM` (None for Ed25519).
    rsa_key: rsa.RSAPrivateKey | None = field(default=None, repr=False, compare=False)

    @property
    def signature_algorithm(self) -> bytes:
        return b"ed25519-sha256" if self.algorithm == "ed25519" else b"rsa-sha256"


class DkimKeys:
    """The key files under `<data_dir>/dkim/`, with a cache of the keys loaded so far."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "dkim"
        self._cache: dict[tuple[str, str], DkimKey] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DkimKeys({str(self.root)!r}, loaded={len(self._cache)})"

    def path(self, domain: str, selector: str = "default") -> Path:
        """The key file of `domain` and `selector`; ValueError if either is not a name."""
        d, s = normalize_domain(domain), normalize_selector(selector)
        if d is None:
            raise ValueError(f"not a domain name: {domain!r}")
        if s is None:
            raise ValueError(f"not a DKIM selector: {selector!r}")
        return self.root / d / f"{s}.key"

    def keygen(
        self,
        domain: str,
        selector: str = "default",
        algorithm: Algorithm = "rsa",
        bits: int = 2048,
        *,
        force: bool = False,
    ) -> tuple[Path, str]:
        """Write a new private key; return its path and the TXT record value to publish."""
        path = self.path(domain, selector)
        if path.exists() and not force:
            raise KeyExists(path)
        key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
        if algorithm == "rsa":
            if bits < MIN_RSA_BITS:  # RFC 8301 §3.2
                raise ValueError(f"RSA keys must have at least {MIN_RSA_BITS} bits")
            key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        elif algorithm == "ed25519":
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(f"unknown DKIM key algorithm: {algorithm!r}")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(path, pem, replace=force)
        with self._lock:
            self._cache.pop((path.parent.name, path.stem), None)
        log.info(
            "dkim keygen domain=%s selector=%s algorithm=%s path=%s",
            path.parent.name,
            path.stem,
            algorithm,
            path,
        )
        return path, txt_record_value(key.public_key())

    def load(self, domain: str, selector: str = "default") -> DkimKey | None:
        """The key for `domain` (cached after the first load), or None if there is none."""
        try:
            path = self.path(domain, selector)
        except ValueError:
            return None
        cache_key = (path.parent.name, path.stem)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DkimError(f"cannot read DKIM key {path}: {exc.strerror}") from exc
        key = _parse_key(pem, domain=cache_key[0], selector=cache_key[1], path=path)
        with self._lock:
            self._cache[cache_key] = key
        log.info(
            "dkim key_loaded domain=%s selector=%s algorithm=%s",
            key.domain,
            key.selector,
            key.algorithm,
        )
        return key

    def forget(self) -> None:
        """Drop the cache (after keys changed on disk, e.g. on SIGHUP)."""
        with self._lock:
            self._cache.clear()


def _write_private(path: Path, pem: bytes, *, replace: bool) -> None:
    for directory in (path.parent.parent, path.parent):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask and skips old dirs
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, pem)
            os.fchmod(fd, 0o600)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if a key appeared meanwhile: never overwrite
            except FileExistsError:
                raise KeyExists(path) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _parse_key(pem: bytes, *, domain: str, selector: str, path: Path) -> DkimKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise DkimError(f"not a usable PEM private key: {path}") from exc
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:  # RFC 8301 §3.2
            raise DkimError(f"RSA key shorter than {MIN_RSA_BITS} bits: {path}")
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode("ascii")
        return DkimKey(
            domain, selector, "rsa", Secret(private), txt_record_value(key.public_key()), key
        )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        if importlib.util.find_spec("nacl") is None:
            raise DkimError("dkimpy needs PyNaCl to sign with Ed25519 keys: install pynacl")
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        private = base64.b64encode(raw).decode("ascii")  # the seed, as dkimpy takes it
        return DkimKey(
            domain, selector, "ed25519", Secret(private), txt_record_value(key.public_key())
        )
    raise DkimError(f"DKIM keys are RSA or Ed25519, not {type(key).__name__}: {path}")


def _header_block(message: bytes) -> bytes:
    for sep in (b"\r\n\r\n", b"\n\n"):
        end = message.find(sep)
        if end >= 0:
            return message[: end + len(sep) // 2]
    return message


def header_names(message: bytes) -> list[str]:
    """The field names of the header section, in order, lower-cased (RFC 5322 §2.2)."""
    names = []
    for line in _header_block(message).splitlines():
        if not line or line[:1] in (b" ", b"\t"):
            continue  # a continuation line (folding, RFC 5322 §2.2.3)
        name, colon, _ = line.partition(b":")
        if colon:
            names.append(name.strip().decode("ascii", "replace").lower())
    return names


class DkimSigner:
    """Signs messages for the domains that have a key under `keys` (RFC 6376 §5)."""

    def __init__(
        self,
        keys: DkimKeys,
        *,
        selector: str = "default",
        headers: Iterable[str] = RECOMMENDED_HEADERS,
        oversign: Iterable[str] = OVERSIGNED_HEADERS,
    ) -> None:
        self.keys = keys
        self.selector = selector
        self.headers = frozenset(h.lower() for h in headers)
        self.oversign = tuple(h.lower() for h in oversign)
        if "from" not in self.headers:
            raise ValueError("the From header field MUST be signed (RFC 6376 §5.4)")

    def __repr__(self) -> str:
        return f"DkimSigner({self.keys!r}, selector={self.selector!r})"

    def sign(self, message: bytes, domain: str) -> bytes | None:
        """The DKIM-Signature field (with its line ending) to prepend, or None.

        None when `domain` has no key or the message has no From (RFC 6376 §5.4: From
        MUST be signed). Raises `DkimError` when a key exists but cannot be used.
        """
        key = self.keys.load(domain, self.selector)
        if key is None:
            return None
        names = header_names(message)
        if "from" not in names:
            return None
        include = [n for n in names if n in self.headers]
        include += [n for n in self.oversign if n in self.headers]  # RFC 6376 §8.15
        linesep = b"\r\n" if b"\r\n" in message[: message.find(b"\n") + 1] else b"\n"
        signer = (
            _OpenSslDKIM(message, key.rsa_key, linesep)
            if key.rsa_key is not None
            else dkim.DKIM(message, signature_algorithm=key.signature_algorithm, linesep=linesep)
        )
        try:
            signature: bytes = signer.sign(
                key.selector.encode("ascii"),
                key.domain.encode("ascii"),
                key.private.reveal().encode("ascii"),
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=[n.encode("ascii") for n in include],
            )
        except dkim.DKIMException as exc:
            # dkimpy's messages name the problem, never the key.
            raise DkimError(f"DKIM signing failed for {key.domain}: {exc}") from exc
        log.debug(
            "dkim signed domain=%s selector=%s algorithm=%s headers=%d",
            key.domain,
            key.selector,
            key.algorithm,
            len(include),
        )
        return signature

    async def sign_async(self, message: bytes, domain: str) -> bytes | None:
        """`sign` in a worker thread: RSA signing is milliseconds of CPU."""
        return await asyncio.to_thread(self.sign, message, domain)


class _OpenSslDKIM(dkim.DKIM):  # type: ignore[misc]
    """dkimpy's rsa-sha256 signer with the RSA private-key operation done by OpenSSL.

    `gen_header` is dkimpy's (1.1) with `RSASSA_PKCS1_v1_5_sign` replaced by
    `cryptography`'s PKCS #1 v1.5 signature over the same SHA-256 digest (RFC 6376 §3.3.1),
    and without the `standardize` branch, which `sign` never asks for. Everything else
    (canonicalization, body hash, header selection, folding) stays dkimpy's.
    """

    def __init__(self, message: bytes, key: rsa.RSAPrivateKey, linesep: bytes) -> None:
        super().__init__(message, signature_algorithm=b"rsa-sha256", linesep=linesep)
        self._rsa_key = key

    def gen_header(
        self,
        fields: list[tuple[bytes, bytes]],
        include_headers: Any,
        canon_policy: Any,
        header_name: bytes,
        pk: Any,
        standardize: bool = False,
    ) -> bytes:
        if standardize:  # not used by `sign`; keep dkimpy's behaviour if it ever is
            return super().gen_header(  # type: ignore[no-any-return]
                fields, include_headers, canon_policy, header_name, pk, standardize
            )
        value = b"; ".join(b"=".join(x) for x in fields)
        value = dkim.fold(value, namelen=len(header_name), linesep=b"\r\n")
        value = dkim.RE_BTAG.sub(b"\\1", value)  # b= empty while hashing (RFC 6376 §3.7)
        digest = self.hasher()
        headers = canon_policy.canonicalize_headers(self.headers)
        self.signed_headers = dkim.hash_headers(
            digest, canon_policy, headers, include_headers, (header_name, b" " + value), {}
        )
        signature = self._rsa_key.sign(
            digest.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256())
        )
        fields = [(b"b", base64.b64encode(signature)) if k == b"b" else (k, v) for k, v in fields]
        value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return dkim.fold(value, namelen=len(header_name), linesep=self.linesep)  # type: ignore[no-any-return]

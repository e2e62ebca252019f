"""Names: folder names (API ↔ Maildir++ directory) and mailbox root components.

API folder names are unicode with "." as the hierarchy separator ("Lists.Work"); "INBOX"
(any case, RFC 9051 §5.1) is the root's own cur/new/tmp. Every other folder is one
directory `.<name>` in the root, its name in modified UTF-7 (RFC 3501 §5.1.3), the way
Dovecot's Maildir++ layout stores it, so "Entwürfe" lives in `.Entw&APw-rfe`.

Every name from outside passes `canonical_folder` (or `check_component` for user, domain
and public mailbox names) before it is joined to a path: no "/", no NUL, no control
character, no empty component, no component "." or "..", nothing starting with "."; so a
folder is always exactly one directory entry of its root and never resolves outside it.
"""

from __future__ import annotations

import base64
import binascii

from .errors import InvalidName

INBOX = "INBOX"
SEPARATOR = "."
MAX_NAME_BYTES = 255  # one directory entry on ext4/xfs/btrfs
_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,")


def _is_printable_ascii(ch: str) -> bool:
    return 0x20 <= ord(ch) <= 0x7E


def _has_control(text: str) -> bool:
    # C0, DEL and C1 controls: never part of a name (they break logs and protocol lines).
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in text)


def mutf7_encode(text: str) -> str:
    """Modified UTF-7 (RFC 3501 §5.1.3): printable ASCII stands for itself ("&" as "&-"),
    runs of other characters are UTF-16BE in modified BASE64 ("," for "/", no padding)
    between "&" and "-"."""
    out: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            data = "".join(run).encode("utf-16-be")
            b64 = base64.b64encode(data).decode("ascii").rstrip("=").replace("/", ",")
            out.append(f"&{b64}-")
            run.clear()

    for ch in text:
        if _is_printable_ascii(ch):
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def mutf7_decode(text: str) -> str:
    """The inverse of `mutf7_encode`; raises `InvalidName` unless `text` is the canonical
    encoding of its result (RFC 3501 §5.1.3: no shifting into BASE64 for printable ASCII,
    "&" only as "&-"), so one folder has exactly one directory name."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "&":
            end = text.find("-", i + 1)
            if end < 0:
                raise InvalidName("unterminated modified UTF-7 shift")
            chunk = text[i + 1 : end]
            if not chunk:
                out.append("&")
            else:
                if not set(chunk) <= _B64_ALPHABET or len(chunk) % 4 == 1:
                    raise InvalidName("bad modified BASE64")
                padded = chunk.replace(",", "/") + "=" * (-len(chunk) % 4)
                try:
                    raw = base64.b64decode(padded, validate=True)
                    out.append(raw.decode("utf-16-be"))
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise InvalidName("bad modified UTF-7") from exc
            i = end + 1
        elif _is_printable_ascii(ch):
            out.append(ch)
            i += 1
        else:
            raise InvalidName("non-ASCII character in modified UTF-7")
    decoded = "".join(out)
    if mutf7_encode(decoded) != text:
        raise InvalidName("not the canonical modified UTF-7 form")
    return decoded


def canonical_folder(name: str) -> str:
    """The validated, canonical form of an API folder name ("inbox.x" → "INBOX.x").

    Raises `InvalidName` for anything that could leave the root or is not one clean
    Maildir++ directory name.
    """
    if not isinstance(name, str) or not name:
        raise InvalidName("empty folder name")
    if "/" in name or "\0" in name or _has_control(name):
        raise InvalidName("folder name with '/', NUL or a control character")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidName("folder name is not valid unicode") from exc
    parts = name.split(SEPARATOR)
    # An empty component covers a leading or trailing "." and "..": names like "..",
    # ".hidden", "a..b", "a." are all refused here.
    if any(part == "" for part in parts):
        raise InvalidName("empty hierarchy component in folder name")
    if parts[0].upper() == INBOX:
        parts[0] = INBOX  # RFC 9051 §5.1: INBOX is case-insensitive
    canonical = SEPARATOR.join(parts)
    if canonical != INBOX and len(folder_dirname(canonical).encode("ascii")) > MAX_NAME_BYTES:
        raise InvalidName("folder name too long")
    return canonical


def folder_dirname(canonical: str) -> str:
    """The Maildir++ directory of a (canonical, non-INBOX) folder: "." + modified UTF-7."""
    return SEPARATOR + mutf7_encode(canonical)


def folder_from_dirname(dirname: str) -> str | None:
    """The folder a root entry stands for, or None when the entry is not a folder we serve
    (cur/new/tmp, our own temporary "..pymta-*" entries, ".INBOX", non-canonical names)."""
    if not dirname.startswith(SEPARATOR) or dirname in (".", ".."):
        return None
    try:
        name = mutf7_decode(dirname[1:])
        canonical = canonical_folder(name)
    except InvalidName:
        return None
    if canonical != name or canonical == INBOX:
        return None
    return canonical


def check_component(value: object, what: str) -> str:
    """Validate one path component of a mailbox root (user, domain, public mailbox name)."""
    if not isinstance(value, str) or not value:
        raise InvalidName(f"empty {what}")
    if "/" in value or "\0" in value or "\\" in value or _has_control(value):
        raise InvalidName(f"{what} with '/', '\\', NUL or a control character")
    if value.startswith("."):
        raise InvalidName(f"{what} starting with '.'")
    try:
        if len(value.encode("utf-8")) > MAX_NAME_BYTES:
            raise InvalidName(f"{what} too long")
    except UnicodeEncodeError as exc:
        raise InvalidName(f"{what} is not valid unicode") from exc
    return value

"""What counts as a well-formed name in the config: domains, local parts, users, mailboxes."""

from __future__ import annotations

import re

# RFC 1035 §2.3.4 / RFC 1123 §2.1: labels of letters, digits and inner hyphens, 1–63
# octets each; RFC 5321 §4.5.3.1.2 caps a domain at 255 octets (253 in text form).
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 5322 §3.2.3 dot-atom-text, the local-part form pymta accepts (no quoted strings).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_USER_NAME = re.compile(r"[a-z0-9._-]+")
_PUBLIC_NAME = re.compile(r"[A-Za-z0-9._-]+")


def domain_problem(name: str) -> str | None:
    """Why `name` (already lower-cased) is not a domain name, or None when it is one."""
    if not name.isascii():
        return "not an ASCII domain (expected the xn-- form of an internationalised name)"
    if len(name) > 253:  # RFC 5321 §4.5.3.1.2, less the root's dot and length octets
        return "domain longer than 253 characters"
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "malformed domain (expected labels of letters, digits and inner hyphens)"
    return None


def local_part_problem(local: str) -> str | None:
    """Why `local` is not a local part pymta accepts, or None."""
    if len(local.encode()) > 64:  # RFC 5321 §4.5.3.1.1
        return "local part longer than 64 octets"
    if not _DOT_ATOM.fullmatch(local):
        # RFC 5321 §4.1.2 also allows a Quoted-string local part; no mailbox of ours has one.
        return "malformed local part (expected a dot-atom: letters, digits, !#$%&'*+/=?^_`{|}~-)"
    return None


def user_name_problem(name: str) -> str | None:
    """Why `name` (lower-cased) cannot be a user or group name, or None."""
    expected = "(expected lower-case letters, digits, '.', '_', '-'; at most 64)"
    if len(name) > 64:  # it is a local part: RFC 5321 §4.5.3.1.1
        return f"name longer than 64 characters {expected}"
    if not _USER_NAME.fullmatch(name):
        return f"malformed name {expected}"
    if name.startswith(".") or name.endswith(".") or ".." in name:
        # It names a directory (no hidden files, no "..") and is a dot-atom local part.
        return "a name may not start or end with '.' nor contain '..'"
    return None


def public_name_problem(name: str) -> str | None:
    if not _PUBLIC_NAME.fullmatch(name):
        return "malformed name (expected letters, digits, '.', '_', '-')"
    if name.startswith("."):
        return "a public mailbox name may not start with '.'"
    return None

"""Handlers of the commands about the connection itself: CAPABILITY, NOOP (and CHECK),
LOGOUT, ID, ENABLE, NAMESPACE, IDLE."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import command as c
from .errors import Done

if TYPE_CHECKING:
    from .session import ImapSession

# RFC 5161 §3.1 / RFC 7162 §3.2.3 / RFC 6855 §3 / RFC 9051 §6.3.1: what ENABLE can turn on.
ENABLEABLE = frozenset({"CONDSTORE", "QRESYNC", "IMAP4REV2", "UTF8=ACCEPT"})


async def capability(s: ImapSession, cmd: c.Capability) -> Done | None:
    """RFC 9051 §6.1.1."""
    s.untagged(b"CAPABILITY " + s.capability_text().encode())
    return None


async def noop(s: ImapSession, cmd: c.Noop | c.Check) -> Done | None:
    """RFC 9051 §6.1.2 (and RFC 3501 §6.4.1 CHECK): nothing but the pending updates, which
    the session sends after every command that allows them."""
    return None


async def logout(s: ImapSession, cmd: c.Logout) -> Done | None:
    """RFC 9051 §6.1.3: BYE, then the tagged OK, then the server closes."""
    s.untagged(b"BYE Logging out")
    s.logout()
    return None


async def id_(s: ImapSession, cmd: c.Id) -> Done | None:
    """RFC 2971 §3.1: the server's identity (no version detail beyond ours)."""
    s.untagged(b'ID ("name" "pymta" "version" "%s")' % s.config.version.encode())
    return None


async def enable(s: ImapSession, cmd: c.Enable) -> Done | None:
    """RFC 5161 §3.1: `* ENABLED` lists what this command newly enabled."""
    newly: list[str] = []
    for cap in cmd.capabilities:
        name = cap.upper()
        if name not in ENABLEABLE or name in s.enabled:
            continue
        s.enabled.add(name)
        newly.append(name)
        if name == "QRESYNC" and "CONDSTORE" not in s.enabled:
            s.enabled.add("CONDSTORE")  # RFC 7162 §3.2.3: QRESYNC implies CONDSTORE
        if name in ("CONDSTORE", "QRESYNC"):
            s.enable_condstore()
    s.untagged(b"ENABLED" + b"".join(b" " + n.encode() for n in newly))
    return None


async def namespace(s: ImapSession, cmd: c.Namespace) -> Done | None:
    """RFC 2342 §5 / RFC 9051 §6.3.10: one personal namespace, prefix "" and "." as the
    hierarchy delimiter (Maildir++); no other users' or shared namespaces yet."""
    s.untagged(b'NAMESPACE (("" ".")) NIL NIL')
    return None


async def idle(s: ImapSession, cmd: c.Idle) -> Done | None:
    """RFC 2177 §3: the tagged reply comes after the client's DONE."""
    s.start_idle(cmd.tag)
    return None

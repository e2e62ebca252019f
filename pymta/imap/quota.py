"""QUOTA (RFC 9208): GETQUOTAROOT, GETQUOTA, SETQUOTA.

A user's quota covers the whole mailbox root (every folder), so there is one quota root,
named "" (RFC 9208 §4.1.2 example), holding STORAGE (RFC 9208 §5.1, in units of 1024
octets). The limit comes from the directory (`[mailboxes] default_quota`, per-user
`quota`), read at each request so a SIGHUP reload applies at once; usage from the store's
accounting. A user without a quota has no quota root. Limits are configuration: SETQUOTA
is refused with NOPERM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import command as c
from .errors import Code, Done, Refused

if TYPE_CHECKING:
    from .session import ImapSession

ROOT = ""


async def _quota_line(s: ImapSession, limit: int) -> bytes:
    usage = await s.store.usage(s.user_ref())
    used_kib = (usage.bytes + 1023) // 1024
    return b'QUOTA "" (STORAGE %d %d)' % (used_kib, limit // 1024)


async def getquotaroot(s: ImapSession, cmd: c.GetQuotaRoot) -> Done | None:
    """RFC 9208 §4.1.2: the roots of a mailbox, then each root's QUOTA."""
    info = await s.store.folder_info(s.user_ref(), cmd.mailbox)  # NONEXISTENT if missing
    limit = s.current_mailbox().quota_bytes
    name = s.mailbox_name(info.name)
    if not limit:
        s.untagged(b"QUOTAROOT " + name)
        return None
    s.untagged(b'QUOTAROOT %s ""' % name)
    s.untagged(await _quota_line(s, limit))
    return None


async def getquota(s: ImapSession, cmd: c.GetQuota) -> Done | None:
    """RFC 9208 §4.1.1."""
    limit = s.current_mailbox().quota_bytes
    if cmd.root != ROOT or not limit:
        raise Refused("No such quota root", Code.NONEXISTENT)
    s.untagged(await _quota_line(s, limit))
    return None


async def setquota(s: ImapSession, cmd: c.SetQuota) -> Done | None:
    """RFC 9208 §4.1.3: quotas are set in the server's configuration, not by users."""
    raise Refused("Quotas are set by the administrator", Code.NOPERM)

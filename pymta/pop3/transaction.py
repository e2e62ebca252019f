"""Handlers of the TRANSACTION state and QUIT (RFC 1939 §5, §6, §7).

Message numbers are positions in the snapshot taken at login (`maildrop.Maildrop`); a
number marked by DELE "may NOT refer to a message marked as deleted" (RFC 1939 §5) until
RSET. Reply texts follow RFC 1939's examples.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymta.store import StoreError

from . import grammar
from .errors import Code, Done, Pop3Error
from .grammar import Command
from .maildrop import Maildrop

if TYPE_CHECKING:
    from .session import Pop3Session

log = logging.getLogger(__name__)


def _number(m: Maildrop, text: str) -> int:
    """A message number that exists and is not marked deleted."""
    number = grammar.message_number(text)
    if not m.exists(number):
        raise Pop3Error("No such message")
    if number in m.deleted:
        raise Pop3Error("Message is deleted")
    return number


async def stat(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 STAT: "+OK nn mm", the messages not marked deleted and their octets."""
    m = s.require_maildrop()
    return Done(f"{m.count} {m.size}")


async def list_(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 LIST [msg]: the scan listing "msg octets", of one message or all of
    those not marked deleted."""
    m = s.require_maildrop()
    if cmd.params:
        number = _number(m, cmd.params[0])
        return Done(f"{number} {m.entry(number).size}")
    s.multiline([b"%d %d" % (n, e.size) for n, e in m.numbered() if n not in m.deleted])
    return Done(f"{m.count} messages ({m.size} octets)")


async def uidl(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §7 UIDL [msg]: "msg unique-id" (see `Maildrop.unique_id`)."""
    m = s.require_maildrop()
    if cmd.params:
        number = _number(m, cmd.params[0])
        return Done(f"{number} {m.unique_id(number)}")
    s.multiline(
        [b"%d %s" % (n, m.unique_id(n).encode()) for n, _ in m.numbered() if n not in m.deleted]
    )
    return Done("Unique-ID listing follows")


async def retr(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 RETR msg: "+OK n octets", then the message, dot-stuffed. Marks it for
    \\Seen at UPDATE (Dovecot's default)."""
    m = s.require_maildrop()
    number = _number(m, cmd.params[0])
    transfer = await m.open_message(number, None)
    if transfer is None:
        raise Pop3Error("Message was removed by another session")
    m.retrieved.add(number)
    s.send_message(transfer)
    return Done(f"{m.entry(number).size} octets")


async def top(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §7 TOP msg n: the header, the blank line, n lines of the body (all of it
    when it has fewer). Does not count as retrieving the message."""
    m = s.require_maildrop()
    number = _number(m, cmd.params[0])
    lines = grammar.line_count(cmd.params[1])
    transfer = await m.open_message(number, lines)
    if transfer is None:
        raise Pop3Error("Message was removed by another session")
    s.send_message(transfer)
    return Done("Top of message follows")


async def dele(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 DELE msg: marked now, removed at UPDATE."""
    m = s.require_maildrop()
    number = grammar.message_number(cmd.params[0])
    if not m.exists(number):
        raise Pop3Error("No such message")
    if number in m.deleted:
        raise Pop3Error(f"Message {number} already deleted")
    m.deleted.add(number)
    return Done(f"Message {number} deleted")


async def noop(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 NOOP."""
    return Done("")


async def rset(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §5 RSET: every deletion mark is removed; like Dovecot, the \\Seen marks of
    RETR go too (the session is back where it was at login)."""
    m = s.require_maildrop()
    m.deleted.clear()
    m.retrieved.clear()
    return Done(f"Maildrop has {m.count} messages ({m.size} octets)")


async def quit(s: Pop3Session, cmd: Command) -> Done | None:
    """RFC 1939 §6: QUIT in AUTHORIZATION just ends the session; in TRANSACTION it enters
    UPDATE: the marked messages are removed, the maildrop released, the connection closed
    (after -ERR as well: there is no going back to TRANSACTION)."""
    m = s.maildrop
    if m is None:
        s.end()
        return Done("pymta POP3 server signing off")
    s.enter_update()
    try:
        result = await m.update()
    except (StoreError, OSError) as exc:
        log.warning(
            "pop3 update_failed session=%s user=%s error=%s", s.id, s.user, type(exc).__name__
        )
        raise Pop3Error("Some deleted messages not removed", Code.SYS_TEMP) from exc
    finally:
        s.end()
    s.expunged = result.expunged
    left = f"{result.left} messages left" if result.left else "maildrop empty"
    return Done(f"pymta POP3 server signing off ({left})")

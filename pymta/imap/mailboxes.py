"""Handlers of the folder commands: SELECT/EXAMINE, CLOSE, UNSELECT, CREATE, DELETE, RENAME,
SUBSCRIBE/UNSUBSCRIBE, LIST/LSUB and STATUS.

Names arrive decoded (the parser undid modified UTF-7 / UTF-8) and are validated by the
store (`canonical_folder`): a name that could leave the user's directory is refused there
(`InvalidName` → NO [CANNOT]) before any path is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymta.store import FolderInfo, InvalidName, StoreError
from pymta.store.names import canonical_folder

from . import command as c
from . import messages, wire
from .errors import BadCommand, Code, Done, Refused, refusal_for
from .listing import canonical_pattern, list_entries, lsub_entries
from .selected import SelectedMailbox

if TYPE_CHECKING:
    from .session import ImapSession

# RFC 9051 §2.3.2 system flags, plus $Forwarded (stored as Maildir P, RFC 5788 registry).
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft", "$Forwarded")


# -- SELECT / EXAMINE (RFC 9051 §6.3.2, §6.3.3; RFC 7162 §3.1.8, §3.2.5) -------------------


async def select(s: ImapSession, cmd: c.Select) -> Done | None:
    ref = s.user_ref()
    if s.selected is not None:
        # RFC 9051 §6.3.2 / RFC 7162 §3.2.11: a SELECT closes the current mailbox first,
        # even when it fails; CLOSED marks where the old mailbox's responses end.
        s.deselect()
        s.untagged_ok(Code.CLOSED.value, "Previous mailbox closed")
    if cmd.qresync is not None and not s.qresync:
        raise BadCommand("QRESYNC not enabled")  # RFC 7162 §3.2.5
    if cmd.condstore:
        s.enable_condstore()  # RFC 7162 §3.1.8
    s.watch(ref, cmd.mailbox)  # changes from now on wait for the view
    qresync = cmd.qresync
    try:
        listing = await s.store.listing(
            ref, cmd.mailbox, vanished_since=None if qresync is None else qresync.modseq
        )
    except StoreError as exc:
        s.deselect()
        raise refusal_for(exc) from exc
    view = SelectedMailbox(
        listing.folder,
        readonly=cmd.readonly,
        uidvalidity=listing.uidvalidity,
        uids=listing.uids,
        highestmodseq=listing.highestmodseq,
    )
    s.select(view)
    flags = (*SYSTEM_FLAGS, *(k for k in listing.keywords_in_use if k not in SYSTEM_FLAGS))
    s.untagged(b"FLAGS " + wire.flag_list(flags))
    if cmd.readonly:
        s.untagged_ok("PERMANENTFLAGS ()", "No permanent flags permitted")
    else:
        # RFC 9051 §7.1: \* — the client may create new keywords.
        s.untagged_ok(
            "PERMANENTFLAGS " + wire.flag_list((*flags, "\\*")).decode(), "Flags permitted"
        )
    s.untagged(b"%d EXISTS" % view.count)
    if not s.rev2:
        s.untagged(b"0 RECENT")  # RFC 3501 §6.3.1 (no \Recent is kept: docs/rfc-status.md)
        if listing.first_unseen:
            s.untagged_ok(f"UNSEEN {listing.first_unseen}", "First unseen")
    s.untagged_ok(f"UIDVALIDITY {listing.uidvalidity}", "UIDs valid")
    s.untagged_ok(f"UIDNEXT {listing.uidnext}", "Predicted next UID")
    # RFC 7162 §3.1.2.1: a server with persistent mod-sequences sends HIGHESTMODSEQ on
    # every successful SELECT/EXAMINE.
    s.untagged_ok(f"HIGHESTMODSEQ {listing.highestmodseq}", "Highest")
    if s.rev2:
        # RFC 9051 §6.3.2: the untagged LIST of the selected mailbox (its canonical name).
        s.untagged(b'LIST () "." ' + s.mailbox_name(listing.folder))
    if qresync is not None and qresync.uidvalidity == listing.uidvalidity:
        await messages.qresync_select(s, view, listing, qresync)
    code = "READ-ONLY" if cmd.readonly else "READ-WRITE"
    return Done(code=code)


async def close(s: ImapSession, cmd: c.Close) -> Done | None:
    """RFC 9051 §6.4.1: expunge \\Deleted messages silently (no EXPUNGE responses) unless
    read-only, then leave the selected state."""
    view = s.require_selected()
    if not view.readonly:
        ref = s.user_ref()
        rows = await s.store.fetch_rows(ref, view.folder, None, ("uid", "flags"))
        deleted = [uid for uid, flags in rows if "T" in flags and view.seq_of(uid) is not None]
        s.deselect()  # first: the expunge is never announced to this session
        if deleted:
            await s.store.expunge(ref, view.folder, deleted)
    s.deselect()
    return None


async def unselect(s: ImapSession, cmd: c.Unselect) -> Done | None:
    """RFC 3691 §2 / RFC 9051 §6.4.2: leave the selected state without expunging."""
    s.require_selected()
    s.deselect()
    return None


# -- CREATE / DELETE / RENAME / SUBSCRIBE (RFC 9051 §6.3.4–§6.3.8) -------------------------


async def create(s: ImapSession, cmd: c.Create) -> Done | None:
    # RFC 9051 §6.3.4: a trailing delimiter declares the intent to create names below;
    # in Maildir++ a folder can always have children, so it is dropped.
    name = cmd.mailbox.rstrip(".") if cmd.mailbox not in (".", "") else cmd.mailbox
    if len(cmd.special_use) > 1:
        raise Refused("Only one special-use attribute per mailbox", "USEATTR")  # RFC 6154 §3
    use = cmd.special_use[0] if cmd.special_use else None
    try:
        await s.store.create_folder(s.user_ref(), name, use)
    except StoreError as exc:
        err = refusal_for(exc)
        if use is not None and err.code == Code.CANNOT and _valid_name(name):
            raise Refused("Unsupported special-use attribute", "USEATTR") from exc
        raise err from exc
    return None


def _valid_name(name: str) -> bool:
    try:
        canonical_folder(name)
    except InvalidName:
        return False
    return True


async def delete(s: ImapSession, cmd: c.Delete) -> Done | None:
    await s.store.delete_folder(s.user_ref(), cmd.mailbox)
    return None


async def rename(s: ImapSession, cmd: c.Rename) -> Done | None:
    """RFC 9051 §6.3.6: names below move along; renaming INBOX moves its messages into a
    new folder and leaves INBOX empty (the store does both)."""
    await s.store.rename_folder(s.user_ref(), cmd.old, cmd.new)
    return None


async def subscribe(s: ImapSession, cmd: c.Subscribe) -> Done | None:
    await s.store.set_subscribed(s.user_ref(), cmd.mailbox, cmd.subscribe)
    return None


# -- LIST / LSUB (RFC 9051 §6.3.9, RFC 5258, RFC 5819, RFC 6154) ---------------------------


async def list_(s: ImapSession, cmd: c.List) -> Done | None:
    ref = s.user_ref()
    if not cmd.lsub and len(cmd.patterns) == 1 and cmd.patterns[0] == "" and not cmd.extended:
        # RFC 9051 §6.3.9: an empty pattern asks for the delimiter and the root.
        s.untagged(b'LIST (\\Noselect) "." ""')
        return None
    folders = await s.store.folders(ref)
    patterns = [canonical_pattern(cmd.reference, p) for p in cmd.patterns if p != ""]
    if cmd.lsub:
        for entry in lsub_entries(folders, patterns):
            s.untagged(b'LSUB () "." ' + s.mailbox_name(entry.name))
        return None
    selection = set(cmd.selection)
    returns = set(cmd.return_options)
    entries = list_entries(
        folders,
        patterns,
        subscribed_only="SUBSCRIBED" in selection,
        special_use_only="SPECIAL-USE" in selection,
        recursive_match="RECURSIVEMATCH" in selection,
        show_subscribed="SUBSCRIBED" in returns or "SUBSCRIBED" in selection,
        nonexistent_attr="\\NonExistent" if (cmd.extended or s.rev2) else "\\Noselect",
    )
    for entry in entries:
        line = b"LIST (" + " ".join(entry.attributes).encode() + b') "." '
        line += s.mailbox_name(entry.name)
        if entry.child_subscribed:
            line += b' ("CHILDINFO" ("SUBSCRIBED"))'  # RFC 5258 §3.5
        s.untagged(line)
        if cmd.status is not None and entry.info is not None:
            # RFC 5819 §2: the STATUS of each selectable listed mailbox follows its LIST.
            s.untagged(await _status_line(s, entry.info, cmd.status.items))
    return None


# -- STATUS (RFC 9051 §6.3.11, RFC 8438, RFC 7162 §3.1.6) ----------------------------------

STATUS_ITEMS = frozenset(
    {
        "MESSAGES",
        "UIDNEXT",
        "UIDVALIDITY",
        "UNSEEN",
        "DELETED",
        "SIZE",
        "RECENT",
        "HIGHESTMODSEQ",
        "APPENDLIMIT",
    }
)


async def status(s: ImapSession, cmd: c.Status) -> Done | None:
    unknown = [i for i in cmd.items.items if i not in STATUS_ITEMS]
    if unknown:
        raise BadCommand("Unknown STATUS item")
    info = await s.store.folder_info(s.user_ref(), cmd.mailbox)
    s.untagged(await _status_line(s, info, cmd.items.items))
    if "HIGHESTMODSEQ" in cmd.items.items:
        s.enable_condstore()  # RFC 7162 §3.1: STATUS (HIGHESTMODSEQ) enables CONDSTORE
    return None


async def _status_line(s: ImapSession, info: FolderInfo, items: Sequence[str]) -> bytes:
    values: list[bytes] = []
    for item in items:
        if item == "MESSAGES":
            value = info.messages
        elif item == "UIDNEXT":
            value = info.uidnext
        elif item == "UIDVALIDITY":
            value = info.uidvalidity
        elif item == "UNSEEN":
            value = info.unseen
        elif item == "SIZE":
            value = info.size
        elif item == "HIGHESTMODSEQ":
            value = info.highestmodseq
        elif item == "APPENDLIMIT":
            value = s.config.limits.max_message_bytes  # RFC 7889 §3
        elif item == "DELETED":
            value = info.deleted
        elif item == "RECENT":
            value = 0  # no \Recent is kept (RFC 9051 removed it)
        else:
            continue
        values.append(b"%s %d" % (item.encode(), value))
    return b"STATUS " + s.mailbox_name(info.name) + b" (" + b" ".join(values) + b")"

"""Handlers of the message commands: FETCH, STORE, EXPUNGE, COPY/MOVE, APPEND (and the
FETCH responses that announce flag changes, and QRESYNC's part of SELECT).

Message data comes from the store's index (metas, cached wire forms); only BODY[...] and
friends read files, and those run off the event loop (`asyncio.to_thread`). Responses for
many messages are handed to the adapter in slices (`ImapSession.flush`) so a FETCH of a
whole folder's bodies never sits in memory at once.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pymta.store import AppendItem, Change, Listing, MessageMeta, StoreError, split_flags

from . import command as c
from . import wire
from .errors import BadCommand, Code, Done, Refused, refusal_for
from .fetch import FetchPlan, FetchRenderer, Summary, WireForms
from .selected import SelectedMailbox

if TYPE_CHECKING:
    from .session import ImapSession

# Messages rendered per slice when their bodies are read (a thread hop per slice).
BODY_SLICE = 64
MODSEQ_ITEM = c.FetchItem(c.FetchAttr.MODSEQ)
FLAGS_ITEM = c.FetchItem(c.FetchAttr.FLAGS)
UID_ITEM = c.FetchItem(c.FetchAttr.UID)


# -- reading the folder ---------------------------------------------------------------


META_COLUMNS = ("uid", "flags", "keywords", "modseq", "internal_date", "size", "file")
WIRE_COLUMNS = ("envelope", "body", "bodystructure")


async def metas_for(
    s: ImapSession, view: SelectedMailbox, uids: Sequence[int] | None
) -> list[MessageMeta]:
    """The index's metadata of those of `uids` (None: all) that still exist, ascending UID."""
    if uids is not None and not uids:
        return []
    ref = s.user_ref()
    rows = await s.store.fetch_rows(ref, view.folder, uids, META_COLUMNS)
    directory = s.store.folder_path(ref, view.folder)
    return [
        MessageMeta(uid, flags, tuple(kws.split()) if kws else (), modseq, date, size, directory, f)
        for uid, flags, kws, modseq, date, size, f in rows
    ]


async def wire_forms(
    s: ImapSession, view: SelectedMailbox, metas: Sequence[MessageMeta]
) -> list[Summary]:
    """The cached ENVELOPE / BODY / BODYSTRUCTURE bytes, aligned with `metas`."""
    rows = await s.store.fetch_rows(
        s.user_ref(), view.folder, [m.uid for m in metas], ("uid", *WIRE_COLUMNS)
    )
    by_uid = {r[0]: WireForms(r[1], r[2], r[3]) for r in rows}
    return [by_uid.get(m.uid) for m in metas]


def read_message_file(meta: MessageMeta) -> bytes:
    """The renderer's reader (runs in a worker thread). A flag change renames the file
    (only the ":2,<flags>" info part changes), so a name that vanished is looked up again
    by its unique base."""
    try:
        return meta.path.read_bytes()
    except FileNotFoundError:
        base = meta.filename.split("/", 1)[-1].split(":2,", 1)[0]
        for sub in ("cur", "new"):
            try:
                names = os.listdir(meta.directory / sub)
            except FileNotFoundError:
                continue
            for name in names:
                if name == base or name.startswith(base + ":2,"):
                    return (meta.directory / sub / name).read_bytes()
        raise


def renderer(s: ImapSession) -> FetchRenderer:
    return s.fetch_renderer(lambda: FetchRenderer(reader=read_message_file))


# -- FETCH (RFC 9051 §6.4.5; RFC 7162 §3.1.4, §3.2.6) ---------------------------------


async def fetch(s: ImapSession, cmd: c.Fetch) -> Done | None:
    view = s.require_selected()
    pairs = view.resolve(cmd.set, uid=cmd.uid, saved=s.saved_search)
    items = list(cmd.items)
    # RFC 7162 §3.2.6: VANISHED only with UID FETCH, CHANGEDSINCE and QRESYNC enabled.
    if cmd.vanished and (not cmd.uid or cmd.changed_since is None or not s.qresync):
        raise BadCommand("VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC")
    has_modseq = any(i.attr is c.FetchAttr.MODSEQ for i in items)
    if cmd.changed_since is not None or has_modseq:
        s.enable_condstore()  # RFC 7162 §3.1: CONDSTORE-enabling
    # RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ; once CONDSTORE is on, FETCH
    # responses carrying FLAGS carry MODSEQ too (§3.1).
    wants_flags = any(i.attr is c.FetchAttr.FLAGS for i in items)
    if not has_modseq and (cmd.changed_since is not None or (s.condstore and wants_flags)):
        items.append(MODSEQ_ITEM)
    if cmd.vanished and cmd.changed_since is not None:
        await _vanished_earlier(s, view, cmd)
    metas = await metas_for(s, view, [u for _, u in pairs])
    if cmd.changed_since is not None:
        metas = [m for m in metas if m.modseq > cmd.changed_since]
    gone = len(metas) < len(pairs) and cmd.changed_since is None
    r = renderer(s)
    plan = r.plan(items, uid=cmd.uid)
    if plan.sets_seen and not view.readonly:
        metas, changed = await _set_seen(s, view, metas)
        if changed:
            # RFC 9051 §6.4.5: the changed flags SHOULD be part of the FETCH responses
            # (with MODSEQ once CONDSTORE is on, RFC 7162 §3.1).
            plan = _with_flags(plan, r, modseq=s.condstore)
    summaries = await _summaries(s, view, plan, metas)
    shows_flags = any(i.attr is c.FetchAttr.FLAGS for i in plan.items)
    step = BODY_SLICE if plan.needs_raw else max(len(metas), 1)
    for start in range(0, len(metas), step):
        chunk = metas[start : start + step]
        seqs = [view.seq_of(m.uid) or 0 for m in chunk]
        sums = None if summaries is None else summaries[start : start + step]
        if plan.needs_raw:
            data = await asyncio.to_thread(r.responses, plan, seqs, chunk, sums)
        else:
            data = r.responses(plan, seqs, chunk, sums)
        s.raw_output(data)
        if shows_flags:
            for m in chunk:
                view.shown(m.uid, m.modseq)
        await s.flush()
    if gone and not cmd.uid:
        # RFC 2180 §4.1.2 / RFC 5530 §3: some messages were expunged by another session
        # and the client has not been told yet.
        raise Refused("Some messages were expunged meanwhile", Code.EXPUNGEISSUED)
    return None


def _with_flags(plan: FetchPlan, r: FetchRenderer, *, modseq: bool) -> FetchPlan:
    items = list(plan.items)
    if not any(i.attr is c.FetchAttr.FLAGS for i in items):
        items.append(FLAGS_ITEM)
    if modseq and not any(i.attr is c.FetchAttr.MODSEQ for i in items):
        items.append(MODSEQ_ITEM)
    return r.plan(items)


async def _set_seen(
    s: ImapSession, view: SelectedMailbox, metas: list[MessageMeta]
) -> tuple[list[MessageMeta], bool]:
    """RFC 9051 §6.4.5: BODY[...] without PEEK (and RFC822, RFC822.TEXT) sets \\Seen."""
    unseen = [m.uid for m in metas if "S" not in m.flags]
    if not unseen:
        return metas, False
    result = await s.store.set_flags(s.user_ref(), view.folder, unseen, add=("\\Seen",))
    by_uid = {m.uid: m for m in result.updated}
    return [by_uid.get(m.uid, m) for m in metas], True


async def _summaries(
    s: ImapSession, view: SelectedMailbox, plan: FetchPlan, metas: list[MessageMeta]
) -> list[Summary] | None:
    if not plan.needs_summary or not metas:
        return None
    return await wire_forms(s, view, metas)


async def _vanished_earlier(s: ImapSession, view: SelectedMailbox, cmd: c.Fetch) -> None:
    """RFC 7162 §3.2.6: UIDs of the set expunged since CHANGEDSINCE, as VANISHED (EARLIER),
    before the FETCH responses."""
    assert cmd.changed_since is not None
    _, gone = await s.store.changes_since(s.user_ref(), view.folder, cmd.changed_since)
    wanted = _uid_filter(cmd.set.ranges, view.last_uid)
    uids = sorted(u for u in gone if wanted(u))
    if uids:
        s.untagged(b"VANISHED (EARLIER) " + wire.sequence_set(uids))


def _uid_filter(ranges: Sequence[c.SeqRange] | None, star: int) -> Callable[[int], bool]:
    if ranges is None:
        return lambda u: True
    spans = _spans(ranges, star)
    return lambda u: any(lo <= u <= hi for lo, hi in spans)


async def announce_flags(
    s: ImapSession, view: SelectedMailbox, changes: list[tuple[int, int]]
) -> None:
    """Unsolicited FETCH of other sessions' flag changes: FLAGS with UID (RFC 9051 §7.5.2
    requires UID for rev2), MODSEQ when CONDSTORE is on (RFC 7162 §3.1)."""
    metas = await metas_for(s, view, [u for _, u in changes])
    if not metas:
        return
    items = [UID_ITEM, FLAGS_ITEM] + ([MODSEQ_ITEM] if s.condstore else [])
    r = renderer(s)
    plan = r.plan(items)
    seqs = [view.seq_of(m.uid) or 0 for m in metas]
    s.raw_output(r.responses(plan, seqs, metas))


async def qresync_select(
    s: ImapSession, view: SelectedMailbox, listing: Listing, params: c.QresyncParams
) -> None:
    """RFC 7162 §3.2.5: after SELECT (QRESYNC (...)) with a matching UIDVALIDITY, what
    changed since the client's modseq: VANISHED (EARLIER) for expunged UIDs it knows, then
    FETCH (UID FLAGS MODSEQ) of the messages changed since."""
    known = None if params.known_uids is None else params.known_uids.ranges
    if listing.vanished is not None:
        keep = _uid_filter(known, view.last_uid)
        gone = sorted(u for u in listing.vanished if keep(u))
        data = wire.sequence_set(gone) if gone else b""
    else:
        # The tombstones do not reach back that far: every UID the client may know that
        # is not in the folder (RFC 7162 §3.2.5.2).
        data = _missing_uids(listing.uids, known, listing.uidnext - 1)
    if data:
        s.untagged(b"VANISHED (EARLIER) " + data)
    changed = [u for u, m in zip(listing.uids, listing.modseqs, strict=True) if m > params.modseq]
    metas = await metas_for(s, view, changed)
    if metas:
        r = renderer(s)
        plan = r.plan([UID_ITEM, FLAGS_ITEM, MODSEQ_ITEM])
        s.raw_output(r.responses(plan, [view.seq_of(m.uid) or 0 for m in metas], metas))


def _missing_uids(existing: Sequence[int], known: Sequence[c.SeqRange] | None, top: int) -> bytes:
    """The parts of `known` (None: 1:top) without a message in `existing` (ascending),
    as a sequence set, computed from the gaps so "1:4294967295" costs nothing."""
    spans = [(1, top)] if known is None else _spans(known, top)
    parts: list[bytes] = []
    for lo, hi in spans:
        cur = lo
        i = bisect.bisect_left(existing, lo)
        while cur <= hi:
            nxt = existing[i] if i < len(existing) else hi + 1
            if nxt > hi:
                nxt = hi + 1
            if nxt > cur:
                parts.append(b"%d" % cur if nxt - 1 == cur else b"%d:%d" % (cur, nxt - 1))
            cur = nxt + 1
            i += 1
    return b",".join(parts)


def _spans(ranges: Sequence[c.SeqRange], star: int) -> list[tuple[int, int]]:
    out = []
    for r in ranges:
        first = star if r.first is None else r.first
        last = star if r.last is None else r.last
        out.append((max(1, min(first, last)), max(first, last)))
    return out


# -- STORE (RFC 9051 §6.4.6; RFC 7162 §3.1.3) -----------------------------------------


async def store(s: ImapSession, cmd: c.Store) -> Done | None:
    view = s.require_writable()
    pairs = view.resolve(cmd.set, uid=cmd.uid, saved=s.saved_search)
    if cmd.unchanged_since is not None:
        s.enable_condstore()
    names = [f for f in cmd.flags if f.lower() != "\\recent"]  # \Recent: ignored (rev1)
    try:
        split_flags(names)
    except StoreError as exc:
        raise refusal_for(exc) from exc
    uids = [u for _, u in pairs]
    updated: list[MessageMeta] = []
    failed: list[int] = []
    if uids:
        ref = s.user_ref()
        mode = cmd.mode
        result = await s.store.set_flags(
            ref,
            view.folder,
            uids,
            add=names if mode is c.StoreMode.ADD else (),
            remove=names if mode is c.StoreMode.REMOVE else (),
            replace=names if mode is c.StoreMode.REPLACE else None,
            unchanged_since=cmd.unchanged_since,  # RFC 7162 §3.1.3
        )
        updated, failed = result.updated, result.failed
    for m in updated:
        view.shown(m.uid, m.modseq)
    if not cmd.silent or cmd.unchanged_since is not None:
        items: list[c.FetchItem] = []
        if not cmd.silent:
            items.append(FLAGS_ITEM)
        if cmd.uid or s.condstore:
            items.insert(0, UID_ITEM)  # RFC 9051 §6.4.9 / RFC 7162 §3.1
        if s.condstore:
            items.append(MODSEQ_ITEM)
        if items:
            r = renderer(s)
            plan = r.plan(items)
            seqs = [view.seq_of(m.uid) or 0 for m in updated]
            s.raw_output(r.responses(plan, seqs, updated))
    if failed:
        # RFC 7162 §3.1.3: MODIFIED lists sequence numbers (STORE) or UIDs (UID STORE).
        ids = failed if cmd.uid else [view.seq_of(u) or 0 for u in failed]
        return Done("Conditional STORE failed", "MODIFIED " + wire.sequence_set(ids).decode())
    return None


# -- EXPUNGE (RFC 9051 §6.4.3; UID EXPUNGE RFC 4315 §2.1) -----------------------------


async def expunge(s: ImapSession, cmd: c.Expunge) -> Done | None:
    view = s.require_writable()
    ref = s.user_ref()
    rows = await s.store.fetch_rows(ref, view.folder, None, ("uid", "flags"))
    if cmd.uids is not None:
        allowed = {u for _, u in view.resolve(cmd.uids, uid=True, saved=s.saved_search)}
    else:
        allowed = None
    doomed = [
        uid
        for uid, flags in rows
        if "T" in flags and view.seq_of(uid) is not None and (allowed is None or uid in allowed)
    ]
    if doomed:
        removed = await s.store.expunge(ref, view.folder, doomed)
        # The store's notification says the same; applying it here too makes the
        # EXPUNGE responses of this command certain (apply is idempotent).
        view.apply(Change(view.folder, "expunge", tuple(removed)))
    return None


# -- COPY / MOVE (RFC 9051 §6.4.7, §6.4.8; RFC 6851; COPYUID RFC 4315 §3) -------------


async def copy(s: ImapSession, cmd: c.Copy) -> Done | None:
    view = s.require_writable() if cmd.move else s.require_selected()
    pairs = view.resolve(cmd.set, uid=cmd.uid, saved=s.saved_search)
    ref = s.user_ref()
    try:
        target = await s.store.folder_info(ref, cmd.mailbox)
    except StoreError as exc:
        # RFC 9051 §6.4.7: a missing target is NO [TRYCREATE].
        raise refusal_for(exc, missing=Code.TRYCREATE) from exc
    uids = [u for _, u in pairs]
    quota = s.current_mailbox().quota_bytes or None
    operation = s.store.move if cmd.move else s.store.copy
    try:
        result = await operation(ref, view.folder, uids, ref, target.name, quota_bytes=quota)
    except StoreError as exc:
        raise refusal_for(exc, missing=Code.TRYCREATE) from exc
    if cmd.move and result.pairs:
        # The store's notification says the same; applying it here makes this command's
        # EXPUNGE responses certain (apply is idempotent).
        view.apply(Change(view.folder, "expunge", tuple(src for src, _ in result.pairs)))
    if not result.pairs:
        if pairs and not cmd.uid:
            raise Refused("Some messages were expunged meanwhile", Code.EXPUNGEISSUED)
        return None
    sources = wire.sequence_set([a for a, _ in result.pairs], ordered=False).decode()
    targets = wire.sequence_set([b for _, b in result.pairs], ordered=False).decode()
    code = f"COPYUID {result.uidvalidity} {sources} {targets}"
    if not cmd.move:
        return Done(code=code)
    # RFC 6851 §4.3: COPYUID goes in an untagged OK before the EXPUNGEs (sent by the
    # session after this handler), then the tagged OK.
    s.untagged_ok(code, "Moved")
    return None


# -- APPEND (RFC 9051 §6.3.12; MULTIAPPEND RFC 3502; APPENDUID RFC 4315 §3) ------------


async def append(s: ImapSession, cmd: c.Append) -> Done | None:
    ref = s.user_ref()
    quota = s.current_mailbox().quota_bytes or None
    try:
        info = await s.store.folder_info(ref, cmd.mailbox)
    except StoreError as exc:
        raise refusal_for(exc, missing=Code.TRYCREATE) from exc
    limit = s.config.limits.max_message_bytes
    items: list[AppendItem] = []
    for msg in cmd.messages:
        if len(msg.message) > limit:
            raise Refused("Message too large", Code.TOOBIG)  # RFC 7889 §4
        if not msg.message:
            raise BadCommand("Empty message")
        names = [f for f in msg.flags if f.lower() != "\\recent"]
        items.append(AppendItem(msg.message, names, _timestamp(msg.internal_date)))
    try:
        # RFC 3502 §6.3.11: all messages or none.
        delivered = await s.store.append_many(ref, info.name, items, quota_bytes=quota)
    except StoreError as exc:
        raise refusal_for(exc, missing=Code.TRYCREATE) from exc
    uidvalidity = delivered[0].uidvalidity if delivered else info.uidvalidity
    uids = [d.uid for d in delivered]
    return Done(code=f"APPENDUID {uidvalidity} {wire.sequence_set(uids).decode()}")


def _timestamp(when: datetime.datetime | None) -> float | None:
    return None if when is None else when.timestamp()

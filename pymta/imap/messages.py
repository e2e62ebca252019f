"""Handlers of the message commands: FETCH, STORE, EXPUNGE, COPY/MOVE, APPEND (and the
FETCH responses that announce flag changes, and QRESYNC's part of SELECT).

Message data comes from the store's index in one query per command: plain rows holding
just the columns the FETCH plan renders (flags, cached wire forms, ...), rendered without
an object per message; only BODY[...] and friends read files, and those run off the event
loop (`asyncio.to_thread`). Responses for many messages are handed to the adapter in
slices (`ImapSession.flush`) so a FETCH of a whole folder's bodies never sits in memory at
once.
"""

from __future__ import annotations

import asyncio
import bisect
import datetime
import os
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING

from pymta.store import AppendItem, Change, Listing, MessageMeta, StoreError, split_flags

from . import command as c
from . import wire
from .errors import BadCommand, Code, Done, Refused, refusal_for
from .fetch import FetchPlan, FetchRenderer, Row
from .selected import SelectedMailbox

if TYPE_CHECKING:
    from .session import ImapSession

# Messages rendered per slice when their bodies are read (a thread hop per slice).
BODY_SLICE = 64
# Messages rendered per slice from the index alone: the first slices are on their way to
# the client (in its own process) while the rest renders; one big write measured slower.
RENDER_SLICE = 1024
MODSEQ_ITEM = c.FetchItem(c.FetchAttr.MODSEQ)
FLAGS_ITEM = c.FetchItem(c.FetchAttr.FLAGS)
UID_ITEM = c.FetchItem(c.FetchAttr.UID)


# -- reading the folder ---------------------------------------------------------------


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


async def plan_rows(
    s: ImapSession,
    view: SelectedMailbox,
    plan: FetchPlan,
    uids: Sequence[int],
    extra: tuple[str, ...] = (),
) -> tuple[FetchPlan, list[Row]]:
    """The index rows of those of `uids` that still exist, laid out as `plan.columns`
    then `extra`, in one query. A message without its cached wire forms (its file
    vanished, or could not be parsed) is parsed from its file, which needs the file
    columns: then the plan comes back as `plan.with_files()`, with rows to match."""
    rows = await view_rows(s, view, uids, plan.columns + extra)
    if plan.missing_summaries(rows) and not plan.full:
        plan = plan.with_files()
        rows = await view_rows(s, view, uids, plan.columns + extra)
    return plan, rows


async def view_rows(
    s: ImapSession, view: SelectedMailbox, uids: Sequence[int], columns: tuple[str, ...]
) -> list[Row]:
    """`Store.fetch_rows` of those of `uids` (ascending, of the view) that still exist.
    All the view's messages are read as one UID range, without the new ones the client
    has not been told of."""
    if not uids:
        return []
    whole = len(uids) == view.count
    rows = await s.store.fetch_rows(s.user_ref(), view.folder, None if whole else uids, columns)
    if whole and rows and rows[-1][0] > view.last_uid:
        rows = rows[: bisect.bisect_right(rows, view.last_uid, key=itemgetter(0))]
    if len(rows) > len(uids):
        # UIDs the view does not know below its last one: none in practice (UIDs are
        # given out in increasing order), and never to be answered with a number.
        known = set(uids)
        rows = [row for row in rows if row[0] in known]
    return rows


def send_rows(s: ImapSession, view: SelectedMailbox, plan: FetchPlan, rows: Sequence[Row]) -> None:
    """FETCH responses for rows without message reads (flags, cached forms)."""
    if rows:
        seqs = view.seqs_for([row[0] for row in rows])
        directory = s.store.folder_path(s.user_ref(), view.folder)
        s.raw_output(plan.renderer.rows_responses(plan, seqs, rows, directory))


# -- FETCH (RFC 9051 §6.4.5; RFC 7162 §3.1.4, §3.2.6) ---------------------------------


async def fetch(s: ImapSession, cmd: c.Fetch) -> Done | None:
    view = s.require_selected()
    uids = view.resolve_uids(cmd.set, uid=cmd.uid, saved=s.saved_search)
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
    r = renderer(s)
    plan = r.plan(items, uid=cmd.uid)
    setting_seen = plan.sets_seen and not view.readonly
    extra = _extra_columns(plan, view, seen=setting_seen)
    plan, rows = await plan_rows(s, view, plan, uids, extra)
    if cmd.changed_since is not None:
        since, at = cmd.changed_since, plan.columns.index("modseq")
        rows = [row for row in rows if row[at] > since]
    gone = len(rows) < len(uids) and cmd.changed_since is None
    if setting_seen and rows:
        at = len(plan.columns) + extra.index("flags")
        unseen = [row[0] for row in rows if "S" not in row[at]]
        if unseen:
            # RFC 9051 §6.4.5: BODY[...] without PEEK (and RFC822, RFC822.TEXT) sets
            # \Seen; the changed flags SHOULD be part of the FETCH responses (with MODSEQ
            # once CONDSTORE is on, RFC 7162 §3.1).
            await s.store.set_flags(s.user_ref(), view.folder, unseen, add=("\\Seen",))
            plan = _with_flags(plan, r, modseq=s.condstore)
            extra = _extra_columns(plan, view, seen=False)
            plan, rows = await plan_rows(s, view, plan, [row[0] for row in rows], extra)
    await _send_fetch(s, view, plan, rows, plan.columns + extra)
    if gone and not cmd.uid:
        # RFC 2180 §4.1.2 / RFC 5530 §3: some messages were expunged by another session
        # and the client has not been told yet.
        raise Refused("Some messages were expunged meanwhile", Code.EXPUNGEISSUED)
    return None


def _extra_columns(plan: FetchPlan, view: SelectedMailbox, *, seen: bool) -> tuple[str, ...]:
    """Columns beyond the plan's: "flags" to find the messages \\Seen must be set on,
    "modseq" to clear the pending flag changes the responses show (`_send_fetch`)."""
    extra: list[str] = []
    if seen:
        extra.append("flags")
    shows_flags = any(i.attr is c.FetchAttr.FLAGS for i in plan.items)
    if shows_flags and view.has_pending_flags and "modseq" not in plan.columns:
        extra.append("modseq")
    return tuple(extra)


async def _send_fetch(
    s: ImapSession,
    view: SelectedMailbox,
    plan: FetchPlan,
    rows: list[Row],
    columns: tuple[str, ...],
) -> None:
    """The FETCH responses, handed to the adapter slice by slice as they are rendered
    (message files are read off the event loop, `BODY_SLICE` messages per thread hop)."""
    r = plan.renderer
    seqs = view.seqs_for([row[0] for row in rows])
    directory = s.store.folder_path(s.user_ref(), view.folder)
    shows_flags = any(i.attr is c.FetchAttr.FLAGS for i in plan.items)
    modseq_at = columns.index("modseq") if "modseq" in columns else None
    step = BODY_SLICE if plan.needs_raw else RENDER_SLICE
    for start in range(0, len(rows), step):
        chunk, chunk_seqs = rows[start : start + step], seqs[start : start + step]
        if plan.needs_raw:
            data = await asyncio.to_thread(r.rows_responses, plan, chunk_seqs, chunk, directory)
        else:
            data = r.rows_responses(plan, chunk_seqs, chunk, directory)
        s.raw_output(data)
        if shows_flags and modseq_at is not None:
            view.shown_many([row[0] for row in chunk], [row[modseq_at] for row in chunk])
        await s.flush()


def _with_flags(plan: FetchPlan, r: FetchRenderer, *, modseq: bool) -> FetchPlan:
    items = list(plan.items)
    if not any(i.attr is c.FetchAttr.FLAGS for i in items):
        items.append(FLAGS_ITEM)
    if modseq and not any(i.attr is c.FetchAttr.MODSEQ for i in items):
        items.append(MODSEQ_ITEM)
    return r.plan(items, full=plan.full)


async def _vanished_earlier(s: ImapSession, view: SelectedMailbox, cmd: c.Fetch) -> None:
    """RFC 7162 §3.2.6: UIDs of the set expunged since CHANGEDSINCE, as VANISHED (EARLIER),
    before the FETCH responses."""
    assert cmd.changed_since is not None
    ref = s.user_ref()
    gone = await s.store.vanished_since(ref, view.folder, cmd.changed_since)
    ranges = None if cmd.set.saved else cmd.set.ranges
    if gone is not None:
        if cmd.set.saved:
            saved = frozenset(s.saved_search or ())  # RFC 5182 §2.1: "$" is UIDs
            wanted: Callable[[int], bool] = saved.__contains__
        else:
            # "*" here is the last UID given out, not the last one left: "1:*" must also
            # report the newest messages when they were the ones expunged.
            info = await s.store.folder_info(ref, view.folder)
            wanted = _uid_filter(ranges, max(view.last_uid, info.uidnext - 1))
        matched = [u for u in gone if wanted(u)]
        data = wire.sequence_set(matched) if matched else b""
    else:
        # RFC 7162 §3.2.6: below the oldest expunge remembered, "behave as if it was
        # requested to report all expunged messages from the provided UID set": every UID
        # of the set, up to the last one given out, that is not in the folder.
        info = await s.store.folder_info(ref, view.folder)
        rows = await s.store.fetch_rows(ref, view.folder, None, ("uid",))
        existing = [row[0] for row in rows]
        top = info.uidnext - 1
        data = _missing_uids(existing, ranges, top, star=view.last_uid or top)
    if data:
        s.untagged(b"VANISHED (EARLIER) " + data)


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
    items = [UID_ITEM, FLAGS_ITEM] + ([MODSEQ_ITEM] if s.condstore else [])
    plan, rows = await plan_rows(s, view, renderer(s).plan(items), [u for _, u in changes])
    send_rows(s, view, plan, rows)


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
        top = listing.uidnext - 1
        data = _missing_uids(listing.uids, known, top, star=top)
    if data:
        s.untagged(b"VANISHED (EARLIER) " + data)
    changed = [u for u, m in zip(listing.uids, listing.modseqs, strict=True) if m > params.modseq]
    plan = renderer(s).plan([UID_ITEM, FLAGS_ITEM, MODSEQ_ITEM])
    plan, rows = await plan_rows(s, view, plan, changed)
    send_rows(s, view, plan, rows)


def _missing_uids(
    existing: Sequence[int], known: Sequence[c.SeqRange] | None, top: int, *, star: int
) -> bytes:
    """The parts of `known` (None: 1:top; "*" is `star`), up to `top`, without a message
    in `existing` (ascending), as a sequence set, computed from the gaps so
    "1:4294967295" costs nothing."""
    spans = [(1, top)] if known is None else _spans(known, star)
    parts: list[bytes] = []
    done = 0  # the highest UID looked at (overlapping ranges are looked at once)
    for lo, hi in sorted(spans):
        hi = min(hi, top)
        cur = max(lo, done + 1)
        done = max(done, hi)
        i = bisect.bisect_left(existing, cur)
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
    uids = view.resolve_uids(cmd.set, uid=cmd.uid, saved=s.saved_search)
    if cmd.unchanged_since is not None:
        s.enable_condstore()
    names = [f for f in cmd.flags if f.lower() != "\\recent"]  # \Recent: ignored (rev1)
    try:
        split_flags(names)
    except StoreError as exc:
        raise refusal_for(exc) from exc
    updated: list[MessageMeta] = []
    failed: list[int] = []
    if uids:
        mode = cmd.mode
        result = await s.store.set_flags(
            s.user_ref(),
            view.folder,
            uids,
            add=names if mode is c.StoreMode.ADD else (),
            remove=names if mode is c.StoreMode.REMOVE else (),
            replace=names if mode is c.StoreMode.REPLACE else None,
            unchanged_since=cmd.unchanged_since,  # RFC 7162 §3.1.3
        )
        updated, failed = result.updated, result.failed
    # Our own change, shown by these responses (or by nothing, for .SILENT: the client
    # knows what it asked for), is no news to announce.
    if view.has_pending_flags:
        view.shown_many([m.uid for m in updated], [m.modseq for m in updated])
    if not cmd.silent or cmd.unchanged_since is not None:
        items: list[c.FetchItem] = []
        if not cmd.silent:
            items.append(FLAGS_ITEM)
        if cmd.uid or s.condstore:
            items.insert(0, UID_ITEM)  # RFC 9051 §6.4.9 / RFC 7162 §3.1
        if s.condstore:
            items.append(MODSEQ_ITEM)
        if items and updated:
            r = renderer(s)
            seqs = view.seqs_for([m.uid for m in updated])
            s.raw_output(r.responses(r.plan(items), seqs, updated))
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

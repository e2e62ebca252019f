"""Comparing a folder's Maildir with its index rows: what appeared, vanished, was renamed.

Pure: it takes the directory listings and the known rows and returns a plan; the caller
does the renames and the index transaction.

UID rules (RFC 9051 §2.3.1.1: a UID is never reused within a UIDVALIDITY):
- a known message (same base) keeps its UID; another name for the same base is a flag
  change or a move new/ → cur/ by some other Maildir tool;
- an unknown file may keep the UID in its U= field only if no other file claims it and it
  was never handed out: at or above `uidnext` for a rescan, anything for a rebuild (there
  `uidnext` is already above every UID that may have been handed out: the largest U= and
  the `pymta-uidnext` high-water mark);
- every other unknown file gets the next UID, in name order (delivery order for Maildir
  names), and must be renamed so that its U= says so.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .index import MessageRow
from .maildir import MaildirName

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiskFile:
    subdir: str  # "new" or "cur"
    filename: str
    name: MaildirName


@dataclass(frozen=True)
class Added:
    uid: int
    file: DiskFile
    name: MaildirName  # the name it must carry (its U= says `uid`)

    @property
    def final_filename(self) -> str:
        return self.name.filename()

    @property
    def needs_rename(self) -> bool:
        return self.final_filename != self.file.filename


@dataclass
class ScanPlan:
    added: list[Added] = field(default_factory=list)
    moved: list[tuple[MessageRow, DiskFile]] = field(default_factory=list)  # same base
    vanished: list[MessageRow] = field(default_factory=list)
    uidnext: int = 1

    @property
    def empty(self) -> bool:
        return not (self.added or self.moved or self.vanished)


def disk_files(listings: Iterable[tuple[str, Iterable[str]]]) -> dict[str, DiskFile]:
    """Files by base. A base found twice (a copy in new/ and cur/) is served once, from
    cur/; the other copy is left alone and logged."""
    by_base: dict[str, DiskFile] = {}
    for subdir, names in listings:
        for filename in names:
            f = DiskFile(subdir, filename, MaildirName.parse(filename))
            other = by_base.get(f.name.base)
            if other is not None:
                log.warning(
                    "store.duplicate_base kept=%s/%s ignored=%s/%s",
                    other.subdir,
                    other.filename,
                    subdir,
                    filename,
                )
                if other.subdir == "cur":
                    continue
            by_base[f.name.base] = f
    return by_base


def plan_scan(
    disk: Mapping[str, DiskFile],
    known: Mapping[str, MessageRow],
    uidnext: int,
    *,
    rebuild: bool,
) -> ScanPlan:
    plan = ScanPlan(uidnext=uidnext)
    plan.vanished = sorted((row for base, row in known.items() if base not in disk), key=_uid)
    for base, f in disk.items():
        row = known.get(base)
        if row is not None and (row.subdir, row.filename) != (f.subdir, f.filename):
            plan.moved.append((row, f))
    plan.moved.sort(key=lambda pair: pair[0].uid)

    unknown = sorted((f for base, f in disk.items() if base not in known), key=_name_order)
    taken = {row.uid for row in known.values()}
    claims: dict[int, int] = {}
    for f in unknown:
        if f.name.uid is not None:
            claims[f.name.uid] = claims.get(f.name.uid, 0) + 1
    if rebuild:
        # Above every U= on disk, claimed twice or not: any of them may have been seen.
        plan.uidnext = max(plan.uidnext, max(claims, default=0) + 1)
    keep: list[DiskFile] = []
    renumber: list[DiskFile] = []
    for f in unknown:
        uid = f.name.uid
        if (
            uid is not None
            and claims[uid] == 1
            and uid not in taken
            and (rebuild or uid >= uidnext)
        ):
            keep.append(f)
        else:
            renumber.append(f)
    for f in sorted(keep, key=lambda f: f.name.uid or 0):
        uid = f.name.uid or 0
        plan.added.append(Added(uid, f, f.name))
        plan.uidnext = max(plan.uidnext, uid + 1)
    for f in renumber:
        uid = plan.uidnext
        plan.uidnext += 1
        plan.added.append(Added(uid, f, f.name.with_uid(uid)))
    return plan


def _uid(row: MessageRow) -> int:
    return row.uid


def _name_order(f: DiskFile) -> tuple[str, str]:
    return (f.name.base, f.subdir)

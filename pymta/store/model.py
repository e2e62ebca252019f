"""The values the store hands out: mailbox references, folder and message metadata, changes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import InvalidName
from .flags import imap_flags
from .names import check_component

MailboxKind = Literal["user", "public"]
ChangeKind = Literal["exists", "expunge", "flags", "folders"]

# RFC 6154 §2: the special-use attributes a folder may carry.
SPECIAL_USES = frozenset(
    {"\\All", "\\Archive", "\\Drafts", "\\Flagged", "\\Junk", "\\Sent", "\\Trash"}
)
# Created when a mailbox root is first used (and again by a rebuild when missing).
DEFAULT_FOLDERS: tuple[tuple[str, str | None], ...] = (
    ("INBOX", None),
    ("Drafts", "\\Drafts"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
)


@dataclass(frozen=True)
class MailboxRef:
    """One mailbox root: a user's (`domain` set) or a public one (`domain` None).

    Constructing one validates the names, so a ref can always be joined to a path safely.
    """

    kind: MailboxKind
    name: str
    domain: str | None = None

    def __post_init__(self) -> None:
        check_component(self.name, "mailbox name")
        if self.kind == "user":
            check_component(self.domain, "domain")
        elif self.kind == "public":
            if self.domain is not None:
                raise InvalidName("a public mailbox has no domain")
        else:
            raise InvalidName(f"unknown mailbox kind {self.kind!r}")

    def __str__(self) -> str:
        return f"{self.name}@{self.domain}" if self.kind == "user" else f"public:{self.name}"


@dataclass(frozen=True)
class Delivered:
    """A message on disk and durable (file and directory fsynced)."""

    uid: int
    uidvalidity: int
    folder: str
    path: Path  # where it landed; flag changes rename it later
    size: int


@dataclass(frozen=True)
class Usage:
    """Whole mailbox root: every folder."""

    bytes: int
    messages: int


@dataclass(frozen=True)
class FolderInfo:
    name: str
    special_use: str | None
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    messages: int
    unseen: int
    size: int  # bytes (RFC 8438 STATUS=SIZE)
    subscribed: bool


@dataclass(frozen=True)
class MessageMeta:
    uid: int
    flags: str  # Maildir letters, ASCII order (see `flags.LETTER_NAMES`)
    keywords: tuple[str, ...]
    modseq: int
    internal_date: float  # seconds since the epoch
    size: int
    directory: Path  # the folder's directory (one object shared by a listing)
    filename: str  # "new/<name>" or "cur/<name>:2,<flags>", relative to `directory`

    @property
    def path(self) -> Path:
        """The message file; flag changes rename it, so it is valid until the next one."""
        return self.directory / self.filename

    @property
    def imap_flags(self) -> tuple[str, ...]:
        return imap_flags(self.flags, self.keywords)


@dataclass(frozen=True)
class CachedSummary:
    """What `mime.summary.summarize` computed, as cached in the index (JSON round trip)."""

    uid: int
    envelope: list[object] | None
    bodystructure: list[object] | None
    message_id: str | None
    subject: str | None
    header_bytes: int | None


@dataclass(frozen=True)
class Change:
    """Told to subscribers after the change is committed to the index.

    kind "exists": new UIDs; "expunge": UIDs gone; "flags": flags or keywords of UIDs
    changed; "folders": the folder was created, deleted, renamed (to `renamed_to`) or
    reindexed, so a session that has it open must look again. Changes of one folder reach
    a subscriber in commit order.
    """

    folder: str
    kind: ChangeKind
    uids: tuple[int, ...] = ()
    highestmodseq: int = 0
    uidvalidity: int = 0
    renamed_to: str | None = None

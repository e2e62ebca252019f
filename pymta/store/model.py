"""The values the store hands out: mailbox references, folder and message metadata, changes."""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

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
    deleted: int = 0  # messages with \Deleted (RFC 9051 §6.3.11 STATUS DELETED)
    children: bool = False  # some folder is named "<this>.<more>" (RFC 5258 §4 \HasChildren)


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
class AppendItem:
    """One message of an APPEND (RFC 9051 §6.3.12) or MULTIAPPEND (RFC 3502)."""

    raw: bytes
    flags: Sequence[str] = ()  # IMAP names: "\\Seen", "$Forwarded", keywords
    internal_date: float | None = None  # seconds since the epoch; None: now


class CopyResult(NamedTuple):
    """What COPY / MOVE did: RFC 4315 §3 COPYUID <uidvalidity> <source UIDs> <new UIDs>.
    `pairs` are (source UID, destination UID) in source UID order; a source UID that no
    longer existed is left out."""

    uidvalidity: int
    pairs: list[tuple[int, int]]


class FlagsResult(NamedTuple):
    """What STORE did. `updated`: the state of every listed message that exists and was
    not refused, ascending UID (changed or not; only changed ones got a new modseq).
    `failed`: UIDs refused by UNCHANGEDSINCE (RFC 7162 §3.1.3 MODIFIED), ascending."""

    updated: list[MessageMeta]
    failed: list[int]


@dataclass(frozen=True, eq=False)
class Listing:
    """One folder as SELECT / EXAMINE needs it (RFC 9051 §6.3.2), in compact columns.

    Position i (0-based) is message sequence number i + 1: `uids[i]`, `flags[i]` (Maildir
    letters, see `flags.LETTER_NAMES`), `keywords[i]`, `modseqs[i]`. Equal flag strings and
    keyword tuples are shared objects, so a big folder costs little memory.
    """

    folder: str
    uidvalidity: int
    uidnext: int
    highestmodseq: int
    uids: array[int]  # typecode "I": 32-bit UIDs, ascending
    flags: list[str]
    keywords: list[tuple[str, ...]]
    modseqs: array[int]  # typecode "q"
    unseen: int  # messages without \Seen
    first_unseen: int | None  # sequence number of the first (RFC 3501 §7.1 UNSEEN code)
    deleted: int  # messages with \Deleted
    keywords_in_use: tuple[str, ...]  # every keyword set on some message (for FLAGS)
    # With `vanished_since`: UIDs expunged after that modseq (RFC 7162 §3.2.5.2
    # VANISHED (EARLIER)), or None when the tombstones do not reach back that far (then
    # every UID the client knows that is not in `uids` has to be reported).
    vanished: list[int] | None = None

    @property
    def messages(self) -> int:
        return len(self.uids)


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

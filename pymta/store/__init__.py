"""The mailbox store: Maildir++ folders on disk plus one SQLite index per mailbox root.

Knows nothing of protocols; IMAP, POP3 and delivery build on `Store` (see store.py).

Layout: `<data_dir>/mail/<domain>/<user>/Maildir/` and `<data_dir>/public/<name>/Maildir/`.
INBOX is the root's cur/new/tmp; folder "A.B" is the directory `.A.B` (modified UTF-7,
with a `maildirfolder` marker), the layout Dovecot uses. Each folder holds
`pymta-uidvalidity` (written once, fsynced) and, after its highest UID was expunged,
`pymta-uidnext`. The index is `<root>/pymta-index.sqlite` (WAL, synchronous=NORMAL).

Invariants:
- A delivered message is durable before `deliver` returns: written to tmp/, fsynced,
  renamed into new/ (cur/ when it has flags), and the directory fsynced (group commit).
- A UID is never reused within a UIDVALIDITY, even after the index is lost: every file
  carries its UID (`,U=<uid>` in its name) and the high-water mark is on disk before the
  highest UID is expunged. UIDs become visible in increasing order (assignment, rename and
  index insert happen under the folder lock).
- Flags live in the file name (`:2,<letters>`), keywords only in the index.
- The index is a cache of the Maildir: files that appear, vanish or are renamed behind
  the store's back are picked up on the next access (new/ and cur/ mtimes), and a lost or
  corrupt index is rebuilt with the same UIDs and UIDVALIDITY.
- Usage (bytes, messages per root) changes in the same transaction as the messages.
- Subscribers are told of changes after the commit, in commit order per folder.
- Blocking work runs on the store's thread pool; lock order is tree → folder → index (see
  root.py). One `Store` per data directory per host: locks are in-process.
"""

from .errors import (
    FolderExists,
    FolderNotFound,
    InvalidFlag,
    InvalidName,
    MessageNotFound,
    NotAllowed,
    QuotaExceeded,
    StoreClosed,
    StoreError,
    StoreUnavailable,
)
from .flags import LETTER_NAMES, imap_flags, split_flags
from .model import (
    DEFAULT_FOLDERS,
    SPECIAL_USES,
    CachedSummary,
    Change,
    Delivered,
    FolderInfo,
    MailboxRef,
    MessageMeta,
    Usage,
)
from .notify import Subscription
from .store import Store

__all__ = [
    "DEFAULT_FOLDERS",
    "LETTER_NAMES",
    "SPECIAL_USES",
    "CachedSummary",
    "Change",
    "Delivered",
    "FolderExists",
    "FolderInfo",
    "FolderNotFound",
    "InvalidFlag",
    "InvalidName",
    "MailboxRef",
    "MessageMeta",
    "MessageNotFound",
    "NotAllowed",
    "QuotaExceeded",
    "Store",
    "StoreClosed",
    "StoreError",
    "StoreUnavailable",
    "Subscription",
    "Usage",
    "imap_flags",
    "split_flags",
]

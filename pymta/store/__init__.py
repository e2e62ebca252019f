"""The mailbox store: Maildir++ folders on disk plus one SQLite index per mailbox root.

Knows nothing of protocols; IMAP, POP3 and delivery build on `Store` (see store.py).

Layout: `<data_dir>/mail/<domain>/<user>/Maildir/` and `<data_dir>/public/<name>/Maildir/`.
INBOX is the root's cur/new/tmp; folder "A.B" is the directory `.A.B` (modified UTF-7,
with a `maildirfolder` marker), the layout Dovecot uses. Each folder holds
`pymta-uidvalidity` (written once, fsynced) and, after its highest UID was expunged,
`pymta-uidnext`. The index is `<root>/pymta-index.sqlite` (WAL, synchronous=NORMAL):
`index.Index` opens it and writes, `index_reads.py` holds its queries, `index_rows.py` its
row types and SQL columns, `schema.py` its tables.

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
- Sizes in the index (RFC822.SIZE, quota usage) are CRLF sizes, as IMAP serves the
  message: a bare-LF file adopted from elsewhere counts each bare LF as two octets. The
  `S=` in a file name is the file's real size.
- Every message the store writes (deliver, append, copy, move) gets its summary and the
  IMAP wire bytes of ENVELOPE / BODY / BODYSTRUCTURE in that same transaction; others get
  them on first request (cache.py). Reads for IMAP (`listing`, `fetch_rows`) are single
  queries returning plain tuples and arrays.
- Expunged UIDs are remembered with their modseq (tombstones, bounded per folder); a
  folder's `vanished_floor` says from which modseq on they are complete (QRESYNC).
- COPY and MOVE are durable on return and never lose a message: a copy is linked (or
  copied and fsynced) into tmp/ and placed like a delivery; a move within a root renames
  each file into the destination under a name carrying its new U= (a crash before the
  index commit leaves it adopted there on the next access); across roots it is copy, then
  expunge.
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
    AppendItem,
    CachedSummary,
    Change,
    CopyResult,
    Delivered,
    FlagsResult,
    FolderInfo,
    Listing,
    MailboxRef,
    MessageMeta,
    Usage,
)
from .notify import Subscription
from .store import Store
from .views import FETCH_COLUMNS

__all__ = [
    "DEFAULT_FOLDERS",
    "FETCH_COLUMNS",
    "LETTER_NAMES",
    "SPECIAL_USES",
    "AppendItem",
    "CachedSummary",
    "Change",
    "CopyResult",
    "Delivered",
    "FlagsResult",
    "FolderExists",
    "FolderInfo",
    "FolderNotFound",
    "InvalidFlag",
    "InvalidName",
    "Listing",
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

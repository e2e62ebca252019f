"""The maildrop of a POP3 session: the exclusive lock, the snapshot taken at login, UPDATE.

- `MaildropLocks` is the registry of locked maildrops, one object per server (passed to
  every POP3 session, never module state). RFC 1939 §4: once authenticated, "the POP3
  server then acquires an exclusive-access lock on the maildrop". The lock is ours only:
  IMAP sessions and deliveries do not look at it. It is released when the session ends,
  however it ends (QUIT, a dropped connection, a timeout, a server stop).
- `Maildrop` is the user's INBOX as listed at login: message numbers are positions in that
  listing and stay fixed for the session (RFC 1939 §5), whatever IMAP does meanwhile. A
  message expunged by IMAP keeps its number, size and unique-id; RETR and TOP of it fail,
  DELE of it succeeds, and UPDATE skips it.
- Message files are opened and read on worker threads, never on the event loop; the
  message after the one being sent is opened ahead (clients fetch in order) and closed
  unread when the client asks for another, or the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from pymta.store import MailboxRef, Store

from .wire import MessageTransfer

log = logging.getLogger(__name__)

INBOX = "INBOX"  # the maildrop: only the user's INBOX is served over POP3


class MaildropLock:
    """Held by one session; `release()` may be called any number of times."""

    def __init__(self, registry: MaildropLocks, ref: MailboxRef) -> None:
        self._registry = registry
        self.ref = ref
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._registry._release(self.ref)


class MaildropLocks:
    """The maildrops some POP3 session holds, by mailbox. Single-threaded (the event loop)."""

    def __init__(self) -> None:
        self._held: set[MailboxRef] = set()

    def acquire(self, ref: MailboxRef) -> MaildropLock | None:
        """The lock of `ref`, or None when another session holds it."""
        if ref in self._held:
            return None
        self._held.add(ref)
        return MaildropLock(self, ref)

    def locked(self, ref: MailboxRef) -> bool:
        return ref in self._held

    def _release(self, ref: MailboxRef) -> None:
        self._held.discard(ref)


@dataclass
class Entry:
    """One message of the snapshot. `filename` is relative to the INBOX directory and
    follows renames (flag changes by IMAP) when a RETR finds it moved."""

    uid: int
    size: int  # octets with CRLF line ends, as RETR sends it (the store's sizes)
    filename: str


@dataclass(frozen=True)
class UpdateResult:
    expunged: int  # messages removed by this UPDATE
    left: int  # messages of the snapshot still in the maildrop


class Maildrop:
    """The snapshot of the INBOX of one session, with its deletion marks."""

    def __init__(
        self, store: Store, ref: MailboxRef, uidvalidity: int, entries: Sequence[Entry]
    ) -> None:
        self.store = store
        self.ref = ref
        self.uidvalidity = uidvalidity
        self.entries = list(entries)
        # A plain string: joined once per RETR, where pathlib's cost shows.
        self.directory = os.fspath(store.folder_path(ref, INBOX))
        self.deleted: set[int] = set()  # message numbers marked by DELE
        self.retrieved: set[int] = set()  # message numbers sent whole by RETR
        # The message opened ahead of its RETR/TOP: (number, body_lines, its opening).
        self._ahead: tuple[int, int | None, asyncio.Future[MessageTransfer | None]] | None = None

    @classmethod
    async def open(cls, store: Store, ref: MailboxRef) -> Maildrop:
        """List the INBOX (picking up changes on disk) and take its snapshot."""
        listing = await store.listing(ref, INBOX)
        rows = await store.fetch_rows(ref, INBOX, list(listing.uids), ("uid", "size", "file"))
        entries = [Entry(uid, size, file) for uid, size, file in rows]
        return cls(store, ref, listing.uidvalidity, entries)

    # -- the snapshot -------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Messages not marked deleted (RFC 1939 §5 STAT)."""
        return len(self.entries) - len(self.deleted)

    @property
    def size(self) -> int:
        return sum(e.size for n, e in self.numbered() if n not in self.deleted)

    def numbered(self) -> list[tuple[int, Entry]]:
        return list(enumerate(self.entries, 1))

    def exists(self, number: int) -> bool:
        return 1 <= number <= len(self.entries)

    def entry(self, number: int) -> Entry:
        return self.entries[number - 1]

    def unique_id(self, number: int) -> str:
        """RFC 1939 §7 UIDL: Dovecot's default pop3_uidl_format "%08Xu%08Xv", the UID then
        the UIDVALIDITY as 8 upper-case hex digits each. Stable for the life of the
        message, the same for IMAP's view of it (and for a Dovecot Maildir taken over with
        its UIDs), and within the 1-70 octets of 0x21-0x7E that RFC 1939 §7 allows."""
        return f"{self.entry(number).uid:08X}{self.uidvalidity:08X}"

    # -- message files ------------------------------------------------------------------

    async def open_message(self, number: int, body_lines: int | None) -> MessageTransfer | None:
        """The message as a transfer with its first piece read, or None when it is gone
        (expunged since the snapshot). A file renamed by a flag change is found again
        through the index."""
        entry = self.entry(number)
        loop = asyncio.get_running_loop()
        ahead = self._take_ahead(number, body_lines)
        if ahead is not None:
            transfer = await ahead
        else:
            path = os.path.join(self.directory, entry.filename)
            transfer = await loop.run_in_executor(None, _open_transfer, path, body_lines)
        if transfer is not None:
            self._read_ahead(number + 1, body_lines)
            return transfer
        # Renamed (IMAP changed its flags) or removed: ask the index, after it has looked
        # at the disk again.
        await self.store.listing(self.ref, INBOX)
        rows = await self.store.fetch_rows(self.ref, INBOX, [entry.uid], ("file",))
        if not rows:
            return None
        entry.filename = rows[0][0]
        path = os.path.join(self.directory, entry.filename)
        return await loop.run_in_executor(None, _open_transfer, path, body_lines)

    def _read_ahead(self, number: int, body_lines: int | None) -> None:
        """Clients fetch in order (fetchmail: TOP n, DELE n, TOP n+1, ...): the next message
        is opened and its first piece read on a worker thread while this one is sent, so
        its RETR finds it ready instead of waiting for a worker."""
        if not self.exists(number) or number in self.deleted:
            return
        loop = asyncio.get_running_loop()
        path = os.path.join(self.directory, self.entry(number).filename)
        future = loop.run_in_executor(None, _open_transfer, path, body_lines)
        self._ahead = (number, body_lines, future)

    def _take_ahead(
        self, number: int, body_lines: int | None
    ) -> asyncio.Future[MessageTransfer | None] | None:
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            return None
        if ahead[:2] == (number, body_lines):
            return ahead[2]
        _discard(ahead[2])
        return None

    def close(self) -> None:
        """The session ended: a message opened ahead is closed."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            _discard(ahead[2])

    # -- UPDATE -------------------------------------------------------------------------

    async def update(self) -> UpdateResult:
        """RFC 1939 §6: remove the messages marked deleted (those IMAP expunged already are
        skipped), then, as Dovecot does by default, set \\Seen on the messages retrieved
        whole and kept."""
        uids = [self.entry(n).uid for n in sorted(self.deleted)]
        expunged = await self.store.expunge(self.ref, INBOX, uids) if uids else []
        seen = [self.entry(n).uid for n in sorted(self.retrieved - self.deleted)]
        if seen:
            await self.store.set_flags(self.ref, INBOX, seen, add=("\\Seen",))
        return UpdateResult(len(expunged), len(self.entries) - len(self.deleted))


def _discard(future: asyncio.Future[MessageTransfer | None]) -> None:
    """Close the transfer a future opened, once it has (on the event loop)."""

    def close(done: asyncio.Future[MessageTransfer | None]) -> None:
        if not done.cancelled() and done.exception() is None:
            transfer = done.result()
            if transfer is not None:
                transfer.close()

    future.add_done_callback(close)


def _open_transfer(path: str, body_lines: int | None) -> MessageTransfer | None:
    """On a worker thread: open the file and read its first piece."""
    try:
        file: BinaryIO = open(path, "rb", buffering=0)  # noqa: SIM115 (closed by the transfer)
    except FileNotFoundError:
        return None
    transfer = MessageTransfer(file, body_lines=body_lines)
    try:
        transfer.prefetch()
    except BaseException:
        with contextlib.suppress(OSError):
            transfer.close()
        raise
    return transfer

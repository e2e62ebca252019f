"""The store's errors: what a caller may act on, apart from plain `OSError` (disk trouble).

Front ends map them to their own replies (IMAP NO with a response code, SMTP 4xx/5xx); the
texts here are for logs, never for a client.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class: a request the store refused (I/O failures stay `OSError`)."""


class InvalidName(StoreError, ValueError):
    """A folder, user, domain or public mailbox name that is not allowed (traversal, empty
    component, control character, too long, not canonical modified UTF-7 on disk)."""


class InvalidFlag(StoreError, ValueError):
    """A flag or keyword that cannot be stored (unknown system flag, not an atom)."""


class FolderNotFound(StoreError):
    """The folder does not exist (IMAP: NO [NONEXISTENT], RFC 5530 §3)."""


class FolderExists(StoreError):
    """The folder already exists (IMAP: NO [ALREADYEXISTS], RFC 5530 §3)."""


class NotAllowed(StoreError):
    """An operation the store never performs: deleting INBOX, renaming a folder into itself
    (IMAP: NO [CANNOT], RFC 5530 §3)."""


class MessageNotFound(StoreError):
    """No message with that UID (any more) in the folder."""


class QuotaExceeded(StoreError):
    """Delivering the message would take the mailbox over the quota it was given
    (IMAP: NO [OVERQUOTA], RFC 9208 §4.3; SMTP 452 4.2.2)."""


class StoreUnavailable(StoreError, OSError):
    """The index could not be used just now (busy, or damaged: it is then rebuilt on next
    use). Temporary, and an `OSError` like any other disk trouble."""


class StoreClosed(StoreError):
    """The store was closed; no further requests are served."""

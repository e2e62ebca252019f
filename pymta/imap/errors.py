"""The three kinds of IMAP error, and the response codes they carry.

Handlers return `Done` (the tagged OK's text and code) or raise; `session.py` turns the
exception into the tagged reply in one place:

- `BadCommand` — the client's syntax or protocol misuse: `tag BAD ...`;
- `Refused` — a well-formed request we will not carry out: `tag NO [CODE] ...`;
- anything else escaping a handler is our fault: `tag NO [SERVERBUG] ... (ref)`, logged with
  the same correlation id (RFC 5530 §3). Internal detail (paths, SQL errors) never reaches
  the client; texts here are generic.

`refusal_for(exc)` maps the store's errors to `Refused`, so every handler answers them the
same way.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pymta.store import (
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


class Code(enum.Enum):
    """Response codes (RFC 9051 §7.1, RFC 5530 §3, RFC 4315, RFC 7162, RFC 9208)."""

    ALERT = "ALERT"
    ALREADYEXISTS = "ALREADYEXISTS"
    AUTHENTICATIONFAILED = "AUTHENTICATIONFAILED"
    AUTHORIZATIONFAILED = "AUTHORIZATIONFAILED"
    CANNOT = "CANNOT"
    CLIENTBUG = "CLIENTBUG"
    CLOSED = "CLOSED"
    EXPUNGEISSUED = "EXPUNGEISSUED"
    HASCHILDREN = "HASCHILDREN"
    INUSE = "INUSE"
    LIMIT = "LIMIT"
    NONEXISTENT = "NONEXISTENT"
    NOPERM = "NOPERM"
    OVERQUOTA = "OVERQUOTA"
    PARSE = "PARSE"
    PRIVACYREQUIRED = "PRIVACYREQUIRED"
    READ_ONLY = "READ-ONLY"
    READ_WRITE = "READ-WRITE"
    SERVERBUG = "SERVERBUG"
    TOOBIG = "TOOBIG"
    TRYCREATE = "TRYCREATE"
    UNAVAILABLE = "UNAVAILABLE"
    UNKNOWN_CTE = "UNKNOWN-CTE"
    BADCHARSET = "BADCHARSET"


@dataclass(frozen=True)
class Done:
    """What a handler returns for its tagged OK (a handler returning None: a plain OK)."""

    text: str = ""
    code: str | None = None


class ImapError(Exception):
    """Base of the errors a handler raises on purpose."""

    def __init__(self, text: str, code: Code | str | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    @property
    def code_text(self) -> str | None:
        """The bracketed part without brackets ("TRYCREATE", "MODIFIED 7,9")."""
        if self.code is None:
            return None
        return self.code.value if isinstance(self.code, Code) else self.code


class BadCommand(ImapError):
    """The client's syntax, or a command that makes no sense here: `tag BAD`."""


class Refused(ImapError):
    """A well-formed request refused: `tag NO [code] text`."""


def refusal_for(exc: StoreError, *, missing: Code = Code.NONEXISTENT) -> ImapError:
    """The reply to a store error (RFC 5530 §3 codes). `missing` is what a missing folder
    means for this command: NONEXISTENT, or TRYCREATE for APPEND/COPY/MOVE targets
    (RFC 9051 §6.3.12, §6.4.7)."""
    if isinstance(exc, FolderNotFound):
        return Refused("No such mailbox", missing)
    if isinstance(exc, FolderExists):
        return Refused("Mailbox already exists", Code.ALREADYEXISTS)
    if isinstance(exc, InvalidName):
        return Refused("Mailbox name not allowed", Code.CANNOT)
    if isinstance(exc, NotAllowed):
        return Refused("Operation not allowed on this mailbox", Code.CANNOT)
    if isinstance(exc, InvalidFlag):
        return BadCommand("Invalid flag or keyword")
    if isinstance(exc, QuotaExceeded):
        return Refused("Quota exceeded", Code.OVERQUOTA)
    if isinstance(exc, MessageNotFound):
        return Refused("Some messages no longer exist", Code.EXPUNGEISSUED)
    if isinstance(exc, StoreUnavailable | StoreClosed):
        return Refused("Mailbox temporarily unavailable, try again later", Code.UNAVAILABLE)
    return Refused("Request refused", Code.CANNOT)

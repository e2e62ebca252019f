"""POP3 errors and the extended response codes they carry.

POP3 answers every failure with one status, `-ERR` (RFC 1939 §3); RFC 2449 §8 lets the
text start with a response code in brackets. Handlers return `Done` (the `+OK` text) or
raise `Pop3Error`; `session.py` turns the exception into the reply in one place:

- `Pop3Error(text)` — the client's syntax, or a request refused: `-ERR text`;
- `Pop3Error(text, Code.X)` — the same with a response code: `-ERR [X] text`;
- the store's errors and anything else escaping a handler: `-ERR [SYS/TEMP] ...` (our
  fault, or the disk's; logged with a reference for anything unexpected). Internal detail
  never reaches the client; texts here are generic.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Code(enum.Enum):
    """Response codes: RFC 2449 §8.1, RFC 3206 §4 and §5."""

    IN_USE = "IN-USE"  # RFC 2449 §8.1.2: authenticated, but the maildrop is locked
    LOGIN_DELAY = "LOGIN-DELAY"  # RFC 2449 §8.1.1 (not used: no login delay policy)
    AUTH = "AUTH"  # RFC 3206 §5: the credentials are at fault
    SYS_TEMP = "SYS/TEMP"  # RFC 3206 §4: a temporary problem on our side
    SYS_PERM = "SYS/PERM"  # RFC 3206 §4: a permanent problem on our side


@dataclass(frozen=True)
class Done:
    """A command's `+OK` text (the status line; a multi-line body is output apart)."""

    text: str = ""


class Pop3Error(Exception):
    """`-ERR [code] text`."""

    def __init__(self, text: str, code: Code | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.code = code

    @property
    def code_text(self) -> str | None:
        return None if self.code is None else self.code.value

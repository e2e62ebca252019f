"""What FETCH and SEARCH share about index rows: the row type, the columns a row needs to
make a message's `MessageMeta` (and so reach its file), and the default way to read it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pymta.store.model import MessageMeta

Row = tuple[Any, ...]  # one message's columns, in the order a plan asked for them

# The columns of a plan that reads message files, first and in this order: a row's
# `MessageMeta` is built from them (`file` relative to the folder's directory).
META_COLUMNS = ("uid", "flags", "keywords", "modseq", "internal_date", "size", "file")

Reader = Callable[[MessageMeta], bytes]  # a message's bytes; may raise OSError


def read_file(meta: MessageMeta) -> bytes:
    """The default reader: the message file itself."""
    return meta.path.read_bytes()

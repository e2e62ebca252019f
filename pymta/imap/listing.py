"""LIST and LSUB: which folders a pattern names, and each one's attributes.

Pure functions over the store's `FolderInfo` list (RFC 9051 §6.3.9, LIST-EXTENDED RFC 5258,
SPECIAL-USE RFC 6154, CHILDREN RFC 3348). Names are unicode here; the session encodes them
(modified UTF-7 or UTF-8) when it writes the response.

- "*" matches any run of characters, "%" any run without the "." delimiter; the first
  component "INBOX" matches case-insensitively (RFC 9051 §5.1, §6.3.9).
- A hierarchy level that exists only because a folder below it exists ("a" of "a.b") is
  listed \\NonExistent (which implies \\Noselect, RFC 5258 §3.4) with \\HasChildren.
- Every entry says \\HasChildren or \\HasNoChildren, and carries its special-use attribute
  (RFC 6154 §2 allows it without being asked; clients rely on it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pymta.store import FolderInfo

DELIMITER = "."
INBOX = "INBOX"


@dataclass(frozen=True)
class Entry:
    name: str
    attributes: tuple[str, ...]
    info: FolderInfo | None  # None for a level that does not exist itself
    child_subscribed: bool = False  # RECURSIVEMATCH: CHILDINFO ("SUBSCRIBED"), RFC 5258 §3.5


def canonical_pattern(reference: str, pattern: str) -> str:
    """The reference and pattern interpreted together (RFC 9051 §6.3.9): concatenated,
    with a leading "INBOX" component upper-cased."""
    full = reference + pattern
    head, sep, rest = full.partition(DELIMITER)
    if head.upper() == INBOX:
        full = INBOX + sep + rest
    return full


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """RFC 9051 §6.3.9 list-wildcards as a regular expression matching a whole name."""
    parts = []
    for ch in pattern:
        if ch == "*":
            parts.append(".*")
        elif ch == "%":
            parts.append("[^.]*")
        else:
            parts.append(re.escape(ch))
    return re.compile("".join(parts), re.DOTALL)


def _normalised(name: str) -> str:
    head, sep, rest = name.partition(DELIMITER)
    return INBOX + sep + rest if head.upper() == INBOX else name


def list_entries(
    folders: Sequence[FolderInfo],
    patterns: Iterable[str],
    *,
    subscribed_only: bool = False,
    special_use_only: bool = False,
    recursive_match: bool = False,
    show_subscribed: bool = False,
    nonexistent_attr: str = "\\NonExistent",
) -> list[Entry]:
    """The LIST entries for `patterns` (already joined with the reference), in folder
    order, each name once. Selection options per RFC 5258 §3.1: SUBSCRIBED,
    SPECIAL-USE (RFC 6154 §3), RECURSIVEMATCH."""
    regexes = [pattern_regex(p) for p in patterns]
    by_name = {f.name: f for f in folders}
    names: dict[str, FolderInfo | None] = {}
    for f in folders:
        parts = f.name.split(DELIMITER)
        for depth in range(1, len(parts)):
            parent = DELIMITER.join(parts[:depth])
            if parent not in by_name:
                names.setdefault(parent, None)
        names[f.name] = f
    children: dict[str, bool] = {}
    subscribed_below: dict[str, bool] = {}
    for name in names:
        parent, sep, _ = name.rpartition(DELIMITER)
        while sep:
            children[parent] = True
            info = by_name.get(name)
            if info is not None and info.subscribed:
                subscribed_below[parent] = True
            parent, sep, _ = parent.rpartition(DELIMITER)
    out: list[Entry] = []
    for name in sorted(names, key=lambda n: (n != INBOX, n)):
        info = names[name]
        if not any(r.fullmatch(_normalised(name)) for r in regexes):
            continue
        below = subscribed_below.get(name, False)
        if subscribed_only and not (info is not None and info.subscribed):
            if not (recursive_match and below):
                continue
            out.append(Entry(name, (), info, child_subscribed=True))
            continue
        if special_use_only and (info is None or info.special_use is None):
            continue
        attrs: list[str] = []
        if info is None:
            attrs.append(nonexistent_attr)
        attrs.append("\\HasChildren" if children.get(name) else "\\HasNoChildren")
        if info is not None and info.special_use:
            attrs.append(info.special_use)
        if info is not None and info.subscribed and (show_subscribed or subscribed_only):
            attrs.append("\\Subscribed")
        out.append(Entry(name, tuple(attrs), info, child_subscribed=recursive_match and below))
    return out


def lsub_entries(folders: Sequence[FolderInfo], patterns: Iterable[str]) -> list[Entry]:
    """RFC 3501 §6.3.9 LSUB: the subscribed folders a pattern matches."""
    regexes = [pattern_regex(p) for p in patterns]
    out = []
    for f in folders:
        if f.subscribed and any(r.fullmatch(_normalised(f.name)) for r in regexes):
            out.append(Entry(f.name, (), f))
    return out

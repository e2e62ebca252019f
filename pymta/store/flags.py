"""Flags: Maildir info letters in file names, keywords in the index, IMAP names for both.

A message's system flags are the Maildir letters of its file name (`:2,<letters>`, ASCII
order): D draft, F flagged, P passed, R replied, S seen, T trashed. IMAP names map onto
them (RFC 9051 §2.3.2); "$Forwarded" (RFC 5788 registry) is stored as P, the Maildir flag
for "passed/forwarded", so Maildir tools and IMAP agree on it. Every other flag name is a
keyword, kept only in the index.
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidFlag

LETTERS = "DFPRST"
LETTER_NAMES: dict[str, str] = {
    "D": "\\Draft",
    "F": "\\Flagged",
    "P": "$Forwarded",
    "R": "\\Answered",
    "S": "\\Seen",
    "T": "\\Deleted",
}
_NAME_LETTERS = {name.lower(): letter for letter, name in LETTER_NAMES.items()}
# RFC 9051 §9: flag-keyword = atom; atom-specials = "(" / ")" / "{" / SP / CTL /
# list-wildcards / quoted-specials / resp-specials.
_ATOM_SPECIALS = frozenset('(){ %*"\\]')
MAX_KEYWORD_CHARS = 128


def normalize_letters(letters: str) -> str:
    """Validated Maildir flag letters, deduplicated, in ASCII order."""
    bad = set(letters) - set(LETTERS)
    if bad:
        raise InvalidFlag(f"unknown Maildir flag letters {''.join(sorted(bad))!r}")
    return "".join(sorted(set(letters)))


def check_keyword(keyword: str) -> str:
    if not keyword or len(keyword) > MAX_KEYWORD_CHARS:
        raise InvalidFlag("empty or too long keyword")
    for ch in keyword:
        if not 0x21 <= ord(ch) <= 0x7E or ch in _ATOM_SPECIALS:
            raise InvalidFlag(f"keyword {keyword!r} is not an atom (RFC 9051 §9)")
    return keyword


def merge_keywords(current: Iterable[str], more: Iterable[str]) -> tuple[str, ...]:
    """`current` plus `more`, without duplicates; flag names are case-insensitive (RFC 9051
    §9 note 5), so the spelling already stored wins."""
    seen: dict[str, str] = {}
    for keyword in (*current, *more):
        seen.setdefault(keyword.lower(), keyword)
    return tuple(seen.values())


def remove_keywords(current: Iterable[str], drop: Iterable[str]) -> tuple[str, ...]:
    lowered = {k.lower() for k in drop}
    return tuple(k for k in current if k.lower() not in lowered)


def split_flags(names: Iterable[str]) -> tuple[str, tuple[str, ...]]:
    """IMAP flag names → (Maildir letters, keywords). Unknown "\\" flags are refused
    ("\\Recent" included: RFC 9051 dropped it and RFC 3501 §6.4.6 never let clients set it)."""
    letters: set[str] = set()
    keywords: list[str] = []
    for name in names:
        letter = _NAME_LETTERS.get(name.lower())
        if letter is not None:
            letters.add(letter)
        elif name.startswith("\\"):
            raise InvalidFlag(f"unknown system flag {name!r}")
        else:
            keywords.append(check_keyword(name))
    return "".join(sorted(letters)), merge_keywords((), keywords)


def imap_flags(letters: str, keywords: Iterable[str]) -> tuple[str, ...]:
    """(Maildir letters, keywords) → IMAP flag names, system flags first."""
    return (*(LETTER_NAMES[letter] for letter in letters if letter in LETTER_NAMES), *keywords)

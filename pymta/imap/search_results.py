"""SEARCH results and how they are answered: `SearchResult`, the SEARCH response (RFC 9051
§7.3.5, RFC 3501 §7.2.5), the ESEARCH result (RFC 4731, RFC 9051 §7.3.4), what SAVE keeps
(RFC 5182 SEARCHRES) and the MODSEQ they carry (RFC 7162 §3.1.5).

Pure functions from the matched numbers (or the `SearchResult`) and the RETURN options to
response data; `search.py` produces the result, `searching.py` writes the responses.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from .command import SearchReturn


@dataclass(frozen=True)
class SearchResult:
    """The matching messages in mailbox order, and the highest MODSEQ among them (RFC 7162
    §3.1.5; 0 when nothing matched or the rows carry no modseq)."""

    seqs: list[int]
    uids: list[int]
    highest_modseq: int


def sequence_set(numbers: Iterable[int]) -> bytes:
    """Ascending numbers as an RFC 9051 §9 sequence-set: `1:3,5,8:9`."""
    out: list[bytes] = []
    first = last = -2
    for n in sorted(numbers):
        if n == last + 1:
            last = n
            continue
        if first >= 0:
            out.append(b"%d" % first if first == last else b"%d:%d" % (first, last))
        first = last = n
    if first >= 0:
        out.append(b"%d" % first if first == last else b"%d:%d" % (first, last))
    return b",".join(out)


def search_response(numbers: Sequence[int], highest_modseq: int | None = None) -> bytes:
    """`SEARCH 2 5 9` (RFC 9051 §7.3.5 / RFC 3501 §7.2.5), with `(MODSEQ n)` when the
    search used MODSEQ and found something (RFC 7162 §3.1.5)."""
    out = b"SEARCH"
    if numbers:
        out += b" " + b" ".join(b"%d" % n for n in numbers)
        if highest_modseq is not None:
            out += b" (MODSEQ %d)" % highest_modseq
    return out


def esearch_data(
    numbers: Sequence[int],
    options: Collection[SearchReturn],
    highest_modseq: int | None = None,
) -> bytes:
    """The search-return-data of an ESEARCH response (RFC 4731 §3.1, RFC 9051 §6.4.4):
    `MIN 2 MAX 9 ALL 2,5,9 COUNT 3`, without "ESEARCH (TAG ...) UID". `numbers` are seqs
    or UIDs in ascending order. `RETURN ()` means ALL. MIN, MAX and ALL are left out when
    nothing matched; COUNT is always there when asked; MODSEQ follows when given and
    something matched (RFC 7162 §3.1.5)."""
    opts = set(options) - {SearchReturn.SAVE} if options else {SearchReturn.ALL}
    out: list[bytes] = []
    if numbers:
        if SearchReturn.MIN in opts:
            out.append(b"MIN %d" % min(numbers))
        if SearchReturn.MAX in opts:
            out.append(b"MAX %d" % max(numbers))
        if SearchReturn.ALL in opts:
            out.append(b"ALL " + sequence_set(numbers))
    if SearchReturn.COUNT in opts:
        out.append(b"COUNT %d" % len(numbers))
    if numbers and highest_modseq is not None:
        out.append(b"MODSEQ %d" % highest_modseq)
    return b" ".join(out)


def esearch_suppressed(options: Collection[SearchReturn]) -> bool:
    """RFC 9051 §6.4.4 / RFC 5182 §2.1: SAVE alone suppresses the ESEARCH response."""
    return bool(options) and set(options) == {SearchReturn.SAVE}


def saved_result(result: SearchResult, options: Collection[SearchReturn]) -> list[int] | None:
    """What SAVE stores in the search result variable, as UIDs (RFC 5182 §2.4): all the
    matches, or only MIN and/or MAX when those are the only other options; None when SAVE
    was not asked for (the variable is left as it is, RFC 9051 §6.4.4.1)."""
    if SearchReturn.SAVE not in options:
        return None
    others = set(options) - {SearchReturn.SAVE}
    uids = result.uids
    if not uids or not others or others & {SearchReturn.ALL, SearchReturn.COUNT}:
        return list(uids)
    chosen = []
    if SearchReturn.MIN in others:
        chosen.append(uids[0])
    if SearchReturn.MAX in others and uids[-1] not in chosen:
        chosen.append(uids[-1])
    return chosen

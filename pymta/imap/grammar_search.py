"""SEARCH's arguments: search-program, search-key and RETURN options (RFC 9051 §6.4.4).

The rules follow grammar.py's conventions (one function per ABNF rule, a `Reader`,
`ParseError`); a nesting of parentheses, NOT and OR deeper than MAX_DEPTH, or more than
MAX_ITEMS keys, is a ParseError. The keys become `command.SearchKey` values; the session's
search.py evaluates them.

Decisions:
- The top-level keys of a program are ANDed (RFC 9051 §6.4.4).
- Strings are decoded as UTF-8 under CHARSET US-ASCII, UTF-8 or none; under any other
  charset their octets are kept as Latin-1 for the session to answer or re-decode.
- RFC 3501's RECENT, OLD and NEW are accepted (rev1 clients), as are RFC 5032's OLDER and
  YOUNGER and RFC 7162's MODSEQ (its entry name read and ignored, RFC 7162 §3.1.5).
"""

from __future__ import annotations

from .command import (
    DateField,
    DateOp,
    SearchAll,
    SearchAnd,
    SearchBody,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModseq,
    SearchNot,
    SearchOr,
    SearchReturn,
    SearchSequence,
    SearchSize,
    SearchWithin,
)
from .grammar import (
    Reader,
    astring,
    atom,
    date,
    flag_keyword,
    header_fld_name,
    mod_sequence_valzer,
    number64,
    nz_number,
    quoted,
    sequence_set,
    utf8_text,
)

_UTF8_CHARSETS = frozenset({"US-ASCII", "UTF-8", "UTF8"})
_SEARCH_FLAGS: dict[str, SearchKey] = {
    "ANSWERED": SearchFlag("\\Answered"),
    "DELETED": SearchFlag("\\Deleted"),
    "DRAFT": SearchFlag("\\Draft"),
    "FLAGGED": SearchFlag("\\Flagged"),
    "SEEN": SearchFlag("\\Seen"),
    "UNANSWERED": SearchFlag("\\Answered", present=False),
    "UNDELETED": SearchFlag("\\Deleted", present=False),
    "UNDRAFT": SearchFlag("\\Draft", present=False),
    "UNFLAGGED": SearchFlag("\\Flagged", present=False),
    "UNSEEN": SearchFlag("\\Seen", present=False),
    # RFC 3501 §6.4.4 (IMAP4rev1 only): RECENT, OLD = NOT RECENT, NEW = RECENT UNSEEN.
    "RECENT": SearchFlag("\\Recent"),
    "OLD": SearchFlag("\\Recent", present=False),
    "NEW": SearchAnd((SearchFlag("\\Recent"), SearchFlag("\\Seen", present=False))),
    "ALL": SearchAll(),
}
_SEARCH_HEADERS = {"BCC": "Bcc", "CC": "Cc", "FROM": "From", "SUBJECT": "Subject", "TO": "To"}
_SEARCH_DATES = {
    "BEFORE": (DateField.INTERNAL, DateOp.BEFORE),
    "ON": (DateField.INTERNAL, DateOp.ON),
    "SINCE": (DateField.INTERNAL, DateOp.SINCE),
    "SENTBEFORE": (DateField.SENT, DateOp.BEFORE),
    "SENTON": (DateField.SENT, DateOp.ON),
    "SENTSINCE": (DateField.SENT, DateOp.SINCE),
}


def search_program(r: Reader) -> SearchKey:
    """search-program = ["CHARSET" SP charset SP] search-key *(SP search-key) ; the
    top-level keys are ANDed  (RFC 9051 §9, §6.4.4)"""
    if r.peek_keyword() == "CHARSET":
        r.keyword()
        r.sp()
        r.charset = charset(r)
        r.sp()
    keys = [search_key(r)]
    while r.skip(b" "):
        keys.append(search_key(r))
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def charset(r: Reader) -> str:
    """charset = atom / quoted  (RFC 9051 §9); upper-cased."""
    raw = quoted(r) if r.peek() == 0x22 else atom(r)
    return raw.decode("ascii", "replace").upper()


def search_key(r: Reader) -> SearchKey:
    """search-key = "ALL" / "ANSWERED" / "BCC" SP astring / "BEFORE" SP date / "BODY" SP
    astring / "CC" SP astring / "DELETED" / "FLAGGED" / "FROM" SP astring / "KEYWORD" SP
    flag-keyword / "ON" SP date / "SEEN" / "SINCE" SP date / "SUBJECT" SP astring / "TEXT" SP
    astring / "TO" SP astring / "UNANSWERED" / "UNDELETED" / "UNFLAGGED" / "UNKEYWORD" SP
    flag-keyword / "UNSEEN" / "DRAFT" / "HEADER" SP header-fld-name SP astring / "LARGER" SP
    number64 / "NOT" SP search-key / "OR" SP search-key SP search-key / "SENTBEFORE" SP date /
    "SENTON" SP date / "SENTSINCE" SP date / "SMALLER" SP number64 / "UID" SP sequence-set /
    "UNDRAFT" / sequence-set / "(" search-key *(SP search-key) ")"  (RFC 9051 §9)
    plus RFC 3501's "NEW" / "OLD" / "RECENT", RFC 5032's ("OLDER" / "YOUNGER") SP nz-number
    and RFC 7162's search-modsequence."""
    r.count()
    first = r.peek()
    if first == 0x28:  # "("
        return _search_group(r)
    if 0x30 <= first <= 0x39 or first in (0x2A, 0x24):  # digit, "*", "$"
        return SearchSequence(sequence_set(r))
    name = r.keyword("a search key")
    simple = _SEARCH_FLAGS.get(name)
    if simple is not None:
        return simple
    if name in ("NOT", "OR"):
        r.enter()
        r.sp()
        left = search_key(r)
        if name == "NOT":
            r.leave()
            return SearchNot(left)
        r.sp()
        right = search_key(r)
        r.leave()
        return SearchOr(left, right)
    r.sp()
    return _search_key_argument(r, name)


def _search_group(r: Reader) -> SearchKey:
    r.enter()
    r.expect(b"(", "'('")
    keys = [search_key(r)]
    while r.skip(b" "):
        keys.append(search_key(r))
    r.expect(b")", "')'")
    r.leave()
    return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))


def _search_key_argument(r: Reader, name: str) -> SearchKey:
    """The search keys that take an argument (after their SP)."""
    header = _SEARCH_HEADERS.get(name)
    if header is not None:
        return SearchHeader(header, _search_text(r, astring(r)))
    when = _SEARCH_DATES.get(name)
    if when is not None:
        return SearchDate(when[0], when[1], date(r))
    if name in ("BODY", "TEXT"):
        return SearchBody(_search_text(r, astring(r)), include_headers=name == "TEXT")
    if name == "HEADER":
        field_name = header_fld_name(r)
        r.sp()
        return SearchHeader(field_name, _search_text(r, astring(r)))
    if name in ("KEYWORD", "UNKEYWORD"):
        return SearchFlag(flag_keyword(r), present=name == "KEYWORD")
    if name in ("LARGER", "SMALLER"):
        return SearchSize(larger=name == "LARGER", size=number64(r))
    if name == "UID":
        return SearchSequence(sequence_set(r), uid=True)
    if name in ("OLDER", "YOUNGER"):
        return SearchWithin(older=name == "OLDER", seconds=nz_number(r))
    if name == "MODSEQ":
        return search_modsequence(r)
    r.fail("unknown search key")


def search_modsequence(r: Reader) -> SearchKey:
    """search-modsequence = "MODSEQ" [search-modseq-ext] SP mod-sequence-valzer ;
    search-modseq-ext = SP entry-name SP entry-type-req  (RFC 7162 §7; the entry names a
    flag's metadata item: we keep one mod-sequence per message, so it is read and ignored,
    as RFC 7162 §3.1.5 allows)"""
    if r.peek() == 0x22:
        quoted(r)  # entry-name = DQUOTE "/flags/" attr-flag DQUOTE
        r.sp()
        if r.keyword("an entry type") not in ("PRIV", "SHARED", "ALL"):
            r.fail("invalid entry type")
        r.sp()
    return SearchModseq(mod_sequence_valzer(r))


def _search_text(r: Reader, raw: bytes) -> str:
    """A SEARCH string: UTF-8 for CHARSET US-ASCII or UTF-8 or none (RFC 9051 §6.4.4).
    Under any other charset the octets are kept as Latin-1 (lossless: the session may
    answer NO [BADCHARSET], or re-decode with `text.encode("latin-1").decode(charset)`)."""
    if r.charset is None or r.charset in _UTF8_CHARSETS:
        return utf8_text(r, raw)
    return raw.decode("latin-1")


def search_return_opts(r: Reader) -> tuple[SearchReturn, ...]:
    """search-return-opts = SP "RETURN" SP "(" [search-return-opt *(SP search-return-opt)] ")" ;
    search-return-opt = "MIN" / "MAX" / "ALL" / "COUNT" / "SAVE"  (RFC 9051 §9, RFC 4731 §3.1,
    RFC 5182 §2). An empty list means ALL (RFC 4731 §3.1)."""
    r.expect(b"(", "'('")
    options: list[SearchReturn] = []
    if not r.skip(b")"):
        while True:
            r.count()
            try:
                options.append(SearchReturn(r.keyword("a search return option")))
            except ValueError:
                r.fail("unknown search return option")
            if r.skip(b")"):
                break
            r.sp()
    return tuple(dict.fromkeys(options)) or (SearchReturn.ALL,)

"""FETCH's arguments: fetch-att and its macros, section, partial, fetch-modifiers
(RFC 9051 §6.4.5; CHANGEDSINCE and VANISHED, RFC 7162 §3.1.4.1 and §3.2.6).

The rules follow grammar.py's conventions (one function per ABNF rule, a `Reader`,
`ParseError`). The items become `command.FetchItem` values, the macros ALL, FAST and FULL
expanded and repeated items given once; the session's fetch.py renders them.
"""

from __future__ import annotations

import re

from .command import FetchAttr, FetchItem, Section, SectionText
from .grammar import (
    MAX_DEPTH,
    Reader,
    header_fld_name,
    mod_sequence_value,
    number64,
    nz_number,
    nz_number64,
)

_FETCH_SIMPLE = {
    a.value: FetchItem(a)
    for a in (
        FetchAttr.ENVELOPE,
        FetchAttr.FLAGS,
        FetchAttr.INTERNALDATE,
        FetchAttr.RFC822_SIZE,
        FetchAttr.BODY,
        FetchAttr.BODYSTRUCTURE,
        FetchAttr.UID,
        FetchAttr.MODSEQ,
        FetchAttr.RFC822,
        FetchAttr.RFC822_HEADER,
        FetchAttr.RFC822_TEXT,
    )
}
_FAST = tuple(_FETCH_SIMPLE[a] for a in ("FLAGS", "INTERNALDATE", "RFC822.SIZE"))
_ALL = (*_FAST, _FETCH_SIMPLE["ENVELOPE"])
# RFC 9051 §6.4.5: ALL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE), FAST = (FLAGS
# INTERNALDATE RFC822.SIZE), FULL = (FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODY).
_FETCH_MACROS = {"ALL": _ALL, "FAST": _FAST, "FULL": (*_ALL, _FETCH_SIMPLE["BODY"])}
_FETCH_NAME = re.compile(rb"[A-Za-z0-9.]+")
_SECTION_WORD = re.compile(rb"[A-Za-z]+(?:\.[A-Za-z]+)*")


def fetch_att(r: Reader) -> FetchItem:
    """fetch-att = "ENVELOPE" / "FLAGS" / "INTERNALDATE" / "RFC822.SIZE" / "BODY" ["STRUCTURE"] /
    "UID" / "BODY" section [partial] / "BODY.PEEK" section [partial] / "BINARY" [".PEEK"]
    section-binary [partial] / "BINARY.SIZE" section-binary  (RFC 9051 §9) ; plus "MODSEQ"
    (RFC 7162 §7) and RFC 3501's "RFC822" / "RFC822.HEADER" / "RFC822.TEXT"."""
    r.count()
    name = r.match(_FETCH_NAME, "a fetch attribute").group().decode("ascii").upper()
    bracket = r.peek() == 0x5B  # "["
    if not bracket:
        simple = _FETCH_SIMPLE.get(name)
        if simple is None:
            r.fail("unknown fetch attribute")
        return simple
    if name in ("BODY", "BODY.PEEK"):
        found = section(r)
        return FetchItem(
            FetchAttr.BODY_SECTION, found, peek=name == "BODY.PEEK", partial=_partial_if(r)
        )
    if name in ("BINARY", "BINARY.PEEK"):
        found = section_binary(r)
        return FetchItem(
            FetchAttr.BINARY, found, peek=name == "BINARY.PEEK", partial=_partial_if(r)
        )
    if name == "BINARY.SIZE":
        return FetchItem(FetchAttr.BINARY_SIZE, section_binary(r))
    r.fail("unknown fetch attribute")


def _partial_if(r: Reader) -> tuple[int, int] | None:
    return partial(r) if r.peek() == 0x3C else None  # "<"


def fetch_atts(r: Reader) -> tuple[FetchItem, ...]:
    """ "ALL" / "FULL" / "FAST" / fetch-att / "(" fetch-att *(SP fetch-att) ")"  (RFC 9051 §9:
    the item part of fetch; the macros are expanded, repeated items given once)"""
    if r.skip(b"("):
        items = [fetch_att(r)]
        while r.skip(b" "):
            items.append(fetch_att(r))
        r.expect(b")", "')'")
        return tuple(dict.fromkeys(items))
    macro = _FETCH_MACROS.get(r.peek_keyword())
    if macro is not None:
        r.keyword()
        return macro
    return (fetch_att(r),)


def section(r: Reader) -> Section:
    """section = "[" [section-spec] "]"  (RFC 9051 §9)"""
    r.expect(b"[", "'['")
    found = Section() if r.peek() == 0x5D else section_spec(r)
    r.expect(b"]", "']'")
    return found


def section_binary(r: Reader) -> Section:
    """section-binary = "[" [section-part] "]"  (RFC 9051 §9)"""
    r.expect(b"[", "'['")
    found = Section() if r.peek() == 0x5D else Section(part=section_part(r))
    r.expect(b"]", "']'")
    return found


def section_spec(r: Reader) -> Section:
    """section-spec = section-msgtext / (section-part ["." section-text]) ;
    section-text = section-msgtext / "MIME"  (RFC 9051 §9)"""
    if 0x30 <= r.peek() <= 0x39:
        part = section_part(r)
        if not r.skip(b"."):
            return Section(part=part)
        text, fields = section_msgtext(r, mime_allowed=True)
        return Section(part=part, text=text, fields=fields)
    text, fields = section_msgtext(r, mime_allowed=False)
    return Section(text=text, fields=fields)


def section_part(r: Reader) -> tuple[int, ...]:
    """section-part = nz-number *("." nz-number)  (RFC 9051 §9)"""
    parts = [nz_number(r)]
    data = r.data
    while r.pos + 1 < len(data) and data[r.pos] == 0x2E and 0x30 <= data[r.pos + 1] <= 0x39:
        r.pos += 1
        r.count()
        parts.append(nz_number(r))
    if len(parts) > MAX_DEPTH:
        r.fail("section nested too deeply")
    return tuple(parts)


def section_msgtext(r: Reader, *, mime_allowed: bool) -> tuple[SectionText, tuple[str, ...]]:
    """section-msgtext = "HEADER" / "HEADER.FIELDS" [".NOT"] SP header-list / "TEXT"
    (RFC 9051 §9; "MIME" only after a part number, as section-text)"""
    word = r.match(_SECTION_WORD, "a section name").group().decode("ascii").upper()
    try:
        text = SectionText(word)
    except ValueError:
        r.fail("unknown section")
    if text is SectionText.MIME and not mime_allowed:
        r.fail("MIME needs a part number")
    if text in (SectionText.HEADER_FIELDS, SectionText.HEADER_FIELDS_NOT):
        r.sp()
        return text, header_list(r)
    return text, ()


def header_list(r: Reader) -> tuple[str, ...]:
    """header-list = "(" header-fld-name *(SP header-fld-name) ")"  (RFC 9051 §9); the names
    upper-cased."""
    r.expect(b"(", "'('")
    names = [header_fld_name(r).upper()]
    while r.skip(b" "):
        names.append(header_fld_name(r).upper())
    r.expect(b")", "')'")
    return tuple(dict.fromkeys(names))


def partial(r: Reader) -> tuple[int, int]:
    """partial = "<" number64 "." nz-number64 ">"  (RFC 9051 §9)"""
    r.expect(b"<", "'<'")
    offset = number64(r)
    r.expect(b".", "'.'")
    length = nz_number64(r)
    r.expect(b">", "'>'")
    return offset, length


def fetch_modifiers(r: Reader, *, uid: bool) -> tuple[int | None, bool]:
    """fetch-modifiers = SP "(" fetch-modifier *(SP fetch-modifier) ")" ;
    fetch-modifier =/ "CHANGEDSINCE" SP mod-sequence-value / "VANISHED"  (RFC 4466 §3,
    RFC 7162 §7). Returns (changed_since, vanished)."""
    r.expect(b"(", "'('")
    changed_since: int | None = None
    vanished = False
    while True:
        name = r.keyword("a fetch modifier")
        if name == "CHANGEDSINCE" and changed_since is None:
            r.sp()
            changed_since = mod_sequence_value(r)
        elif name == "VANISHED" and not vanished:
            vanished = True
        else:
            r.fail("unknown or repeated fetch modifier")
        if r.skip(b")"):
            break
        r.sp()
    # RFC 7162 §3.2.6: VANISHED only in UID FETCH, and only with CHANGEDSINCE.
    if vanished and (not uid or changed_since is None):
        r.fail("VANISHED needs UID FETCH and CHANGEDSINCE")
    return changed_since, vanished

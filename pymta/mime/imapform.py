"""IMAP wire forms of the cached ENVELOPE and BODYSTRUCTURE (RFC 9051 §7.5.2, §9).

`summary.MessageSummary.envelope` / `.bodystructure` are JSON-able lists in the order of
the RFC 9051 §9 grammar (see `envelope` and `bodystructure`); these pure functions turn
them into the bytes a FETCH response carries, so the store can cache the bytes and a FETCH
ENVELOPE / BODY / BODYSTRUCTURE is a concatenation:

- `envelope_wire(envelope)` — `envelope`
- `bodystructure_wire(body)` — `body` with extension data (FETCH BODYSTRUCTURE)
- `body_wire(body)` — `body` without extension data (FETCH BODY, RFC 9051 §7.5.2)
- `string_wire(s)` / `nstring_wire(s)` — one RFC 9051 §4.3 string

Strings are quoted when they can be (RFC 9051 §9 quoted: TEXT-CHAR without CR/LF, with
`\\` and `"` escaped) and literals otherwise (CR, LF, NUL or any 8-bit byte, RFC 9051
§4.3). A literal is valid for rev1 and rev2 clients alike, so 8-bit (UTF-8) text never
depends on UTF8=ACCEPT. NIL stands for None, numbers are bare.

The functions accept any JSON-able value and never raise: a field of an unexpected type
(an index written by another version) becomes NIL, a missing one is NIL too.
Nothing here imports `pymta.imap` (mime sits below imap in the layering).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

NIL = b"NIL"

_QUOTED_SPECIALS = re.compile(r'(["\\])')


def string_wire(s: str) -> bytes:
    """RFC 9051 §9 string: quoted if possible, else a synchronizing-form literal.

    RFC 9051 §4.3: CR and LF cannot be quoted and NUL is not a TEXT-CHAR; 8-bit text is
    only quotable under UTF8=ACCEPT, so it is always sent as a literal here.
    """
    if s.isascii() and "\r" not in s and "\n" not in s and "\0" not in s:
        if '"' in s or "\\" in s:
            s = _QUOTED_SPECIALS.sub(r"\\\1", s)
        return b'"%s"' % s.encode("ascii")
    data = s.encode("utf-8", "replace")
    return b"{%d}\r\n%s" % (len(data), data)


def nstring_wire(s: object) -> bytes:
    """RFC 9051 §9 nstring: NIL for None (or any non-string value)."""
    return string_wire(s) if isinstance(s, str) else NIL


def number_wire(n: object) -> bytes:
    """RFC 9051 §9 number; a value that is not a non-negative int becomes 0."""
    if isinstance(n, int) and not isinstance(n, bool) and n >= 0:
        return b"%d" % n
    return b"0"


# -- ENVELOPE -------------------------------------------------------------------------------


def envelope_wire(envelope: Sequence[object] | None) -> bytes:
    """RFC 9051 §9:

    envelope = "(" env-date SP env-subject SP env-from SP env-sender SP env-reply-to SP
               env-to SP env-cc SP env-bcc SP env-in-reply-to SP env-message-id ")"
    """
    if not isinstance(envelope, (list, tuple)):
        envelope = ()
    fields = envelope if len(envelope) == 10 else (list(envelope[:10]) + [None] * 10)[:10]
    a = _address_list
    return b"(%s %s %s %s %s %s %s %s %s %s)" % (
        nstring_wire(fields[0]),
        nstring_wire(fields[1]),
        a(fields[2]),
        a(fields[3]),
        a(fields[4]),
        a(fields[5]),
        a(fields[6]),
        a(fields[7]),
        nstring_wire(fields[8]),
        nstring_wire(fields[9]),
    )


def _address_list(value: object) -> bytes:
    """RFC 9051 §9 env-from etc.: "(" 1*address ")" / nil — addresses are not separated."""
    if not isinstance(value, (list, tuple)) or not value:
        return NIL
    out = b"".join([_address(a) for a in value if isinstance(a, (list, tuple))])
    return b"(%s)" % out if out else NIL


def _address(a: Sequence[object]) -> bytes:
    """address = "(" addr-name SP addr-adl SP addr-mailbox SP addr-host ")" """
    if len(a) == 4:
        name, adl, mailbox, host = a
    else:
        name, adl, mailbox, host = (list(a[:4]) + [None] * 4)[:4]
    return b"(%s %s %s %s)" % (
        nstring_wire(name),
        nstring_wire(adl),
        nstring_wire(mailbox),
        nstring_wire(host),
    )


# -- BODY / BODYSTRUCTURE -------------------------------------------------------------------


def bodystructure_wire(body: Sequence[object] | None) -> bytes:
    """FETCH BODYSTRUCTURE: RFC 9051 §9 `body`, with body-ext-1part / body-ext-mpart."""
    return _body(body, True, 0)


def body_wire(body: Sequence[object] | None) -> bytes:
    """FETCH BODY: the same without extension data (RFC 9051 §7.5.2: "Extension data is
    never returned with the BODY fetch")."""
    return _body(body, False, 0)


# A cached structure is capped by `bodystructure.MimeLimits`; this only guards recursion
# against a corrupt cache entry.
_MAX_DEPTH = 200
# What a body that cannot be read is sent as: an empty text/plain part.
_EMPTY_BODY = b'("TEXT" "PLAIN" NIL NIL NIL "7BIT" 0 0)'


def _body(body: object, ext: bool, depth: int) -> bytes:
    """body = "(" (body-type-1part / body-type-mpart) ")" """
    if not isinstance(body, (list, tuple)) or not body or depth > _MAX_DEPTH:
        return _EMPTY_BODY
    if isinstance(body[0], (list, tuple)):
        return _multipart(body, ext, depth)
    return _one_part(body, ext, depth)


def _multipart(body: Sequence[object], ext: bool, depth: int) -> bytes:
    """body-type-mpart = 1*body SP media-subtype [SP body-ext-mpart]
    body-ext-mpart  = body-fld-param [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
                      *(SP body-extension)]]]"""
    n = 0
    while n < len(body) and isinstance(body[n], (list, tuple)):
        n += 1
    parts = b"".join(_body(p, ext, depth + 1) for p in body[:n])
    rest = body[n:]
    subtype = string_wire(rest[0]) if rest and isinstance(rest[0], str) else b'"MIXED"'
    out = [parts, subtype]
    if ext:
        extension = list(rest[1:5]) + [None] * (4 - min(len(rest[1:5]), 4))
        out.append(_params(extension[0]))
        out.append(_disposition(extension[1]))
        out.append(_language(extension[2]))
        out.append(nstring_wire(extension[3]))
    # The parts follow each other with no SP between them (`1*body`), then SP subtype.
    return b"(" + parts + b" " + b" ".join(out[1:]) + b")"


def _one_part(body: Sequence[object], ext: bool, depth: int) -> bytes:
    """body-type-1part = (body-type-basic / body-type-msg / body-type-text)
    [SP body-ext-1part]

    body-type-basic = media-basic SP body-fields
    body-type-msg   = media-message SP body-fields SP envelope SP body SP body-fld-lines
    body-type-text  = media-text SP body-fields SP body-fld-lines
    body-fields     = body-fld-param SP body-fld-id SP body-fld-desc SP body-fld-enc SP
                      body-fld-octets
    body-ext-1part  = body-fld-md5 [SP body-fld-dsp [SP body-fld-lang [SP body-fld-loc
                      *(SP body-extension)]]]
    """
    fields = list(body) + [None] * max(0, 7 - len(body))
    mtype = fields[0] if isinstance(fields[0], str) else "APPLICATION"
    subtype = fields[1] if isinstance(fields[1], str) else "OCTET-STREAM"
    out = [
        string_wire(mtype),
        string_wire(subtype),
        _params(fields[2]),
        nstring_wire(fields[3]),
        nstring_wire(fields[4]),
        string_wire(fields[5]) if isinstance(fields[5], str) else b'"7BIT"',
        number_wire(fields[6]),
    ]
    i = 7
    upper_type = mtype.upper()
    if (
        upper_type == "MESSAGE"
        and subtype.upper() in ("RFC822", "GLOBAL")
        and len(fields) >= 10
        and isinstance(fields[8], (list, tuple))
    ):
        out.append(envelope_wire(fields[7] if isinstance(fields[7], (list, tuple)) else None))
        out.append(_body(fields[8], ext, depth + 1))
        out.append(number_wire(fields[9]))
        i = 10
    elif upper_type == "TEXT":
        out.append(number_wire(fields[7] if len(fields) > 7 else 0))
        i = 8
    if ext:
        extension = list(fields[i : i + 4]) + [None] * (4 - min(len(fields[i : i + 4]), 4))
        out.append(nstring_wire(extension[0]))
        out.append(_disposition(extension[1]))
        out.append(_language(extension[2]))
        out.append(nstring_wire(extension[3]))
    return b"(" + b" ".join(out) + b")"


def _params(value: object) -> bytes:
    """body-fld-param = "(" string SP string *(SP string SP string) ")" / nil"""
    if not isinstance(value, (list, tuple)):
        return NIL
    items = [v if isinstance(v, str) else "" for v in value]
    if len(items) % 2:
        items.append("")
    if not items:
        return NIL
    return b"(" + b" ".join(string_wire(v) for v in items) + b")"


def _disposition(value: object) -> bytes:
    """body-fld-dsp = "(" string SP body-fld-param ")" / nil"""
    if not isinstance(value, (list, tuple)) or not value or not isinstance(value[0], str):
        return NIL
    params = value[1] if len(value) > 1 else None
    return b"(" + string_wire(value[0]) + b" " + _params(params) + b")"


def _language(value: object) -> bytes:
    """body-fld-lang = nstring / "(" string *(SP string) ")" """
    if isinstance(value, str):
        return string_wire(value)
    if not isinstance(value, (list, tuple)):
        return NIL
    tags = [v for v in value if isinstance(v, str)]
    if not tags:
        return NIL
    return b"(" + b" ".join(string_wire(t) for t in tags) + b")"

"""The IMAP ENVELOPE (RFC 9051 §7.5.2) of a header block, and RFC 5322 address lists.

An envelope is a list in the order of RFC 9051 §9 `envelope`:

    [date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to, message-id]

date, subject, in-reply-to and message-id are the raw field values (unfolded, not RFC 2047
decoded), None when the field is absent and "" when it is empty. The address fields are
lists of `address` = [name, adl, mailbox, host], or None when absent, empty or holding no
address. Parsing never fails: what cannot be read is kept in the mailbox with the
"MISSING_MAILBOX" / "MISSING_DOMAIN" fillers Dovecot uses.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import NamedTuple

from pymta.mime.headers import decode_text, read_comment, read_quoted

ENVELOPE_FIELDS = frozenset(
    {
        b"date",
        b"subject",
        b"from",
        b"sender",
        b"reply-to",
        b"to",
        b"cc",
        b"bcc",
        b"in-reply-to",
        b"message-id",
    }
)

MISSING_MAILBOX = "MISSING_MAILBOX"
MISSING_DOMAIN = "MISSING_DOMAIN"

Address = list[str | None]

_WSP = " \t\r\n"
# RFC 5322 §3.2.3 atext, widened: anything that is not whitespace or a special. Non-ASCII
# is atext under RFC 6532 §3.2.
_ATOM = re.compile(r'[^ \t\r\n()<>\[\]:;@\\,."]+')
_SPECIALS = "<>@,;:."
_MSG_ID = re.compile(r"<[^<>]*>")

# The common shapes, `Name <local@domain>`, `"Name" <local@domain>` and `local@domain`,
# read by one regular expression per address; anything else (comments, groups, routes,
# escapes, odd characters) goes to the full parser, which gives the same result for these.
_ADDR_CHARS = r'[^<>@ \t\r\n",;:()\\\[\]]+'
_SIMPLE_ADDRESS = re.compile(
    r"[ \t\r\n]*(?:"
    r'(?:"(?P<quoted>[^"\\]*)"|(?P<phrase>[^"<>,;:@()\\\[\]]*?))'
    rf"[ \t\r\n]*<(?P<local>{_ADDR_CHARS})@(?P<domain>{_ADDR_CHARS})>"
    rf"|(?P<bare_local>{_ADDR_CHARS})@(?P<bare_domain>{_ADDR_CHARS})"
    r")[ \t\r\n]*(?:,|\Z)"
)
_WSP_RUN = re.compile(r"[ \t\r\n]+")


class _Token(NamedTuple):
    kind: str  # "atom", "quoted", "comment", "literal", or the special character itself
    text: str  # quoting removed for "quoted" and "comment"
    space_before: bool  # whitespace or a comment came before it


def build_envelope(fields: Mapping[bytes, bytes]) -> list[object]:
    """RFC 9051 §7.5.2 ENVELOPE from `headers.parse_fields` output (keys lower-case)."""
    from_ = address_list(fields.get(b"from"))
    # RFC 9051 §7.5.2: absent or empty Sender / Reply-To take the value of From.
    sender = address_list(fields.get(b"sender")) or _copy(from_)
    reply_to = address_list(fields.get(b"reply-to")) or _copy(from_)
    return [
        _text(fields.get(b"date")),
        _text(fields.get(b"subject")),
        from_,
        sender,
        reply_to,
        address_list(fields.get(b"to")),
        address_list(fields.get(b"cc")),
        address_list(fields.get(b"bcc")),
        _text(fields.get(b"in-reply-to")),
        _text(fields.get(b"message-id")),
    ]


def message_id_token(value: str | None) -> str | None:
    """The RFC 5322 §3.6.4 msg-id ("<left@right>") in a Message-ID value.

    Falls back to the stripped value when there are no angle brackets; None when empty.
    """
    if value is None:
        return None
    m = _MSG_ID.search(value)
    if m is not None:
        return m.group()
    return value.strip() or None


def _text(value: bytes | None) -> str | None:
    return None if value is None else decode_text(value)


def _copy(addresses: list[Address] | None) -> list[Address] | None:
    return None if addresses is None else [list(a) for a in addresses]


def address_list(value: bytes | None) -> list[Address] | None:
    """RFC 5322 §3.4 address-list (with obsolete forms) as IMAP address structures.

        address-list = (address *("," address)) / obs-addr-list
        address      = mailbox / group
        group        = display-name ":" [group-list] ";" [CFWS]
        mailbox      = name-addr / addr-spec
        name-addr    = [display-name] angle-addr
        angle-addr   = [CFWS] "<" [obs-route] addr-spec ">" [CFWS]

    Groups become a start marker [None, None, name, None], their members, and an end marker
    [None, None, None, None] (RFC 9051 §7.5.2); an unclosed group is closed at the end.
    Returns None when the field is absent or yields no address.
    """
    if value is None:
        return None
    text = decode_text(value)
    simple = _simple_address_list(text)
    return simple if simple is not None else _full_address_list(text)


def _simple_address_list(text: str) -> list[Address] | None:
    """The fast path: None unless every address has one of the common shapes."""
    out: list[Address] = []
    i = 0
    n = len(text)
    while i < n:
        m = _SIMPLE_ADDRESS.match(text, i)
        if m is None or m.end() == i:
            return None
        i = m.end()
        local = m.group("local")
        if local is None:
            out.append([None, None, m.group("bare_local"), m.group("bare_domain")])
            continue
        name = m.group("quoted")
        if name is None:
            name = _WSP_RUN.sub(" ", m.group("phrase")).strip(" ")
        out.append([name or None, None, local, m.group("domain")])
    return out or None


def _full_address_list(text: str) -> list[Address] | None:
    tokens = _tokenize(text)
    out: list[Address] = []
    in_group = False
    i = 0
    n = len(tokens)
    while i < n:
        kind = tokens[i].kind
        if kind == ",":
            i += 1
            continue
        if kind == ";":
            if in_group:
                out.append([None, None, None, None])
                in_group = False
            i += 1
            continue
        j, group_colon = _unit_end(tokens, i)
        if group_colon:
            if in_group:
                out.append([None, None, None, None])
            out.append([None, None, _phrase(tokens[i:j]), None])
            in_group = True
            i = j + 1
            continue
        address = _mailbox(tokens[i:j])
        if address is not None:
            out.append(address)
        i = j
    if in_group:
        out.append([None, None, None, None])
    return out or None


def _unit_end(tokens: list[_Token], i: int) -> tuple[int, bool]:
    """End of one mailbox (at "," or ";" outside <>), or of a group's display-name (at ":")."""
    depth = 0
    seen_addr = False
    j = i
    n = len(tokens)
    while j < n:
        kind = tokens[j].kind
        if kind == "<":
            depth += 1
            seen_addr = True
        elif kind == ">":
            depth = max(0, depth - 1)
        elif depth == 0:
            if kind in (",", ";"):
                break
            if kind == "@":
                seen_addr = True
            elif kind == ":" and not seen_addr:
                return j, True
        j += 1
    return j, False


def _mailbox(unit: list[_Token]) -> Address | None:
    """RFC 5322 §3.4 mailbox as [name, adl, mailbox, host]; None for an empty unit."""
    comments = [t.text for t in unit if t.kind == "comment"]
    tokens = [t for t in unit if t.kind != "comment"]
    if not tokens:
        return None
    route: str | None = None
    lt = next((k for k, t in enumerate(tokens) if t.kind == "<"), -1)
    if lt >= 0:
        gt = next((k for k in range(lt + 1, len(tokens)) if tokens[k].kind == ">"), len(tokens))
        name = _phrase(tokens[:lt]) or None
        inner = tokens[lt + 1 : gt]
        if inner and inner[0].kind == "@":
            # RFC 5322 §4.4 obs-route = obs-domain-list ":"; IMAP's addr-adl holds it.
            colon = next((k for k, t in enumerate(inner) if t.kind == ":"), -1)
            if colon >= 0:
                route = "".join(t.text for t in inner[:colon] if t.kind != "comment")
                inner = inner[colon + 1 :]
        local, domain = _addr_spec(inner)
    else:
        # RFC 822 style "user@host (Full Name)": the comment is the only name there is.
        name = (comments[-1].strip() or None) if comments else None
        local, domain = _addr_spec(tokens)
    return [name, route, local or MISSING_MAILBOX, domain or MISSING_DOMAIN]


def _addr_spec(tokens: list[_Token]) -> tuple[str, str]:
    """RFC 5322 §3.4.1 addr-spec = local-part "@" domain, quoting removed from local-part."""
    at = next((k for k in range(len(tokens) - 1, -1, -1) if tokens[k].kind == "@"), -1)
    if at < 0:
        return _local_part(tokens), ""
    domain = "".join(t.text for t in tokens[at + 1 :] if t.kind in ("atom", "literal", "."))
    return _local_part(tokens[:at]), domain


def _local_part(tokens: list[_Token]) -> str:
    """Words and dots joined; whitespace survives only between two words (obs-local-part
    allows CFWS around the dots, which is not part of the value)."""
    out: list[str] = []
    previous = ""
    for t in tokens:
        if t.kind not in ("atom", "quoted", "."):
            continue
        if out and t.space_before and t.kind != "." and previous != ".":
            out.append(" ")
        out.append(t.text)
        previous = t.kind
    return "".join(out)


def _phrase(tokens: list[_Token]) -> str:
    """RFC 5322 §3.2.5 phrase with quoting removed, words separated by one space."""
    out: list[str] = []
    for t in tokens:
        if t.kind == "comment":
            continue
        if out and t.space_before:
            out.append(" ")
        out.append(t.text)
    return "".join(out)


def _tokenize(s: str) -> list[_Token]:
    """Split an address field into RFC 5322 §3.2 lexical tokens.

    Stray characters that start no token (")", "]", "\\") become one-character atoms.
    """
    tokens: list[_Token] = []
    space = False
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c in _WSP:
            space = True
            i += 1
            continue
        if c == "(":
            text, i = read_comment(s, i)
            tokens.append(_Token("comment", text, space))
            space = True
            continue
        if c == '"':
            text, i = read_quoted(s, i)
            tokens.append(_Token("quoted", text, space))
        elif c == "[":
            close = s.find("]", i)
            close = n - 1 if close < 0 else close
            tokens.append(_Token("literal", s[i : close + 1], space))
            i = close + 1
        elif c in _SPECIALS:
            tokens.append(_Token(c, c, space))
            i += 1
        else:
            m = _ATOM.match(s, i)
            if m is None:
                tokens.append(_Token("atom", c, space))
                i += 1
            else:
                tokens.append(_Token("atom", m.group(), space))
                i = m.end()
        space = False
    return tokens

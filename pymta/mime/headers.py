"""Header blocks and structured header values, over raw bytes.

- `header_end` finds where a header block ends (RFC 5322 §2.1), for CRLF and bare-LF mail.
- `parse_fields` unfolds (RFC 5322 §2.2.3) the first occurrence of each wanted field.
- `decode_text` turns a raw value into str: UTF-8 (RFC 6532) when it is valid UTF-8, else
  Latin-1, so every value is valid Unicode (safe for JSON and SQLite) and no byte is lost
  for ASCII/UTF-8 mail. Nothing here RFC 2047-decodes: IMAP returns header text as it is
  (RFC 9051 §7.5.2).
- `parse_content_type`, `parse_disposition`, `parse_language`, `parse_encoding` read the
  MIME fields (RFC 2045 §5.1 and §6.1, RFC 2183 §2, RFC 3282 §2) and `merge_rfc2231`
  joins parameter continuations (RFC 2231 §3-§4, RFC 9051 §7.5.2 "body parameter").

Every function accepts any input and never raises; malformed text yields `None` or a
best-effort value.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote_to_bytes

# RFC 5322 §3.2.2 FWS, as it is met in unfolded values.
_WSP = " \t\r\n"

# RFC 2045 §5.1: token := 1*<any (US-ASCII) CHAR except SPACE, CTLs, or tspecials>
_TOKEN_CLASS = r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+"
_TOKEN = re.compile(_TOKEN_CLASS)

# A parameter value that should have been quoted but was not (e.g. `boundary=----=_Part`):
# read up to the next separator, as receivers commonly do.
_BARE_VALUE = re.compile(r'[^;\s()"]+')

# Fast paths for the common shapes (no comments, no quoted-pairs); anything else is read by
# the general scanner, which gives the same result for these.
_MEDIA_TYPE = re.compile(rf"[ \t\r\n]*({_TOKEN_CLASS})[ \t\r\n]*/[ \t\r\n]*({_TOKEN_CLASS})")
_PARAMETER = re.compile(
    rf"[ \t\r\n]*;[ \t\r\n]*({_TOKEN_CLASS})[ \t\r\n]*=[ \t\r\n]*"
    r'(?:"([^"\\]*)"|([^;\s()"]+))[ \t\r\n]*'
)

# RFC 2231 §3: attribute "*" section ["*"]; the section number has no leading zeros, but we
# accept them (the order is what matters).
_SECTION = re.compile(r"^(.+?)\*([0-9]{1,4})(\*?)$")

# RFC 2231 §7: characters that need no %-encoding in an extended value (attribute-char).
_ATTRIBUTE_SAFE = "!#$&+^`{|}"

_CHARSET_NAME = re.compile(r"^[A-Za-z0-9._:+\-]{1,40}$")

_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii", ""})

# Bytes searched for the end of a header block before the rest of the range is searched.
_HEADER_WINDOW = 16384


def header_end(raw: bytes, start: int, end: int) -> int:
    """Offset just past the blank line that ends the header block beginning at `start`.

    RFC 5322 §2.1: a message is header fields, an empty line, then the body. Lines may end
    in CRLF or, in stored mail, a bare LF. A block that starts with an empty line has an
    empty header. When there is no empty line before `end`, the whole range is header and
    the body is empty (RFC 9051 §6.4.5.1: "a message that has no body and no blank line").
    """
    if start >= end:
        return end
    first = raw[start]
    if first == 0x0A:
        return start + 1
    if first == 0x0D and start + 1 < end and raw[start + 1] == 0x0A:
        return start + 2
    # Headers are short and bodies long: look in a first window before searching the rest,
    # so that neither kind of blank line makes us scan a whole body for the other kind.
    window_end = min(end, start + _HEADER_WINDOW)
    found = _blank_line(raw, start, window_end)
    if found < 0 and window_end < end:
        found = _blank_line(raw, window_end - 2, end)
    return end if found < 0 else found


def _blank_line(raw: bytes, start: int, end: int) -> int:
    """Offset after the first LF LF or LF CR LF lying wholly in raw[start:end], or -1."""
    crlf = raw.find(b"\n\r\n", start, end)
    # A bare-LF blank line can only win if it starts before the CRLF one.
    lf = raw.find(b"\n\n", start, end if crlf < 0 else crlf + 2)
    if lf >= 0:
        return lf + 2
    if crlf >= 0:
        return crlf + 3
    return -1


def parse_fields(raw: bytes, start: int, end: int, wanted: frozenset[bytes]) -> dict[bytes, bytes]:
    """The first occurrence of each wanted field in raw[start:end], unfolded.

    Keys are lower-case field names (`b"content-type"`); values are the raw bytes after the
    colon with line breaks removed (RFC 5322 §2.2.3 unfolding: CRLF before WSP is deleted,
    the WSP kept) and leading/trailing WSP stripped. Lines without a colon, or whose name
    holds a space or control character (an mbox "From " line), are skipped together with
    their continuation lines. RFC 5322 §3.6 allows most fields once; for the few that
    appear twice anyway the first one wins, as in Dovecot.
    """
    found: dict[bytes, bytes] = {}
    name: bytes | None = None
    pieces: list[bytes] = []
    for line in raw[start:end].split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if name is not None:
                pieces.append(line)
            continue
        if name is not None:
            found[name] = _unfold(pieces)
            name = None
        colon = line.find(b":")
        if colon <= 0:
            continue
        key = line[:colon].rstrip(b" \t").lower()
        if key in wanted and key not in found:
            name = key
            pieces = [line[colon + 1 :]]
    if name is not None:
        found[name] = _unfold(pieces)
    return found


def _unfold(pieces: list[bytes]) -> bytes:
    if len(pieces) == 1:
        piece = pieces[0]
        return (piece[:-1] if piece.endswith(b"\r") else piece).strip(b" \t")
    return b"".join(p[:-1] if p.endswith(b"\r") else p for p in pieces).strip(b" \t")


def decode_text(value: bytes) -> str:
    """Raw header bytes as str: UTF-8 (RFC 6532) when valid, else Latin-1 (byte = code point)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def decode_text_codec(value: bytes) -> tuple[str, str]:
    """Like `decode_text`, also naming the codec used, so a value can be encoded back."""
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return value.decode("latin-1"), "latin-1"


# --- RFC 5322 §3.2 lexical pieces over str ----------------------------------------------


def skip_cfws(s: str, i: int) -> int:
    """Skip RFC 5322 §3.2.2 CFWS (whitespace and nested comments) from `i`."""
    n = len(s)
    while i < n:
        c = s[i]
        if c in _WSP:
            i += 1
        elif c == "(":
            i = read_comment(s, i)[1]
        else:
            break
    return i


def read_comment(s: str, i: int) -> tuple[str, int]:
    """RFC 5322 §3.2.2 comment at s[i] == "(": its text (quoting removed) and the next offset.

    Comments nest; an unterminated comment runs to the end of the value.
    """
    n = len(s)
    depth = 0
    out: list[str] = []
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if c == "(":
            depth += 1
            if depth > 1:
                out.append(c)
        elif c == ")":
            depth -= 1
            if depth == 0:
                return "".join(out), i + 1
            out.append(c)
        else:
            out.append(c)
        i += 1
    return "".join(out), n


def read_quoted(s: str, i: int) -> tuple[str, int]:
    """RFC 5322 §3.2.4 quoted-string at s[i] == '"': its content unquoted, and the next offset.

    An unterminated quoted string runs to the end of the value.
    """
    n = len(s)
    close = s.find('"', i + 1)
    if close >= 0 and s.find("\\", i + 1, close) < 0:
        return s[i + 1 : close], close + 1
    out: list[str] = []
    i += 1
    while i < n:
        c = s[i]
        if c == "\\" and i + 1 < n:
            out.append(s[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), n


def read_token(s: str, i: int) -> tuple[str, int]:
    """RFC 2045 §5.1 token at `i` ("" when there is none)."""
    m = _TOKEN.match(s, i)
    if m is None:
        return "", i
    return m.group(), m.end()


# --- MIME fields ---------------------------------------------------------------------------


def parse_content_type(value: str) -> tuple[str, str, list[tuple[str, str]]] | None:
    """RFC 2045 §5.1 Content-Type: (TYPE, SUBTYPE, raw parameters), or None if invalid.

        content := "Content-Type" ":" type "/" subtype *(";" parameter)

    Type and subtype are upper-cased (matching is case-insensitive, RFC 2045 §5.1; RFC 9051
    §7.5.2 examples show them upper-case). Parameters are returned as written, in order,
    before RFC 2231 merging. None means "syntactically invalid", for which RFC 2045 §5.2
    recommends the text/plain default.
    """
    m = _MEDIA_TYPE.match(value)
    if m is not None:
        return m.group(1).upper(), m.group(2).upper(), parse_parameters(value, m.end())
    i = skip_cfws(value, 0)
    mtype, i = read_token(value, i)
    i = skip_cfws(value, i)
    if not mtype or i >= len(value) or value[i] != "/":
        return None
    i = skip_cfws(value, i + 1)
    subtype, i = read_token(value, i)
    if not subtype:
        return None
    return mtype.upper(), subtype.upper(), parse_parameters(value, i)


def parse_parameters(value: str, i: int) -> list[tuple[str, str]]:
    """The `*(";" parameter)` tail of a MIME field from offset `i` (RFC 2045 §5.1).

        parameter := attribute "=" value
        value := token / quoted-string

    Lenient as receivers must be: junk between parameters is skipped up to the next ";",
    an unquoted value may hold tspecials, and a parameter without "=" is dropped.
    """
    params: list[tuple[str, str]] = []
    n = len(value)
    while True:
        m = _PARAMETER.match(value, i)
        if m is not None:
            quoted = m.group(2)
            params.append((m.group(1), m.group(3) if quoted is None else quoted))
            i = m.end()
            continue
        i = skip_cfws(value, i)
        if i >= n:
            return params
        if value[i] != ";":
            i = value.find(";", i)
            if i < 0:
                return params
        i = skip_cfws(value, i + 1)
        name, i = read_token(value, i)
        i = skip_cfws(value, i)
        if not name or i >= n or value[i] != "=":
            continue
        i = skip_cfws(value, i + 1)
        if i < n and value[i] == '"':
            text, i = read_quoted(value, i)
        else:
            m = _BARE_VALUE.match(value, i)
            if m is None:
                text = ""
            else:
                text, i = m.group(), m.end()
        params.append((name, text))


def parse_disposition(value: str) -> tuple[str, list[tuple[str, str]]] | None:
    """RFC 2183 §2 Content-Disposition: (TYPE upper-cased, raw parameters), or None."""
    i = skip_cfws(value, 0)
    kind, i = read_token(value, i)
    if not kind:
        return None
    return kind.upper(), parse_parameters(value, i)


def parse_language(value: str) -> list[str] | None:
    """RFC 3282 §2 Content-Language: the language tags, or None when there are none.

    Content-Language = "Content-Language" ":" 1#Language-tag
    """
    tags: list[str] = []
    i = 0
    n = len(value)
    while i < n:
        i = skip_cfws(value, i)
        tag, j = read_token(value, i)
        if tag:
            tags.append(tag)
        comma = value.find(",", j)
        if comma < 0:
            break
        i = comma + 1
    return tags or None


def parse_encoding(value: str) -> str:
    """RFC 2045 §6.1 Content-Transfer-Encoding mechanism, upper-cased.

    An empty or unreadable value is treated as absent: "7BIT" (RFC 2045 §6.1 default;
    RFC 9051 §9 body-fld-enc).
    """
    token, _ = read_token(value, skip_cfws(value, 0))
    return token.upper() if token else "7BIT"


# --- RFC 2231 ------------------------------------------------------------------------------


def merge_rfc2231(params: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Join RFC 2231 §3 continuations and upper-case parameter names.

    RFC 9051 §7.5.2 (body parameter): servers SHOULD join "baz*0", "baz*1" into "baz", and
    extended sections "foo*0*", "foo*1*" into one "foo*" converted to UTF-8. The joined
    extended value stays in RFC 2231 §4 form (`charset'language'%XX...`) so clients decode
    it as they already do; its charset is converted to UTF-8 when Python knows the charset,
    and kept as written otherwise. Unextended sections in an extended group are %-encoded.
    """
    if not any("*" in name for name, _ in params):
        return [(name.upper(), value) for name, value in params]
    groups: dict[str, list[tuple[int, bool, str]]] = {}
    order: list[tuple[str, str, str]] = []  # ("plain", NAME, value) or ("group", key, base)
    for name, value in params:
        m = _SECTION.match(name)
        if m is None:
            order.append(("plain", name, value))
            continue
        key = m.group(1).lower()
        if key not in groups:
            groups[key] = []
            order.append(("group", key, m.group(1)))
        groups[key].append((int(m.group(2)), m.group(3) == "*", value))
    merged: list[tuple[str, str]] = []
    for kind, name, value in order:
        if kind == "plain":
            if name.endswith("*"):
                value = extended_to_utf8(value)
            merged.append((name.upper(), value))
            continue
        sections = sorted(groups[name], key=lambda s: s[0])
        base = value.upper()
        if not any(extended for _, extended, _ in sections):
            merged.append((base, "".join(text for _, _, text in sections)))
            continue
        pieces = [] if sections[0][1] else ["''"]
        for _, extended, text in sections:
            pieces.append(text if extended else quote(text.encode("utf-8"), safe=_ATTRIBUTE_SAFE))
        merged.append((base + "*", extended_to_utf8("".join(pieces))))
    return merged


def extended_to_utf8(value: str) -> str:
    """An RFC 2231 §4 extended value re-encoded as UTF-8, or unchanged if that is not possible."""
    parts = value.split("'", 2)
    if len(parts) != 3:
        return value
    charset, language, encoded = parts
    if charset.lower() in _UTF8_NAMES or not _CHARSET_NAME.match(charset):
        return value
    try:
        text = unquote_to_bytes(encoded).decode(charset)
    except (LookupError, UnicodeError, ValueError, TypeError):
        return value
    return "UTF-8'" + language + "'" + quote(text.encode("utf-8"), safe=_ATTRIBUTE_SAFE)

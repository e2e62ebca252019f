"""Pure functions over the message and the envelope: line endings, the Received header,
address checks. No I/O, no clock (the caller passes the time).
"""

from __future__ import annotations

import email.utils
import ipaddress
import re
from collections.abc import Sequence
from datetime import datetime

# Any line ending, bare or not; each becomes CRLF.
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")

# RFC 5321 §4.1.2: Domain = sub-domain *("." sub-domain); sub-domain = Let-dig [Ldh-str];
# Let-dig = ALPHA / DIGIT; Ldh-str = *( ALPHA / DIGIT / "-" ) Let-dig
_SUB_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_SUB_DOMAIN}(?:\.{_SUB_DOMAIN})*")
# RFC 5321 §4.1.3: address-literal = "[" ( IPv4-address-literal / IPv6-address-literal /
# General-address-literal ) "]"; only its printable, bracket-free form is checked here.
_ADDRESS_LITERAL = re.compile(r"\[[!-Z^-~]+\]")
# RFC 5322 §3.2.2: ctext is printable ASCII except "(", ")" and "\".
_NOT_CTEXT = re.compile(r"[^!-'*-\[\]-~]")

FOLD_COLUMN = 78  # RFC 5322 §2.1.1: lines SHOULD be no more than 78 characters


def normalize_line_endings(content: bytes) -> bytes:
    """Every bare CR and bare LF becomes CRLF; the content ends with CRLF.

    SMTP smuggling (CVE-2023-51764 class): only <CRLF>.<CRLF> ends DATA here, but a
    downstream server may also accept <LF>.<LF>, <CR>.<CR> or mixed forms. With every
    line ending canonical, no such sequence survives into what we store or relay: a
    relaying client dot-stuffs every line starting with "." (RFC 5321 §4.5.2).
    RFC 3030 §2 also asks for canonical CRLF text in BDAT chunks.
    """
    normalized = _LINE_ENDING.sub(b"\r\n", content)
    if normalized and not normalized.endswith(b"\r\n"):
        normalized += b"\r\n"
    return normalized


def has_control_characters(text: str) -> bool:
    """True if `text` holds a C0 control character or DEL (a CR or LF among them)."""
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def path_is_closed(arg: str) -> bool:
    """False when `arg` opens a path with "<" but never closes it with ">".

    RFC 5321 §4.1.2: Path = "<" [ A-d-l ":" ] Mailbox ">". aiosmtpd's address parser
    accepts "<alice@example.test" as if the ">" were there; we refuse it. A ">" inside a
    quoted local part (RFC 5321 §4.1.2 Quoted-string) does not close the path.
    """
    text = arg.lstrip()
    if not text.startswith("<"):
        return True
    quoted = escaped = False
    for char in text[1:]:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == ">" and not quoted:
            return True
    return False


def address_literal(ip: str) -> str:
    """RFC 5321 §4.1.3: "[192.0.2.1]" or "[IPv6:2001:db8::1]"."""
    try:
        parsed = ipaddress.ip_address(ip)
    except ValueError:
        return "[" + _NOT_CTEXT.sub("?", ip) + "]"
    if parsed.version == 6:
        return f"[IPv6:{parsed.compressed}]"
    return f"[{parsed}]"


def with_protocol(*, extended: bool, tls: bool, authenticated: bool, smtputf8: bool) -> str:
    """The Received "with" keyword (RFC 3848 §2; RFC 6531 §4.3 for the UTF8SMTP family).

    "S" means TLS, "A" means AUTH; both exist only for ESMTP (a HELO session says SMTP).
    """
    if not extended:
        return "SMTP"
    base = "UTF8SMTP" if smtputf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def _from_clause(helo: str, ip: str) -> str:
    """RFC 5321 §4.4: From-domain = "FROM" FWS Extended-Domain, with the EHLO name and
    the address literal of the TCP peer. A HELO name that is neither a Domain nor an
    address literal goes into a comment (the CFWS before "by"), printable ASCII only."""
    literal = address_literal(ip)
    if _DOMAIN.fullmatch(helo) or _ADDRESS_LITERAL.fullmatch(helo):
        return f"from {helo} ({literal})"
    shown = _NOT_CTEXT.sub("?", helo[:255])
    return f"from {literal} ({literal}) (helo={shown})"


def received_header(
    *,
    helo: str,
    peer_ip: str,
    hostname: str,
    protocol: str,
    tls: str | None,
    transaction_id: str,
    recipients: Sequence[str],
    now: datetime,
) -> bytes:
    """Our trace line (RFC 5321 §4.4), folded at 78 columns, ending with CRLF.

    `Received: from <helo> ([<ip>]) by <hostname> (pymta) with <protocol> (<tls>)
    id <id> for <rcpt>; <date>` — "for" only with exactly one recipient (RFC 5321 §4.4:
    it MUST hold exactly one path). `now` must be timezone-aware: RFC 5321 §4.4 asks for
    local time with a numeric offset.
    """
    clauses = [_from_clause(helo, peer_ip), f"by {hostname} (pymta)"]
    clauses.append(f"with {protocol}" + (f" ({_NOT_CTEXT.sub('?', tls)})" if tls else ""))
    clauses.append(f"id {transaction_id}")
    if len(recipients) == 1 and not has_control_characters(recipients[0]):
        clauses.append(f"for <{recipients[0]}>")
    clauses[-1] += ";"
    clauses.append(email.utils.format_datetime(now))
    return fold("Received:", clauses).encode("utf-8", "surrogateescape")


def fold(name: str, words: Sequence[str]) -> str:
    """A header field `name` whose value is `words`, folded between words (RFC 5322
    §2.2.3) so each line stays within 78 columns where a word allows; CRLF at the end."""
    lines = [name]
    for word in words:
        if len(lines[-1]) + 1 + len(word) <= FOLD_COLUMN or lines[-1] == name:
            lines[-1] += " " + word
        else:
            lines.append("\t" + word)
    return "\r\n".join(lines) + "\r\n"


def message_id(message: bytes, *, max_scan_bytes: int = 65536) -> str | None:
    """The Message-ID header field's value (unfolded), for the log; None if absent."""
    head = message[:max_scan_bytes].split(b"\r\n\r\n", 1)[0]
    value: bytes | None = None
    for line in head.split(b"\r\n"):
        if value is not None:
            if line[:1] in (b" ", b"\t"):  # RFC 5322 §2.2.3 folded continuation
                value += b" " + line.strip()
                continue
            break
        name, colon, rest = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            value = rest.strip()
    if value is None:
        return None
    return value.strip().decode("utf-8", "replace")[:250]

"""The DSN parameters of MAIL and RCPT (RFC 3461 §4): their grammar, checked. No I/O.

MAIL takes RET and ENVID, RCPT takes NOTIFY and ORCPT. The server takes these tokens out
of the command line before aiosmtpd sees it (aiosmtpd upper-cases every parameter, and
ENVID and ORCPT are case-sensitive: RFC 3461 §5.2.1 (a), (d)) and hands it the rest.

What is kept: RET and the NOTIFY keywords upper-cased (they may come in any case: RFC 3461
§4.1 b., §4.3); ENVID and ORCPT exactly as received, still xtext (they are relayed so, and
decoded only for reports: `queue.dsn`). A value that breaks the grammar, or a parameter
given twice, raises `DsnParameterError`, answered 501 5.5.4 (RFC 3461 §4.5, §5.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pymta.queue.model import RcptDsn
from pymta.smtp import codes
from pymta.smtp.codes import Reply

__all__ = [
    "DsnParameterError",
    "MailDsn",
    "RcptDsn",
    "envid_value",
    "mail_parameters",
    "notify_value",
    "orcpt_value",
    "rcpt_parameters",
    "ret_value",
    "xtext",
]

# RFC 3461 §4.4: "The ENVID parameter MAY be up to 100 characters in length"; §4.2: "The
# entire ORCPT parameter MAY be up to 500 characters"; §5.4 makes both the minimum a server
# must accept. We count the value as received (xtext), after the "=".
MAX_ENVID_CHARS = 100
MAX_ORCPT_CHARS = 500

MAIL_KEYWORDS = frozenset({"RET", "ENVID"})
RCPT_KEYWORDS = frozenset({"NOTIFY", "ORCPT"})

_NOTIFY_KEYWORDS = ("SUCCESS", "FAILURE", "DELAY")
_HEX_UPPER = frozenset("0123456789ABCDEF")
# RFC 5322 §3.2.3 atext, less "=" (RFC 5321 §4.1.2: no "=" in an esmtp-value).
_ATEXT = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/?^_`{|}~"
)


class DsnParameterError(ValueError):
    """A DSN parameter the client got wrong: `reply` is the answer, `detail` for the log."""

    def __init__(self, reply: Reply, detail: str) -> None:
        super().__init__(detail)
        self.reply = reply
        self.detail = detail


@dataclass(frozen=True)
class MailDsn:
    """RFC 3461 §4.3 RET ("FULL" / "HDRS") and §4.4 ENVID (xtext as received) of a MAIL."""

    ret: str | None = None
    envid: str | None = None


def _bad(detail: str) -> DsnParameterError:
    return DsnParameterError(codes.DSN_PARAMETER_SYNTAX, detail)


def xtext(value: str) -> str:
    """Check `value` against the xtext grammar and return what it encodes.

    RFC 3461 §4:
        xtext = *( xchar / hexchar )
        xchar = any ASCII CHAR between "!" (33) and "~" (126) inclusive,
                except for "+" and "=".
        hexchar = ASCII "+" immediately followed by two upper case
                  hexadecimal digits

    Raises `DsnParameterError` for anything else (a lower-case hex digit included). The
    decoded octets are returned as Latin-1, one character per octet, for the callers'
    "printable US-ASCII" checks.
    """
    decoded: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "+":
            pair = value[i + 1 : i + 3]
            if len(pair) != 2 or not all(c in _HEX_UPPER for c in pair):
                raise _bad("'+' not followed by two upper-case hex digits")
            decoded.append(chr(int(pair, 16)))
            i += 3
            continue
        if not "!" <= char <= "~" or char == "=":
            raise _bad("character outside xtext")
        decoded.append(char)
        i += 1
    return "".join(decoded)


def _printable_ascii(decoded: str) -> bool:
    """RFC 3461 §4.2, §4.4: "printable (graphic and white space) characters from the
    US-ASCII repertoire" once decoded: SP through "~"."""
    return all(" " <= c <= "~" for c in decoded)


def ret_value(value: str) -> str:
    """RFC 3461 §4.3: RET = "FULL" / "HDRS", in any case; returned upper-cased."""
    upper = value.upper()
    if upper not in ("FULL", "HDRS"):
        raise _bad("RET is neither FULL nor HDRS")
    return upper


def envid_value(value: str) -> str:
    """RFC 3461 §4.4: envid-parameter = "ENVID=" xtext; at most 100 characters, printable
    US-ASCII once decoded. Returned as received (xtext, case kept: RFC 3461 §5.2.1 (a))."""
    if not value:
        raise _bad("ENVID without a value")  # RFC 3461 §4.4: it MUST have a value
    if len(value) > MAX_ENVID_CHARS:
        raise _bad("ENVID longer than 100 characters")
    if not _printable_ascii(xtext(value)):
        raise _bad("ENVID decodes to something other than printable US-ASCII")
    return value


def notify_value(value: str) -> tuple[str, ...]:
    """RFC 3461 §4.1:
        notify-esmtp-value = "NEVER" / 1#notify-list-element
        notify-list-element = "SUCCESS" / "FAILURE" / "DELAY"

    Keywords in any case (note b.), returned upper-cased in the order given, each once;
    NEVER only alone (note a.). RFC 822's "#" allows empty elements ("SUCCESS,,DELAY"),
    as Postfix does, but at least one keyword must be there.
    """
    elements = [e.upper() for e in value.split(",") if e]
    if elements == ["NEVER"]:
        return ("NEVER",)
    if not elements:
        raise _bad("NOTIFY without a keyword")
    if "NEVER" in elements:
        raise _bad("NOTIFY=NEVER together with other keywords")
    unknown = [e for e in elements if e not in _NOTIFY_KEYWORDS]
    if unknown:
        raise _bad("NOTIFY keyword unknown")
    return tuple(dict.fromkeys(elements))


def orcpt_value(value: str) -> str:
    """RFC 3461 §4.2:
        orcpt-parameter = "ORCPT=" original-recipient-address
        original-recipient-address = addr-type ";" xtext
        addr-type = atom

    At most 500 characters; the address printable US-ASCII once decoded, and not empty.
    Returned exactly as received (RFC 3461 §5.2.1 (d): "MUST NOT change the case").
    """
    if len(value) > MAX_ORCPT_CHARS:
        raise _bad("ORCPT longer than 500 characters")
    addr_type, semicolon, encoded = value.partition(";")
    if not semicolon or not addr_type or not all(c in _ATEXT for c in addr_type):
        raise _bad("ORCPT without an addr-type atom and ';'")
    address = xtext(encoded)
    if not address.strip():
        raise _bad("ORCPT without an address")
    if not _printable_ascii(address):
        raise _bad("ORCPT decodes to something other than printable US-ASCII")
    return value


def _take(tokens: Sequence[str], keywords: frozenset[str]) -> tuple[dict[str, str], list[str]]:
    """The DSN parameters among `tokens` (keyword upper-cased → value as received), and the
    other tokens, unchanged and in order. RFC 3461 §4.5: each at most once."""
    found: dict[str, str] = {}
    others: list[str] = []
    for token in tokens:
        keyword, equals, value = token.partition("=")
        keyword = keyword.upper()  # RFC 5321 §2.4: keywords are case-insensitive
        if keyword not in keywords:
            others.append(token)
            continue
        if keyword in found:
            raise DsnParameterError(codes.DSN_PARAMETER_REPEATED, f"{keyword} given twice")
        if not equals:
            raise _bad(f"{keyword} without a value")  # RFC 3461 §4.1-§4.4: MUST have one
        found[keyword] = value
    return found, others


def mail_parameters(tokens: Sequence[str]) -> tuple[MailDsn, list[str]]:
    """RET and ENVID among the MAIL parameters `tokens`; and the other tokens."""
    found, others = _take(tokens, MAIL_KEYWORDS)
    ret = found.get("RET")
    envid = found.get("ENVID")
    return (
        MailDsn(
            ret=ret_value(ret) if ret is not None else None,
            envid=envid_value(envid) if envid is not None else None,
        ),
        others,
    )


def rcpt_parameters(tokens: Sequence[str]) -> tuple[RcptDsn, list[str]]:
    """NOTIFY and ORCPT among the RCPT parameters `tokens`; and the other tokens."""
    found, others = _take(tokens, RCPT_KEYWORDS)
    notify = found.get("NOTIFY")
    orcpt = found.get("ORCPT")
    return (
        RcptDsn(
            notify=notify_value(notify) if notify is not None else (),
            orcpt=orcpt_value(orcpt) if orcpt is not None else None,
        ),
        others,
    )

"""Delivery status notifications: bounces, delay warnings and success reports, and
mail-loop detection.

Pure functions over the queue's values and the message bytes; no I/O, no clock (the caller
passes `now`). A DSN is a multipart/report; report-type=delivery-status (RFC 6522 §3,
RFC 3464 §2) of three parts: a plain-text explanation, the message/delivery-status fields,
and the original message's headers (text/rfc822-headers) or, for a failure with RET=FULL,
the whole message (message/rfc822) (RFC 3461 §6.2). Success reports ("delivered",
"relayed", "expanded": RFC 3464 §2.3.3) always carry the headers only (RFC 3461 §4.3).

Conventions the callers rely on:
- `entry.envid` and `QueueRecipient.orcpt` hold the ESMTP parameters as they came on the
  wire (xtext, RFC 3461 §4: "addr-type;xtext" for ORCPT), so the remote transport can relay
  them unchanged; they are decoded here (RFC 3461 §6.3 (a), (d)).
- A recipient's `last_error` is either an SMTP reply ("550 5.1.1 User unknown"), a reply
  from a remote server as `remote_reply_detail(host, reply)` formats it (which yields a
  Remote-MTA field), the scheduler's "expired; last error: ...", or plain text from a local
  transport.
- The DSN must be sent with the null reverse-path and NOTIFY=NEVER (RFC 3461 §6.1,
  RFC 3464 §2): enqueue it with sender "" so that it can never bounce itself.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from pymta.mime.headers import header_end
from pymta.queue.model import QueueEntry, QueueRecipient, SuccessAction

# RFC 5321 §6.3: a loop is assumed only after "normally at least 100" Received fields
# (Postfix's hopcount_limit is 50; legitimate mail through many relays exists, and a loop
# reaches 100 as surely as 50).
DEFAULT_HOP_LIMIT = 100

# The error the queue records for a message that has looped (RFC 3463 X.4.6 "Routing loop
# detected"); `build_bounce` reports its status code.
HOP_LIMIT_ERROR = "554 5.4.6 Too many hops: mail forwarding loop detected"

# Postfix's bounce_size_limit: a RET=FULL original larger than this is returned as headers
# only (RFC 3461 §6.2 allows it).
DEFAULT_MAX_FULL_BYTES = 50_000

# A DSN field value is *text on one logical line (RFC 3464 §2.1.1); keep remote text short.
_MAX_FIELD_CHARS = 900
_FOLD_COLUMN = 78

_BOUNCE_SUBJECT = "Undelivered Mail Returned to Sender"
_DELAY_SUBJECT = "Delayed Mail (still being retried)"
_SUCCESS_SUBJECT = "Successful Mail Delivery Report"

# A failure reply code (RFC 5321 §4.2: 4yz, 5yz) not inside a longer number, then maybe an
# enhanced status code (RFC 3463 §2: class "." subject "." detail, 1-3 digits each). A 2yz
# is never the reason for a DSN, and "after 250 s" must not read as one.
_REPLY = re.compile(r"(?<![\d.])([45])\d\d(?=[ \-]|$)(?:[ \-]+([245])\.(\d{1,3})\.(\d{1,3})\b)?")
# Postfix's way of naming the server that answered, which `remote_reply_detail` writes
# (the remote transport names it "host[ip]:port").
_REMOTE = re.compile(r"\bhost ([A-Za-z0-9.\-]+)(?:\[[^\]]*\])?(?::\d+)? said: ")
# A positive completion reply (RFC 5321 §4.2.1: 2yz) not inside a longer number.
_SUCCESS_REPLY = re.compile(r"(?<![\d.])2\d\d(?=[ \-]|$)")
_LINE_ENDING = re.compile(rb"\r\n|\r|\n")
_HEX = frozenset("0123456789ABCDEFabcdef")
_RECEIVED = re.compile(rb"received[ \t]*:", re.IGNORECASE)


def remote_reply_detail(host: str, reply: str) -> str:
    """The `last_error` text for a reply from a remote server: "host H said: REPLY".

    `build_bounce` reads the host back into a Remote-MTA field (RFC 3461 §6.3 (h)).
    """
    return f"host {host} said: {reply}"


def status_from_reply(text: str) -> str:
    """The enhanced status code (RFC 3463) of the first 4yz/5yz SMTP reply in `text`.

    "550 5.1.1 User unknown" → "5.1.1"; a reply without one → "4.0.0" or "5.0.0" by its
    class (RFC 3461 §6.3 (g)); an enhanced code whose class differs from the reply's is
    ignored (RFC 2034 §4); "" when `text` holds no reply at all.
    """
    match = _REPLY.search(text)
    if match is None:
        return ""
    reply_class, status_class, subject, detail = match.groups()
    if status_class == reply_class:
        return f"{status_class}.{int(subject)}.{int(detail)}"  # no leading zeros, §2.3.4
    return f"{reply_class}.0.0"


def too_many_hops(message: bytes, limit: int = DEFAULT_HOP_LIMIT) -> bool:
    """True when the message's header holds `limit` or more Received fields (RFC 5321 §6.3).

    Postfix's test is the same (hop_count >= hopcount_limit). Only the header counts: a
    quoted message in the body is not a hop.
    """
    head = message[: header_end(message, 0, len(message))]
    count = 0
    for line in _LINE_ENDING.split(head):
        if _RECEIVED.match(line):
            count += 1
            if count >= limit:
                return True
    return False


def xtext_decode(value: str) -> str:
    """RFC 3461 §4: "+" and two upper-case hex digits stand for one octet.

    The octets are read as UTF-8 (invalid sequences become U+FFFD). A "+" not followed by
    two hex digits is kept as it is: lenient, never raises.
    """
    octets = bytearray()
    i = 0
    while i < len(value):
        hexpair = value[i + 1 : i + 3]
        if value[i] == "+" and len(hexpair) == 2 and all(c in _HEX for c in hexpair):
            octets.append(int(hexpair, 16))
            i += 3
        else:
            octets.extend(value[i].encode("utf-8", "replace"))
            i += 1
    return octets.decode("utf-8", "replace")


def xtext_encode(value: str) -> str:
    """RFC 3461 §4: "+", "=" and characters outside "!".."~" become "+HH" (UTF-8 octets)."""
    out: list[str] = []
    for octet in value.encode("utf-8"):
        if 0x21 <= octet <= 0x7E and octet not in (0x2B, 0x3D):
            out.append(chr(octet))
        else:
            out.append(f"+{octet:02X}")
    return "".join(out)


def orcpt_for(address: str) -> str:
    """The ORCPT value ("addr-type;xtext") we add for a recipient the client gave none for.

    RFC 3461 §5.2.1 (d) allows it and says it MUST hold the address from the RCPT command.
    An ASCII address is "rfc822" (RFC 3461 §9.1); one with UTF-8 is RFC 6533 §3 "utf-8",
    whose utf-8-addr-xtext form is 7-bit, so it can be relayed to any DSN server.
    """
    if all(0x20 <= ord(c) <= 0x7E for c in address):
        return "rfc822;" + xtext_encode(address)
    return "utf-8;" + _utf8_addr_xtext(address)


def notify_allows(recipient: QueueRecipient, event: str) -> bool:
    """Whether `recipient` wants a report of `event` ("SUCCESS", "FAILURE", "DELAY").

    RFC 3461 §4.1: keywords in any case; no NOTIFY means FAILURE and DELAY (so never a
    success report: §5.2.2 (e), §5.2.3 (c)); NEVER means nothing.
    """
    notify = {n.strip().upper() for n in recipient.notify}
    if not notify:
        return event in ("FAILURE", "DELAY")
    return "NEVER" not in notify and event in notify


@dataclass(frozen=True)
class _Report:
    """What differs between a bounce, a delay warning and a success report."""

    subject: str
    action: str  # RFC 3464 §2.3.3
    default_status: str
    intro: str
    full_allowed: bool
    will_retry_until: float | None = None
    # Success reports: the recipient's line in the text part and its Diagnostic-Code when
    # no reply from a server says more (our own words: never a mailbox an alias leads to).
    success_text: str | None = None


def build_bounce(
    entry: QueueEntry,
    failed: Sequence[QueueRecipient],
    original: bytes,
    *,
    reporting_mta: str,
    postmaster: str,
    now: float,
    last_attempt: float | None = None,
    max_full_bytes: int = DEFAULT_MAX_FULL_BYTES,
) -> bytes | None:
    """The non-delivery report for `failed`, or None when none may be sent.

    None for the null sender (RFC 5321 §4.5.5: never a DSN to "<>") and when no failed
    recipient asked for failure notices (RFC 3461 §4.1: NOTIFY=NEVER, or a NOTIFY list
    without FAILURE); recipients that did not ask are left out (RFC 3461 §5.2.8).
    """
    if entry.sender == "":
        return None
    wanted = [r for r in failed if notify_allows(r, "FAILURE")]
    if not wanted:
        return None
    # RFC 3461 §4.3 / §6.2: the whole message only when RET=FULL; headers by default.
    full = (entry.ret or "").upper() == "FULL" and len(original) <= max_full_bytes
    attached = "your message is attached" if full else "the headers of your message are attached"
    report = _Report(
        subject=_BOUNCE_SUBJECT,
        action="failed",
        default_status="5.0.0",
        intro=(
            "I'm sorry to have to inform you that your message could not be delivered to "
            f"one or more recipients. The mail system gave up on the recipients below; "
            f"{attached}."
        ),
        full_allowed=full,
    )
    return _build(entry, wanted, original, report, reporting_mta, postmaster, now, last_attempt)


def build_delay_warning(
    entry: QueueEntry,
    delayed: Sequence[QueueRecipient],
    original: bytes,
    *,
    reporting_mta: str,
    postmaster: str,
    now: float,
    will_retry_until: float,
    last_attempt: float | None = None,
) -> bytes | None:
    """The "still trying" report for `delayed`, or None when none may be sent.

    Only recipients whose NOTIFY includes DELAY or who gave no NOTIFY (RFC 3461 §4.1 lets
    absence mean FAILURE,DELAY; Postfix warns too) are reported; never to the null sender.
    """
    if entry.sender == "":
        return None
    wanted = [r for r in delayed if notify_allows(r, "DELAY")]
    if not wanted:
        return None
    report = _Report(
        subject=_DELAY_SUBJECT,
        action="delayed",
        default_status="4.0.0",
        intro=(
            "#### THIS IS A WARNING ONLY. YOU DO NOT NEED TO RESEND YOUR MESSAGE. ####\n\n"
            "Your message could not be delivered yet to the recipients below. The mail "
            f"system will keep trying until {_date(will_retry_until)}."
        ),
        full_allowed=False,  # RFC 3461 §6.2: no failure reported, so headers only
        will_retry_until=will_retry_until,
    )
    return _build(entry, wanted, original, report, reporting_mta, postmaster, now, last_attempt)


_SUCCESS_REPORTS: dict[SuccessAction, _Report] = {
    # RFC 3461 §5.2.3 (a): final delivery into a mailbox.
    "delivered": _Report(
        subject=_SUCCESS_SUBJECT,
        action="delivered",
        default_status="2.0.0",
        intro=(
            "Your message was delivered to the recipients below, as you asked. You will "
            "receive no further notices about them."
        ),
        full_allowed=False,
        success_text="delivered to mailbox",
    ),
    # RFC 3461 §5.2.2 (b): handed to a server that does not offer DSN.
    "relayed": _Report(
        subject=_SUCCESS_SUBJECT,
        action="relayed",
        default_status="2.0.0",
        intro=(
            "Your message was passed on to the recipients' mail systems below, as you asked "
            "to be told. Those systems do not send delivery notices, so you may receive no "
            "further notice about these recipients, or only one of failure."
        ),
        full_allowed=False,
        success_text="relayed to a mail system that sends no delivery notices",
    ),
    # RFC 3461 §5.2.7.3 (c): an alias with several destinations.
    "expanded": _Report(
        subject=_SUCCESS_SUBJECT,
        action="expanded",
        default_status="2.0.0",
        intro=(
            "Your message was delivered to the addresses below, which forward it to several "
            "destinations. You will receive no notice of success for those destinations."
        ),
        full_allowed=False,
        success_text="alias expanded",
    ),
}


def build_success(
    entry: QueueEntry,
    succeeded: Sequence[QueueRecipient],
    original: bytes,
    *,
    action: SuccessAction,
    reporting_mta: str,
    postmaster: str,
    now: float,
) -> bytes | None:
    """A success report (RFC 3464 Action: `action`) for `succeeded`, or None when none may
    be sent.

    Only recipients whose NOTIFY includes SUCCESS are reported (RFC 3461 §5.2.3 (b), (c),
    §5.2.8); never to the null sender (RFC 3461 §5.2). A recipient's `last_error` may hold
    the reply of the server it was relayed to (`remote_reply_detail`), for Remote-MTA and
    Diagnostic-Code. RET does not apply: headers only (RFC 3461 §4.3, §6.2).
    """
    if entry.sender == "":
        return None
    wanted = [r for r in succeeded if notify_allows(r, "SUCCESS")]
    if not wanted:
        return None
    report = _SUCCESS_REPORTS[action]
    return _build(entry, wanted, original, report, reporting_mta, postmaster, now, None)


def _build(
    entry: QueueEntry,
    recipients: Sequence[QueueRecipient],
    original: bytes,
    report: _Report,
    reporting_mta: str,
    postmaster: str,
    now: float,
    last_attempt: float | None,
) -> bytes:
    host = _ascii_text(reporting_mta)
    original = _LINE_ENDING.sub(b"\r\n", original)
    text_part = _text_part(recipients, report, host, _clean_text(postmaster))
    status_part = _status_part(entry, recipients, report, host, now, last_attempt)
    if report.full_allowed:
        returned = _returned_part(b"message/rfc822", b"Undelivered Message", original)
    else:
        headers = original[: header_end(original, 0, len(original))]
        if headers.endswith(b"\r\n\r\n"):
            headers = headers[:-2]  # the blank line ends the header block, not a field
        elif headers and not headers.endswith(b"\r\n"):
            headers += b"\r\n"
        returned = _returned_part(b"text/rfc822-headers", b"Undelivered Message Headers", headers)
    parts = [text_part, status_part, returned]
    boundary = _boundary(entry.id, now, parts)

    header = "".join(
        [
            f"From: Mail Delivery System <MAILER-DAEMON@{host}>\r\n",
            f"To: {_clean_text(entry.sender)}\r\n",
            f"Subject: {report.subject}\r\n",
            f"Date: {_date(now)}\r\n",
            f"Message-ID: <{_message_id_left(entry, recipients, report, now)}@{host}>\r\n",
            # RFC 3834 §5: a DSN is an automatic response; no auto-responder answers it.
            "Auto-Submitted: auto-replied\r\n",
            "MIME-Version: 1.0\r\n",
            # RFC 6522 §3: report-type names the second part's kind.
            "Content-Type: multipart/report; report-type=delivery-status;\r\n"
            f'\tboundary="{boundary}"\r\n',
            "\r\n",
            "This is a MIME-encapsulated message.\r\n",
        ]
    ).encode("utf-8", "replace")
    delimiter = b"\r\n--" + boundary.encode("ascii")
    body = b"".join(delimiter + b"\r\n" + part for part in parts)
    return header + body + delimiter + b"--\r\n"


def _text_part(
    recipients: Sequence[QueueRecipient], report: _Report, host: str, postmaster: str
) -> bytes:
    """RFC 6522 §3 (first part): a plain explanation a person can read."""
    paragraphs = [
        f"This is the mail system at host {host}.",
        report.intro,
        f"For further assistance, please send mail to <{postmaster}>. If you do so, please "
        "include this problem report.",
    ]
    lines: list[str] = []
    for paragraph in paragraphs:
        for piece in paragraph.split("\n"):
            lines.extend(textwrap.wrap(piece, 72) or [""])
        lines.append("")
    for rcpt in recipients:
        reason = _clean_text(rcpt.last_error) or "no reason recorded"
        if report.success_text is not None:
            remote = _REMOTE.search(rcpt.last_error)
            said = _SUCCESS_REPLY.search(rcpt.last_error)
            reason = report.success_text
            if remote is not None and said is not None:
                reply = _clean_text(rcpt.last_error[said.start() :])
                reason += f" (host {remote.group(1)} said: {reply})"
        lines.extend(
            textwrap.wrap(
                f"<{_clean_text(rcpt.address)}>: {reason}",
                72,
                subsequent_indent="    ",
                break_long_words=True,
            )
        )
    text = "\r\n".join(lines) + "\r\n"
    encoded = text.encode("utf-8", "replace")
    cte = "7bit" if encoded.isascii() else "8bit"
    head = (
        "Content-Description: Notification\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        f"Content-Transfer-Encoding: {cte}\r\n\r\n"
    )
    return head.encode("ascii") + encoded


def _status_part(
    entry: QueueEntry,
    recipients: Sequence[QueueRecipient],
    report: _Report,
    host: str,
    now: float,
    last_attempt: float | None,
) -> bytes:
    """RFC 3464 §2.1: per-message fields, then one block per recipient, blank-line apart."""
    per_message: list[str] = []
    if entry.envid is not None:
        # RFC 3461 §6.3 (a): the ENVID, xtext-decoded, case preserved.
        per_message.append(_field("Original-Envelope-Id", _ascii_text(xtext_decode(entry.envid))))
    # RFC 3461 §6.3 (b): "dns" and our fully-qualified name.
    per_message.append(_field("Reporting-MTA", f"dns; {host}"))
    per_message.append(_field("Arrival-Date", _date(entry.created)))
    blocks = ["".join(per_message)]
    attempted = now if last_attempt is None else last_attempt
    for rcpt in recipients:
        blocks.append("".join(_recipient_fields(rcpt, report, attempted)))
    # RFC 3464 §2.1: 7bit, always; every value above was reduced to printable ASCII.
    head = "Content-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"
    return (head + "\r\n".join(blocks)).encode("ascii")


def _recipient_fields(rcpt: QueueRecipient, report: _Report, attempted: float) -> list[str]:
    fields: list[str] = []
    if rcpt.orcpt is not None:
        # RFC 3461 §6.3 (d): from the ORCPT parameter, its xtext decoded.
        addr_type, semicolon, encoded = rcpt.orcpt.partition(";")
        if not semicolon:
            addr_type, encoded = "rfc822", rcpt.orcpt
        value = (
            f"{_ascii_text(addr_type.strip()) or 'unknown'}; {_ascii_text(xtext_decode(encoded))}"
        )
        fields.append(_field("Original-Recipient", value))
    # RFC 3461 §6.3 (e): the envelope address, case preserved (RFC 3464 §2.3.2).
    fields.append(_field("Final-Recipient", _final_recipient(rcpt.address)))
    fields.append(_field("Action", report.action))
    fields.append(_field("Status", _status(rcpt.last_error, report)))
    remote = _REMOTE.search(rcpt.last_error)
    if remote is not None:
        # RFC 3461 §6.3 (h): the server that gave the diagnostic.
        fields.append(_field("Remote-MTA", f"dns; {remote.group(1)}"))
    if report.success_text is not None:
        diagnostic = _success_diagnostic(rcpt.last_error, report.success_text)
    else:
        diagnostic = _diagnostic(rcpt.last_error)
    if diagnostic:
        fields.append(_field("Diagnostic-Code", diagnostic))
    fields.append(_field("Last-Attempt-Date", _date(attempted)))
    if report.will_retry_until is not None:
        # RFC 3464 §2.3.9: only in "delayed" DSNs.
        fields.append(_field("Will-Retry-Until", _date(report.will_retry_until)))
    return fields


def _status(last_error: str, report: _Report) -> str:
    """The recipient's Status (RFC 3464 §2.3.4), of the report's class when it must be."""
    if report.success_text is not None:
        return report.default_status  # RFC 3463 §3.1: 2.0.0, success
    status = status_from_reply(last_error)
    if not status and last_error.startswith("expired"):
        status = "4.4.7"  # RFC 3463 X.4.7: delivery time expired
    if report.action == "delayed" and not status.startswith("4."):
        return report.default_status
    # RFC 3464 §2.3.3 note: a "4" status with Action failed is right after expiry.
    return status or report.default_status


def _diagnostic(last_error: str) -> str:
    """RFC 3461 §6.3 (i): "smtp; <reply>" when the error holds one, else our own text."""
    match = _REPLY.search(last_error)
    if match is not None:
        return "smtp; " + _ascii_text(last_error[match.start() :])
    text = _ascii_text(last_error)
    return f"X-pymta; {text}" if text else ""


def _success_diagnostic(detail: str, text: str) -> str:
    """RFC 3461 §6.3 (i) for a success: the next server's 2yz reply, else our own words."""
    said = _SUCCESS_REPLY.search(detail) if _REMOTE.search(detail) else None
    if said is not None:
        return "smtp; " + _ascii_text(detail[said.start() :])
    return f"X-pymta; {text}"


def _final_recipient(address: str) -> str:
    """RFC 3464 §2.3.2 "rfc822; addr"; a UTF-8 address as RFC 6533 §3 "utf-8" xtext."""
    if all(0x20 <= ord(c) <= 0x7E for c in address):
        return f"rfc822; {address}"
    return "utf-8; " + _utf8_addr_xtext(address)


def _utf8_addr_xtext(address: str) -> str:
    """RFC 6533 §3 utf-8-addr-xtext: QCHARs as themselves, anything else as \\x{HEX}."""
    out = []
    for char in address:
        if 0x21 <= ord(char) <= 0x7E and char not in "+=\\":
            out.append(char)
        else:
            out.append(f"\\x{{{ord(char):X}}}")  # EmbeddedUnicodeChar
    return "".join(out)


def _returned_part(content_type: bytes, description: bytes, content: bytes) -> bytes:
    """The third part, its bytes as they were (RFC 6522 §3; RFC 2046 §5.2.1 encodings)."""
    if b"\x00" in content or any(len(line) > 998 for line in content.split(b"\r\n")):
        cte = b"binary"
    elif not content.isascii():
        cte = b"8bit"
    else:
        cte = b"7bit"
    return (
        b"Content-Description: " + description + b"\r\n"
        b"Content-Type: " + content_type + b"\r\n"
        b"Content-Transfer-Encoding: " + cte + b"\r\n\r\n" + content
    )


def _message_id_left(
    entry: QueueEntry, recipients: Sequence[QueueRecipient], report: _Report, now: float
) -> str:
    """Unique per report: one entry may get several reports of one kind in one second (a
    success report at DATA time and another from the queue), about other recipients."""
    about = hashlib.sha256("\n".join(r.address for r in recipients).encode()).hexdigest()[:8]
    return f"{entry.id}.{report.action}.{int(now)}.{about}"


def _boundary(entry_id: str, now: float, parts: Sequence[bytes]) -> str:
    """A boundary that occurs in no part (RFC 2046 §5.1.1), derived, not random."""
    seed = f"{entry_id}/{now!r}".encode()
    for attempt in range(1000):
        digest = hashlib.sha256(seed + str(attempt).encode()).hexdigest()[:24]
        boundary = f"=_dsn_{digest}"
        marker = b"--" + boundary.encode("ascii")
        if not any(marker in part for part in parts):
            return boundary
    raise AssertionError("no free MIME boundary")  # 1000 sha256 collisions: not this world


def _field(name: str, value: str) -> str:
    """One header-style field, folded at spaces so lines stay short (RFC 3464 §2.1.1)."""
    words = value.split(" ")
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) <= _FOLD_COLUMN:
            lines[-1] += " " + word
        else:
            lines.append(" " + word)
    return "\r\n".join(lines) + "\r\n"


def _clean_text(value: str) -> str:
    """One line of printable text (any script): no control character can end a field."""
    cleaned = "".join(" " if (ord(c) < 0x20 or ord(c) == 0x7F) else c for c in value)
    return " ".join(cleaned.split())[:_MAX_FIELD_CHARS]


def _ascii_text(value: str) -> str:
    """`_clean_text`, then non-ASCII as "?": message/delivery-status is 7bit (RFC 3464 §2.1)."""
    return "".join(c if c.isascii() else "?" for c in _clean_text(value))


def _date(epoch: float) -> str:
    """RFC 5322 §3.3 date-time with a numeric zone (RFC 3464 §2.2.5)."""
    return format_datetime(datetime.fromtimestamp(epoch, tz=UTC))

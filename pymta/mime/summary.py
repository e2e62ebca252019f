"""What the store caches per message: `summarize(raw) -> MessageSummary`.

The store calls `summarize` once per delivered message (in a worker thread) and keeps the
result as JSON in its index; the IMAP server answers FETCH ENVELOPE / BODY /
BODYSTRUCTURE and locates BODY[section] from it without parsing the file again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pymta.mime.bodystructure import DEFAULT_LIMITS, MimeLimits, PartSpan, analyze
from pymta.mime.envelope import message_id_token
from pymta.mime.headers import header_end

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MessageSummary:
    envelope: list[object]  # RFC 9051 §7.5.2 ENVELOPE as JSON-able nested lists
    bodystructure: list[object]  # RFC 9051 §7.5.2 BODYSTRUCTURE (extensible form)
    message_id: str | None  # the "<...>" msg-id of Message-ID, None when absent or empty
    subject: str | None  # raw Subject (unfolded, not RFC 2047-decoded), as in the envelope
    header_bytes: int  # length of the header block including the blank line
    # One span per IMAP section, pre-order, section "" (the whole message) first.
    parts: list[PartSpan] = field(default_factory=list)


def summarize(raw: bytes, limits: MimeLimits = DEFAULT_LIMITS) -> MessageSummary:
    """Summary of one stored message. Never raises.

    Any exception from the parser is a bug in this package; it is logged and a minimal
    summary (NIL envelope, the body as one text/plain part) is returned so that delivery
    never fails because of a message's shape.
    """
    try:
        return build_summary(raw, limits)
    except Exception:
        log.exception("mime_summary_failed size=%d", len(raw))
        return fallback_summary(raw)


def build_summary(raw: bytes, limits: MimeLimits = DEFAULT_LIMITS) -> MessageSummary:
    """Like `summarize`, but lets a parser bug raise (used by the tests)."""
    analysis = analyze(raw, limits)
    envelope = analysis.envelope
    subject = envelope[1]
    message_id = envelope[9]
    return MessageSummary(
        envelope=envelope,
        bodystructure=analysis.bodystructure,
        message_id=message_id_token(message_id if isinstance(message_id, str) else None),
        subject=subject if isinstance(subject, str) else None,
        header_bytes=analysis.header_bytes,
        parts=analysis.parts,
    )


def fallback_summary(raw: bytes) -> MessageSummary:
    """The summary of last resort: no envelope data, the body as one text/plain part."""
    size = len(raw)
    body_offset = header_end(raw, 0, size)
    octets = size - body_offset
    lines = raw.count(b"\n", body_offset, size)
    if raw.count(b"\n") != raw.count(b"\r\n"):
        octets += lines - raw.count(b"\r\n", body_offset, size)
    body: list[object] = ["TEXT", "PLAIN", ["CHARSET", "US-ASCII"], None, None, "7BIT"]
    body += [octets, lines, None, None, None, None]
    return MessageSummary(
        envelope=[None] * 10,
        bodystructure=body,
        message_id=None,
        subject=None,
        header_bytes=body_offset,
        parts=[
            PartSpan("", 0, 0, size, body_offset),
            PartSpan("1", 0, body_offset, size),
        ],
    )

"""BDAT on the wire (RFC 3030 §2): which chunk is refused, and reading a chunk's octets.

`InboundSMTP.smtp_BDAT` reads every chunk to its end, refused or not, in slices of
`BDAT_SLICE_BYTES`, into a `chunking.ChunkBuffer` that keeps them only while the message
is within `max_message_bytes`.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import Envelope

from pymta.smtp import codes
from pymta.smtp.chunking import BdatCommand, ChunkBuffer
from pymta.smtp.codes import Reply

BDAT_SLICE_BYTES = 64 * 1024  # a BDAT chunk is read (and kept or dropped) this much at a time


def bdat_refusal(command: BdatCommand, envelope: Envelope) -> Reply | None:
    """The reply refusing this chunk in this transaction, or None to take it."""
    if command.malformed:
        return codes.BDAT_SYNTAX
    if not envelope.mail_from:
        return codes.NEED_MAIL  # also any BDAT after BDAT LAST (RFC 3030 §2)
    if not envelope.rcpt_tos:
        return codes.NEED_RCPT
    return None


async def read_octets(reader: asyncio.StreamReader, size: int, sink: ChunkBuffer | None) -> None:
    """Read exactly `size` octets, a slice at a time, into `sink` (None: drop them)."""
    remaining = size
    while remaining > 0:
        piece = await reader.read(min(remaining, BDAT_SLICE_BYTES))
        if not piece:
            raise ConnectionResetError("end of input inside a BDAT chunk")
        remaining -= len(piece)
        if sink is not None:
            sink.feed(piece)

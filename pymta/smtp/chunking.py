"""CHUNKING (RFC 3030): the BDAT command's grammar and the chunk accumulator. No I/O.

The server reads each chunk in slices and feeds them to `ChunkBuffer`, which stops
keeping data once the message is over the size limit, so a chunk announced larger than
what is left is never held in memory in full.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# RFC 3030 §2: bdat-cmd ::= "BDAT" SP chunk-size [ SP end-marker ] CR LF
#              chunk-size ::= 1*DIGIT ; end-marker ::= "LAST"
_SIZE_THEN_REST = re.compile(r"([0-9]{1,20})(?: +(.*))?")


@dataclass(frozen=True)
class BdatCommand:
    size: int
    last: bool
    # The size parsed but the rest did not: the chunk must still be read (RFC 3030 §2).
    malformed: bool = False


def bdat_command(arg: str | None) -> BdatCommand | None:
    """The BDAT argument `chunk-size [SP end-marker]`; None when no size can be read.

    With a size but a bad end-marker the command is `malformed`: the caller still knows
    how many octets follow and must consume them before refusing it.
    """
    if arg is None:
        return None
    match = _SIZE_THEN_REST.fullmatch(arg)
    if match is None:
        return None
    size = int(match.group(1))
    rest = match.group(2)
    if rest is None:
        return BdatCommand(size, last=False)
    if rest.strip().upper() == "LAST":  # RFC 5234 §2.3: quoted strings are case-insensitive
        return BdatCommand(size, last=True)
    return BdatCommand(size, last=False, malformed=True)


@dataclass
class ChunkBuffer:
    """The chunks of one BDAT transaction, up to `limit` octets in all."""

    limit: int
    received: int = 0  # octets announced and read so far, kept or not
    _data: bytearray = field(default_factory=bytearray)

    @property
    def overflow(self) -> bool:
        return self.received > self.limit

    def feed(self, piece: bytes) -> None:
        self.received += len(piece)
        if self.overflow:
            self._data = bytearray()  # free at once; the rest is read and dropped
        else:
            self._data += piece

    def content(self) -> bytes:
        return bytes(self._data)

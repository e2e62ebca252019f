"""Sizes and durations as an admin writes them in the config file.

Sizes are whole bytes: an integer, or a string of digits with an optional binary unit
("500", "10K", "10M", "1G", "1T"; "KB"/"KiB" and friends mean the same powers of 1024 —
mail admins read "10M" the way Postfix and Dovecot do).

Durations are seconds: a number, or a string of one or more number-unit pairs
("30s", "5m", "4h", "5d", "1w", "1h30m"; a bare number string is seconds).

Both functions raise `ValueError` whose text says what was expected; the loader adds the
file, line and key path.
"""

from __future__ import annotations

import math
import re

SIZE_EXPECTED = 'a size: bytes as an integer, or a string like "500", "10K", "10M", "1G"'
DURATION_EXPECTED = 'a duration: seconds as a number, or a string like "30s", "5m", "4h", "5d"'

_SIZE_UNITS: dict[str, int] = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"(?P<number>[0-9]+)\s*(?P<unit>[kmgt]?)(?:i?b)?", re.IGNORECASE)

_DURATION_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 7 * 86400.0,
}
_DURATION_PART = r"[0-9]+(?:\.[0-9]+)?\s*(?:ms|[smhdw])"
_DURATION = re.compile(rf"(?:{_DURATION_PART}\s*)+", re.IGNORECASE)
_DURATION_PAIR = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)\s*(?P<unit>ms|[smhdw])", re.I)
_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_size(value: int | str) -> int:
    """Return the size in bytes; raise ValueError for a negative or malformed size."""
    if isinstance(value, bool):  # bool is an int to Python, never a size to an admin
        raise ValueError(f"not a size (expected {SIZE_EXPECTED})")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"negative size {value} (expected {SIZE_EXPECTED})")
        return value
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"malformed size {value!r} (expected {SIZE_EXPECTED})")
    return int(match["number"]) * _SIZE_UNITS[match["unit"].lower()]


def parse_duration(value: int | float | str) -> float:
    """Return the duration in seconds; raise ValueError for a negative or malformed one."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration (expected {DURATION_EXPECTED})")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"duration {value} out of range (expected {DURATION_EXPECTED})")
        return float(value)
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"malformed duration {value!r} (expected {DURATION_EXPECTED})")
    return sum(
        float(pair["number"]) * _DURATION_UNITS[pair["unit"].lower()]
        for pair in _DURATION_PAIR.finditer(text)
    )

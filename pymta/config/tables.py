"""Reading one TOML table with typed getters that report problems instead of raising.

`Table` remembers which keys were read, so whatever is left over at `finish()` is an
unknown key; every getter reports to one `Problems` collector and returns a fallback, so a
whole file is read and every problem reported at once.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from pymta.config import units
from pymta.config.errors import ConfigProblem, KeyLocator, KeyPath, format_key_path


class Problems:
    """The collector every reader reports to."""

    def __init__(self, source: Path, locator: KeyLocator) -> None:
        self.source = source
        self.found: list[ConfigProblem] = []
        self._locator = locator

    def add(self, path: KeyPath, message: str) -> None:
        line = self._locator.line_of(path)
        self.found.append(ConfigProblem(self.source, line, format_key_path(path), message))


def type_name(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "table"
    return "date/time"


def quoted(choices: Sequence[str]) -> str:
    return ", ".join(f'"{choice}"' for choice in choices)


class Table:
    """One TOML table being read: typed getters that report problems and fall back.

    Every getter marks its key as known, present or not; `finish()` reports the keys of the
    table that no getter asked for.
    """

    def __init__(self, problems: Problems, data: Mapping[str, object], path: KeyPath) -> None:
        self.problems = problems
        self.path = path
        self._data = data
        self._known: dict[str, None] = {}

    def at(self, key: str | int) -> KeyPath:
        return (*self.path, key)

    def report(self, key: str, message: str) -> None:
        self.problems.add(self.at(key), message)

    def take(self, key: str) -> object | None:
        """The raw value (None when absent: TOML has no null)."""
        self._known[key] = None
        return self._data.get(key)

    def wrong_type(self, path: KeyPath, value: object, expected: str) -> None:
        self.problems.add(path, f"wrong type: got {type_name(value)} (expected {expected})")

    def missing(self, key: str, expected: str) -> None:
        self.report(key, f"missing key (expected {expected})")

    def finish(self) -> None:
        for key in self._data:
            if key not in self._known:
                known = ", ".join(self._known)
                self.report(key, f"unknown key (expected one of: {known})")

    def string(self, key: str, *, required: bool = False, expected: str = "a string") -> str | None:
        value = self.take(key)
        if value is None:
            if required:
                self.missing(key, expected)
            return None
        if not isinstance(value, str):
            self.wrong_type(self.at(key), value, expected)
            return None
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.take(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.wrong_type(self.at(key), value, "true or false")
            return default
        return value

    def integer(
        self, key: str, default: int | None, *, minimum: int = 1, maximum: int | None = None
    ) -> int | None:
        if maximum is None:
            expected = f"an integer of at least {minimum}"
        else:
            expected = f"an integer from {minimum} to {maximum}"
        value = self.take(key)
        if value is None:
            if default is None:
                self.missing(key, expected)
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(self.at(key), value, expected)
            return default
        if value < minimum or (maximum is not None and value > maximum):
            self.report(key, f"{value} is out of range (expected {expected})")
            return default
        return value

    def choice(self, key: str, choices: Sequence[str], default: str | None) -> str | None:
        expected = f"one of {quoted(choices)}"
        value = self.string(key, required=default is None, expected=expected)
        if value is None:
            return default
        if value not in choices:
            self.report(key, f"unknown value {value!r} (expected {expected})")
            return default
        return value

    def size(self, key: str, *, minimum: int = 0) -> int | None:
        """Bytes, or None when absent or wrong."""
        value = self.take(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.wrong_type(self.at(key), value, units.SIZE_EXPECTED)
            return None
        try:
            size = units.parse_size(value)
        except ValueError as exc:
            self.report(key, str(exc))
            return None
        if size < minimum:
            self.report(key, f"{size} bytes is too small (expected at least {minimum})")
            return None
        return size

    def duration(self, key: str, default: float, *, positive: bool = True) -> float:
        return self._duration_value(self.take(key), self.at(key), default, positive=positive)

    def _duration_value(
        self, value: object, path: KeyPath, default: float, *, positive: bool
    ) -> float:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            self.wrong_type(path, value, units.DURATION_EXPECTED)
            return default
        try:
            seconds = units.parse_duration(value)
        except ValueError as exc:
            self.problems.add(path, str(exc))
            return default
        if positive and seconds <= 0:
            self.problems.add(path, f"duration is zero (expected {units.DURATION_EXPECTED} > 0)")
            return default
        return seconds

    def durations(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        expected = "an array of durations"
        value = self.take(key)
        if value is None:
            return default
        if not isinstance(value, list):
            self.wrong_type(self.at(key), value, expected)
            return default
        if not value:
            self.report(key, f"empty array (expected {expected}, at least one)")
            return default
        return tuple(
            self._duration_value(item, (*self.at(key), i), math.nan, positive=True)
            for i, item in enumerate(value)
        )

    def strings(self, key: str, *, expected: str) -> list[tuple[KeyPath, str]] | None:
        """Each string of an array with its own key path; None when absent or wrong."""
        value = self.take(key)
        if value is None:
            return None
        if not isinstance(value, list):
            self.wrong_type(self.at(key), value, f"an array of {expected}")
            return None
        items: list[tuple[KeyPath, str]] = []
        for i, item in enumerate(value):
            path = (*self.at(key), i)
            if isinstance(item, str):
                items.append((path, item))
            else:
                self.wrong_type(path, item, expected)
        return items

    def table(self, key: str) -> Table:
        """A sub-table; an empty one when absent or wrong."""
        value = self.take(key)
        if value is None:
            return Table(self.problems, {}, self.at(key))
        if not isinstance(value, dict):
            self.wrong_type(self.at(key), value, f"a table ([{format_key_path(self.at(key))}])")
            return Table(self.problems, {}, self.at(key))
        return Table(self.problems, value, self.at(key))

    def tables(self, key: str) -> list[Table]:
        """An array of tables; empty when absent or wrong."""
        value = self.take(key)
        expected = f"an array of tables ([[{format_key_path(self.at(key))}]])"
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong_type(self.at(key), value, expected)
            return []
        tables: list[Table] = []
        for i, item in enumerate(value):
            path = (*self.at(key), i)
            if isinstance(item, dict):
                tables.append(Table(self.problems, item, path))
            else:
                self.wrong_type(path, item, expected)
        return tables

    def items(self) -> list[tuple[str, object]]:
        """Every key of a table whose keys are names (like [listeners]); all are known."""
        for key in self._data:
            self._known[key] = None
        return list(self._data.items())

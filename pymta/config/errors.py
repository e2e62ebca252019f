"""What a bad config file produces, and where in the file each problem is.

`ConfigError` carries every `ConfigProblem` the loader found (it collects, it does not
stop at the first). A problem names the file, the line, the key path
(`domains[1].catch_all`, `listeners.smtp.port`) and what was wrong and expected.

`KeyLocator` finds the line of a key path in the raw TOML text, since `tomllib` keeps no
positions. It understands what admins write: `[table]` and `[[array]]` headers (counting
the Nth `[[domains]]`), `key = value` lines, dotted and quoted keys, and skips the inside of
multi-line strings and arrays. A path it cannot place exactly (an element of an inline
array, a key inside an inline table) falls back to its nearest located parent.

Problem messages never quote a secret's value; the loader is responsible for the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# A key path: table keys and array indexes, e.g. ("domains", 1, "catch_all").
KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def format_key_path(path: KeyPath) -> str:
    """`("domains", 1, "catch_all")` → `domains[1].catch_all`; odd keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        key = part if _BARE_KEY.fullmatch(part) else json.dumps(part)
        text += f".{key}" if text else key
    return text


@dataclass(frozen=True)
class ConfigProblem:
    file: Path
    line: int | None  # 1-based; None when the key is not in the file (a missing key)
    key_path: str  # "" for problems of the file as a whole (unreadable, TOML syntax)
    message: str  # what is wrong, then "(expected ...)" when there is an expectation

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        if self.key_path:
            return f"{where}: {self.key_path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The config file is unusable; `problems` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        self.problems: list[ConfigProblem] = list(problems)
        super().__init__(str(self))

    @classmethod
    def single(
        cls, file: Path | None, key_path: str, message: str, *, line: int | None = None
    ) -> ConfigError:
        """One problem found after loading (say, at start-up); `file` is `Config.source`."""
        return cls([ConfigProblem(file or Path("<config>"), line, key_path, message)])

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


class KeyLocator:
    """Maps key paths to the 1-based line that defines them in one TOML text."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        _Scanner(self._lines).scan(text)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of `path`, else of its nearest located parent, else None."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


class _Scanner:
    """One pass over the text, line by line, recording where tables and keys are defined."""

    def __init__(self, lines: dict[KeyPath, int]) -> None:
        self._lines = lines
        self._table: KeyPath = ()
        # For each array of tables (by its resolved path without the index): its last index.
        self._array_index: dict[KeyPath, int] = {}
        # Open brackets and the open string of a value that continues on the next line.
        self._brackets: list[str] = []
        self._string: str | None = None

    def scan(self, text: str) -> None:
        for number, line in enumerate(text.splitlines(), start=1):
            if self._brackets or self._string is not None:
                self._scan_value(line, 0)  # inside a multi-line array or string
                continue
            stripped = line.lstrip()
            start = len(line) - len(stripped)
            if not stripped or stripped.startswith("#"):
                continue
            try:
                self._scan_statement(line, start, number)
            except ValueError:
                continue  # not something we understand; tomllib has judged the syntax

    def _scan_statement(self, line: str, start: int, number: int) -> None:
        if line.startswith("[[", start):
            keys, _ = _parse_key(line, start + 2)
            parent = self._resolve(keys[:-1])
            array = (*parent, keys[-1])
            index = self._array_index.get(array, -1) + 1
            self._array_index[array] = index
            self._table = (*array, index)
            self._record(self._table, number)
        elif line.startswith("[", start):
            keys, _ = _parse_key(line, start + 1)
            self._table = self._resolve(keys)
            self._record(self._table, number)
        else:
            keys, end = _parse_key(line, start)
            if not line.startswith("=", end):
                raise ValueError("not a key/value line")
            self._record((*self._table, *keys), number)
            self._scan_value(line, end + 1)

    def _resolve(self, keys: Sequence[str]) -> KeyPath:
        """Insert the current index after each key that names an array of tables."""
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            index = self._array_index.get(path)
            if index is not None:
                path = (*path, index)
        return path

    def _record(self, path: KeyPath, number: int) -> None:
        # A table's parents are located at their first mention (`listeners` at the first
        # `[listeners.NAME]`); a path itself keeps its first definition.
        for end in range(1, len(path) + 1):
            self._lines.setdefault(path[:end], number)

    def _scan_value(self, line: str, pos: int) -> None:
        """Follow strings, brackets and comments so multi-line values are skipped whole."""
        while pos < len(line):
            if self._string is not None:
                pos = self._scan_in_string(line, pos)
                continue
            char = line[pos]
            if char == "#":
                break
            if line.startswith('"""', pos) or line.startswith("'''", pos):
                self._string = line[pos : pos + 3]
                pos += 3
            elif char in "\"'":
                self._string = char
                pos += 1
            elif char in "[{":
                self._brackets.append(char)
                pos += 1
            elif char in "]}":
                if self._brackets:
                    self._brackets.pop()
                pos += 1
            else:
                pos += 1
        if self._string in ('"', "'"):
            self._string = None  # a one-line string never continues

    def _scan_in_string(self, line: str, pos: int) -> int:
        quote = self._string
        assert quote is not None
        while pos < len(line):
            if quote[0] == '"' and line[pos] == "\\":
                pos += 2  # basic strings have escapes; literal strings have none
                continue
            if line.startswith(quote, pos):
                self._string = None
                return pos + len(quote)
            pos += 1
        return pos


def _parse_key(line: str, pos: int) -> tuple[list[str], int]:
    """Parse a (dotted) TOML key at `pos`; return its parts and the position after it.

    TOML 1.0 "Keys": bare keys are ASCII letters, digits, `_` and `-`; quoted keys follow
    the basic or literal string rules; parts are joined by `.` with optional whitespace.
    """
    parts: list[str] = []
    while True:
        pos = _skip_blanks(line, pos)
        if line.startswith('"', pos):
            end = pos + 1
            while end < len(line) and line[end] != '"':
                end += 2 if line[end] == "\\" else 1
            if end >= len(line):
                raise ValueError("unterminated quoted key")
            try:
                parts.append(json.loads(line[pos : end + 1]))
            except ValueError:
                parts.append(line[pos + 1 : end])
            pos = end + 1
        elif line.startswith("'", pos):
            end = line.find("'", pos + 1)
            if end < 0:
                raise ValueError("unterminated quoted key")
            parts.append(line[pos + 1 : end])
            pos = end + 1
        else:
            match = _BARE_KEY.match(line, pos)
            if match is None:
                raise ValueError("no key")
            parts.append(match.group())
            pos = match.end()
        pos = _skip_blanks(line, pos)
        if not line.startswith(".", pos):
            return parts, pos
        pos += 1


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos

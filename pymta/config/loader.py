"""TOML → `model.Config`: read, check every value, and report every problem at once.

The reading is table by table (`_Table` tracks which keys were read, so anything left over
is an "unknown key"); references between tables (a user's domain, a destination's user or
public mailbox, a group's members) are checked once everything is read. Problems go to one
collector and are raised together as `ConfigError`, sorted by line.

TOML keys are the model's field names, except where the unit is part of the value: sizes
(`quota`, `default_quota`, `max_message_size`) and durations (`shutdown_timeout`,
`retry_intervals`, `max_age`, `scan_interval`, `*_timeout`) are written without the
`_bytes` / `_s` suffix; a listener's name is its table key; an address is one
`address = "local@domain"` string.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import socket
import tomllib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from pymta.config import units
from pymta.config.errors import (
    ConfigError,
    ConfigProblem,
    KeyLocator,
    KeyPath,
    format_key_path,
)
from pymta.config.model import (
    AddressConfig,
    Config,
    DestinationRef,
    DirectoryConfig,
    DomainConfig,
    GroupConfig,
    Limits,
    ListenerConfig,
    LoggingConfig,
    MailboxesConfig,
    Protocol,
    PublicMailboxConfig,
    QueueConfig,
    Secret,
    ServerConfig,
    TlsConfig,
    TlsMode,
    UserConfig,
)

logger = logging.getLogger(__name__)

# Hash formats the auth layer verifies: argon2 (argon2-cffi) and SHA512-CRYPT (libpass).
PASSWORD_HASH_PREFIXES = ("$argon2id$", "$argon2i$", "$6$")

# RFC 1035 §2.3.4 / RFC 1123 §2.1: labels of letters, digits and inner hyphens, 1–63
# octets each; RFC 5321 §4.5.3.1.2 caps a domain at 255 octets (253 in text form).
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 5322 §3.2.3 dot-atom-text, the local-part form pymta accepts (no quoted strings).
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_USER_NAME = re.compile(r"[a-z0-9._-]+")
_PUBLIC_NAME = re.compile(r"[A-Za-z0-9._-]+")
_SYNTAX_POSITION = re.compile(
    r"^(?P<message>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$"
)

_LOG_LEVELS = ("debug", "info", "warning", "error")
_TLS_VERSIONS = ("1.2", "1.3")  # RFC 8996: TLS 1.0 and 1.1 MUST NOT be used


def load_config(path: Path) -> Config:
    """Read and check the config file at `path`; raise ConfigError listing every problem."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        problem = ConfigProblem(path, None, "", f"cannot read the file: {exc.strerror}")
        raise ConfigError([problem]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        problem = ConfigProblem(path, line, "", "not UTF-8 text (expected a UTF-8 TOML file)")
        raise ConfigError([problem]) from None
    config = parse_config(text, source=path)
    logger.info(
        "config_loaded path=%s listeners=%d domains=%d users=%d",
        path,
        len(config.listeners),
        len(config.domains),
        len(config.directory.users),
    )
    return config


def parse_config(text: str, *, source: Path) -> Config:
    """Check TOML `text` as if read from `source` (relative paths resolve against its folder)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_syntax_problem(exc, text, source)]) from None
    problems = _Problems(source, KeyLocator(text))
    config = _Reader(problems, source).read(data)
    if problems.found:
        ordered = sorted(problems.found, key=lambda p: p.line if p.line is not None else 0)
        raise ConfigError(ordered)
    return config


def _syntax_problem(exc: tomllib.TOMLDecodeError, text: str, source: Path) -> ConfigProblem:
    message = str(exc)
    line: int | None = None
    match = _SYNTAX_POSITION.match(message)
    if match is not None:
        message = match["message"]
        if match["line"] is not None:
            line = int(match["line"])
            message += f" at column {match['col']}"
        else:
            line = max(1, len(text.splitlines()))
            message += " at the end of the file"
    return ConfigProblem(source, line, "", f"TOML syntax error: {message}")


class _Problems:
    """The collector every reader reports to."""

    def __init__(self, source: Path, locator: KeyLocator) -> None:
        self.source = source
        self.found: list[ConfigProblem] = []
        self._locator = locator

    def add(self, path: KeyPath, message: str) -> None:
        line = self._locator.line_of(path)
        self.found.append(ConfigProblem(self.source, line, format_key_path(path), message))


def _type_name(value: object) -> str:
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


def _quoted(choices: Sequence[str]) -> str:
    return ", ".join(f'"{choice}"' for choice in choices)


class _Table:
    """One TOML table being read: typed getters that report problems and fall back.

    Every getter marks its key as known, present or not; `finish()` reports the keys of the
    table that no getter asked for.
    """

    def __init__(self, problems: _Problems, data: Mapping[str, object], path: KeyPath) -> None:
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
        self.problems.add(path, f"wrong type: got {_type_name(value)} (expected {expected})")

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
        expected = f"one of {_quoted(choices)}"
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

    def table(self, key: str) -> _Table:
        """A sub-table; an empty one when absent or wrong."""
        value = self.take(key)
        if value is None:
            return _Table(self.problems, {}, self.at(key))
        if not isinstance(value, dict):
            self.wrong_type(self.at(key), value, f"a table ([{format_key_path(self.at(key))}])")
            return _Table(self.problems, {}, self.at(key))
        return _Table(self.problems, value, self.at(key))

    def tables(self, key: str) -> list[_Table]:
        """An array of tables; empty when absent or wrong."""
        value = self.take(key)
        expected = f"an array of tables ([[{format_key_path(self.at(key))}]])"
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong_type(self.at(key), value, expected)
            return []
        tables: list[_Table] = []
        for i, item in enumerate(value):
            path = (*self.at(key), i)
            if isinstance(item, dict):
                tables.append(_Table(self.problems, item, path))
            else:
                self.wrong_type(path, item, expected)
        return tables

    def items(self) -> list[tuple[str, object]]:
        """Every key of a table whose keys are names (like [listeners]); all are known."""
        for key in self._data:
            self._known[key] = None
        return list(self._data.items())


# --- names and addresses -------------------------------------------------------------------


def domain_problem(name: str) -> str | None:
    """Why `name` (already lower-cased) is not a domain name, or None when it is one."""
    if not name.isascii():
        return "not an ASCII domain (expected the xn-- form of an internationalised name)"
    if len(name) > 253:  # RFC 5321 §4.5.3.1.2, less the root's dot and length octets
        return "domain longer than 253 characters"
    labels = name.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return "malformed domain (expected labels of letters, digits and inner hyphens)"
    return None


def local_part_problem(local: str) -> str | None:
    """Why `local` is not a local part pymta accepts, or None."""
    if len(local.encode()) > 64:  # RFC 5321 §4.5.3.1.1
        return "local part longer than 64 octets"
    if not _DOT_ATOM.fullmatch(local):
        # RFC 5321 §4.1.2 also allows a Quoted-string local part; no mailbox of ours has one.
        return "malformed local part (expected a dot-atom: letters, digits, !#$%&'*+/=?^_`{|}~-)"
    return None


def user_name_problem(name: str) -> str | None:
    """Why `name` (lower-cased) cannot be a user or group name, or None."""
    expected = "(expected lower-case letters, digits, '.', '_', '-'; at most 64)"
    if len(name) > 64:  # it is a local part: RFC 5321 §4.5.3.1.1
        return f"name longer than 64 characters {expected}"
    if not _USER_NAME.fullmatch(name):
        return f"malformed name {expected}"
    if name.startswith(".") or name.endswith(".") or ".." in name:
        # It names a directory (no hidden files, no "..") and is a dot-atom local part.
        return "a name may not start or end with '.' nor contain '..'"
    return None


def public_name_problem(name: str) -> str | None:
    if not _PUBLIC_NAME.fullmatch(name):
        return "malformed name (expected letters, digits, '.', '_', '-')"
    if name.startswith("."):
        return "a public mailbox name may not start with '.'"
    return None


@dataclass(frozen=True)
class _PendingDestination:
    """A destination read syntactically, resolved once every table is read."""

    path: KeyPath
    ref: DestinationRef
    owner: tuple[str, str | None] | None = None  # the [[addresses]] entry it belongs to
    catch_all_of: str | None = None  # the domain whose catch_all this is


# --- the reader ----------------------------------------------------------------------------


class _Reader:
    """Reads one parsed TOML document into a Config, reporting to `problems`."""

    def __init__(self, problems: _Problems, source: Path) -> None:
        self.problems = problems
        self.source = source
        self.base_dir = Path(os.path.abspath(source.parent))
        self.pending: list[_PendingDestination] = []

    def read(self, data: Mapping[str, object]) -> Config:
        root = _Table(self.problems, data, ())
        server = self.server(root.table("server"))
        tls = self.tls(root.table("tls"))
        listeners = self.listeners(root.table("listeners"), tls)
        domains = self.domains(root.tables("domains"))
        directory = self.directory(root.table("directory"), domains)
        public = self.public_mailboxes(root.tables("public_mailboxes"))
        addresses = self.addresses(root.tables("addresses"), domains)
        mailboxes = self.mailboxes(root.table("mailboxes"))
        queue = self.queue(root.table("queue"))
        limits = self.limits(root.table("limits"))
        logging_config = self.logging(root.table("logging"))
        root.finish()
        _Resolver(self.problems, domains, directory, public, addresses).check(self.pending)
        return Config(
            server=server,
            tls=tls,
            listeners=listeners,
            directory=directory,
            domains=domains,
            addresses=addresses,
            public_mailboxes=public,
            mailboxes=mailboxes,
            queue=queue,
            limits=limits,
            logging=logging_config,
            source=self.source,
        )

    def path(self, table: _Table, key: str, *, required: bool = False) -> Path | None:
        """A file or directory path; relative ones are relative to the config file."""
        expected = "a path (relative paths are relative to the config file)"
        value = table.string(key, required=required, expected=expected)
        if value is None:
            return None
        if not value or "\0" in value:
            table.report(key, f"empty or malformed path (expected {expected})")
            return None
        path = Path(value)
        if path.is_absolute():
            return path
        return Path(os.path.normpath(self.base_dir / path))

    # [server] and [tls]

    def server(self, t: _Table) -> ServerConfig:
        hostname = t.string("hostname", expected="a domain name")
        if hostname is None:
            hostname = socket.getfqdn()
        else:
            hostname = hostname.lower()
            problem = domain_problem(hostname)
            if problem is not None:
                t.report("hostname", problem)
        data_dir = self.path(t, "data_dir", required=True)
        user = t.string("user", expected="a user name")
        group = t.string("group", expected="a group name")
        shutdown = t.duration("shutdown_timeout", ServerConfig.shutdown_timeout_s, positive=False)
        t.finish()
        return ServerConfig(
            hostname=hostname,
            data_dir=data_dir if data_dir is not None else Path(),
            user=user,
            group=group,
            shutdown_timeout_s=shutdown,
        )

    def tls(self, t: _Table) -> TlsConfig:
        cert = self.path(t, "cert_file")
        key = self.path(t, "key_file")
        if cert is not None and key is None:
            t.missing("key_file", "key_file with cert_file: both or neither")
        if key is not None and cert is None:
            t.missing("cert_file", "cert_file with key_file: both or neither")
        min_version = t.choice("min_version", _TLS_VERSIONS, TlsConfig.min_version)
        t.finish()
        return TlsConfig(cert_file=cert, key_file=key, min_version=min_version or "1.2")

    # [listeners.NAME]

    def listeners(self, t: _Table, tls: TlsConfig) -> tuple[ListenerConfig, ...]:
        listeners: list[ListenerConfig] = []
        for name, value in t.items():
            if not isinstance(value, dict):
                t.wrong_type(t.at(name), value, f"a table ([listeners.{name}])")
                continue
            listener = self.listener(_Table(self.problems, value, t.at(name)), name)
            if listener is None:
                continue
            self.check_bind_conflicts(listener, listeners)
            if listener.tls is not TlsMode.NONE and (tls.cert_file is None or tls.key_file is None):
                self.problems.add(
                    (*t.at(name), "tls"),
                    "TLS is on but [tls] has no certificate (expected [tls] cert_file and "
                    'key_file, or tls = "none")',
                )
            listeners.append(listener)
        return tuple(listeners)

    def listener(self, t: _Table, name: str) -> ListenerConfig | None:
        protocol = t.choice("protocol", [p.value for p in Protocol], None)
        addresses = self.bind_addresses(t)
        # 0: the kernel picks a free port (used by the test suite and benchmarks).
        port = t.integer("port", None, minimum=0, maximum=65535)
        tls = t.choice("tls", [m.value for m in TlsMode], None)
        plaintext_auth = t.boolean("allow_plaintext_auth", False)
        t.finish()
        if plaintext_auth and addresses:
            outside = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
            if outside:
                # Secure by default: a password sent in clear over a network is exposed;
                # on loopback it never leaves the host (RFC 4954 §4 wants TLS for PLAIN).
                t.report(
                    "allow_plaintext_auth",
                    f"plaintext AUTH would send passwords in clear: {outside[0]} is not a "
                    "loopback address (expected false, or only loopback addresses)",
                )
        if protocol is None or addresses is None or port is None or tls is None:
            return None
        return ListenerConfig(
            name=name,
            protocol=Protocol(protocol),
            addresses=addresses,
            port=port,
            tls=TlsMode(tls),
            allow_plaintext_auth=plaintext_auth,
        )

    def bind_addresses(self, t: _Table) -> tuple[str, ...] | None:
        """`addresses = [...]`, or one `address = "..."`, normalised by ipaddress."""
        expected = "IP addresses"
        one = t.take("address")
        if one is not None and t.take("addresses") is not None:
            t.report("address", "both address and addresses are set (expected one of them)")
            return None
        items: list[tuple[KeyPath, str]] | None
        if one is None:
            if t.take("addresses") is None:
                t.missing("addresses", f"an array of {expected}")
                return None
            items = t.strings("addresses", expected="an IP address")
            if items == []:
                t.report("addresses", f"empty array (expected {expected}, at least one)")
        elif isinstance(one, str):
            items = [(t.at("address"), one)]
        else:
            t.wrong_type(t.at("address"), one, "an IP address")
            return None
        if not items:
            return None
        addresses: list[str] = []
        for path, text in items:
            try:
                address = str(ipaddress.ip_address(text))
            except ValueError:
                self.problems.add(path, f"malformed IP address {text!r} (expected {expected})")
                continue
            if address in addresses:
                self.problems.add(path, f"{address} is listed twice")
                continue
            addresses.append(address)
        return tuple(addresses) if len(addresses) == len(items) else None

    def check_bind_conflicts(self, new: ListenerConfig, earlier: list[ListenerConfig]) -> None:
        """Two sockets cannot listen on one address and port, nor beside a wildcard of it."""
        for i, text in enumerate(new.addresses):
            address = ipaddress.ip_address(text)
            for other in earlier:
                if other.port != new.port or new.port == 0:
                    continue
                for other_text in other.addresses:
                    other_address = ipaddress.ip_address(other_text)
                    clash = address == other_address or (
                        address.version == other_address.version
                        and (address.is_unspecified or other_address.is_unspecified)
                    )
                    if clash:
                        self.problems.add(
                            ("listeners", new.name, "addresses", i),
                            f"{text} port {new.port} clashes with {other_text} port "
                            f"{other.port} of listener {other.name!r} (expected another "
                            "address or port)",
                        )

    # [[domains]]

    def domains(self, tables: list[_Table]) -> tuple[DomainConfig, ...]:
        domains: list[DomainConfig] = []
        first: dict[str, KeyPath] = {}
        for t in tables:
            name = self.domain_name(t, first)
            add_user = t.boolean("add_user_addresses", DomainConfig.add_user_addresses)
            accept = t.boolean("accept_unknown_recipients", False)
            catch_all = self.destination(t, "catch_all", catch_all_of=name)
            copy_to = self.destination(t, "copy_inbound_to")
            t.finish()
            if accept and catch_all is None:
                t.report(
                    "accept_unknown_recipients",
                    "unknown recipients need somewhere to go (expected a catch_all)",
                )
            if accept and add_user:
                t.report(
                    "accept_unknown_recipients",
                    "accept_unknown_recipients replaces per-user addresses (expected "
                    "add_user_addresses = false)",
                )
            if catch_all is not None and not accept:
                t.report(
                    "catch_all",
                    "a catch_all receives only unknown recipients (expected "
                    "accept_unknown_recipients = true)",
                )
            if name is not None:
                first[name] = t.path
                domains.append(DomainConfig(name, add_user, accept, catch_all, copy_to))
        return tuple(domains)

    def domain_name(self, t: _Table, first: Mapping[str, KeyPath]) -> str | None:
        """The lower-cased name of a [[domains]] entry; None when bad or a duplicate."""
        name = t.string("name", required=True, expected="a domain name")
        if name is None:
            return None
        name = name.lower()
        problem = domain_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        if name in first:
            t.report("name", f"duplicate domain {name} (first in {format_key_path(first[name])})")
            return None
        return name

    def destination(
        self, t: _Table, key: str, *, catch_all_of: str | None = None
    ) -> DestinationRef | None:
        expected = 'a user name, "public:NAME" or an email address'
        value = t.string(key, expected=expected)
        if value is None:
            return None
        return self.destination_value(t.at(key), value, catch_all_of=catch_all_of)

    def destination_value(
        self,
        path: KeyPath,
        value: str,
        *,
        owner: tuple[str, str | None] | None = None,
        catch_all_of: str | None = None,
    ) -> DestinationRef | None:
        """Parse one destination string (it is resolved later, in `_Resolver`)."""
        ref: DestinationRef | None = None
        if value.startswith("public:"):
            name = value.removeprefix("public:")
            problem = public_name_problem(name)
            ref = DestinationRef(public=name) if problem is None else None
        elif "@" in value:
            local, _, domain = value.rpartition("@")
            domain = domain.lower()
            problem = local_part_problem(local) or domain_problem(domain)
            ref = DestinationRef(address=f"{local}@{domain}") if problem is None else None
        else:
            name = value.lower()
            problem = user_name_problem(name)
            ref = DestinationRef(user=name) if problem is None else None
        if problem is not None or ref is None:
            self.problems.add(path, f"malformed destination {value!r}: {problem}")
            return None
        self.pending.append(_PendingDestination(path, ref, owner, catch_all_of))
        return ref

    # [directory]

    def directory(self, t: _Table, domains: tuple[DomainConfig, ...]) -> DirectoryConfig:
        backend = t.choice("backend", ("local",), DirectoryConfig.backend)
        domain_names = [d.name for d in domains]
        users: dict[str, UserConfig] = {}
        for user_table in t.tables("users"):
            user = self.user(user_table, domain_names)
            if user is None:
                continue
            if user.name in users:
                user_table.report("name", f"duplicate user {user.name}")
                continue
            users[user.name] = user
        groups: dict[str, GroupConfig] = {}
        for group_table in t.tables("groups"):
            group = self.group(group_table, users.keys())
            if group is None:
                continue
            if group.name in groups:
                group_table.report("name", f"duplicate group {group.name}")
                continue
            groups[group.name] = group
        t.finish()
        merged_users, merged_groups = _merge_memberships(users.values(), groups.values())
        return DirectoryConfig(backend or "local", merged_users, merged_groups)

    def user(self, t: _Table, domain_names: list[str]) -> UserConfig | None:
        name = t.string("name", required=True, expected="a user name")
        domain = t.string("domain", required=True, expected="one of the [[domains]] names")
        password_hash = self.password_hash(t)
        enabled = t.boolean("enabled", True)
        quota = t.size("quota")
        groups = t.strings("groups", expected="group names") or []
        t.finish()
        group_names: list[str] = []
        for path, group in groups:
            group = group.lower()
            problem = user_name_problem(group)
            if problem is not None:
                self.problems.add(path, problem)
            elif group not in group_names:
                group_names.append(group)
        if domain is not None and domain.lower() not in domain_names:
            t.report(
                "domain",
                f"{domain.lower()} is not one of ours (expected one of the [[domains]]: "
                f"{', '.join(domain_names) or 'none defined'})",
            )
            domain = None
        if name is None:
            return None
        name = name.lower()
        problem = user_name_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        if domain is None:
            return None
        return UserConfig(
            name=name,
            domain=domain.lower(),
            password_hash=password_hash,
            enabled=enabled,
            quota_bytes=quota,
            groups=tuple(group_names),
        )

    def password_hash(self, t: _Table) -> Secret | None:
        """The hash as a Secret. Problems never quote the value, not even in part."""
        expected = "a hash starting with " + ", ".join(PASSWORD_HASH_PREFIXES)
        value = t.take("password_hash")
        if value is None:
            return None  # no password: this user cannot log in
        if not isinstance(value, str):
            t.wrong_type(t.at("password_hash"), value, expected)
            return None
        if not value.startswith(PASSWORD_HASH_PREFIXES):
            t.report("password_hash", f"not a supported password hash (expected {expected})")
            return None
        return Secret(value)

    def group(self, t: _Table, user_names: Collection[str]) -> GroupConfig | None:
        name = t.string("name", required=True, expected="a group name")
        members = t.strings("members", expected="user names") or []
        t.finish()
        member_names: list[str] = []
        for path, member in members:
            member = member.lower()
            if member not in user_names:
                self.problems.add(
                    path, f"{member} is not a user (expected a [[directory.users]] name)"
                )
            elif member not in member_names:
                member_names.append(member)
        if name is None:
            return None
        name = name.lower()
        problem = user_name_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        return GroupConfig(name, tuple(member_names))

    # [[public_mailboxes]]

    def public_mailboxes(self, tables: list[_Table]) -> tuple[PublicMailboxConfig, ...]:
        mailboxes: list[PublicMailboxConfig] = []
        for t in tables:
            name = t.string("name", required=True, expected="a mailbox name")
            quota = t.size("quota")
            t.finish()
            if name is None:
                continue
            problem = public_name_problem(name)
            if problem is not None:
                t.report("name", problem)
                continue
            # Case-insensitively: the name is a directory, and file systems may fold case.
            if any(m.name.lower() == name.lower() for m in mailboxes):
                t.report("name", f"duplicate public mailbox {name}")
                continue
            mailboxes.append(PublicMailboxConfig(name, quota))
        return tuple(mailboxes)

    # [[addresses]]

    def addresses(
        self, tables: list[_Table], domains: tuple[DomainConfig, ...]
    ) -> tuple[AddressConfig, ...]:
        domain_names = [d.name for d in domains]
        entries: list[AddressConfig] = []
        for t in tables:
            key = self.address_key(t, domain_names)
            destinations: list[DestinationRef] = []
            raw = t.take("destinations")
            if raw is None:
                t.missing("destinations", "an array of destinations")
            elif raw == []:
                t.report("destinations", "empty array (expected at least one destination)")
            for path, value in t.strings("destinations", expected="destinations") or []:
                ref = self.destination_value(path, value, owner=key)
                if ref is not None:
                    destinations.append(ref)
            internal = t.boolean("internal", False)
            t.finish()
            if key is None:
                continue
            if any((e.local_part, e.domain) == key for e in entries):
                t.report("address", f"duplicate address {_address_text(*key)}")
                continue
            entries.append(AddressConfig(key[0], key[1], tuple(destinations), internal))
        return tuple(entries)

    def address_key(self, t: _Table, domain_names: list[str]) -> tuple[str, str | None] | None:
        expected = '"local" (in every domain) or "local@domain"'
        value = t.string("address", required=True, expected=expected)
        if value is None:
            return None
        local, at, domain_text = value.lower().rpartition("@")
        if not at:
            local, domain_text = domain_text, ""
        problem = local_part_problem(local)
        if problem is not None:
            t.report("address", f"{problem} (in {value!r})")
            return None
        if not at:
            return local, None
        if domain_text not in domain_names:
            t.report(
                "address",
                f"{domain_text} is not one of ours (expected a [[domains]] name, or no domain "
                "for every domain)",
            )
            return None
        return local, domain_text

    # [mailboxes], [queue], [limits], [logging]

    def mailboxes(self, t: _Table) -> MailboxesConfig:
        quota = t.size("default_quota")
        t.finish()
        return MailboxesConfig(quota if quota is not None else 0)

    def queue(self, t: _Table) -> QueueConfig:
        d = QueueConfig()
        retry = t.durations("retry_intervals", d.retry_intervals_s)
        max_age = t.duration("max_age", d.max_age_s)
        scan = t.duration("scan_interval", d.scan_interval_s)
        t.finish()
        return QueueConfig(retry, max_age, scan)

    def limits(self, t: _Table) -> Limits:
        d = Limits()
        max_connections = t.integer("max_connections", d.max_connections)
        per_ip = t.integer("max_connections_per_ip", d.max_connections_per_ip)
        command_timeout = t.duration("command_timeout", d.command_timeout_s)
        data_timeout = t.duration("data_timeout", d.data_timeout_s)
        idle_timeout = t.duration("idle_timeout", d.idle_timeout_s)
        # RFC 5321 §4.5.3.1.4: a command line of 512 octets must fit.
        command_line = t.integer("max_command_line_bytes", d.max_command_line_bytes, minimum=512)
        # RFC 5321 §4.5.3.1.6: a text line of 1000 octets must fit.
        line = t.integer("max_line_bytes", d.max_line_bytes, minimum=1000)
        message = t.size("max_message_size", minimum=1)
        # RFC 5321 §4.5.3.1.8: at least 100 recipients MUST be accepted.
        recipients = t.integer("max_recipients", d.max_recipients, minimum=100)
        t.finish()
        return Limits(
            max_connections=max_connections or d.max_connections,
            max_connections_per_ip=per_ip or d.max_connections_per_ip,
            command_timeout_s=command_timeout,
            data_timeout_s=data_timeout,
            idle_timeout_s=idle_timeout,
            max_command_line_bytes=command_line or d.max_command_line_bytes,
            max_line_bytes=line or d.max_line_bytes,
            max_message_bytes=message if message is not None else d.max_message_bytes,
            max_recipients=recipients or d.max_recipients,
        )

    def logging(self, t: _Table) -> LoggingConfig:
        level = t.choice("level", _LOG_LEVELS, LoggingConfig.level)
        t.finish()
        return LoggingConfig(level or LoggingConfig.level)


def _address_text(local: str, domain: str | None) -> str:
    return local if domain is None else f"{local}@{domain}"


def _merge_memberships(
    users: Collection[UserConfig], groups: Collection[GroupConfig]
) -> tuple[tuple[UserConfig, ...], tuple[GroupConfig, ...]]:
    """Make `user.groups` and `group.members` agree, whichever side the file stated.

    A group named only in users' `groups` exists too, after the declared ones.
    """
    members: dict[str, list[str]] = {g.name: list(g.members) for g in groups}
    user_groups: dict[str, list[str]] = {}
    for user in users:
        user_groups[user.name] = list(user.groups)
        for group in user.groups:
            names = members.setdefault(group, [])
            if user.name not in names:
                names.append(user.name)
    for group, names in members.items():
        for name in names:
            if group not in user_groups[name]:
                user_groups[name].append(group)
    return (
        tuple(replace(u, groups=tuple(user_groups[u.name])) for u in users),
        tuple(GroupConfig(name, tuple(names)) for name, names in members.items()),
    )


class _Resolver:
    """Checks that every destination leads somewhere, once all tables are known."""

    def __init__(
        self,
        problems: _Problems,
        domains: tuple[DomainConfig, ...],
        directory: DirectoryConfig,
        public: tuple[PublicMailboxConfig, ...],
        addresses: tuple[AddressConfig, ...],
    ) -> None:
        self.problems = problems
        self.domains = {d.name: d for d in domains}
        self.users = {u.name for u in directory.users}
        self.public = {p.name for p in public}
        self.addresses = {(a.local_part, a.domain) for a in addresses}

    def check(self, pending: list[_PendingDestination]) -> None:
        for item in pending:
            problem = self.problem(item)
            if problem is not None:
                self.problems.add(item.path, problem)

    def problem(self, item: _PendingDestination) -> str | None:
        ref = item.ref
        if ref.public is not None:
            if ref.public not in self.public:
                return f"no public mailbox {ref.public} (expected a [[public_mailboxes]] name)"
            return None
        if ref.user is not None:
            if ref.user not in self.users:
                return f"no user {ref.user} (expected a [[directory.users]] name)"
            return None
        assert ref.address is not None
        local, _, domain_name = ref.address.rpartition("@")
        domain = self.domains.get(domain_name)
        if domain is None:
            return None  # not ours: relayed
        local = local.lower()
        exact = (local, domain_name) in self.addresses
        # The directory looks up an exact local@domain entry before a domain-less one.
        if item.owner == (local, domain_name) or (item.owner == (local, None) and not exact):
            return "an address cannot deliver to itself"
        if domain.add_user_addresses and local in self.users:
            return None
        if exact or (local, None) in self.addresses:
            return None
        if domain.accept_unknown_recipients:
            if item.catch_all_of == domain_name:
                return "the catch_all points back to this domain's catch_all"
            return None
        return (
            f"destination points to nothing: {local}@{domain_name} is no user address, "
            "[[addresses]] entry or catch-all (expected an existing address)"
        )

"""TOML → `model.Config`: read, check every value, and report every problem at once.

The reading is table by table (`Table` tracks which keys were read, so anything left over
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
import os
import re
import socket
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

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
from pymta.config.names import (
    domain_problem,
    local_part_problem,
    public_name_problem,
    user_name_problem,
)
from pymta.config.tables import Problems, Table

logger = logging.getLogger(__name__)

# Hash formats the auth layer verifies: argon2 (argon2-cffi) and SHA512-CRYPT (libpass).
PASSWORD_HASH_PREFIXES = ("$argon2id$", "$argon2i$", "$6$")

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
    problems = Problems(source, KeyLocator(text))
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

    def __init__(self, problems: Problems, source: Path) -> None:
        self.problems = problems
        self.source = source
        self.base_dir = Path(os.path.abspath(source.parent))
        self.pending: list[_PendingDestination] = []

    def read(self, data: Mapping[str, object]) -> Config:
        root = Table(self.problems, data, ())
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

    def path(self, table: Table, key: str, *, required: bool = False) -> Path | None:
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

    def server(self, t: Table) -> ServerConfig:
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
        sender_check = t.boolean("submission_sender_check", ServerConfig.submission_sender_check)
        t.finish()
        return ServerConfig(
            hostname=hostname,
            data_dir=data_dir if data_dir is not None else Path(),
            user=user,
            group=group,
            shutdown_timeout_s=shutdown,
            submission_sender_check=sender_check,
        )

    def tls(self, t: Table) -> TlsConfig:
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

    def listeners(self, t: Table, tls: TlsConfig) -> tuple[ListenerConfig, ...]:
        listeners: list[ListenerConfig] = []
        for name, value in t.items():
            if not isinstance(value, dict):
                t.wrong_type(t.at(name), value, f"a table ([listeners.{name}])")
                continue
            listener = self.listener(Table(self.problems, value, t.at(name)), name)
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

    def listener(self, t: Table, name: str) -> ListenerConfig | None:
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

    def bind_addresses(self, t: Table) -> tuple[str, ...] | None:
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

    def domains(self, tables: list[Table]) -> tuple[DomainConfig, ...]:
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

    def domain_name(self, t: Table, first: Mapping[str, KeyPath]) -> str | None:
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
        self, t: Table, key: str, *, catch_all_of: str | None = None
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

    def directory(self, t: Table, domains: tuple[DomainConfig, ...]) -> DirectoryConfig:
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

    def user(self, t: Table, domain_names: list[str]) -> UserConfig | None:
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

    def password_hash(self, t: Table) -> Secret | None:
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

    def group(self, t: Table, user_names: Collection[str]) -> GroupConfig | None:
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

    def public_mailboxes(self, tables: list[Table]) -> tuple[PublicMailboxConfig, ...]:
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
        self, tables: list[Table], domains: tuple[DomainConfig, ...]
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

    def address_key(self, t: Table, domain_names: list[str]) -> tuple[str, str | None] | None:
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

    def mailboxes(self, t: Table) -> MailboxesConfig:
        quota = t.size("default_quota")
        t.finish()
        return MailboxesConfig(quota if quota is not None else 0)

    def queue(self, t: Table) -> QueueConfig:
        d = QueueConfig()
        retry = t.durations("retry_intervals", d.retry_intervals_s)
        max_age = t.duration("max_age", d.max_age_s)
        scan = t.duration("scan_interval", d.scan_interval_s)
        warning = t.duration("delay_warning", d.delay_warning_s, positive=False)
        nameservers = self.nameservers(t)
        remote_port = t.integer("remote_port", d.remote_port, minimum=1, maximum=65535)
        relay_host = self.relay_host(t)
        relay_user = t.string("relay_user", expected="a user name")
        relay_password = self.relay_password(t)
        if (relay_user is None) != (relay_password is None):
            t.report("relay_user", "relay_user and relay_password go together")
        elif relay_user is not None and relay_host is None:
            t.report("relay_user", "relay_user needs relay_host")
        t.finish()
        return QueueConfig(
            retry_intervals_s=retry,
            max_age_s=max_age,
            scan_interval_s=scan,
            delay_warning_s=warning,
            nameservers=nameservers,
            remote_port=remote_port if remote_port else d.remote_port,
            relay_host=relay_host,
            relay_user=relay_user,
            relay_password=relay_password,
        )

    def relay_host(self, t: Table) -> tuple[str, int] | None:
        """`relay_host = "host"`, `"host:port"` or `"[host]:port"` (Postfix's form; the
        brackets change nothing here: a smarthost is never looked up as MX). Port 25 if
        none is given."""
        expected = "host, host:port or [host]:port"
        text = t.string("relay_host", expected=expected)
        if text is None:
            return None
        host, port = text, "25"
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else "25"
        elif text.count(":") == 1:
            host, port = text.split(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536 or " " in host:
            t.report("relay_host", f"malformed relay host {text!r} (expected {expected})")
            return None
        return host, int(port)

    def relay_password(self, t: Table) -> Secret | None:
        """The smarthost password as a Secret; problems never quote it."""
        value = t.take("relay_password")
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            t.report("relay_password", "expected a non-empty string")
            return None
        return Secret(value)

    def nameservers(self, t: Table) -> tuple[str, ...]:
        """`nameservers = ["ip", "ip:port", "[ipv6]:port"]`, checked with ipaddress."""
        items = t.strings("nameservers", expected="IP addresses, optionally with :port")
        found: list[str] = []
        for path, text in items or []:
            host, port = text, "53"
            if text.startswith("["):
                host, _, rest = text[1:].partition("]")
                port = rest[1:] if rest.startswith(":") else "53"
            elif text.count(":") == 1:
                host, port = text.split(":")
            try:
                ipaddress.ip_address(host)
                if not port.isdigit() or not 0 < int(port) < 65536:
                    raise ValueError(port)
            except ValueError:
                self.problems.add(path, f"malformed nameserver {text!r} (expected ip or ip:port)")
                continue
            found.append(text)
        return tuple(found)

    def limits(self, t: Table) -> Limits:
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
        # RFC 7162 §4: at least 8192 octets.
        imap_line = t.integer("imap_max_line_bytes", d.imap_max_line_bytes, minimum=8192)
        # RFC 9051 §5.4: at least 30 minutes once authenticated.
        imap_idle = t.duration("imap_idle_timeout", d.imap_idle_timeout_s)
        if imap_idle < 1800:
            t.report("imap_idle_timeout", "shorter than 30m (expected at least 30m, RFC 9051 §5.4)")
        imap_login = t.duration("imap_login_timeout", d.imap_login_timeout_s)
        failure_delay = t.duration("auth_failure_delay", d.auth_failure_delay_s, positive=False)
        failures_ip = t.integer("auth_max_failures_per_ip", d.auth_max_failures_per_ip, minimum=1)
        failures_user = t.integer(
            "auth_max_failures_per_user", d.auth_max_failures_per_user, minimum=1
        )
        failure_window = t.duration("auth_failure_window", d.auth_failure_window_s)
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
            imap_max_line_bytes=imap_line or d.imap_max_line_bytes,
            imap_idle_timeout_s=imap_idle,
            imap_login_timeout_s=imap_login,
            auth_failure_delay_s=failure_delay,
            auth_max_failures_per_ip=failures_ip or d.auth_max_failures_per_ip,
            auth_max_failures_per_user=failures_user or d.auth_max_failures_per_user,
            auth_failure_window_s=failure_window,
        )

    def logging(self, t: Table) -> LoggingConfig:
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
        problems: Problems,
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

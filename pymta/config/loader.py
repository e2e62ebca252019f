"""TOML → `model.Config`: read, check every value, and report every problem at once.

The reading is table by table (`Table` tracks which keys were read, so anything left over
is an "unknown key"). `_Reader` reads the tables of plain settings itself (`[server]`,
`[tls]`, `[mailboxes]`, `[queue]`, `[limits]`, `[logging]`) and hands the tables of
entries to their own readers: `listeners` (`[listeners.NAME]`), `directory` (users and
groups) and `routing` (`[[domains]]`, `[[public_mailboxes]]`, `[[addresses]]`).
References between tables are checked once their target is read: a user's domain and a
group's members while the directory is read, every destination (a user, a public mailbox,
an address) once everything is read (`routing.RoutingReader.check`). Problems go to one
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
from collections.abc import Mapping
from pathlib import Path

from pymta.config.directory import DirectoryReader
from pymta.config.errors import ConfigError, ConfigProblem, KeyLocator
from pymta.config.listeners import ListenerReader
from pymta.config.model import (
    Config,
    Limits,
    LoggingConfig,
    MailboxesConfig,
    QueueConfig,
    Secret,
    ServerConfig,
    TlsConfig,
)
from pymta.config.names import domain_problem
from pymta.config.routing import RoutingReader
from pymta.config.tables import Problems, Table

logger = logging.getLogger(__name__)

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


# --- the reader ----------------------------------------------------------------------------


class _Reader:
    """Reads one parsed TOML document into a Config, reporting to `problems`."""

    def __init__(self, problems: Problems, source: Path) -> None:
        self.problems = problems
        self.source = source
        self.base_dir = Path(os.path.abspath(source.parent))

    def read(self, data: Mapping[str, object]) -> Config:
        root = Table(self.problems, data, ())
        routing = RoutingReader(self.problems)
        server = self.server(root.table("server"))
        tls = self.tls(root.table("tls"))
        listeners = ListenerReader(self.problems).listeners(root.table("listeners"), tls)
        domains = routing.domains(root.tables("domains"))
        directory = DirectoryReader(self.problems).directory(root.table("directory"), domains)
        public = routing.public_mailboxes(root.tables("public_mailboxes"))
        addresses = routing.addresses(root.tables("addresses"), domains)
        mailboxes = self.mailboxes(root.table("mailboxes"))
        queue = self.queue(root.table("queue"))
        limits = self.limits(root.table("limits"))
        logging_config = self.logging(root.table("logging"))
        root.finish()
        routing.check(domains, directory, public, addresses)
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

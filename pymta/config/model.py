"""The typed configuration tree: one frozen object, built by `config.loader` from TOML.

Every class here mirrors one TOML table of `conf/pymta.toml`; every field's comment is the
documentation the reference file carries (a test keeps the two in step). Units live in the
field names (`_bytes`, `_s`). Nothing here touches the disk or the network.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path


class Secret:
    """A string that never prints: password hashes and keys travel in this type."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class TlsMode(enum.Enum):
    NONE = "none"
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class Protocol(enum.Enum):
    SMTP = "smtp"  # inbound MX, port 25
    SUBMISSION = "submission"  # 587 / 465, authenticated (a later issue)
    IMAP = "imap"
    POP3 = "pop3"
    MANAGESIEVE = "managesieve"


@dataclass(frozen=True)
class ServerConfig:
    hostname: str  # the name in the SMTP greeting and Received headers
    data_dir: Path  # mail, public mailboxes, queue, indexes live under here
    user: str | None = None  # drop privileges to this user after binding ports
    group: str | None = None  # and this group (default: the user's primary group)
    shutdown_timeout_s: float = 30.0  # SIGTERM: how long transactions in flight may finish
    # Submission: the envelope sender and From: must be the user's own addresses (issue 5).
    submission_sender_check: bool = True


@dataclass(frozen=True)
class TlsConfig:
    cert_file: Path | None = None  # PEM certificate chain
    key_file: Path | None = None  # PEM private key
    min_version: str = "1.2"  # "1.2" or "1.3"; never lower (RFC 8996)


@dataclass(frozen=True)
class ListenerConfig:
    name: str  # the key under [listeners]
    protocol: Protocol
    addresses: tuple[str, ...]  # bind addresses
    port: int
    tls: TlsMode
    # Allow AUTH / LOGIN without TLS on this listener; only honoured when every bind
    # address is a loopback address (a secure-by-default rule).
    allow_plaintext_auth: bool = False


@dataclass(frozen=True)
class DestinationRef:
    """Where mail for an address goes. Exactly one of the three fields is set.

    TOML forms: "alice" (a user's INBOX), "public:Shared" (a public mailbox),
    "someone@example.org" (an address: local ones are resolved again, others are relayed).
    """

    user: str | None = None
    public: str | None = None
    address: str | None = None

    def __str__(self) -> str:
        if self.user is not None:
            return self.user
        if self.public is not None:
            return f"public:{self.public}"
        return str(self.address)


@dataclass(frozen=True)
class DomainConfig:
    name: str  # lower-case domain name
    add_user_addresses: bool = True  # every user gets <user>@<this domain>
    # Accept mail for addresses that exist nowhere and deliver it to `catch_all`;
    # allowed only when add_user_addresses is off.
    accept_unknown_recipients: bool = False
    catch_all: DestinationRef | None = None
    # A hidden copy of every inbound message of this domain goes here as well.
    copy_inbound_to: DestinationRef | None = None


@dataclass(frozen=True)
class AddressConfig:
    local_part: str  # lower-cased
    domain: str | None  # None: the address exists in every domain
    destinations: tuple[DestinationRef, ...]
    # Refuse mail from outside (unauthenticated senders whose envelope sender is not in
    # our domains) with 550 5.7.1.
    internal: bool = False


@dataclass(frozen=True)
class UserConfig:
    name: str  # login name and the local part of the user's addresses (lower-case)
    domain: str  # the domain whose directory holds the mailbox: mail/<domain>/<name>/
    password_hash: Secret | None  # argon2id ($argon2id$...) or SHA512-CRYPT ($6$...)
    enabled: bool = True  # a disabled mailbox refuses mail (550 5.2.1) and logins
    quota_bytes: int | None = None  # None: [mailboxes] default_quota_bytes; 0: unlimited
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupConfig:
    name: str
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublicMailboxConfig:
    name: str  # stored under <data_dir>/public/<name>/Maildir/
    quota_bytes: int | None = None


@dataclass(frozen=True)
class DirectoryConfig:
    backend: str = "local"  # "local" (this file); "ldap" comes later
    users: tuple[UserConfig, ...] = ()
    groups: tuple[GroupConfig, ...] = ()


@dataclass(frozen=True)
class MailboxesConfig:
    default_quota_bytes: int = 0  # 0: unlimited


@dataclass(frozen=True)
class QueueConfig:
    # Seconds to wait before each retry; the last value repeats until max_age_s.
    retry_intervals_s: tuple[float, ...] = (60.0, 300.0, 900.0, 1800.0, 3600.0)
    max_age_s: float = 5 * 24 * 3600.0  # Postfix's maximal_queue_lifetime
    scan_interval_s: float = 10.0
    # Tell the sender once when a message is still undelivered after this long
    # (Postfix's delay_warning_time; 0: never).
    delay_warning_s: float = 4 * 3600.0
    # DNS servers for MX lookups, "ip" or "ip:port"; empty: the system's resolv.conf.
    nameservers: tuple[str, ...] = ()
    # The port remote MX hosts are contacted on (RFC 5321 §4.5.4.2: 25; other values are
    # for test setups and unusual relays).
    remote_port: int = 25
    # A smarthost (Postfix's relayhost): every remote recipient goes to this (host, port),
    # with no MX lookup. None: deliver to each domain's MX.
    relay_host: tuple[str, int] | None = None
    # AUTH PLAIN/LOGIN at the smarthost, only ever sent after STARTTLS (RFC 4954 §4).
    relay_user: str | None = None
    relay_password: Secret | None = None


@dataclass(frozen=True)
class Limits:
    """Every limit, with its unit in the name and its precedent in the comment."""

    max_connections: int = 1000
    max_connections_per_ip: int = 20  # Postfix smtpd_client_connection_count_limit is 50
    # RFC 5321 §4.5.3.2.7: the server SHOULD wait at least 5 minutes for a command.
    command_timeout_s: float = 300.0
    # RFC 5321 §4.5.3.2.6: at least 10 minutes for the end of DATA.
    data_timeout_s: float = 600.0
    idle_timeout_s: float = 300.0
    # RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with CRLF.
    max_command_line_bytes: int = 512
    # RFC 5321 §4.5.3.1.6: a text line is at most 1000 octets with CRLF.
    max_line_bytes: int = 1000
    max_message_bytes: int = 50 * 1024 * 1024  # advertised with SIZE (RFC 1870)
    # RFC 5321 §4.5.3.1.8: at least 100 recipients MUST be accepted.
    max_recipients: int = 100
    # IMAP: a command line without its literals. RFC 7162 §4 asks servers to accept at
    # least 8192 octets; Dovecot's imap_max_line_length is 64 KiB. Literals (APPEND) are
    # capped by max_message_bytes (advertised as APPENDLIMIT, RFC 7889).
    imap_max_line_bytes: int = 65536
    # RFC 9051 §5.4: the autologout timer of an authenticated session is at least 30 minutes
    # (IDLE included); before authentication it may be shorter.
    imap_idle_timeout_s: float = 1800.0
    imap_login_timeout_s: float = 60.0
    # Failed logins (every protocol): each failure delays the answer by
    # auth_failure_delay_s, doubling per recent failure of that IP (Dovecot's auth
    # penalty); past the per-IP or per-user maximum within the window, logins are refused.
    auth_failure_delay_s: float = 2.0
    auth_max_failures_per_ip: int = 10
    auth_max_failures_per_user: int = 10
    auth_failure_window_s: float = 900.0


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "info"  # debug, info, warning, error


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    tls: TlsConfig = field(default_factory=TlsConfig)
    listeners: tuple[ListenerConfig, ...] = ()
    directory: DirectoryConfig = field(default_factory=DirectoryConfig)
    domains: tuple[DomainConfig, ...] = ()
    addresses: tuple[AddressConfig, ...] = ()
    public_mailboxes: tuple[PublicMailboxConfig, ...] = ()
    mailboxes: MailboxesConfig = field(default_factory=MailboxesConfig)
    queue: QueueConfig = field(default_factory=QueueConfig)
    limits: Limits = field(default_factory=Limits)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    source: Path | None = None  # the file this was loaded from

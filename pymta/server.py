"""Wiring: build the objects, start the listeners, handle signals, stop gracefully.

One `Server` per process. It owns the store, the queue and its scheduler, the deliverer,
the connection gate and the listeners. SIGHUP reloads the config: directory and routing
change at once for new transactions (each transaction keeps the snapshot it started with);
a bad file is refused and the old config stays. SIGTERM stops accepting, lets transactions
in flight finish up to `[server] shutdown_timeout`, then closes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import ssl
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import dns.asyncresolver
import dns.nameserver
import dns.resolver

from pymta.adapter import SessionListener
from pymta.auth.authenticator import Authenticator
from pymta.auth.passwords import Passwords
from pymta.auth.throttle import MonotonicClock, Throttle
from pymta.config.errors import ConfigError
from pymta.config.loader import load_config
from pymta.config.model import Config, ListenerConfig, Protocol, QueueConfig, TlsConfig, TlsMode
from pymta.datalock import DataDirLock, DataDirLocked
from pymta.delivery.bounce import Bouncer
from pymta.delivery.deliver import Deliverer, DirectoryHolder, LocalTransport
from pymta.delivery.ownership import SenderOwnership
from pymta.directory.local import LocalDirectory
from pymta.gate import ConnectionGate
from pymta.imap.server import ImapListener
from pymta.imap.session import ImapSession, SessionConfig
from pymta.pop3.maildrop import MaildropLocks
from pymta.pop3.server import Pop3Listener
from pymta.pop3.session import Pop3Session
from pymta.pop3.session import SessionConfig as Pop3SessionConfig
from pymta.queue import Queue, QueueEntry, QueueRecipient, Transport
from pymta.queue.dkim import DkimKeys, DkimSigner
from pymta.queue.model import SuccessAction
from pymta.queue.mx import CachingResolver
from pymta.queue.remote import RemoteTransport
from pymta.smtp.server import SmtpListener
from pymta.smtp.submission import SubmissionStage
from pymta.store import Store

log = logging.getLogger(__name__)

_L = TypeVar("_L", bound=SessionListener[Any])

RESOLVER_CACHE_ENTRIES = 10_000  # names; answers expire by their TTL


def tls_context(tls: TlsConfig) -> ssl.SSLContext | None:
    """A server TLS context, TLS ≥ 1.2 (RFC 8996), or None when no certificate is set."""
    if tls.cert_file is None or tls.key_file is None:
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if tls.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return ctx


def make_resolver(queue: QueueConfig) -> dns.asyncresolver.Resolver:
    """The resolver for MX lookups: `[queue] nameservers`, else the system's.

    Answers are cached for their TTL (dnspython's LRU cache, negative answers included, RFC
    2308), so a queue run to one domain asks the DNS once, not once per message.
    """
    resolver = _resolver(queue)
    resolver.cache = dns.resolver.LRUCache(RESOLVER_CACHE_ENTRIES)
    return resolver


def _resolver(queue: QueueConfig) -> dns.asyncresolver.Resolver:
    if not queue.nameservers:
        try:
            return dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            log.warning("no /etc/resolv.conf: MX lookups go to 127.0.0.1")
            queue_ns: tuple[str, ...] = ("127.0.0.1",)
    else:
        queue_ns = queue.nameservers
    resolver = dns.asyncresolver.Resolver(configure=False)
    servers: list[str | dns.nameserver.Nameserver] = []
    for text in queue_ns:
        host, port = text, 53
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") else 53
        elif text.count(":") == 1:
            host, port_text = text.split(":")
            port = int(port_text)
        servers.append(dns.nameserver.Do53Nameserver(host, port))
    resolver.nameservers = servers
    resolver.lifetime = 10.0
    return resolver


def make_authenticator(directory: DirectoryHolder, config: Config) -> Authenticator:
    """The one authenticator of the process: every protocol's failed logins count in the
    same throttle."""
    clock = MonotonicClock()
    return Authenticator(directory, Passwords(), Throttle(config.limits, clock), clock)


class Server:
    def __init__(self, config: Config) -> None:
        self.config = config
        data_dir = config.server.data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        # One process per data directory (the store's locks are in-process).
        self.data_lock = DataDirLock(data_dir)
        self.data_lock.acquire()
        self.directory = DirectoryHolder(LocalDirectory(config))
        self.store = Store(data_dir, hostname=config.server.hostname)
        # Failed recipients become a DSN to the sender (the bouncer routes it like mail).
        self.queue = Queue(
            data_dir / "queue",
            config.queue,
            on_failed=self._bounce,
            on_delayed=self._warn,
            on_success=self._report_success,
        )
        # Success reports (RFC 3461) for copies delivered at once come from the deliverer.
        self.deliverer = Deliverer(
            self.directory, self.store, self.queue, on_success=self._report_success
        )
        self.gate = ConnectionGate(
            config.limits.max_connections, config.limits.max_connections_per_ip
        )
        self.tls = tls_context(config.tls)
        # One authenticator (and its failed-login throttle) for every protocol.
        self.authenticator = make_authenticator(self.directory, config)
        # DKIM keys of `pymta dkim keygen`: submitted mail is signed (issue 5).
        self.dkim = DkimSigner(DkimKeys(data_dir))
        # The sender rule of every submission listener; SIGHUP may switch it.
        self.ownership = SenderOwnership(
            self.directory, enforce=config.server.submission_sender_check
        )
        # POP3's exclusive maildrop locks (RFC 1939 §4), shared by every POP3 listener.
        self.maildrops = MaildropLocks()
        self.ports: dict[str, int] = {}  # listener name → bound port (port 0 in tests)
        self._servers: list[asyncio.base_events.Server] = []
        self._listeners: list[SmtpListener | ImapListener | Pop3Listener] = []
        self._queue_task: asyncio.Task[None] | None = None
        self._remote: RemoteTransport | None = None
        self._stopped = asyncio.Event()

    def _bouncer(self) -> Bouncer:
        queue = self.config.queue
        return Bouncer(self.deliverer, self.config.server.hostname, max_age_s=queue.max_age_s)

    async def _bounce(self, entry: QueueEntry, failed: Sequence[QueueRecipient]) -> None:
        await self._bouncer()(entry, failed)

    async def _warn(self, entry: QueueEntry, delayed: Sequence[QueueRecipient]) -> None:
        await self._bouncer().warn(entry, delayed)

    async def _report_success(
        self,
        entry: QueueEntry,
        succeeded: Sequence[QueueRecipient],
        action: SuccessAction,
        original: bytes,
    ) -> None:
        await self._bouncer().report_success(entry, succeeded, action, original)

    # -- start / stop ----------------------------------------------------------------

    async def start(self) -> None:
        for listener in self.config.listeners:
            await self._start_listener(listener)
        queue = self.config.queue
        remote = RemoteTransport(
            self.config.server.hostname,
            CachingResolver(make_resolver(queue)),
            port=queue.remote_port,
            relay_host=queue.relay_host,
            relay_auth=(
                (queue.relay_user, queue.relay_password)
                if queue.relay_user is not None and queue.relay_password is not None
                else None
            ),
        )
        self._remote = remote
        transports: dict[str, Transport] = {
            LocalTransport.name: LocalTransport(self.deliverer),
            remote.name: remote,
        }
        self._queue_task = asyncio.create_task(self.queue.run(transports), name="queue")
        log.info(
            "server started hostname=%s listeners=%s",
            self.config.server.hostname,
            ",".join(f"{n}:{p}" for n, p in self.ports.items()),
        )

    async def _start_listener(self, cfg: ListenerConfig) -> None:
        if cfg.protocol not in (Protocol.SMTP, Protocol.SUBMISSION, Protocol.IMAP, Protocol.POP3):
            log.warning(
                "listener not built yet, skipped name=%s protocol=%s", cfg.name, cfg.protocol.value
            )
            return
        if cfg.tls is not TlsMode.NONE and self.tls is None:
            raise ConfigError.single(
                self.config.source,
                f"listeners.{cfg.name}.tls",
                "TLS needs [tls] cert_file and key_file",
            )
        listener: SmtpListener | ImapListener | Pop3Listener
        if cfg.protocol is Protocol.IMAP:
            listener = self._imap_listener(cfg)
        elif cfg.protocol is Protocol.POP3:
            listener = self._pop3_listener(cfg)
        else:
            listener = self._smtp_listener(cfg)
        self._listeners.append(listener)
        loop = asyncio.get_running_loop()
        port = cfg.port
        for address in cfg.addresses:
            server = await loop.create_server(
                listener.protocol_factory,
                host=address,
                port=port,
                ssl=self.tls if cfg.tls is TlsMode.IMPLICIT else None,
                reuse_address=True,
                backlog=1024,
            )
            self._servers.append(server)
            port = server.sockets[0].getsockname()[1]  # all addresses share an ephemeral port
        self.ports[cfg.name] = port

    def _imap_listener(self, cfg: ListenerConfig) -> ImapListener:
        def session(peer_ip: str, tls_active: bool) -> ImapSession:
            config = self.config  # of the moment: a SIGHUP reload applies to new sessions
            session_config = SessionConfig(
                store=self.store,
                authenticator=self.authenticator,
                directory=self.directory,
                limits=config.limits,
                hostname=config.server.hostname,
                listener=cfg.name,
                starttls_available=cfg.tls is TlsMode.STARTTLS,
                # The loader allows it only on loopback-only listeners.
                plaintext_auth=cfg.allow_plaintext_auth,
            )
            return ImapSession(session_config, peer_ip=peer_ip, tls_active=tls_active)

        return self._session_listener(ImapListener, cfg, session)

    def _pop3_listener(self, cfg: ListenerConfig) -> Pop3Listener:
        def session(peer_ip: str, tls_active: bool) -> Pop3Session:
            config = self.config  # of the moment: a SIGHUP reload applies to new sessions
            session_config = Pop3SessionConfig(
                store=self.store,
                authenticator=self.authenticator,
                maildrops=self.maildrops,
                limits=config.limits,
                hostname=config.server.hostname,
                listener=cfg.name,
                starttls_available=cfg.tls is TlsMode.STARTTLS,
                # The loader allows it only on loopback-only listeners.
                plaintext_auth=cfg.allow_plaintext_auth,
            )
            return Pop3Session(session_config, peer_ip=peer_ip, tls_active=tls_active)

        return self._session_listener(Pop3Listener, cfg, session)

    def _session_listener(
        self,
        kind: type[_L],
        cfg: ListenerConfig,
        session_factory: Callable[[str, bool], Any],
    ) -> _L:
        """An IMAP or POP3 listener (`kind`) of `cfg`, making sessions with the factory."""
        return kind(
            name=cfg.name,
            session_factory=session_factory,
            limits=self.config.limits,
            gate=self.gate,
            tls_context=self.tls if cfg.tls is TlsMode.STARTTLS else None,
        )

    def _smtp_listener(self, cfg: ListenerConfig) -> SmtpListener:
        submission: SubmissionStage | None = None
        if cfg.protocol is Protocol.SUBMISSION:
            submission = SubmissionStage(self.ownership, self.dkim)
        return SmtpListener(
            submission=submission,
            authenticator=self.authenticator if submission is not None else None,
            # The loader allows it only on loopback-only listeners.
            plaintext_auth=cfg.allow_plaintext_auth,
            name=cfg.name,
            policy=self.deliverer,
            limits=self.config.limits,
            hostname=self.config.server.hostname,
            tls_context=self.tls if cfg.tls is TlsMode.STARTTLS else None,
            implicit_tls=cfg.tls is TlsMode.IMPLICIT,
            gate=self.gate,
        )

    async def stop(self) -> None:
        """Graceful stop: no new connections, transactions in flight may finish."""
        for server in self._servers:
            server.close()
        timeout = self.config.server.shutdown_timeout_s
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(listener.busy for listener in self._listeners) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for listener in self._listeners:
            listener.close_all()
        if self._queue_task is not None:
            self._queue_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._queue_task
        if self._remote is not None:
            await self._remote.close()  # QUIT to the cached sessions
        self.queue.close()
        await self.store.close()
        self.data_lock.release()
        self._stopped.set()
        log.info("server stopped")

    async def wait_stopped(self) -> None:
        await self._stopped.wait()

    # -- reload ----------------------------------------------------------------------

    def reload(self, path: Path) -> bool:
        """SIGHUP: load `path`; on success swap directory and limits; else keep the old."""
        try:
            config = load_config(path)
        except ConfigError as exc:
            log.error("reload refused, old config stays problems=%d\n%s", len(exc.problems), exc)
            return False
        if config.listeners != self.config.listeners or config.tls != self.config.tls:
            log.warning("reload: listener and TLS changes take effect at the next restart")
        self.directory.directory = LocalDirectory(config)
        self.dkim.keys.forget()  # keys written or replaced since start apply from now on
        self.ownership.enforce = config.server.submission_sender_check
        self.gate.update(config.limits.max_connections, config.limits.max_connections_per_ip)
        self.config = config
        logging.getLogger().setLevel(config.logging.level.upper())
        log.info(
            "config reloaded domains=%d users=%d addresses=%d",
            len(config.domains),
            len(config.directory.users),
            len(config.addresses),
        )
        return True

    # -- privileges ------------------------------------------------------------------

    def drop_privileges(self) -> None:
        """After binding ports: become `[server] user` (only when started as root)."""
        user = self.config.server.user
        if user is None or os.geteuid() != 0:
            return
        pw = pwd.getpwnam(user)
        gid = (
            grp.getgrnam(self.config.server.group).gr_gid if self.config.server.group else pw.pw_gid
        )
        for sub in ("", "mail", "public", "queue"):
            path = self.config.server.data_dir / sub
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, pw.pw_uid, gid)
        os.setgroups([])
        os.setgid(gid)
        os.setuid(pw.pw_uid)
        log.info("dropped privileges user=%s uid=%d gid=%d", user, pw.pw_uid, gid)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # aiosmtpd logs every command line at INFO and message lines at DEBUG: our own
    # transaction log line replaces that, and message content never goes to the log.
    logging.getLogger("mail.log").setLevel(logging.WARNING)


async def _serve(path: Path, config: Config) -> None:
    server = Server(config)
    await server.start()
    server.drop_privileges()
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def on_term() -> None:
        if not stopping:
            log.info("SIGTERM: stopping, waiting for transactions in flight")
            stopping.append(asyncio.create_task(server.stop()))

    loop.add_signal_handler(signal.SIGTERM, on_term)
    loop.add_signal_handler(signal.SIGINT, on_term)
    loop.add_signal_handler(signal.SIGHUP, lambda: server.reload(path))
    await server.wait_stopped()


def serve(path: Path) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc)
        return 1
    configure_logging(config.logging.level)
    try:
        import uvloop
    except ImportError:  # uvloop is optional: the default loop works too
        run = asyncio.run
    else:
        run = uvloop.run
    try:
        run(_serve(path, config))
    except DataDirLocked as exc:
        print(f"another pymta process holds {exc}: refusing to start")
        return 1
    return 0

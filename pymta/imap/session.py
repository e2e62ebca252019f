"""`ImapSession`: the sans-I/O IMAP state machine of one connection.

Bytes in (`receive_data`), response bytes and an action out (`await next_event()`); the
asyncio adapter (`server.py`) owns the socket, TLS, timeouts and the connection gate.
Handlers are `async` because they await the store and the authenticator — never the
network.

Rules of this file:
- the state is `State`; which commands each state allows is `COMMANDS`, the one table:
  a command outside its states is answered BAD here, never by an `if` in a handler;
- handlers return `Done` or raise `BadCommand` / `Refused` (errors.py); `_guarded` turns
  those, the store's errors and anything unexpected (NO [SERVERBUG] with a logged
  reference) into the tagged reply — the only place a tagged status line is written;
- changes of the selected folder are announced after a command's own responses, before
  its tagged reply, as `COMMANDS` allows (no EXPUNGE during FETCH/STORE/SEARCH, RFC 9051
  §7.5.1), and continuously during IDLE;
- one command runs at a time (RFC 9051 §5.5 lets a server serialise pipelined commands).
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pymta.auth.authenticator import LoginCheck
from pymta.config.model import Limits
from pymta.delivery.deliver import DirectoryHolder
from pymta.directory.model import Mailbox as DirectoryMailbox
from pymta.store import Change, MailboxRef, Store, StoreError, Subscription

from . import command as c
from . import connection, login, mailboxes, messages, quota, searching, wire
from .capabilities import CapabilityState, capability_text
from .errors import BadCommand, Code, Done, ImapError, Refused, refusal_for
from .fetch import FetchRenderer
from .framer import (
    CommandFrame,
    ContinuationLine,
    Framer,
    LineTooLong,
    LiteralAnnounced,
    LiteralTooLarge,
    NeedMore,
)
from .parser import ParseError, parse_command
from .selected import SelectedMailbox

log = logging.getLogger(__name__)

SERVER_NAME = "pymta"
# Output above this size is handed to the adapter during a command (`flush`), so a FETCH
# of many bodies is written as it is rendered instead of piling up in memory.
FLUSH_BYTES = 256 * 1024
# Before login a literal may only carry a user name or password (RFC 9051 §6.2.3 LOGIN
# with literals): a stranger cannot make us buffer a message-sized literal.
PREAUTH_LITERAL_BYTES = 8 * 1024


class State(enum.Enum):
    """RFC 9051 §3."""

    NOT_AUTHENTICATED = "not authenticated"
    AUTHENTICATED = "authenticated"
    SELECTED = "selected"
    LOGOUT = "logout"


class Action(enum.Enum):
    """What the adapter does after writing an `Output`'s data."""

    READ = "read"  # feed more input (`receive_data`), then call `next_event` again
    CONTINUE = "continue"  # call `next_event` again at once (more input may be buffered)
    START_TLS = "start_tls"  # TLS handshake (after `discard_input`), `tls_started`, go on
    IDLE = "idle"  # wait for input or `wakeup`, then call `next_event` again
    CLOSE = "close"  # close the connection


@dataclass(frozen=True)
class Output:
    data: bytes
    action: Action


@dataclass(frozen=True)
class SessionConfig:
    """What every session of one listener shares (injected collaborators included)."""

    store: Store
    authenticator: LoginCheck
    directory: DirectoryHolder
    limits: Limits
    hostname: str
    listener: str
    starttls_available: bool  # a certificate is configured and the listener is not implicit
    plaintext_auth: bool  # LOGIN/AUTHENTICATE allowed without TLS (loopback listeners only)
    version: str = "0.1.0"
    clock: Callable[[], float] = time.time


Handler = Callable[["ImapSession", Any], Awaitable[Done | None]]


class Announce(enum.Enum):
    """Which pending changes of the selected folder may follow a command's responses."""

    ALL = "all"
    NO_EXPUNGE = "no expunge"  # RFC 9051 §7.5.1 (FETCH, STORE, SEARCH and, here, UID forms)
    NONE = "none"


@dataclass(frozen=True)
class CommandSpec:
    name: str
    states: frozenset[State]
    handler: Handler
    announce: Announce = Announce.ALL


@dataclass
class _Pending:
    """A command that goes on over several client lines (AUTHENTICATE, IDLE)."""

    tag: str
    name: str
    on_line: Callable[[bytes], Awaitable[Done | None]] | None  # None: IDLE's DONE


class ImapSession:
    def __init__(self, config: SessionConfig, *, peer_ip: str, tls_active: bool) -> None:
        self.config = config
        self.store = config.store
        self.peer_ip = peer_ip
        self.tls_active = tls_active
        self.state = State.NOT_AUTHENTICATED
        self.id = secrets.token_hex(4)  # in the log lines of this session
        self.user: str | None = None
        self.mailbox: DirectoryMailbox | None = None
        self.ref: MailboxRef | None = None
        self.selected: SelectedMailbox | None = None
        self._subscription: Subscription | None = None
        self._early: list[Change] = []
        self.enabled: set[str] = set()  # ENABLEd capabilities (RFC 5161), upper-case
        self.condstore = False  # CONDSTORE enabled by ENABLE or a CONDSTORE command
        self.saved_search: list[int] | None = None  # SEARCH RETURN (SAVE) (RFC 5182)
        self.failed_logins = 0
        self.commands = 0
        self._started = time.monotonic()
        # The adapter sets this to be woken during IDLE when the selected folder changes.
        self.wakeup: Callable[[], None] | None = None
        # The adapter sets this to write output during a long command (see `flush`).
        self.writer: Callable[[bytes], Awaitable[None]] | None = None
        self._renderer: FetchRenderer | None = None
        limits = config.limits
        self._framer = Framer(
            max_line_bytes=limits.imap_max_line_bytes,
            max_literal_bytes=PREAUTH_LITERAL_BYTES,
            max_command_bytes=limits.imap_max_line_bytes + 2 * PREAUTH_LITERAL_BYTES,
        )
        self._out = bytearray()
        self._pending: _Pending | None = None
        self._in_command = False
        self._action = Action.CONTINUE

    # -- the adapter's side -----------------------------------------------------------

    def greeting(self) -> bytes:
        """RFC 9051 §7.1.1: the greeting, with capabilities so a client need not ask."""
        return _status_line("*", "OK", f"CAPABILITY {self.capability_text()}", "pymta ready")

    def receive_data(self, data: bytes) -> None:
        self._framer.feed(data)

    @property
    def buffered_bytes(self) -> int:
        return self._framer.buffered_bytes

    def discard_input(self) -> None:
        """STARTTLS: anything the client sent after the command, before the handshake, is
        dropped unread (RFC 9051 §6.2.1, CVE-2011-0411 class)."""
        self._framer.reset()

    def tls_started(self) -> None:
        self.tls_active = True

    def autologout(self) -> bytes:
        """RFC 9051 §5.4: the autologout timer ran out."""
        self.state = State.LOGOUT
        return b"* BYE Autologout; idle for too long\r\n"

    def shutdown(self) -> bytes:
        self.state = State.LOGOUT
        return b"* BYE [UNAVAILABLE] Server shutting down\r\n"

    @property
    def busy(self) -> bool:
        """A command is being carried out (not waiting for input, not idling)."""
        return self._in_command

    @property
    def authenticated(self) -> bool:
        return self.state in (State.AUTHENTICATED, State.SELECTED)

    @property
    def idling(self) -> bool:
        return self._pending is not None and self._pending.on_line is None

    def close(self, reason: str = "closed") -> None:
        """The connection is gone: drop subscriptions, log the end of the session."""
        self._deselect()
        log.info(
            "imap session_end session=%s client=%s user=%s commands=%d seconds=%.1f reason=%s",
            self.id,
            self.peer_ip,
            self.user or "-",
            self.commands,
            time.monotonic() - self._started,
            reason,
        )

    async def next_event(self) -> Output:
        """Carry out what the buffered input allows, up to one command."""
        self._out = bytearray()
        self._action = Action.CONTINUE
        if self.state is State.LOGOUT:
            return Output(b"", Action.CLOSE)
        if self.idling:
            await self.announce(Announce.ALL)
        event = self._framer.next_event()
        if isinstance(event, NeedMore):
            self._action = Action.IDLE if self.idling else Action.READ
        elif isinstance(event, LiteralAnnounced):
            self._literal_announced(event)
        elif isinstance(event, LineTooLong):
            # RFC 9051 §4 / RFC 7162 §4: a line past our limit is refused, never parsed.
            self._abandon_pending()
            self._status(event.tag, "BAD", Code.TOOBIG.value, "Command line too long")
        elif isinstance(event, LiteralTooLarge):
            self._literal_too_large(event)
        elif isinstance(event, ContinuationLine):
            await self._continuation(event.data)
        elif isinstance(event, CommandFrame):
            await self._command(event.data)
        data = bytes(self._out)
        self._out = bytearray()
        return Output(data, Action.CLOSE if self.logged_out else self._action)

    @property
    def logged_out(self) -> bool:
        return self.state is State.LOGOUT

    # -- responses (for handlers) -----------------------------------------------------

    def untagged(self, line: bytes) -> None:
        """`* <line>` (line without CRLF; may hold literals)."""
        self._out += b"* "
        self._out += line
        self._out += b"\r\n"

    def untagged_ok(self, code: str | None, text: str) -> None:
        self._out += _status_line("*", "OK", code, text)

    def raw_output(self, data: bytes) -> None:
        """Complete response lines (with CRLF), as the FETCH renderer makes them."""
        self._out += data

    async def flush(self) -> None:
        """Hand what is buffered to the adapter when it is large (a long FETCH). Only
        between whole responses; a session without a writer (unit tests) keeps it all."""
        if self.writer is not None and len(self._out) >= FLUSH_BYTES:
            data = bytes(self._out)
            self._out = bytearray()
            await self.writer(data)

    def fetch_renderer(self, make: Callable[[], FetchRenderer]) -> FetchRenderer:
        """The session's FETCH renderer (it caches flag strings), made on first use."""
        if self._renderer is None:
            self._renderer = make()
        return self._renderer

    def continuation(self, text: bytes = b"") -> None:
        """RFC 9051 §7.5 command continuation request."""
        self._out += b"+ " + text + b"\r\n"

    def _status(self, tag: str | None, status: str, code: str | None, text: str) -> None:
        self._out += _status_line(tag or "*", status, code, text)

    # -- state, for handlers ----------------------------------------------------------

    @property
    def utf8(self) -> bool:
        """Mailbox names in UTF-8 (RFC 6855 §3, RFC 9051 §5.1) instead of mUTF-7."""
        return "UTF8=ACCEPT" in self.enabled or "IMAP4REV2" in self.enabled

    @property
    def rev2(self) -> bool:
        return "IMAP4REV2" in self.enabled

    @property
    def qresync(self) -> bool:
        return "QRESYNC" in self.enabled

    def capability_state(self) -> CapabilityState:
        return CapabilityState(
            tls_active=self.tls_active,
            starttls_available=self.config.starttls_available,
            plaintext_auth_allowed=self.config.plaintext_auth,
            authenticated=self.authenticated,
            append_limit=self.config.limits.max_message_bytes,
        )

    def capability_text(self) -> str:
        return capability_text(self.capability_state())

    def mailbox_name(self, name: str) -> bytes:
        return wire.mailbox_name(name, self.utf8)

    def log_in(self, user: str, mailbox: DirectoryMailbox, method: str) -> None:
        if mailbox.domain is None:
            raise Refused("Mailbox not available", Code.UNAVAILABLE)
        self.user = user
        self.mailbox = mailbox
        self.ref = MailboxRef("user", mailbox.name, mailbox.domain)
        self.state = State.AUTHENTICATED
        # APPEND literals up to APPENDLIMIT from now on (RFC 7889); one command holds at
        # most one message's worth (MULTIAPPEND included) plus its lines.
        limits = self.config.limits
        self._framer.max_literal_bytes = limits.max_message_bytes
        self._framer.max_command_bytes = limits.max_message_bytes + limits.imap_max_line_bytes
        log.info(
            "imap login session=%s client=%s user=%s method=%s tls=%s",
            self.id,
            self.peer_ip,
            user,
            method,
            "yes" if self.tls_active else "no",
        )

    def current_mailbox(self) -> DirectoryMailbox:
        """The user's mailbox as the directory sees it now (SIGHUP may change quota). When
        the directory cannot be asked (a backend raising OSError), the session goes on with
        what it had at login rather than failing every APPEND, COPY and GETQUOTA."""
        assert self.mailbox is not None
        try:
            user = self.config.directory.directory.user(self.mailbox.name)
        except OSError as exc:
            log.warning(
                "imap directory_unavailable session=%s user=%s error=%s",
                self.id,
                self.user,
                type(exc).__name__,
            )
            return self.mailbox
        return user.mailbox if user is not None else self.mailbox

    def user_ref(self) -> MailboxRef:
        if self.ref is None:
            raise BadCommand("Not logged in")
        return self.ref

    def watch(self, ref: MailboxRef, folder: str) -> None:
        """Start listening to a folder's changes before listing it (SELECT), so nothing
        committed in between is missed: changes wait here until `select` gets the view."""
        self._deselect()
        early: list[Change] = []
        self._early = early

        def on_change(change: Change) -> None:
            view = self.selected
            if view is None:
                early.append(change)
                return
            view.apply(change)
            if self.wakeup is not None:
                self.wakeup()

        self._subscription = self.store.subscribe(ref, folder, on_change)

    def select(self, view: SelectedMailbox) -> None:
        """Make `view` (listed after `watch`) the selected folder."""
        self.selected = view
        self.saved_search = None  # RFC 5182 §2.1: SELECT/EXAMINE reset "$"
        for change in self._early:
            view.apply(change)  # already in the listing: ignored; later: pending
        self._early = []
        self.state = State.SELECTED

    def logout(self) -> None:
        """LOGOUT: the tagged OK is the last thing sent, then the connection closes."""
        self._deselect()
        self.state = State.LOGOUT

    def deselect(self) -> None:
        self._deselect()
        self.saved_search = None
        if self.state is State.SELECTED:
            self.state = State.AUTHENTICATED

    def _deselect(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        self.selected = None
        self._early = []

    def require_selected(self) -> SelectedMailbox:
        if self.selected is None:
            raise BadCommand("No mailbox selected")
        return self.selected

    def require_writable(self) -> SelectedMailbox:
        view = self.require_selected()
        if view.readonly:
            raise Refused("Mailbox is read-only", Code.READ_ONLY)  # RFC 9051 §7.1
        return view

    def enable_condstore(self) -> None:
        """RFC 7162 §3.1: a CONDSTORE-enabling command turns MODSEQ reporting on."""
        self.condstore = True

    def start_idle(self, tag: str) -> None:
        """RFC 2177 §3 / RFC 9051 §6.3.13: "+ idling", then updates until DONE."""
        self._pending = _Pending(tag, "IDLE", None)
        self.continuation(b"idling")
        self._framer.expect_line()
        self._action = Action.IDLE

    def expect_line(
        self, tag: str, name: str, on_line: Callable[[bytes], Awaitable[Done | None]]
    ) -> None:
        """The command goes on with the client's next line (AUTHENTICATE responses)."""
        self._pending = _Pending(tag, name, on_line)
        self._framer.expect_line()
        self._action = Action.READ

    def request_tls(self) -> None:
        """STARTTLS: after the tagged OK, the adapter starts the handshake; input the
        client pipelined behind the command is dropped (RFC 9051 §6.2.1)."""
        self._framer.reset()
        self._action = Action.START_TLS

    # -- framer events ----------------------------------------------------------------

    def _literal_announced(self, event: LiteralAnnounced) -> None:
        if event.synchronizing:
            # RFC 9051 §7.5: the command continuation request for a literal.
            self.continuation(b"Ready for literal data")
            self._framer.accept_literal()
            self._action = Action.READ

    def _literal_too_large(self, event: LiteralTooLarge) -> None:
        if event.synchronizing:
            # RFC 7889 §4, RFC 4469 §5: refused before the client sends one octet.
            status = "NO" if self.authenticated else "BAD"
            self._status(event.tag, status, Code.TOOBIG.value, "Literal too large")
            return
        if self.authenticated and event.size <= 2 * self.config.limits.max_message_bytes:
            # RFC 7888 §4 choice 1: refuse the command, read and drop the octets.
            self._status(event.tag, "NO", Code.TOOBIG.value, "Literal too large")
            return
        # RFC 7888 §4 choice 2: not worth reading; BYE and close.
        self._status(event.tag, "BAD", Code.TOOBIG.value, "Literal too large")
        self.untagged(b"BYE [TOOBIG] Literal too large")
        self.state = State.LOGOUT

    async def _continuation(self, line: bytes) -> None:
        pending = self._pending
        self._pending = None
        if pending is None:
            self._status(None, "BAD", None, "Unexpected line")
            return
        if pending.on_line is None:  # IDLE
            if line.strip().upper() == b"DONE":
                self._status(pending.tag, "OK", None, "IDLE terminated")
            else:
                self._status(pending.tag, "BAD", None, "Expected DONE")  # RFC 2177 §3
            return
        await self._guarded(pending.tag, pending.name, pending.on_line(line))

    def _abandon_pending(self) -> None:
        pending = self._pending
        self._pending = None
        if pending is not None:
            self._status(pending.tag, "BAD", None, f"{pending.name} line too long")

    # -- commands ---------------------------------------------------------------------

    async def _command(self, frame: bytes) -> None:
        self.commands += 1
        try:
            cmd = parse_command(frame, utf8_names=self.utf8)
        except ParseError as exc:
            self._status(exc.tag, "BAD", None, _safe_text(exc.message) or "Syntax error")
            return
        spec = COMMANDS.get(type(cmd))
        if spec is None:
            self._status(cmd.tag, "BAD", None, "Command not supported")
            return
        name = command_name(cmd, spec)
        if self.state not in spec.states:
            # RFC 9051 §6: each command belongs to states; the one table answers.
            self._status(cmd.tag, "BAD", None, f"{name} not allowed now")
            return
        await self._guarded(cmd.tag, name, spec.handler(self, cmd), spec.announce)

    async def _guarded(
        self,
        tag: str,
        name: str,
        work: Awaitable[Done | None],
        announce: Announce = Announce.ALL,
    ) -> None:
        """Run a handler; map its outcome to the tagged reply (the one place)."""
        self._in_command = True
        status, code, text = "OK", None, f"{name} completed"
        try:
            done = await work
            if done is not None:
                code = done.code
                text = done.text or text
        except ImapError as exc:
            status = "BAD" if isinstance(exc, BadCommand) else "NO"
            code, text = exc.code_text, exc.text
        except StoreError as exc:
            err = refusal_for(exc)
            status, code, text = "NO", err.code_text, err.text
        except Exception as exc:
            ref = secrets.token_hex(6)
            log.error(
                "imap internal_error ref=%s session=%s command=%s error=%s",
                ref,
                self.id,
                name,
                type(exc).__name__,
                exc_info=exc,
            )
            status, code, text = "NO", Code.SERVERBUG.value, f"Internal error, reference {ref}"
        finally:
            self._in_command = False
        if self._pending is not None and self._pending.tag == tag and status == "OK":
            return  # the command goes on (AUTHENTICATE challenge, IDLE): no tagged reply yet
        self._pending = None
        if self.state is not State.LOGOUT and self._action is not Action.START_TLS:
            await self.announce(announce)
        self._status(tag, status, code, text)

    async def announce(self, announce: Announce) -> None:
        """Send the selected folder's pending changes that `announce` allows."""
        view = self.selected
        if view is None or announce is Announce.NONE:
            return
        if view.needs_resync:
            try:
                metas = await self.store.messages(self.user_ref(), view.folder)
            except StoreError:
                view.gone = True
            else:
                view.resync(m.uid for m in metas)
        if view.gone:
            # The folder was deleted or renamed under us; the session cannot go on with a
            # view of a folder that is not there (RFC 9051 §7.1.5 BYE).
            self.untagged(b"BYE Selected mailbox was deleted or renamed, please reconnect")
            self._deselect()
            self.state = State.LOGOUT
            return
        if not view.has_pending:
            return
        updates = view.take_updates(allow_expunge=announce is Announce.ALL, vanished=self.qresync)
        if updates.vanished_uids:
            # RFC 7162 §3.2.10: with QRESYNC enabled, VANISHED replaces EXPUNGE.
            self.untagged(b"VANISHED " + wire.sequence_set(updates.vanished_uids))
        for seq in updates.expunged_seqs:
            self.untagged(b"%d EXPUNGE" % seq)
        if updates.exists is not None:
            self.untagged(b"%d EXISTS" % updates.exists)
            if not self.rev2:
                self.untagged(b"0 RECENT")  # RFC 3501 §7.3.2; no \Recent kept (rfc-status)
        if updates.flag_changes:
            await messages.announce_flags(self, view, updates.flag_changes)


def command_name(cmd: c.Command, spec: CommandSpec) -> str:
    """The command's name as the client wrote it, for reply texts."""
    if isinstance(cmd, c.Select) and cmd.readonly:
        name = "EXAMINE"
    elif isinstance(cmd, c.List) and cmd.lsub:
        name = "LSUB"
    elif isinstance(cmd, c.Subscribe) and not cmd.subscribe:
        name = "UNSUBSCRIBE"
    elif isinstance(cmd, c.Copy) and cmd.move:
        name = "MOVE"
    else:
        name = spec.name
    return "UID " + name if getattr(cmd, "uid", False) or getattr(cmd, "uids", None) else name


def _status_line(tag: str, status: str, code: str | None, text: str) -> bytes:
    """RFC 9051 §7.1 resp-cond-state: `tag OK [code] text`."""
    body = f"[{code}] {text}" if code else text
    return f"{tag} {status} {body}\r\n".encode("utf-8", "replace")


def _safe_text(text: str) -> str:
    """Response text is one line of printable characters (RFC 9051 §9 text)."""
    return "".join(ch if ch.isprintable() else " " for ch in text)[:200]


ANY = frozenset({State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED})
NOT_AUTH = frozenset({State.NOT_AUTHENTICATED})
AUTH = frozenset({State.AUTHENTICATED, State.SELECTED})
SELECTED = frozenset({State.SELECTED})
_NO_EXPUNGE = Announce.NO_EXPUNGE

# The command table: RFC 9051 §6.1–§6.4 (and each extension's RFC) say in which states a
# command is valid; `_command` answers every other state with BAD from here.
COMMANDS: MappingProxyType[type[c.Command], CommandSpec] = MappingProxyType(
    {
        # RFC 9051 §6.1: any state.
        c.Capability: CommandSpec("CAPABILITY", ANY, connection.capability),
        c.Noop: CommandSpec("NOOP", ANY, connection.noop),
        c.Logout: CommandSpec("LOGOUT", ANY, connection.logout, Announce.NONE),
        c.Id: CommandSpec("ID", ANY, connection.id_),  # RFC 2971 §3.1
        # RFC 9051 §6.2: not authenticated.
        c.StartTls: CommandSpec("STARTTLS", NOT_AUTH, login.starttls, Announce.NONE),
        c.Authenticate: CommandSpec("AUTHENTICATE", NOT_AUTH, login.authenticate),
        c.Login: CommandSpec("LOGIN", NOT_AUTH, login.login),
        # RFC 9051 §6.3: authenticated or selected.
        c.Enable: CommandSpec("ENABLE", AUTH, connection.enable),  # RFC 5161 §3.1
        c.Select: CommandSpec("SELECT", AUTH, mailboxes.select),
        c.Create: CommandSpec("CREATE", AUTH, mailboxes.create),
        c.Delete: CommandSpec("DELETE", AUTH, mailboxes.delete),
        c.Rename: CommandSpec("RENAME", AUTH, mailboxes.rename),
        c.Subscribe: CommandSpec("SUBSCRIBE", AUTH, mailboxes.subscribe),
        c.List: CommandSpec("LIST", AUTH, mailboxes.list_),
        c.Namespace: CommandSpec("NAMESPACE", AUTH, connection.namespace),  # RFC 2342
        c.Status: CommandSpec("STATUS", AUTH, mailboxes.status),
        c.Append: CommandSpec("APPEND", AUTH, messages.append),
        c.Idle: CommandSpec("IDLE", AUTH, connection.idle),  # RFC 2177
        c.GetQuota: CommandSpec("GETQUOTA", AUTH, quota.getquota),  # RFC 9208 §4.1
        c.GetQuotaRoot: CommandSpec("GETQUOTAROOT", AUTH, quota.getquotaroot),
        c.SetQuota: CommandSpec("SETQUOTA", AUTH, quota.setquota),
        # RFC 9051 §6.4: selected.
        c.Check: CommandSpec("CHECK", SELECTED, connection.noop),  # RFC 3501 §6.4.1
        c.Close: CommandSpec("CLOSE", SELECTED, mailboxes.close, Announce.NONE),
        c.Unselect: CommandSpec("UNSELECT", SELECTED, mailboxes.unselect, Announce.NONE),
        c.Expunge: CommandSpec("EXPUNGE", SELECTED, messages.expunge),
        c.Search: CommandSpec("SEARCH", SELECTED, searching.search, _NO_EXPUNGE),
        c.Fetch: CommandSpec("FETCH", SELECTED, messages.fetch, _NO_EXPUNGE),
        c.Store: CommandSpec("STORE", SELECTED, messages.store, _NO_EXPUNGE),
        c.Copy: CommandSpec("COPY", SELECTED, messages.copy),
    }
)

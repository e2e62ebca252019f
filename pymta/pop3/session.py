"""`Pop3Session`: the sans-I/O POP3 state machine of one connection.

Bytes in (`receive_data`), reply bytes, an action and at most one message transfer out
(`await next_event()`); the asyncio adapter (`server.py`) owns the socket, TLS, timeouts,
the connection gate and the streaming of message files. Handlers are `async` because
they await the store and the authenticator — never the network.

Rules of this file:
- the state is `State` (RFC 1939 §3: AUTHORIZATION, TRANSACTION, UPDATE); which commands
  each state allows, and how many parameters each takes, is `COMMANDS`, the one table: a
  command outside it is answered here, never by an `if` in a handler;
- handlers return `Done` (the `+OK` text; a multi-line body set with `multiline` or a
  message with `send_message` follows it) or raise `Pop3Error` / `ParseError`; `_guarded`
  turns those, the store's errors and anything unexpected (`-ERR [SYS/TEMP]` with a
  logged reference) into the reply — the only place a status line is written;
- one command runs at a time, in the order received (RFC 2449 §6.6 PIPELINING);
- the maildrop lock is released by `close()`, which the adapter calls however the
  connection ends; only QUIT in TRANSACTION state enters UPDATE (RFC 1939 §6).
"""

from __future__ import annotations

import enum
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import MappingProxyType

from pymta.auth.authenticator import LoginCheck
from pymta.config.model import Limits
from pymta.store import Store, StoreError

from . import login, transaction
from .errors import Code, Done, Pop3Error
from .framer import Line, LineReader, LineTooLong, NeedMore
from .grammar import Command, ParseError, command
from .maildrop import Maildrop, MaildropLock, MaildropLocks
from .wire import MessageTransfer

log = logging.getLogger(__name__)

# RFC 2449 §4: a command is at most 255 octets, including the terminating CRLF.
MAX_COMMAND_BYTES = 255
# RFC 2449 §4: the first line of a response is at most 512 octets with its CRLF.
MAX_STATUS_TEXT = 400


class State(enum.Enum):
    """RFC 1939 §3."""

    AUTHORIZATION = "authorization"
    TRANSACTION = "transaction"
    UPDATE = "update"


class Action(enum.Enum):
    """What the adapter does after writing an `Output`'s data (and its transfer)."""

    READ = "read"  # feed more input (`receive_data`), then call `next_event` again
    CONTINUE = "continue"  # call `next_event` again at once (more input may be buffered)
    START_TLS = "start_tls"  # TLS handshake (after `discard_input`), `tls_started`, go on
    CLOSE = "close"  # close the connection


@dataclass(frozen=True)
class Output:
    data: bytes
    action: Action
    # A message to stream right after `data` (RETR, TOP); the adapter owns it from here:
    # it reads it on a worker thread and closes it, sent whole or not.
    transfer: MessageTransfer | None = None


@dataclass(frozen=True)
class SessionConfig:
    """What every session of one listener shares (injected collaborators included)."""

    store: Store
    authenticator: LoginCheck
    maildrops: MaildropLocks  # one per server: the exclusive maildrop locks
    limits: Limits
    hostname: str
    listener: str
    starttls_available: bool  # a certificate is configured and the listener is not implicit
    plaintext_auth: bool  # USER/PASS and AUTH allowed without TLS (loopback listeners only)


Handler = Callable[["Pop3Session", Command], Awaitable[Done | None]]


@dataclass(frozen=True)
class CommandSpec:
    states: frozenset[State]
    handler: Handler
    min_params: int = 0
    max_params: int | None = 0  # None: any number (PASS takes the rest of its line)


class Pop3Session:
    def __init__(self, config: SessionConfig, *, peer_ip: str, tls_active: bool) -> None:
        self.config = config
        self.store = config.store
        self.peer_ip = peer_ip
        self.tls_active = tls_active
        self.state = State.AUTHORIZATION
        self.id = secrets.token_hex(4)  # in the log lines of this session
        self.user: str | None = None
        self.pending_user: str | None = None  # USER given, PASS awaited (RFC 1939 §7)
        self.maildrop: Maildrop | None = None
        self._lock: MaildropLock | None = None
        self.failed_logins = 0
        self.commands = 0
        self.retrieved = 0  # RETR and TOP commands answered with the message
        self.expunged = 0  # messages removed at UPDATE
        self._sent_bytes = 0  # message octets of finished transfers
        self._last_transfer: MessageTransfer | None = None
        self._started = time.monotonic()
        self._reader = LineReader(MAX_COMMAND_BYTES)
        self._out = bytearray()
        self._body: list[bytes] | None = None
        self._transfer: MessageTransfer | None = None
        self._on_line: Callable[[bytes], Awaitable[Done | None]] | None = None
        self._in_command = False
        self._action = Action.CONTINUE
        self._closing = False  # QUIT answered: the connection closes after this output
        self._closed = False

    # -- the adapter's side -----------------------------------------------------------

    def greeting(self) -> bytes:
        """RFC 1939 §4: the greeting. No APOP timestamp: APOP is not offered (RFC 2449 §6:
        its presence is announced only by the timestamp)."""
        return b"+OK pymta POP3 server ready\r\n"

    def receive_data(self, data: bytes) -> None:
        self._reader.feed(data)

    @property
    def buffered_bytes(self) -> int:
        return self._reader.buffered_bytes

    def discard_input(self) -> None:
        """STLS: anything the client sent after the command, before the handshake, is
        dropped unread (RFC 2595 §4, CVE-2011-0411 class)."""
        self._reader.reset()

    def tls_started(self) -> None:
        """RFC 2595 §4: after the handshake the session starts over in AUTHORIZATION
        state; nothing said before it (a USER name) is kept."""
        self.tls_active = True
        self.pending_user = None

    def autologout(self) -> bytes:
        """RFC 1939 §3: the autologout timer ran out. The session does not enter UPDATE
        and nothing is sent: "the server should close the TCP connection without removing
        any messages or sending any response"."""
        return b""

    def shutdown(self) -> bytes:
        """Server stop, between commands: nothing is updated (RFC 1939 §6)."""
        return b"-ERR [SYS/TEMP] Server shutting down\r\n"

    @property
    def busy(self) -> bool:
        """A command is being carried out (not waiting for input)."""
        return self._in_command

    @property
    def authenticated(self) -> bool:
        return self.state is not State.AUTHORIZATION

    def close(self, reason: str = "closed") -> None:
        """The connection is gone: release the maildrop, log the end of the session."""
        if self._closed:
            return
        self._closed = True
        if self.maildrop is not None:
            self.maildrop.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        self._count_transfer()
        log.info(
            "pop3 session_end session=%s user=%s ip=%s retr=%d dele=%d bytes=%d commands=%d "
            "seconds=%.1f reason=%s",
            self.id,
            self.user or "-",
            self.peer_ip,
            self.retrieved,
            self.expunged,
            self._sent_bytes,
            self.commands,
            time.monotonic() - self._started,
            reason,
        )

    async def next_event(self) -> Output:
        """Carry out what the buffered input allows, up to one command."""
        self._out = bytearray()
        self._body = None
        self._transfer = None
        self._action = Action.CONTINUE
        if self._closing:
            return Output(b"", Action.CLOSE)
        event = self._reader.next_event()
        if isinstance(event, NeedMore):
            self._action = Action.READ
        elif isinstance(event, LineTooLong):
            if self._on_line is not None:
                self._on_line = None
                self._end_continuation()
                self._status_err(None, "Authentication line too long")
            else:
                # RFC 2449 §4: 255 octets at most; refused, never parsed, the session goes on.
                self._status_err(None, "Command line too long")
        elif isinstance(event, Line):
            if self._on_line is not None:
                on_line, self._on_line = self._on_line, None
                self._end_continuation()
                await self._guarded("AUTH", on_line(event.data))
            elif event.data:  # empty lines between commands are ignored
                await self._command(event.data)
        data = bytes(self._out)
        self._out = bytearray()
        transfer, self._transfer = self._transfer, None
        return Output(data, Action.CLOSE if self._closing else self._action, transfer)

    # -- for handlers -----------------------------------------------------------------

    def multiline(self, lines: list[bytes]) -> None:
        """RFC 1939 §3: the body of a multi-line response after the `+OK` line; each line
        without CRLF, dot-stuffed here."""
        self._body = lines

    def send_message(self, transfer: MessageTransfer) -> None:
        """Stream `transfer` (already dot-stuffed and terminated) after the `+OK` line."""
        self._count_transfer()
        self._last_transfer = transfer
        self._transfer = transfer
        self.retrieved += 1

    def continuation(self, data: bytes) -> None:
        """RFC 5034 §4: a SASL challenge, "+ " and base64."""
        self._out += b"+ " + data + b"\r\n"

    def expect_line(self, on_line: Callable[[bytes], Awaitable[Done | None]]) -> None:
        """The command goes on with the client's next line (an AUTH response), which may
        be longer than a command line."""
        self._on_line = on_line
        self._reader.max_line_bytes = self.config.limits.imap_max_line_bytes
        self._action = Action.READ

    def request_tls(self) -> None:
        """STLS: after the `+OK`, the adapter starts the handshake; input the client
        pipelined behind the command is dropped (RFC 2595 §4)."""
        self._reader.reset()
        self._action = Action.START_TLS

    def auth_allowed(self) -> bool:
        """No password crosses a connection without TLS unless the listener allows it."""
        return self.tls_active or self.config.plaintext_auth

    def log_in(self, user: str, maildrop: Maildrop, lock: MaildropLock, method: str) -> None:
        """RFC 1939 §4: authenticated, the maildrop locked and listed: TRANSACTION."""
        self.user = user
        self.maildrop = maildrop
        self._lock = lock
        self.state = State.TRANSACTION
        log.info(
            "pop3 login session=%s listener=%s ip=%s user=%s method=%s tls=%s messages=%d",
            self.id,
            self.config.listener,
            self.peer_ip,
            user,
            method,
            "yes" if self.tls_active else "no",
            len(maildrop.entries),
        )

    def require_maildrop(self) -> Maildrop:
        if self.maildrop is None:
            raise Pop3Error("Not logged in")
        return self.maildrop

    def enter_update(self) -> None:
        """QUIT in TRANSACTION state (RFC 1939 §6)."""
        self.state = State.UPDATE

    def end(self) -> None:
        """QUIT: the reply is the last thing sent; the maildrop is released now."""
        self._closing = True
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- commands ---------------------------------------------------------------------

    async def _command(self, line: bytes) -> None:
        self.commands += 1
        try:
            cmd = command(line)
        except ParseError as exc:
            self._status_err(None, str(exc))
            return
        spec = COMMANDS.get(cmd.keyword)
        if spec is None:
            self._status_err(None, "Unknown command")
            return
        if self.state not in spec.states:
            # RFC 1939 §3: each command belongs to states; the one table answers.
            self._status_err(None, f"{cmd.keyword} not valid in this state")
            return
        if len(cmd.params) < spec.min_params:
            self._status_err(None, f"{cmd.keyword}: missing argument")
            return
        if spec.max_params is not None and len(cmd.params) > spec.max_params:
            self._status_err(None, f"{cmd.keyword}: too many arguments")
            return
        await self._guarded(cmd.keyword, spec.handler(self, cmd))

    async def _guarded(self, name: str, work: Awaitable[Done | None]) -> None:
        """Run a handler; map its outcome to the status line (the one place)."""
        self._in_command = True
        try:
            done = await work
        except Pop3Error as exc:
            self._status_err(exc.code_text, exc.text)
        except ParseError as exc:
            self._status_err(None, str(exc))
        except (StoreError, OSError) as exc:
            log.warning(
                "pop3 store_error session=%s command=%s error=%s", self.id, name, type(exc).__name__
            )
            self._status_err(Code.SYS_TEMP.value, "Mailbox temporarily unavailable")
        except Exception as exc:
            ref = secrets.token_hex(6)
            log.error(
                "pop3 internal_error ref=%s session=%s command=%s error=%s",
                ref,
                self.id,
                name,
                type(exc).__name__,
                exc_info=exc,
            )
            self._status_err(Code.SYS_TEMP.value, f"Internal error, reference {ref}")
        else:
            if done is not None:  # None: the command goes on (an AUTH challenge)
                self._status_ok(done.text)
                if self._body is not None:
                    self._out += _multiline_body(self._body)
                return
        finally:
            self._in_command = False
        # An error: no body, no message after it.
        self._body = None
        if self._transfer is not None:
            self._transfer.close()
            self._transfer = None

    def _end_continuation(self) -> None:
        self._reader.max_line_bytes = MAX_COMMAND_BYTES

    def _count_transfer(self) -> None:
        if self._last_transfer is not None:
            self._sent_bytes += self._last_transfer.sent_bytes
            self._last_transfer = None

    def _status_ok(self, text: str) -> None:
        self._out += b"+OK " + _safe_text(text) + b"\r\n" if text else b"+OK\r\n"

    def _status_err(self, code: str | None, text: str) -> None:
        """RFC 2449 §8: `-ERR [code] text`."""
        body = f"[{code}] {text}" if code else text
        self._out += b"-ERR " + _safe_text(body) + b"\r\n"


def _multiline_body(lines: list[bytes]) -> bytes:
    """RFC 1939 §3: CRLF-terminated lines, dot-stuffed, then ".\\r\\n"."""
    out = bytearray()
    for line in lines:
        if line.startswith(b"."):
            out += b"."
        out += line
        out += b"\r\n"
    out += b".\r\n"
    return bytes(out)


def _safe_text(text: str) -> bytes:
    """A status line is one line of printable text (RFC 2449 §3), at most 512 octets."""
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text.encode("utf-8", "replace")[:MAX_STATUS_TEXT]


AUTHORIZATION = frozenset({State.AUTHORIZATION})
TRANSACTION = frozenset({State.TRANSACTION})
ANY = frozenset({State.AUTHORIZATION, State.TRANSACTION})


def _spec(
    states: frozenset[State], handler: Handler, lo: int = 0, hi: int | None = 0
) -> CommandSpec:
    return CommandSpec(states, handler, lo, hi)


# The command table: RFC 1939 §4–§7 (and each extension's RFC) say in which state a
# command is valid and what it takes; `_command` answers everything else from here.
COMMANDS: MappingProxyType[str, CommandSpec] = MappingProxyType(
    {
        "CAPA": _spec(ANY, login.capa),  # RFC 2449 §5: both states
        "QUIT": _spec(ANY, transaction.quit),  # RFC 1939 §4 and §6
        "STLS": _spec(AUTHORIZATION, login.stls),  # RFC 2595 §4
        "USER": _spec(AUTHORIZATION, login.user, 1, 1),  # RFC 1939 §7
        "PASS": _spec(AUTHORIZATION, login.pass_, 1, None),  # RFC 1939 §7
        "AUTH": _spec(AUTHORIZATION, login.auth, 0, 2),  # RFC 5034 §4
        "STAT": _spec(TRANSACTION, transaction.stat),  # RFC 1939 §5
        "LIST": _spec(TRANSACTION, transaction.list_, 0, 1),
        "RETR": _spec(TRANSACTION, transaction.retr, 1, 1),
        "DELE": _spec(TRANSACTION, transaction.dele, 1, 1),
        "NOOP": _spec(TRANSACTION, transaction.noop),
        "RSET": _spec(TRANSACTION, transaction.rset),
        "TOP": _spec(TRANSACTION, transaction.top, 2, 2),  # RFC 1939 §7
        "UIDL": _spec(TRANSACTION, transaction.uidl, 0, 1),  # RFC 1939 §7
    }
)

"""POP3 session transcripts: bytes in, reply lines out, compared the way RFC 1939's examples
read (`"..."` inside a pattern: any text; `...` alone: any lines). Messages that a RETR or
TOP streams are read here the way the adapter reads them."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pymta.auth.authenticator import FAILED, UNAVAILABLE, AuthResult, AuthStatus
from pymta.config.model import (
    Config,
    DirectoryConfig,
    DomainConfig,
    Limits,
    ServerConfig,
    UserConfig,
)
from pymta.delivery.deliver import DirectoryHolder
from pymta.directory.local import LocalDirectory
from pymta.pop3.maildrop import MaildropLocks
from pymta.pop3.session import COMMANDS, Action, Pop3Session, SessionConfig
from pymta.store import MailboxRef, Store

PASSWORD = "secret"
ALICE = MailboxRef("user", "alice", "example.test")
ONE = b"From: bob@example.test\r\nSubject: one\r\n\r\nHello\r\n.dotted line\r\nbye\r\n"
TWO = b"From: carol@example.test\nSubject: two\n\nbare LF body\nsecond line\n"


class FakeAuthenticator:
    """Every user's password is PASSWORD; `down` makes the directory unavailable."""

    def __init__(self, directory: DirectoryHolder) -> None:
        self.directory = directory
        self.down = False
        self.calls: list[tuple[str, str]] = []

    async def authenticate(
        self, login: str, password: str, *, peer_ip: str, protocol: str
    ) -> AuthResult:
        self.calls.append((login, protocol))
        if self.down:
            return UNAVAILABLE
        user = self.directory.directory.user(login.split("@")[0])
        if user is not None and password == PASSWORD:
            return AuthResult(AuthStatus.OK, user)
        return FAILED


@dataclass
class Transcript:
    session: Pop3Session
    lines: list[str] = field(default_factory=list)
    action: Action = Action.READ

    async def send(self, data: str | bytes, *, crlf: bool = True) -> list[str]:
        raw = data.encode() if isinstance(data, str) else data
        self.session.receive_data(raw + (b"\r\n" if crlf else b""))
        return await self.run()

    async def run(self) -> list[str]:
        out = bytearray()
        while True:
            o = await self.session.next_event()
            out += o.data
            if o.transfer is not None:  # what the adapter streams after the status line
                out += o.transfer.take_ready()
                while not o.transfer.finished:
                    out += o.transfer.read()
            self.action = o.action
            if o.action is not Action.CONTINUE:
                break
        self.raw = bytes(out)
        text = self.raw.decode("utf-8", "replace")
        self.lines = text.split("\r\n")[:-1] if text else []
        return self.lines

    def expect(self, *patterns: Any) -> None:
        """Each pattern matches one line ("..." inside it: any text); `...` (Ellipsis)
        matches any number of lines."""
        assert _match(list(patterns), self.lines), "\n".join(self.lines)


def _line(pattern: str, line: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line, re.DOTALL) is not None


def _match(patterns: list[Any], lines: list[str]) -> bool:
    if not patterns:
        return not lines
    head, rest = patterns[0], patterns[1:]
    if head is Ellipsis:
        return any(_match(rest, lines[i:]) for i in range(len(lines) + 1))
    return bool(lines) and _line(head, lines[0]) and _match(rest, lines[1:])


class Env:
    """A store, a directory, the maildrop locks and a factory of sessions on them."""

    def __init__(self, tmp_path: Path, limits: Limits | None = None) -> None:
        self.config = Config(
            server=ServerConfig("mx.example.test", tmp_path),
            directory=DirectoryConfig(
                users=(
                    UserConfig("alice", "example.test", None),
                    UserConfig("bob", "example.test", None),
                )
            ),
            domains=(DomainConfig("example.test"),),
        )
        self.holder = DirectoryHolder(LocalDirectory(self.config))
        self.store = Store(tmp_path)
        self.auth = FakeAuthenticator(self.holder)
        self.maildrops = MaildropLocks()
        self.limits = limits or Limits(auth_failure_delay_s=0)
        self.sessions: list[Pop3Session] = []

    def session(
        self, *, tls: bool = True, plaintext: bool = False, starttls: bool = True
    ) -> Transcript:
        cfg = SessionConfig(
            store=self.store,
            authenticator=self.auth,
            maildrops=self.maildrops,
            limits=self.limits,
            hostname="mx.example.test",
            listener="pop3",
            starttls_available=starttls,
            plaintext_auth=plaintext,
        )
        session = Pop3Session(cfg, peer_ip="127.0.0.1", tls_active=tls)
        self.sessions.append(session)
        return Transcript(session)

    async def logged_in(self, user: str = "alice") -> Transcript:
        t = self.session()
        await t.send(f"USER {user}")
        await t.send(f"PASS {PASSWORD}")
        assert t.lines[-1].startswith("+OK Logged in"), t.lines
        return t

    async def deliver(self, *messages: bytes) -> list[int]:
        return [(await self.store.deliver(ALICE, raw)).uid for raw in messages]

    async def close(self) -> None:
        for session in self.sessions:
            session.close("test over")  # as the adapter does, however a session ends
        await self.store.close()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path)
    yield e
    await e.close()


def crlf_size(raw: bytes) -> int:
    return len(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


# -- AUTHORIZATION -----------------------------------------------------------------------------


async def test_greeting_and_capa_before_and_after_stls(env: Env) -> None:
    t = env.session(tls=False)
    assert t.session.greeting() == b"+OK pymta POP3 server ready\r\n"
    await t.send("CAPA")
    # RFC 2595 §4 / Dovecot: before TLS no USER or SASL on a listener that wants TLS.
    t.expect(
        "+OK Capability list follows",
        "TOP",
        "UIDL",
        "RESP-CODES",
        "AUTH-RESP-CODE",
        "PIPELINING",
        "STLS",
        "IMPLEMENTATION pymta",
        ".",
    )
    await t.send("USER alice")
    t.expect("-ERR Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
    await t.send("AUTH PLAIN AGFsaWNlAHNlY3JldA==")
    t.expect("-ERR Plaintext authentication disallowed on non-secure (SSL/TLS) connections.")
    assert env.auth.calls == []  # no password was looked at
    await t.send("STLS")
    t.expect("+OK Begin TLS negotiation now")
    assert t.action is Action.START_TLS
    t.session.tls_started()
    await t.send("capa")
    t.expect("+OK ...", ..., "PIPELINING", "USER", "SASL PLAIN LOGIN", "IMPLEMENTATION pymta", ".")
    await t.send("STLS")
    t.expect("-ERR Command not permitted when TLS active")  # RFC 2595 §4


async def test_stls_discards_pipelined_plaintext_cve_2011_0411(env: Env) -> None:
    t = env.session(tls=False, plaintext=True)
    await t.send(b"STLS\r\nUSER alice\r\nPASS " + PASSWORD.encode(), crlf=True)
    t.expect("+OK Begin TLS negotiation now")
    assert t.action is Action.START_TLS
    t.session.discard_input()  # what the adapter does before the handshake
    t.session.tls_started()
    await t.run()
    assert t.lines == [] and t.action is Action.READ  # USER and PASS were never read
    await t.send(f"PASS {PASSWORD}")
    t.expect("-ERR No username given")
    assert env.auth.calls == []


async def test_plaintext_listener_offers_user_and_sasl_and_stls(env: Env) -> None:
    t = env.session(tls=False, plaintext=True)
    await t.send("CAPA")
    t.expect("+OK ...", ..., "USER", "SASL PLAIN LOGIN", "STLS", "IMPLEMENTATION pymta", ".")
    no_tls = env.session(tls=False, plaintext=False, starttls=False)
    await no_tls.send("STLS")
    no_tls.expect("-ERR TLS not available")


async def test_user_pass_failures(env: Env) -> None:
    t = env.session()
    await t.send("PASS secret")
    t.expect("-ERR No username given")  # RFC 1939 §7: PASS only after USER
    await t.send("USER nobody")
    t.expect("+OK Send your password")  # says nothing about whether the user exists
    await t.send("PASS secret")
    t.expect("-ERR [AUTH] Authentication failed")  # RFC 3206 §5
    await t.send("USER alice")
    await t.send("PASS wrong")
    t.expect("-ERR [AUTH] Authentication failed")
    await t.send("PASS secret")  # the failed PASS forgot the USER
    t.expect("-ERR No username given")
    env.auth.down = True
    await t.send("USER alice")
    await t.send("PASS secret")
    t.expect("-ERR [SYS/TEMP] Authentication temporarily unavailable")  # RFC 3206 §4
    env.auth.down = False
    await t.send("USER alice")
    await t.send("PASS secret")
    t.expect("+OK Logged in, 0 messages (0 octets)")
    assert t.session.failed_logins == 2
    assert env.auth.calls[0] == ("nobody", "pop3")


async def test_password_with_spaces_is_the_rest_of_the_line(env: Env) -> None:
    t = env.session()
    await t.send("USER alice")
    await t.send("PASS secret ")
    t.expect("-ERR [AUTH] Authentication failed")  # the trailing space is part of it


async def test_auth_plain_and_login(env: Env) -> None:
    t = env.session()
    await t.send("AUTH")  # the RFC 1734 listing clients probe with
    t.expect("+OK", "PLAIN", "LOGIN", ".")
    await t.send("AUTH CRAM-MD5")
    t.expect("-ERR Unsupported authentication mechanism")
    await t.send("AUTH PLAIN")
    t.expect("+ ")  # RFC 5034 §4: an empty challenge; the client speaks first
    await t.send("*")
    t.expect("-ERR Authentication cancelled")
    await t.send("AUTH PLAIN !!!")
    t.expect("-ERR Invalid base64 data in initial response")
    await t.send("AUTH PLAIN Ym9iAGFsaWNlAHNlY3JldA==")  # authzid bob, authcid alice
    t.expect("-ERR [AUTH] Authorization identity not allowed")
    await t.send("auth login")
    t.expect("+ VXNlcm5hbWU6")  # "Username:"
    await t.send("YWxpY2U=")
    t.expect("+ UGFzc3dvcmQ6")  # "Password:"
    await t.send("c2VjcmV0")
    t.expect("+OK Logged in, 0 messages (0 octets)")


async def test_auth_plain_with_initial_response_and_as_a_continuation(env: Env) -> None:
    t = env.session()
    await t.send("AUTH PLAIN AGFsaWNlAHdyb25n")  # \0alice\0wrong
    t.expect("-ERR [AUTH] Authentication failed")
    await t.send("AUTH PLAIN")
    t.expect("+ ")
    await t.send("AGFsaWNlAHNlY3JldA==")  # \0alice\0secret
    t.expect("+OK Logged in, 0 messages (0 octets)")
    assert [c for c, _ in env.auth.calls] == ["alice", "alice"]


async def test_long_sasl_response_is_read_long_command_is_refused(env: Env) -> None:
    t = env.session()
    await t.send("NOOP " + "x" * 300)
    t.expect("-ERR Command line too long")  # RFC 2449 §4: 255 octets
    await t.send("AUTH PLAIN")
    await t.send("A" * 400)  # longer than a command line, and still read
    t.expect("-ERR Malformed authentication exchange")
    await t.send("AUTH PLAIN")
    await t.send("A" * 100_000)
    t.expect("-ERR Authentication line too long")
    await t.send("CAPA")  # the session goes on
    t.expect("+OK Capability list follows", ...)


async def test_commands_outside_their_state_are_answered_by_the_table(env: Env) -> None:
    t = env.session()
    for keyword in ("STAT", "LIST", "RETR 1", "DELE 1", "NOOP", "RSET", "TOP 1 1", "UIDL"):
        await t.send(keyword)
        t.expect(f"-ERR {keyword.split()[0]} not valid in this state")
    await t.send("APOP alice 0123456789abcdef0123456789abcdef")
    t.expect("-ERR Unknown command")  # RFC 1939 §7 optional; no timestamp in the greeting
    t = await env.logged_in()
    for keyword in ("STLS", "USER alice", "PASS secret", "AUTH PLAIN"):
        await t.send(keyword)
        t.expect(f"-ERR {keyword.split()[0]} not valid in this state")
    assert set(COMMANDS) == {
        "CAPA", "QUIT", "STLS", "USER", "PASS", "AUTH",
        "STAT", "LIST", "RETR", "DELE", "NOOP", "RSET", "TOP", "UIDL",
    }  # fmt: skip


async def test_argument_counts(env: Env) -> None:
    t = await env.logged_in()
    await t.send("RETR")
    t.expect("-ERR RETR: missing argument")
    await t.send("STAT 1")
    t.expect("-ERR STAT: too many arguments")
    await t.send("TOP 1")
    t.expect("-ERR TOP: missing argument")
    await t.send("LIST 1 2")
    t.expect("-ERR LIST: too many arguments")


async def test_quit_in_authorization_state(env: Env) -> None:
    t = env.session()
    await t.send("QUIT")
    t.expect("+OK pymta POP3 server signing off")
    assert t.action is Action.CLOSE


# -- TRANSACTION and UPDATE --------------------------------------------------------------------


async def test_stat_list_uidl_retr_top(env: Env) -> None:
    uid1, uid2 = await env.deliver(ONE, TWO)
    info = await env.store.folder_info(ALICE, "INBOX")
    s1, s2 = crlf_size(ONE), crlf_size(TWO)
    t = env.session()
    await t.send("USER alice@example.test")
    await t.send(f"PASS {PASSWORD}")
    t.expect(f"+OK Logged in, 2 messages ({s1 + s2} octets)")
    await t.send("STAT")
    t.expect(f"+OK 2 {s1 + s2}")  # RFC 1939 §5
    await t.send("LIST")
    t.expect(f"+OK 2 messages ({s1 + s2} octets)", f"1 {s1}", f"2 {s2}", ".")
    await t.send("LIST 2")
    t.expect(f"+OK 2 {s2}")
    await t.send("LIST 3")
    t.expect("-ERR No such message")
    await t.send("LIST 0")
    t.expect("-ERR Invalid message number")
    uidl1 = f"{uid1:08X}{info.uidvalidity:08X}"
    uidl2 = f"{uid2:08X}{info.uidvalidity:08X}"
    await t.send("UIDL")
    t.expect("+OK Unique-ID listing follows", f"1 {uidl1}", f"2 {uidl2}", ".")
    await t.send("UIDL 2")
    t.expect(f"+OK 2 {uidl2}")
    await t.send("RETR 1")
    t.expect(
        f"+OK {s1} octets",
        "From: bob@example.test",
        "Subject: one",
        "",
        "Hello",
        "..dotted line",  # RFC 1939 §3: dot-stuffed
        "bye",
        ".",
    )
    body = t.raw.split(b"\r\n", 1)[1][: -len(b".\r\n")]
    assert len(body.replace(b"\r\n..", b"\r\n.")) == s1  # the announced size is exact
    await t.send("RETR 2")
    t.expect(
        f"+OK {s2} octets",
        "From: carol@example.test",
        "Subject: two",
        "",
        "bare LF body",  # sent with CRLF line ends
        "second line",
        ".",
    )
    await t.send("TOP 1 1")
    t.expect("+OK Top of message follows", "From: ...", "Subject: one", "", "Hello", ".")
    await t.send("TOP 1 0")
    t.expect("+OK ...", "From: ...", "Subject: one", "", ".")
    await t.send("TOP 1 -1")
    t.expect("-ERR Invalid number of lines")
    await t.send("NOOP")
    t.expect("+OK")


async def test_dele_rset_and_update(env: Env) -> None:
    await env.deliver(ONE, TWO, ONE)
    t = await env.logged_in()
    await t.send("DELE 1")
    t.expect("+OK Message 1 deleted")
    await t.send("DELE 1")
    t.expect("-ERR Message 1 already deleted")  # RFC 1939 §5
    for command in ("RETR 1", "TOP 1 0", "LIST 1", "UIDL 1"):
        await t.send(command)
        t.expect("-ERR Message is deleted")
    await t.send("LIST")
    t.expect("+OK 2 messages ...", f"2 {crlf_size(TWO)}", f"3 {crlf_size(ONE)}", ".")
    await t.send("RSET")
    t.expect(f"+OK Maildrop has 3 messages ({2 * crlf_size(ONE) + crlf_size(TWO)} octets)")
    await t.send("DELE 2")
    await t.send("DELE 3")
    await t.send("STAT")
    t.expect(f"+OK 1 {crlf_size(ONE)}")
    assert len(await env.store.messages(ALICE, "INBOX")) == 3  # nothing before QUIT
    await t.send("QUIT")
    t.expect("+OK pymta POP3 server signing off (1 messages left)")  # RFC 1939 §6
    assert t.action is Action.CLOSE
    [left] = await env.store.messages(ALICE, "INBOX")
    assert left.uid == 1
    t.session.close("quit")
    t = await env.logged_in()  # the lock went with the session
    await t.send("DELE 1")
    await t.send("QUIT")
    t.expect("+OK pymta POP3 server signing off (maildrop empty)")
    assert await env.store.messages(ALICE, "INBOX") == []


async def test_a_dropped_session_changes_nothing(env: Env) -> None:
    await env.deliver(ONE, TWO)
    t = await env.logged_in()
    await t.send("RETR 1")
    await t.send("DELE 2")
    t.session.close("client closed")  # RFC 1939 §6: no QUIT, no UPDATE
    messages = await env.store.messages(ALICE, "INBOX")
    assert [m.uid for m in messages] == [1, 2]
    assert all("S" not in m.flags for m in messages)


async def test_update_marks_retrieved_messages_seen_but_not_topped_ones(env: Env) -> None:
    await env.deliver(ONE, TWO, ONE)
    t = await env.logged_in()
    await t.send("RETR 1")
    await t.send("TOP 2 5")
    await t.send("RETR 3")
    await t.send("DELE 3")
    await t.send("QUIT")
    messages = await env.store.messages(ALICE, "INBOX")
    assert [(m.uid, "S" in m.flags) for m in messages] == [(1, True), (2, False)]


async def test_rset_forgets_retrievals_too(env: Env) -> None:
    await env.deliver(ONE)
    t = await env.logged_in()
    await t.send("RETR 1")
    await t.send("RSET")
    await t.send("QUIT")
    [message] = await env.store.messages(ALICE, "INBOX")
    assert "S" not in message.flags


async def test_second_session_gets_in_use_and_the_lock_goes_with_the_first(env: Env) -> None:
    await env.deliver(ONE)
    first = await env.logged_in()
    second = env.session()
    await second.send("USER alice")
    await second.send(f"PASS {PASSWORD}")
    second.expect("-ERR [IN-USE] Mailbox is locked by another POP3 session")  # RFC 2449 §8.1.2
    await second.send("STAT")
    second.expect("-ERR STAT not valid in this state")  # still in AUTHORIZATION
    bob = await env.logged_in("bob")  # another maildrop is not locked
    await bob.send("STAT")
    bob.expect("+OK 0 0")
    first.session.close("client closed")
    await second.send("USER alice")
    await second.send(f"PASS {PASSWORD}")
    second.expect("+OK Logged in, 1 messages ...")
    second.session.close("client closed")
    second.session.close("again")  # idempotent
    assert not env.maildrops.locked(ALICE)


async def test_snapshot_survives_expunge_and_new_mail_from_elsewhere(env: Env) -> None:
    uid1, _ = await env.deliver(ONE, TWO)
    t = await env.logged_in()
    await env.store.expunge(ALICE, "INBOX", [uid1])  # an IMAP session expunges it
    await env.deliver(TWO)  # new mail is not part of this session
    await t.send("STAT")
    t.expect(f"+OK 2 {crlf_size(ONE) + crlf_size(TWO)}")
    await t.send("UIDL 1")
    t.expect("+OK 1 00000001...")
    await t.send("RETR 1")
    t.expect("-ERR Message was removed by another session")
    await t.send("TOP 1 0")
    t.expect("-ERR Message was removed by another session")
    await t.send("RETR 2")
    t.expect("+OK ... octets", ..., ".")
    await t.send("DELE 1")
    t.expect("+OK Message 1 deleted")  # DELE of it succeeds; UPDATE skips it
    await t.send("DELE 2")
    await t.send("QUIT")
    t.expect("+OK pymta POP3 server signing off (maildrop empty)")
    assert [m.uid for m in await env.store.messages(ALICE, "INBOX")] == [3]


async def test_message_renamed_by_a_flag_change_is_still_retrieved(env: Env) -> None:
    await env.deliver(ONE)
    t = await env.logged_in()
    await env.store.set_flags(ALICE, "INBOX", [1], add=["\\Flagged"])  # renames its file
    await t.send("RETR 1")
    t.expect(f"+OK {crlf_size(ONE)} octets", ..., "bye", ".")


async def test_pipelined_commands_are_answered_in_order(env: Env) -> None:
    await env.deliver(ONE, TWO)
    t = env.session()
    await t.send(f"USER alice\r\nPASS {PASSWORD}\r\nSTAT\r\nRETR 2\r\nDELE 1\r\nNOOP")
    t.expect(
        "+OK Send your password",
        "+OK Logged in, 2 messages ...",
        "+OK 2 ...",
        "+OK ... octets",
        ...,
        "second line",
        ".",
        "+OK Message 1 deleted",
        "+OK",
    )


class FailingExpunge:
    def __init__(self, store: Store) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def expunge(self, *args: Any, **kwargs: Any) -> list[int]:
        raise OSError("disk trouble")


async def test_failed_update_says_so_and_still_ends_the_session(env: Env) -> None:
    await env.deliver(ONE)
    t = await env.logged_in()
    assert t.session.maildrop is not None
    t.session.maildrop.store = FailingExpunge(env.store)  # type: ignore[assignment]
    await t.send("DELE 1")
    await t.send("QUIT")
    t.expect("-ERR [SYS/TEMP] Some deleted messages not removed")  # RFC 1939 §6
    assert t.action is Action.CLOSE
    assert not env.maildrops.locked(ALICE)
    assert len(await env.store.messages(ALICE, "INBOX")) == 1


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_messages_read_ahead_in_order_and_closed_when_not_asked_for(env: Env) -> None:
    bodies = [message_with_body(n) for n in range(1, 6)]
    await env.deliver(*bodies)
    t = await env.logged_in()
    baseline = open_files()
    for command, number in (("RETR 1", 1), ("RETR 2", 2), ("TOP 3 1", 3), ("RETR 3", 3)):
        await t.send(command)
        assert t.raw.startswith(b"+OK"), t.lines
        assert f"Subject: body {number}" in t.lines
    await t.send("DELE 4")
    await t.send("RETR 5")  # the message opened ahead (4) is not the one asked for
    t.expect(f"+OK {crlf_size(bodies[4])} octets", ..., "line of body 5", ".")
    # The discarded opening closes its file once its worker is done; no 6 is opened.
    await until(lambda: open_files() <= baseline)
    t.session.close("client closed")
    assert open_files() <= baseline


async def until(condition: Callable[[], bool], timeout_s: float = 10) -> None:
    """Wait for work on a worker thread to be done (not a timing assertion)."""
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


def message_with_body(n: int) -> bytes:
    return f"Subject: body {n}\r\n\r\nline of body {n}\r\n".encode()

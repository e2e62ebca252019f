"""A transcript helper for IMAP session tests: bytes in, response lines out, compared the way
the RFC's examples read (`"..."` at the end of a pattern: any rest; `...`: any lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from pymta.imap.session import Action, ImapSession, SessionConfig
from pymta.store import MailboxRef, Store

PASSWORD = "secret"
ALICE = MailboxRef("user", "alice", "example.test")


class FakeAuthenticator:
    """Every user's password is PASSWORD; "down" makes the directory unavailable."""

    def __init__(self, directory: DirectoryHolder) -> None:
        self.directory = directory
        self.down = False
        self.calls: list[str] = []

    async def authenticate(
        self, login: str, password: str, *, peer_ip: str, protocol: str
    ) -> AuthResult:
        self.calls.append(login)
        if self.down:
            return UNAVAILABLE
        user = self.directory.directory.user(login)
        if user is not None and password == PASSWORD:
            return AuthResult(AuthStatus.OK, user)
        return FAILED


def make_config(tmp_path: Path, quota: int | None = None) -> Config:
    return Config(
        server=ServerConfig("mx.example.test", tmp_path),
        directory=DirectoryConfig(
            users=(
                UserConfig("alice", "example.test", None, quota_bytes=quota),
                UserConfig("bob", "example.test", None),
            )
        ),
        domains=(DomainConfig("example.test"),),
    )


@dataclass
class Transcript:
    session: ImapSession
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
            self.action = o.action
            if o.action is not Action.CONTINUE:
                break
        text = out.decode("utf-8", "replace")
        self.lines = text.split("\r\n")[:-1] if text else []
        return self.lines

    def expect(self, *patterns: Any) -> None:
        """Each pattern matches one line ("..." inside it: any text); `...` (Ellipsis)
        matches any number of lines."""
        assert _match(list(patterns), self.lines), "\n".join(self.lines)

    def has(self, line_pattern: str) -> bool:
        return any(_line(line_pattern, line) for line in self.lines)


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
    """A store, a directory and a factory of sessions on them."""

    def __init__(self, tmp_path: Path, *, quota: int | None = None, limits: Limits | None = None):
        self.config = make_config(tmp_path, quota)
        self.holder = DirectoryHolder(LocalDirectory(self.config))
        self.store = Store(tmp_path)
        self.auth = FakeAuthenticator(self.holder)
        self.limits = limits or Limits(auth_failure_delay_s=0)

    def session(
        self, *, tls: bool = True, plaintext: bool = False, starttls: bool = True
    ) -> Transcript:
        cfg = SessionConfig(
            store=self.store,
            authenticator=self.auth,
            directory=self.holder,
            limits=self.limits,
            hostname="mx.example.test",
            listener="imap",
            starttls_available=starttls,
            plaintext_auth=plaintext,
        )
        return Transcript(ImapSession(cfg, peer_ip="127.0.0.1", tls_active=tls))

    async def logged_in(self, user: str = "alice") -> Transcript:
        t = self.session()
        await t.send(f"l1 LOGIN {user} {PASSWORD}")
        assert t.lines[-1].startswith("l1 OK"), t.lines
        return t

    async def selected(self, folder: str = "INBOX", user: str = "alice") -> Transcript:
        t = await self.logged_in(user)
        await t.send(f"s1 SELECT {folder}")
        assert t.lines[-1].startswith("s1 OK"), t.lines
        return t

    async def deliver(
        self, n: int = 1, *, subject: str = "Hello", folder: str = "INBOX"
    ) -> list[int]:
        uids = []
        for i in range(n):
            raw = (
                f"From: Bob <bob@example.test>\r\nTo: alice@example.test\r\n"
                f"Subject: {subject} {i}\r\nDate: Mon, 7 Feb 1994 21:52:25 -0800\r\n\r\n"
                f"Body number {i}\r\n"
            ).encode()
            d = await self.store.deliver(ALICE, raw, folder=folder)
            uids.append(d.uid)
        return uids

    async def close(self) -> None:
        await self.store.close()


# -- the tests --------------------------------------------------------------------------------

import pytest  # noqa: E402

from pymta.imap.session import COMMANDS, State  # noqa: E402


@pytest.fixture
async def env(tmp_path: Path):  # type: ignore[no-untyped-def]
    e = Env(tmp_path)
    yield e
    await e.close()


async def test_greeting_and_capability_before_tls(env: Env) -> None:
    t = env.session(tls=False)
    assert t.session.greeting().startswith(b"* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ")
    await t.send("a1 CAPABILITY")
    t.expect(
        "* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE STARTTLS LOGINDISABLED",
        "a1 OK CAPABILITY completed",
    )


async def test_login_refused_without_tls_then_starttls_discards_pipelined_input(env: Env) -> None:
    t = env.session(tls=False)
    await t.send("a1 LOGIN alice secret")
    t.expect("a1 NO [PRIVACYREQUIRED] Use STARTTLS first")
    # CVE-2011-0411 class: a command pipelined behind STARTTLS is never executed.
    await t.send("a2 STARTTLS\r\na3 LOGIN alice secret")
    t.expect("a2 OK Begin TLS negotiation now")
    assert t.action is Action.START_TLS
    t.session.discard_input()
    t.session.tls_started()
    assert await t.run() == []
    assert env.auth.calls == []
    await t.send("a4 CAPABILITY")
    assert "AUTH=PLAIN" in t.lines[0] and "STARTTLS" not in t.lines[0]


async def test_login_and_failures(env: Env) -> None:
    t = env.session()
    await t.send("a1 LOGIN alice wrong")
    t.expect("a1 NO [AUTHENTICATIONFAILED] Authentication failed")
    env.auth.down = True
    await t.send("a2 LOGIN alice secret")
    t.expect("a2 NO [UNAVAILABLE] Authentication temporarily unavailable")
    env.auth.down = False
    await t.send('a3 LOGIN "alice" {6+}\r\nsecret')
    t.expect("a3 OK [CAPABILITY ...")
    assert "IDLE" in t.lines[0] and "QUOTA" in t.lines[0]
    await t.send("a4 LOGIN alice secret")
    t.expect("a4 BAD LOGIN not allowed now")


async def test_authenticate_plain_with_and_without_initial_response(env: Env) -> None:
    import base64

    token = base64.b64encode(b"\0alice\0secret").decode()
    t = env.session()
    await t.send(f"a1 AUTHENTICATE PLAIN {token}")  # SASL-IR, RFC 4959
    t.expect("a1 OK [CAPABILITY ...")
    t = env.session()
    await t.send("a1 AUTHENTICATE PLAIN")
    t.expect("+ ")
    await t.send(token)
    t.expect("a1 OK [CAPABILITY ...")
    t = env.session()
    await t.send("a1 AUTHENTICATE LOGIN")
    t.expect("+ " + base64.b64encode(b"Username:").decode())
    await t.send(base64.b64encode(b"alice").decode())
    t.expect("+ " + base64.b64encode(b"Password:").decode())
    await t.send("*")
    t.expect("a1 BAD AUTHENTICATE cancelled")
    await t.send("a2 AUTHENTICATE PLAIN !!!")
    t.expect("a2 BAD ...")


async def test_every_command_outside_its_states_is_answered_by_the_table(env: Env) -> None:
    samples = {
        "CAPABILITY": "CAPABILITY",
        "NOOP": "NOOP",
        "ID": "ID NIL",
        "STARTTLS": "STARTTLS",
        "AUTHENTICATE": "AUTHENTICATE PLAIN",
        "LOGIN": "LOGIN alice secret",
        "ENABLE": "ENABLE CONDSTORE",
        "SELECT": "SELECT INBOX",
        "CREATE": "CREATE x",
        "DELETE": "DELETE x",
        "RENAME": "RENAME x y",
        "SUBSCRIBE": "SUBSCRIBE x",
        "LIST": 'LIST "" *',
        "NAMESPACE": "NAMESPACE",
        "STATUS": "STATUS INBOX (MESSAGES)",
        "APPEND": "APPEND INBOX {1+}\r\nx",
        "IDLE": "IDLE",
        "GETQUOTA": 'GETQUOTA ""',
        "GETQUOTAROOT": "GETQUOTAROOT INBOX",
        "SETQUOTA": 'SETQUOTA "" (STORAGE 1)',
        "CHECK": "CHECK",
        "CLOSE": "CLOSE",
        "UNSELECT": "UNSELECT",
        "EXPUNGE": "EXPUNGE",
        "SEARCH": "SEARCH ALL",
        "FETCH": "FETCH 1 FLAGS",
        "STORE": "STORE 1 +FLAGS (\\Seen)",
        "COPY": "COPY 1 Trash",
    }
    assert {spec.name for spec in COMMANDS.values()} - {"LOGOUT"} == set(samples)
    await env.deliver(1)
    for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
        for spec in COMMANDS.values():
            if state in spec.states or spec.name == "LOGOUT":
                continue
            if state is State.NOT_AUTHENTICATED:
                t = env.session()
            elif state is State.AUTHENTICATED:
                t = await env.logged_in()
            else:
                t = await env.selected()
            await t.send("z1 " + samples[spec.name])
            assert t.lines[-1] == f"z1 BAD {spec.name} not allowed now", (state, t.lines)


async def test_select_fetch_store_as_in_the_rfc(env: Env) -> None:
    await env.deliver(3)
    t = await env.logged_in()
    await t.send("a1 SELECT INBOX")
    t.expect(
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)",
        "* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded \\*)] ...",
        "* 3 EXISTS",
        "* 0 RECENT",
        "* OK [UNSEEN 1] First unseen",
        "* OK [UIDVALIDITY ...",
        "* OK [UIDNEXT 4] Predicted next UID",
        "* OK [HIGHESTMODSEQ ...",
        "a1 OK [READ-WRITE] SELECT completed",
    )
    await t.send("a2 FETCH 2:3 (UID FLAGS RFC822.SIZE)")
    t.expect(
        "* 2 FETCH (UID 2 FLAGS () RFC822.SIZE ...", "* 3 FETCH (UID 3 ...", "a2 OK FETCH completed"
    )
    await t.send("a3 STORE 1 +FLAGS (\\Flagged $Label1)")
    t.expect("* 1 FETCH (FLAGS (\\Flagged $Label1))", "a3 OK STORE completed")
    await t.send("a4 UID STORE 2 +FLAGS.SILENT (\\Seen)")
    t.expect("a4 OK UID STORE completed")
    await t.send("a5 FETCH 4 FLAGS")
    t.expect("a5 BAD Invalid message sequence number")
    await t.send("a6 UID FETCH 2,99 (FLAGS)")
    t.expect("* 2 FETCH (UID 2 FLAGS (\\Seen))", "a6 OK UID FETCH completed")
    await t.send("a7 FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]")
    t.expect(
        "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {...",
        "Subject: Hello 0",
        "",
        ")",
        "a7 OK FETCH completed",
    )


async def test_fetch_of_cached_forms_bodies_and_implicit_seen(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymta.mime.imapform import bodystructure_wire, envelope_wire
    from pymta.mime.summary import build_summary
    from pymta.store import cache as cache_module

    await env.deliver(1)
    raw = await env.store.read_message(ALICE, "INBOX", 1)
    summary = build_summary(raw)

    def broken(raw: bytes) -> object:
        raise RuntimeError("parser bug")

    monkeypatch.setattr(cache_module, "summarize", broken)
    await env.deliver(1)  # stored without a summary: the index has no forms for it
    t = await env.selected()
    await t.send("a1 FETCH 1:2 (ENVELOPE BODYSTRUCTURE)")
    envelope = envelope_wire(summary.envelope).decode()
    structure = bodystructure_wire(summary.bodystructure).decode()
    forms = f"ENVELOPE {envelope} BODYSTRUCTURE {structure}"
    # The second is parsed from its file (its subject is "Hello 0" too).
    t.expect(f"* 1 FETCH ({forms})", f"* 2 FETCH ({forms})", "a1 OK FETCH completed")
    # RFC 9051 §6.4.5: BODY[TEXT] sets \Seen, and the FETCH response shows it.
    await t.send("a2 FETCH 2 BODY[TEXT]")
    t.expect("* 2 FETCH (BODY[TEXT] {15}", "Body number 0", " FLAGS (\\Seen))", "a2 OK ...")
    await t.send("a3 FETCH 1:2 (UID BODY.PEEK[TEXT])")  # PEEK: nothing set
    assert not any("FLAGS" in line for line in t.lines)


async def test_a_fetch_showing_flags_settles_pending_changes(env: Env) -> None:
    await env.deliver(2)
    a = await env.selected()
    b = await env.selected()
    await a.send("a1 STORE 1:2 +FLAGS.SILENT (\\Flagged)")
    await b.send("b1 FETCH 1:2 (FLAGS)")
    b.expect(
        "* 1 FETCH (FLAGS (\\Flagged))", "* 2 FETCH (FLAGS (\\Flagged))", "b1 OK FETCH completed"
    )
    await b.send("b2 NOOP")  # already shown: not announced again
    b.expect("b2 OK NOOP completed")


async def test_examine_is_read_only(env: Env) -> None:
    await env.deliver(1)
    t = await env.logged_in()
    await t.send("a1 EXAMINE INBOX")
    t.expect(
        ...,
        "* OK [PERMANENTFLAGS ()] No permanent flags permitted",
        ...,
        "a1 OK [READ-ONLY] EXAMINE completed",
    )
    await t.send("a2 STORE 1 +FLAGS (\\Seen)")
    t.expect("a2 NO [READ-ONLY] Mailbox is read-only")
    await t.send("a3 FETCH 1 BODY[]")  # no \Seen in a read-only mailbox
    assert not any("\\Seen" in line for line in t.lines)


async def test_two_sessions_see_flag_changes_and_expunges_at_allowed_moments(env: Env) -> None:
    await env.deliver(3)
    a = await env.selected()
    b = await env.selected()
    await a.send("a1 STORE 2 +FLAGS (\\Deleted)")
    await a.send("a2 EXPUNGE")
    a.expect("* 2 EXPUNGE", "a2 OK EXPUNGE completed")
    await env.deliver(1)
    # RFC 9051 §7.5.1: no EXPUNGE while answering FETCH (EXISTS is fine).
    await b.send("b1 FETCH 1:* (UID)")
    b.expect(
        "* 1 FETCH (UID 1)",
        "* 3 FETCH (UID 3)",
        "* 4 EXISTS",
        "* 0 RECENT",
        "b1 NO [EXPUNGEISSUED] Some messages were expunged meanwhile",
    )
    await b.send("b2 UID SEARCH ALL")
    b.expect("* SEARCH 1 3 4", "b2 OK UID SEARCH completed")
    await b.send("b3 NOOP")
    b.expect("* 2 EXPUNGE", "b3 OK NOOP completed")
    await a.send("a3 STORE 1 +FLAGS (\\Answered)")
    a.expect("* 1 FETCH (FLAGS (\\Answered))", "* 3 EXISTS", "* 0 RECENT", "a3 OK STORE completed")
    await b.send("b4 NOOP")
    b.expect("* 1 FETCH (UID 1 FLAGS (\\Answered))", "b4 OK NOOP completed")
    await a.send("a4 NOOP")  # its own change is not announced again
    a.expect("a4 OK NOOP completed")


async def test_idle_reports_delivery_and_ends_with_done(env: Env) -> None:
    t = await env.selected()
    woken: list[bool] = []
    t.session.wakeup = lambda: woken.append(True)
    await t.send("a1 IDLE")
    t.expect("+ idling")
    assert t.action is Action.IDLE
    await env.deliver(1)
    assert woken
    await t.run()
    t.expect("* 1 EXISTS", "* 0 RECENT")
    await t.send("DONE")
    t.expect("a1 OK IDLE terminated")


async def test_condstore_and_qresync(env: Env) -> None:
    await env.deliver(3)
    t = await env.logged_in()
    await t.send("a1 ENABLE QRESYNC")
    t.expect("* ENABLED QRESYNC", "a1 OK ENABLE completed")
    await t.send("a2 SELECT INBOX")
    validity = next(line.split()[3].rstrip("]") for line in t.lines if "UIDVALIDITY" in line)
    modseq = int(next(line.split()[3].rstrip("]") for line in t.lines if "HIGHESTMODSEQ" in line))
    await t.send("a3 STORE 1 (UNCHANGEDSINCE 1) +FLAGS (\\Seen)")
    t.expect("a3 OK [MODIFIED 1] Conditional STORE failed")
    await t.send(f"a4 STORE 2 (UNCHANGEDSINCE {modseq}) +FLAGS.SILENT (\\Seen)")
    t.expect(f"* 2 FETCH (UID 2 MODSEQ ({modseq + 1}))", "a4 OK STORE completed")
    await t.send("a5 STORE 3 +FLAGS (\\Deleted)")
    await t.send("a6 EXPUNGE")
    t.expect("* VANISHED 3", "a6 OK EXPUNGE completed")
    await t.send(f"a7 UID FETCH 1:10 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect(
        "* VANISHED (EARLIER) 3",
        "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (...",
        "a7 OK UID FETCH completed",
    )
    # "1:*": the newest message was the one expunged, and it is still reported.
    await t.send(f"a7b UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect(
        "* VANISHED (EARLIER) 3",
        "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (...",
        "a7b OK UID FETCH completed",
    )
    # Nothing of the set was expunged: no VANISHED, and no error.
    await t.send(f"a7c UID FETCH 1 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect("a7c OK UID FETCH completed")
    await t.send("a8 CLOSE")
    await t.send(f"a9 SELECT INBOX (QRESYNC ({validity} {modseq} 1:3))")
    t.expect(
        ...,
        "* VANISHED (EARLIER) 3",
        "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (...",
        "a9 OK [READ-WRITE] SELECT completed",
    )


async def test_vanished_earlier_beyond_the_tombstones_reports_every_missing_uid(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pymta.store import index as index_module

    monkeypatch.setattr(index_module, "MAX_TOMBSTONES", 4)
    await env.deliver(8)
    t = await env.logged_in()
    await t.send("a1 ENABLE QRESYNC")
    await t.send("a2 SELECT INBOX")
    modseq = int(next(line.split()[3].rstrip("]") for line in t.lines if "HIGHESTMODSEQ" in line))
    for uid in (1, 2, 3, 5, 6):  # one expunge each: the oldest tombstones are dropped
        await t.send(f"b{uid} UID STORE {uid} +FLAGS.SILENT (\\Deleted)")
        await t.send(f"c{uid} UID EXPUNGE {uid}")
    # RFC 7162 §3.2.6: the tombstones no longer reach back to that modseq, so every UID
    # of the set up to the last one given out that is not in the folder is reported.
    await t.send(f"a3 UID FETCH 1:20 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect("* VANISHED (EARLIER) 1:3,5:6", ..., "a3 OK UID FETCH completed")
    await t.send(f"a4 UID FETCH 4:7 (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect("* VANISHED (EARLIER) 5:6", ..., "a4 OK UID FETCH completed")
    await t.send(f"a5 UID FETCH 1:4,3:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    t.expect("* VANISHED (EARLIER) 1:3,5:6", ..., "a5 OK UID FETCH completed")
    # Since a modseq the tombstones still cover: exactly what was expunged after it.
    await t.send("a6 STATUS INBOX (HIGHESTMODSEQ)")
    top = int(t.lines[0].rsplit(" ", 1)[1].rstrip(")"))
    await t.send(f"a7 UID FETCH 1:* (FLAGS) (CHANGEDSINCE {top - 1} VANISHED)")
    t.expect("* VANISHED (EARLIER) 6", "a7 OK UID FETCH completed")


async def test_search_and_esearch_with_saved_result(env: Env) -> None:
    await env.deliver(3, subject="Report")
    await env.deliver(1, subject="Other")
    t = await env.selected()
    await t.send("a1 SEARCH SUBJECT report")
    t.expect("* SEARCH 1 2 3", "a1 OK SEARCH completed")
    await t.send("a2 UID SEARCH RETURN (MIN MAX SAVE) SUBJECT report")
    t.expect('* ESEARCH (TAG "a2") UID MIN 1 MAX 3', "a2 OK UID SEARCH completed")
    await t.send("a3 FETCH $ (UID)")
    t.expect("* 1 FETCH (UID 1)", "* 3 FETCH (UID 3)", "a3 OK FETCH completed")
    await t.send("a4 SEARCH CHARSET KOI8-R ALL")
    t.expect("a4 NO [BADCHARSET (US-ASCII UTF-8)] Charset not supported")
    await t.send("a5 ENABLE IMAP4rev2")
    await t.send("a6 SEARCH BODY number")
    t.expect('* ESEARCH (TAG "a6") ALL 1:4', "a6 OK SEARCH completed")


async def test_folders_list_status_and_traversal(env: Env) -> None:
    t = await env.logged_in()
    await t.send("a1 CREATE Lists.Work")
    t.expect("a1 OK CREATE completed")
    await t.send('a2 LIST "" %')
    assert '* LIST (\\HasChildren) "." "Lists"' in t.lines
    await t.send('a3 LIST "" Lists.*')
    t.expect('* LIST (\\HasNoChildren) "." "Lists.Work"', "a3 OK LIST completed")
    await t.send('a4 LIST (SPECIAL-USE) "" *')
    uses = ("\\Sent", "\\Trash", "\\Drafts", "\\Junk", "\\Archive")
    assert all(any(u in line for u in uses) for line in t.lines[:-1])
    assert len(t.lines) == 6
    await t.send("a5 STATUS INBOX (MESSAGES UIDNEXT UNSEEN SIZE DELETED)")
    t.expect(
        "* STATUS INBOX (MESSAGES 0 UIDNEXT 1 UNSEEN 0 SIZE 0 DELETED 0)", "a5 OK STATUS completed"
    )
    await t.send("a6 CREATE Entw&APw-rfe")
    await t.send('a7 LIST "" Entw*')
    t.expect('* LIST (\\HasNoChildren) "." "Entw&APw-rfe"', "a7 OK LIST completed")
    await t.send("a8 RENAME Lists Archive2")
    t.expect("a8 OK RENAME completed")
    await t.send("a9 DELETE INBOX")
    t.expect("a9 NO [CANNOT] ...")
    await t.send("b1 CREATE INBOX")
    t.expect("b1 NO [ALREADYEXISTS] Mailbox already exists")
    await t.send("b2 SELECT nothere")
    t.expect("b2 NO [NONEXISTENT] No such mailbox")
    await t.send("b3 APPEND nothere {1+}\r\nx")
    t.expect("b3 NO [TRYCREATE] No such mailbox")


async def test_mailbox_name_traversal_is_refused(env: Env, tmp_path: Path) -> None:
    t = await env.logged_in()
    for n, name in enumerate(
        ['"../x"', '".."', '"/etc"', '"a/../../b"', '"x..y"', '"&AC8-etc"', '".hidden"']
    ):
        await t.send(f"t{n} CREATE {name}")
        assert t.lines[-1].startswith(f"t{n} NO [CANNOT]") or t.lines[-1].startswith(f"t{n} BAD"), (
            t.lines
        )
    outside = [p for p in tmp_path.rglob("*") if p.name in ("x", "etc", "b", "hidden")]
    assert outside == []


async def test_append_multiappend_copy_move_quota(tmp_path: Path) -> None:
    env = Env(tmp_path, quota=2048)
    try:
        t = await env.selected()
        date = '"07-Feb-1994 21:52:25 -0800"'
        two = "{12+}\r\nSubject: x\r\n {12+}\r\nSubject: y\r\n"  # MULTIAPPEND
        await t.send(f"a1 APPEND INBOX (\\Seen $Work) {date} " + two)
        t.expect("* 2 EXISTS", "* 0 RECENT", "a1 OK [APPENDUID ... 1:2] APPEND completed")
        await t.send("a2 FETCH 1 (FLAGS INTERNALDATE)")
        t.expect('* 1 FETCH (FLAGS (\\Seen $Work) INTERNALDATE "...', "a2 OK FETCH completed")
        await t.send("a3 UID COPY 1:2 Trash")
        t.expect("a3 OK [COPYUID ... 1:2 1:2] UID COPY completed")
        await t.send("a4 MOVE 1 Archive")
        t.expect("* OK [COPYUID ... 1 1] Moved", "* 1 EXPUNGE", "a4 OK MOVE completed")
        await t.send("a5 COPY 1 Nowhere")
        t.expect("a5 NO [TRYCREATE] No such mailbox")
        await t.send("a6 GETQUOTAROOT INBOX")
        t.expect('* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 1 2)', "a6 OK GETQUOTAROOT completed")
        big = "x" * 3000
        await t.send(f"a7 APPEND INBOX {{{len(big)}+}}\r\n{big}")
        t.expect("a7 NO [OVERQUOTA] Quota exceeded")
        await t.send('a8 SETQUOTA "" (STORAGE 1)')
        t.expect("a8 NO [NOPERM] Quotas are set by the administrator")
    finally:
        await env.close()


async def test_literal_limits(tmp_path: Path) -> None:
    env = Env(tmp_path, limits=Limits(max_message_bytes=1000, imap_max_line_bytes=100))
    try:
        t = env.session()
        await t.send("a1 LOGIN {100000}")  # before login: no big literal
        t.expect("a1 BAD [TOOBIG] Literal too large")
        await t.send("a2 NOOP " + "x" * 200)
        t.expect("a2 BAD [TOOBIG] Command line too long")
        t = await env.logged_in()
        await t.send("a3 APPEND INBOX {5000}")
        t.expect("a3 NO [TOOBIG] Literal too large")
        await t.send("a4 APPEND INBOX {5}")
        t.expect("+ Ready for literal data")
        await t.send("hello")
        t.expect("a4 OK [APPENDUID ...")
        await t.send("a5 " + "(" * 10000)
        assert t.lines[-1].startswith("a5 BAD")
        await t.send("a6 NOOP")
        t.expect("a6 OK NOOP completed")
    finally:
        await env.close()

"""Every command of issue 4 through aioimaplib: the rows of test_imap_commands.ROWS, each
written with aioimaplib's own calls; commands and arguments it has no call for go raw
through its protocol (`protocol.execute(Command(...))`, the way its own methods send)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import re
from collections.abc import AsyncIterator, Awaitable, Callable

import aioimaplib
import pytest
from aioimaplib import aioimaplib as lib

from tests.integration.conftest import ServerThread
from tests.integration.test_imap_basic import client_tls
from tests.integration.test_imap_commands import (
    ATTACHMENT,
    DOMAIN,
    MIXED,
    MIXED_HEADER,
    MIXED_TEXT,
    OVER_QUOTA,
    PASSWORD,
    PLAIN,
    QUOTA_BYTES,
    QUOTA_USER,
    ROWS,
    check_coverage,
    highestmodseq,
    note,
    seed,
    srv,
    uidvalidity,
)

__all__ = ["srv"]  # the module's server fixture

USER = "aioimaplib"
TIMEOUT_S = 10


@pytest.fixture(autouse=True)
def unselect_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """aioimaplib's command table has no UNSELECT (RFC 3691); teach it, for raw use."""
    monkeypatch.setitem(
        lib.Commands, "UNSELECT", lib.Cmd("UNSELECT", (lib.SELECTED,), lib.Exec.is_sync)
    )


async def connect(srv: ServerThread, listener: str = "imaps") -> aioimaplib.IMAP4:
    port = srv.port(listener)
    imap: aioimaplib.IMAP4
    if listener == "imaps":
        imap = aioimaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls(), timeout=TIMEOUT_S)
    else:
        imap = aioimaplib.IMAP4("127.0.0.1", port, timeout=TIMEOUT_S)
    await imap.wait_hello_from_server()
    return imap


@contextlib.asynccontextmanager
async def session(srv: ServerThread, user: str = USER) -> AsyncIterator[aioimaplib.IMAP4]:
    imap = await connect(srv)
    try:
        assert (await imap.login(user, PASSWORD)).result == "OK"
        yield imap
    finally:
        with contextlib.suppress(Exception):
            await imap.logout()


async def raw(
    imap: aioimaplib.IMAP4,
    name: str,
    *args: str,
    prefix: str | None = None,
    untagged: str | None = None,
) -> lib.Response:
    """A command through aioimaplib's protocol; `untagged` names the untagged responses to
    collect when they are not named after the command (aioimaplib routes them by name)."""
    proto = imap.protocol
    command = lib.Command(
        name, proto.new_tag(), *args, prefix=prefix, untagged_resp_name=untagged, loop=proto.loop
    )
    return await asyncio.wait_for(proto.execute(command), TIMEOUT_S)


class LiteralPlus(lib.Command):
    """A command ending in LITERAL+ literals (RFC 7888): aioimaplib writes `str(command)` as
    one line, so non-synchronizing literals can travel inside it; its argument check (no CR
    or LF in an argument) still applies to the other arguments."""

    def __init__(self, name: str, tag: str, *args: str, messages: list[tuple[str, bytes]]):
        super().__init__(name, tag, *args)
        self.messages = messages

    def __repr__(self) -> str:
        line = super().__repr__()
        for options, message in self.messages:
            line += f"{' ' + options if options else ''} {{{len(message)}+}}\r\n"
            line += message.decode("ascii")
        return line


async def sasl(
    imap: aioimaplib.IMAP4, mechanism: str, answers: list[str], *initial: str
) -> lib.Response:
    """AUTHENTICATE through aioimaplib's protocol: each answer goes after the next "+"."""
    proto = imap.protocol
    command = lib.Command("AUTHENTICATE", proto.new_tag(), mechanism, *initial, loop=proto.loop)
    task = asyncio.ensure_future(proto.execute(command))
    for n, answer in enumerate(answers, 1):
        async with asyncio.timeout(TIMEOUT_S):
            while sum(line.startswith(b"+") for line in command.response.lines) < n:
                assert not task.done(), command.response
                await asyncio.sleep(0.005)
        proto.send(answer)
    response = await asyncio.wait_for(task, TIMEOUT_S)
    if response.result == "OK":
        proto.state = lib.AUTH  # as aioimaplib's own login() does
    return response


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def text_lines(response: lib.Response) -> list[bytes]:
    return [bytes(line) for line in response.lines]


def literals(response: lib.Response) -> list[bytes]:
    """The literal data of a FETCH response, in order (aioimaplib keeps them as bytearrays)."""
    return [bytes(line) for line in response.lines if isinstance(line, bytearray)]


async def a_capability(srv: ServerThread) -> None:
    imap = await connect(srv)
    try:
        response = await raw(imap, "CAPABILITY")
        caps = response.lines[0].split()
        assert {b"IMAP4rev1", b"IMAP4rev2", b"AUTH=PLAIN", b"SASL-IR"} <= set(caps)
        await imap.login(USER, PASSWORD)
        caps = (await raw(imap, "CAPABILITY")).lines[0].split()
        assert {b"QRESYNC", b"MOVE", b"ESEARCH", b"QUOTA", b"BINARY", b"UIDPLUS"} <= set(caps)
    finally:
        await imap.logout()


async def a_noop(srv: ServerThread) -> None:
    seed(srv, USER, "Noop", note(1))
    async with session(srv) as imap:
        assert b"1 EXISTS" in (await imap.select("Noop")).lines
        seed(srv, USER, "Noop", note(2))
        response = await imap.noop()
        assert response.result == "OK" and b"2 EXISTS" in response.lines


async def a_logout(srv: ServerThread) -> None:
    imap = await connect(srv)
    await imap.login(USER, PASSWORD)
    response = await imap.logout()
    assert response == lib.Response("OK", [b"BYE Logging out", b"LOGOUT completed"])
    assert imap.get_state() == lib.LOGOUT


async def a_starttls(srv: ServerThread) -> None:
    imap = await connect(srv, "imap")
    proto = imap.protocol
    try:
        assert {"STARTTLS", "LOGINDISABLED"} <= proto.capabilities
        assert (await raw(imap, "STARTTLS")).result == "OK"
        # aioimaplib has no STARTTLS of its own: the handshake on its transport.
        loop = asyncio.get_running_loop()
        proto.transport = await loop.start_tls(
            proto.transport, proto, client_tls(), server_hostname="localhost"
        )
        await proto.capability()  # RFC 9051 §6.2.1: ask again
        assert "STARTTLS" not in proto.capabilities and "AUTH=PLAIN" in proto.capabilities
        assert (await imap.login(USER, PASSWORD)).result == "OK"
        assert (await imap.select("INBOX")).result == "OK"
    finally:
        await imap.logout()


async def a_authenticate_plain(srv: ServerThread) -> None:
    imap = await connect(srv)
    try:
        response = await sasl(imap, "PLAIN", [], b64(f"\0{USER}\0wrong"))  # SASL-IR
        assert response.result == "NO" and b"[AUTHENTICATIONFAILED]" in response.lines[-1]
        response = await sasl(imap, "PLAIN", [], b64(f"bob\0{USER}\0{PASSWORD}"))
        assert response.result == "NO" and b"[AUTHORIZATIONFAILED]" in response.lines[-1]
        response = await sasl(imap, "PLAIN", [b64(f"\0{USER}\0{PASSWORD}")])  # after "+ "
        assert response.result == "OK" and response.lines[0] == b"+ "
        assert (await imap.select("INBOX")).result == "OK"
    finally:
        await imap.logout()


async def a_authenticate_login(srv: ServerThread) -> None:
    imap = await connect(srv)
    try:
        response = await sasl(imap, "LOGIN", [b64(USER), "*"])  # RFC 9051 §6.2.2 cancel
        assert response.result == "BAD" and response.lines[-1] == b"AUTHENTICATE cancelled"
        response = await sasl(imap, "LOGIN", [b64(USER), b64(PASSWORD)])
        assert response.result == "OK"
        assert response.lines[:2] == [b"+ " + b64(x).encode() for x in ("Username:", "Password:")]
    finally:
        await imap.logout()


async def a_login(srv: ServerThread) -> None:
    imap = await connect(srv)
    try:
        response = await imap.login(USER, "wrong")
        assert response.result == "NO" and b"[AUTHENTICATIONFAILED]" in response.lines[-1]
        response = await imap.login(f"{USER}@{DOMAIN}", PASSWORD)
        assert response.result == "OK" and response.lines[-1].startswith(b"[CAPABILITY")
    finally:
        await imap.logout()


async def a_enable(srv: ServerThread) -> None:
    seed(srv, USER, "Enable", note(1))
    async with session(srv) as imap:
        response = await imap.enable("CONDSTORE")
        assert response.lines == [b"ENABLED CONDSTORE", b"ENABLE completed"]
        await imap.select("Enable")
        response = await imap.fetch("1", "(FLAGS)")
        assert b"MODSEQ (" in response.lines[0]  # RFC 7162 §3.1


async def a_select(srv: ServerThread) -> None:
    seed(srv, USER, "Select", note(1))
    seed(srv, USER, "Select", note(2), flags=("\\Seen",))
    async with session(srv) as imap:
        response = await imap.select("Select")
        uv = uidvalidity(srv, USER, "Select")
        assert response.result == "OK" and imap.get_state() == lib.SELECTED
        assert b"2 EXISTS" in response.lines
        assert f"OK [UIDVALIDITY {uv}] UIDs valid".encode() in response.lines
        assert b"OK [UIDNEXT 3] Predicted next UID" in response.lines
        assert response.lines[-1] == b"[READ-WRITE] SELECT completed"
        response = await imap.select("Nonexistent")
        assert response.result == "NO" and b"[NONEXISTENT]" in response.lines[-1]


async def a_examine(srv: ServerThread) -> None:
    seed(srv, USER, "Examine", note(1))
    async with session(srv) as imap:
        response = await imap.examine("Examine")
        assert response.lines[-1] == b"[READ-ONLY] EXAMINE completed"
        imap.protocol.state = lib.SELECTED  # aioimaplib's examine() leaves its state alone
        response = await imap.fetch("1", "(BODY[TEXT] FLAGS)")
        assert b"FLAGS ()" in b"".join(text_lines(response))  # read-only: no \Seen
        response = await imap.store("1", "+FLAGS", "(\\Flagged)")
        assert response.result == "NO" and b"[READ-ONLY]" in response.lines[-1]


async def a_create(srv: ServerThread) -> None:
    async with session(srv) as imap:
        assert (await imap.create("Projects.2026")).result == "OK"
        response = await imap.list('""', "Projects*")
        assert response.lines[:2] == [
            b'(\\HasChildren) "." "Projects"',
            b'(\\HasNoChildren) "." "Projects.2026"',
        ]
        response = await imap.create("Projects")
        assert response.result == "NO" and b"[ALREADYEXISTS]" in response.lines[-1]
        response = await raw(imap, "CREATE", "Receipts", "(USE (\\Archive))")  # RFC 6154 §3
        assert response.result == "OK"
        response = await imap.list('""', "Receipts")
        assert response.lines[0] == b'(\\HasNoChildren \\Archive) "." "Receipts"'


async def a_delete(srv: ServerThread) -> None:
    seed(srv, USER, "Doomed", note(1))
    async with session(srv) as imap:
        assert (await imap.delete("Doomed")).result == "OK"
        assert (await imap.list('""', "Doomed")).lines == [b"LIST completed"]
        response = await imap.delete("Doomed")
        assert response.result == "NO" and b"[NONEXISTENT]" in response.lines[-1]


async def a_rename(srv: ServerThread) -> None:
    seed(srv, USER, "Old", note(1))
    seed(srv, USER, "Old.Sub", note(2), note(3))
    async with session(srv) as imap:
        assert (await imap.rename("Old", "New")).result == "OK"
        response = await imap.list('""', "New*")
        assert response.lines[:2] == [
            b'(\\HasChildren) "." "New"',
            b'(\\HasNoChildren) "." "New.Sub"',
        ]
        assert (await imap.list('""', "Old*")).lines == [b"LIST completed"]
        assert (await imap.status("New.Sub", "(MESSAGES)")).lines[0] == (b'"New.Sub" (MESSAGES 2)')


async def a_rename_inbox(srv: ServerThread) -> None:
    seed(srv, USER, "INBOX", note(1), note(2))
    async with session(srv) as imap:
        line = (await imap.status("INBOX", "(MESSAGES)")).lines[0]
        before = int(re.findall(rb"\d+", line)[0])
        assert before >= 2
        assert (await imap.rename("INBOX", "Inbox-2026")).result == "OK"  # RFC 9051 §6.3.6
        line = (await imap.status("Inbox-2026", "(MESSAGES)")).lines[0]
        assert line == f'"Inbox-2026" (MESSAGES {before})'.encode()
        assert (await imap.status("INBOX", "(MESSAGES)")).lines[0] == b"INBOX (MESSAGES 0)"


async def a_subscribe(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Newsletters")
        await imap.unsubscribe("Newsletters")
        assert (await imap.lsub('""', "Newsletters")).lines == [b"LSUB completed"]
        assert (await imap.subscribe("Newsletters")).result == "OK"
        assert (await imap.lsub('""', "Newsletters")).lines[0] == b'() "." "Newsletters"'


async def a_unsubscribe(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Digest")
        await imap.subscribe("Digest")
        assert (await imap.unsubscribe("Digest")).result == "OK"
        assert (await imap.lsub('""', "Digest")).lines == [b"LSUB completed"]


async def a_list(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Family.Kids")
        lines = (await imap.list('""', "*")).lines
        assert lines[0] == b'(\\HasNoChildren) "." INBOX'
        assert b'(\\HasNoChildren \\Sent) "." "Sent"' in lines  # RFC 6154 §2
        assert b'(\\HasChildren) "." "Family"' in lines  # RFC 3348
        assert b'(\\HasNoChildren) "." "Family.Kids"' in lines
        lines = (await imap.list('""', "%")).lines
        assert not any(b"Family.Kids" in line for line in lines)


async def a_list_extended(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Clubs.Chess")
        await imap.subscribe("Clubs.Chess")
        await imap.unsubscribe("Clubs")
        response = await raw(
            imap, "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Clubs*", "RETURN", "(CHILDREN)"
        )
        assert response.lines == [
            b'() "." "Clubs" ("CHILDINFO" ("SUBSCRIBED"))',  # RFC 5258 §3.5
            b'(\\HasNoChildren \\Subscribed) "." "Clubs.Chess"',
            b"LIST completed",
        ]


async def a_list_status(srv: ServerThread) -> None:
    seed(srv, USER, "Listed", note(1), note(2))
    async with session(srv) as imap:
        # aioimaplib files untagged responses by name: collect the STATUS ones here.
        response = await raw(
            imap, "LIST", '""', "Listed", "RETURN", "(STATUS (MESSAGES SIZE))", untagged="STATUS"
        )
        size = len(note(1)) + len(note(2))
        assert response.lines == [
            f'"Listed" (MESSAGES 2 SIZE {size})'.encode(),  # RFC 5819 §2
            b"LIST completed",
        ]


async def a_special_use(srv: ServerThread) -> None:
    async with session(srv) as imap:
        response = await raw(imap, "LIST", "(SPECIAL-USE)", '""', "*")
        listed = {line.rsplit(b" ", 1)[-1]: line for line in response.lines[:-1]}
        for name, use in (("Sent", "Sent"), ("Trash", "Trash"), ("Drafts", "Drafts")):
            assert f"\\{use}".encode() in listed[f'"{name}"'.encode()]
        assert b"\\Junk" in listed[b'"Junk"'] and b"\\Archive" in listed[b'"Archive"']
        assert b"INBOX" not in listed


async def a_lsub(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Feeds.Tech")
        await imap.subscribe("Feeds.Tech")
        lines = (await imap.lsub('""', "*")).lines
        assert b'() "." "Feeds.Tech"' in lines and b'() "." INBOX' in lines


async def a_namespace(srv: ServerThread) -> None:
    async with session(srv) as imap:
        response = await imap.namespace()
        assert response.lines == [b'(("" ".")) NIL NIL', b"NAMESPACE completed"]


async def a_status(srv: ServerThread) -> None:
    seed(srv, USER, "Status", note(1))
    seed(srv, USER, "Status", note(2), flags=("\\Seen", "\\Deleted"))
    async with session(srv) as imap:
        response = await imap.status("Status", "(MESSAGES UNSEEN UIDNEXT SIZE DELETED)")
        size = len(note(1)) + len(note(2))
        assert response.lines[0] == (
            f'"Status" (MESSAGES 2 UNSEEN 1 UIDNEXT 3 SIZE {size} DELETED 1)'.encode()
        )


async def a_append(srv: ServerThread) -> None:
    when = datetime.datetime(2021, 6, 1, 12, 30, tzinfo=datetime.UTC)
    async with session(srv) as imap:
        await imap.create("Append")
        response = await imap.append(PLAIN, "Append", flags="\\Seen $Important", date=when)
        uv = uidvalidity(srv, USER, "Append")
        assert response.result == "OK"
        assert response.lines[-1].startswith(f"[APPENDUID {uv} 1]".encode())
        await imap.select("Append")
        line = (await imap.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE)")).lines[0]
        assert b"\\Seen" in line and b"$Important" in line
        assert b'INTERNALDATE "01-Jun-2021 12:30:00 +0000"' in line
        assert f"RFC822.SIZE {len(PLAIN)}".encode() in line
        response = await imap.append(PLAIN, "Nowhere")
        assert response.result == "NO" and b"[TRYCREATE]" in response.lines[-1]


async def a_multiappend(srv: ServerThread) -> None:
    async with session(srv) as imap:
        await imap.create("Multi")
        proto = imap.protocol
        command = LiteralPlus(
            "APPEND", proto.new_tag(), "Multi", messages=[("(\\Seen)", note(1)), ("", note(2))]
        )
        response = await asyncio.wait_for(proto.execute(command), TIMEOUT_S)  # RFC 3502
        uv = uidvalidity(srv, USER, "Multi")
        assert response.lines[-1].startswith(f"[APPENDUID {uv} 1:2]".encode())
        response = await imap.status("Multi", "(MESSAGES UNSEEN)")
        assert response.lines[0] == b'"Multi" (MESSAGES 2 UNSEEN 1)'


async def a_idle(srv: ServerThread) -> None:
    seed(srv, USER, "Idle", note(1))
    async with session(srv) as imap:
        await imap.select("Idle")
        idle = await imap.idle_start(timeout=TIMEOUT_S)
        seed(srv, USER, "Idle", note(2))  # another writer; RFC 2177
        pushed = await imap.wait_server_push(timeout=TIMEOUT_S)
        imap.idle_done()
        response = await asyncio.wait_for(idle, TIMEOUT_S)
        assert b"2 EXISTS" in pushed and response.lines[-1] == b"IDLE terminated"


async def a_check(srv: ServerThread) -> None:
    seed(srv, USER, "Check", note(1))
    async with session(srv) as imap:
        await imap.select("Check")
        assert await imap.check() == lib.Response("OK", [b"CHECK completed"])


async def a_close(srv: ServerThread) -> None:
    seed(srv, USER, "Close", note(1))
    seed(srv, USER, "Close", note(2), flags=("\\Deleted",))
    async with session(srv) as imap:
        await imap.select("Close")
        response = await imap.close()
        assert response == lib.Response("OK", [b"CLOSE completed"])  # no EXPUNGE responses
        assert imap.get_state() == lib.AUTH
        assert (await imap.status("Close", "(MESSAGES)")).lines[0] == b'"Close" (MESSAGES 1)'


async def a_unselect(srv: ServerThread) -> None:
    seed(srv, USER, "Unselect", note(1), flags=("\\Deleted",))
    async with session(srv) as imap:
        await imap.select("Unselect")
        assert (await raw(imap, "UNSELECT")).result == "OK"
        imap.protocol.state = lib.AUTH
        line = (await imap.status("Unselect", "(MESSAGES)")).lines[0]
        assert line == b'"Unselect" (MESSAGES 1)'


async def a_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "Expunge", note(1), note(2), note(3))
    async with session(srv) as imap:
        await imap.select("Expunge")
        await imap.store("1,3", "+FLAGS.SILENT", "(\\Deleted)")
        response = await imap.expunge()
        assert response.result == "OK"
        assert sum(line.endswith(b" EXPUNGE") for line in response.lines) == 2
        assert (await imap.fetch("1:*", "(UID)")).lines[0] == b"1 FETCH (UID 2)"


async def a_uid_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "UidExpunge", note(1), note(2), note(3), flags=("\\Deleted",))
    async with session(srv) as imap:
        await imap.select("UidExpunge")
        response = await imap.uid("expunge", "2")  # RFC 4315 §2.1
        assert response.lines == [b"2 EXPUNGE", b"UID EXPUNGE completed"]
        assert (await imap.uid_search("ALL")).lines[0] == b"1 3"


async def a_search(srv: ServerThread) -> None:
    seed(srv, USER, "Search", PLAIN, MIXED)
    seed(srv, USER, "Search", note(3), flags=("\\Seen", "\\Flagged"))
    async with session(srv) as imap:
        await imap.select("Search")

        async def search(*criteria: str) -> bytes:
            response = await imap.search(*criteria)
            assert response.result == "OK", response
            return bytes(response.lines[0])

        assert await search("ALL") == b"1 2 3"
        assert await search("FROM", "carol") == b"1"
        assert await search("SUBJECT", '"plain one"') == b"1"
        assert await search("UNSEEN") == b"1 2"
        assert await search("NOT", "SEEN", "LARGER", "200") == b"2"
        assert await search("OR", "FROM", "bob", "SUBJECT", "note") == b"2 3"
        assert await search("BODY", "there") == b"2"
        assert await search("SENTBEFORE", "1-Jan-2000") == b"2"
        response = await imap.search("ALL", charset="KOI8-R")
        assert response.result == "NO" and b"[BADCHARSET" in response.lines[-1]


async def a_search_charset(srv: ServerThread) -> None:
    seed(srv, USER, "Charset", PLAIN, MIXED)
    async with session(srv) as imap:
        await imap.select("Charset")
        response = await imap.search("SUBJECT", '"grüß"', charset="UTF-8")  # UTF-8 quoted
        assert response.lines == [b"2", b"SEARCH completed"]


async def a_esearch(srv: ServerThread) -> None:
    seed(srv, USER, "Esearch", note(1), note(2), note(3), note(4))
    async with session(srv) as imap:
        await imap.select("Esearch")
        await imap.store("2", "+FLAGS", "(\\Seen)")
        response = await raw(
            imap, "SEARCH", "RETURN", "(MIN MAX ALL COUNT SAVE)", "UNSEEN", untagged="ESEARCH"
        )
        assert response.lines[0].endswith(b") MIN 1 MAX 4 ALL 1,3:4 COUNT 3")  # RFC 4731
        response = await imap.fetch("$", "(UID)")  # RFC 5182
        assert response.lines[:3] == [b"1 FETCH (UID 1)", b"3 FETCH (UID 3)", b"4 FETCH (UID 4)"]


async def a_fetch(srv: ServerThread) -> None:
    seed(srv, USER, "Fetch", MIXED)
    async with session(srv) as imap:
        await imap.select("Fetch")
        response = await imap.fetch(
            "1", "(FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ ENVELOPE BODY BODYSTRUCTURE)"
        )
        line = response.lines[0]
        assert line.startswith(b"1 FETCH (FLAGS () INTERNALDATE ")
        assert f"RFC822.SIZE {len(MIXED)} UID 1 MODSEQ (".encode() in line
        assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="' in line
        assert b'BODY (("TEXT" "PLAIN"' in line
        assert b'BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8")' in line


async def a_fetch_body(srv: ServerThread) -> None:
    seed(srv, USER, "Body", MIXED)
    async with session(srv) as imap:
        await imap.select("Body")
        response = await imap.fetch(
            "1",
            "(BODY.PEEK[HEADER.FIELDS (SUBJECT)] BODY.PEEK[HEADER] RFC822.HEADER BODY.PEEK[1]"
            " BODY.PEEK[2.MIME] BODY.PEEK[]<0.10>)",
        )
        assert literals(response) == [
            b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n",
            MIXED_HEADER,
            MIXED_HEADER,
            b"Hello there",
            b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n",
            MIXED[:10],
        ]
        assert b"BODY[]<0> {10}" in b"".join(text_lines(response))
        flags = (await imap.fetch("1", "(FLAGS)")).lines[0]
        assert b"FLAGS ()" in flags  # PEEK left \Seen alone
        response = await imap.fetch("1", "(RFC822.TEXT RFC822)")
        assert literals(response) == [MIXED_TEXT, MIXED]
        assert b"\\Seen" in (await imap.fetch("1", "(FLAGS)")).lines[0]


async def a_fetch_binary(srv: ServerThread) -> None:
    seed(srv, USER, "Binary", MIXED)
    async with session(srv) as imap:
        await imap.select("Binary")
        response = await imap.fetch(
            "1", "(BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1]<0.5> BINARY.PEEK[])"
        )
        assert literals(response) == [ATTACHMENT, b"Hello", MIXED]  # RFC 3516
        assert response.lines[0].endswith(b"BINARY[2] ~{5}")  # literal8: it holds NULs
        assert b"BINARY.SIZE[2] 5" in b"".join(text_lines(response))
        assert b"FLAGS ()" in (await imap.fetch("1", "(FLAGS)")).lines[0]


async def a_store(srv: ServerThread) -> None:
    seed(srv, USER, "Store", note(1), note(2))
    async with session(srv) as imap:
        await imap.select("Store")
        response = await imap.store("1:2", "+FLAGS", "(\\Flagged $Work)")
        assert response.lines[:2] == [
            b"1 FETCH (FLAGS (\\Flagged $Work))",
            b"2 FETCH (FLAGS (\\Flagged $Work))",
        ]
        response = await imap.store("1", "-FLAGS", "($Work)")
        assert response.lines[0] == b"1 FETCH (FLAGS (\\Flagged))"
        response = await imap.store("2", "FLAGS", "(\\Answered)")
        assert response.lines[0] == b"2 FETCH (FLAGS (\\Answered))"
        response = await imap.store("1", "+FLAGS.SILENT", "(\\Seen)")
        assert response.lines == [b"STORE completed"]  # .SILENT
        assert b"\\Seen" in (await imap.fetch("1", "(FLAGS)")).lines[0]


async def a_store_unchangedsince(srv: ServerThread) -> None:
    seed(srv, USER, "Unchanged", note(1), note(2))
    async with session(srv) as imap:
        await imap.select("Unchanged")
        before = highestmodseq(srv, USER, "Unchanged")
        await imap.store("2", "+FLAGS", "(\\Seen)")
        response = await imap.store("1:2", f"(UNCHANGEDSINCE {before})", "+FLAGS", "(\\Flagged)")
        assert response.result == "OK"
        assert response.lines[-1] == b"[MODIFIED 2] Conditional STORE failed"  # RFC 7162
        assert len(response.lines) == 2 and b"\\Flagged" in response.lines[0]


async def a_copy(srv: ServerThread) -> None:
    seed(srv, USER, "CopySrc", note(1), note(2))
    async with session(srv) as imap:
        await imap.create("CopyDst")
        await imap.select("CopySrc")
        response = await imap.copy("1:2", "CopyDst")
        uv = uidvalidity(srv, USER, "CopyDst")
        assert response.lines[-1].startswith(f"[COPYUID {uv} 1:2 1:2]".encode())
        response = await imap.copy("1", "Nowhere")
        assert response.result == "NO" and b"[TRYCREATE]" in response.lines[-1]


async def a_move(srv: ServerThread) -> None:
    seed(srv, USER, "MoveSrc", note(1), note(2))
    async with session(srv) as imap:
        await imap.create("MoveDst")
        await imap.select("MoveSrc")
        response = await imap.move("1", "MoveDst")  # RFC 6851
        uv = uidvalidity(srv, USER, "MoveDst")
        assert response.lines == [
            f"OK [COPYUID {uv} 1 1] Moved".encode(),  # RFC 6851 §4.3: before the EXPUNGE
            b"1 EXPUNGE",
            b"MOVE completed",
        ]


async def a_uid(srv: ServerThread) -> None:
    seed(srv, USER, "Uids", note(1), note(2), note(3), note(4), flags=("\\Deleted",))
    async with session(srv) as imap:
        await imap.create("UidDst")
        await imap.select("Uids")
        await imap.uid("expunge", "1")  # now UIDs 2, 3, 4 are messages 1, 2, 3
        assert (await imap.uid_search("ALL")).lines[0] == b"2 3 4"
        response = await imap.uid("fetch", "3", "(FLAGS)")
        assert response.lines[0] == b"2 FETCH (UID 3 FLAGS (\\Deleted))"
        response = await imap.uid("store", "3", "-FLAGS", "(\\Deleted)")
        assert response.lines[0] == b"2 FETCH (UID 3 FLAGS ())"
        response = await imap.uid("copy", "3:4", "UidDst")
        assert response.lines[-1].split()[2:4] == [b"3:4", b"1:2]"]
        response = await imap.uid("move", "4", "UidDst")
        assert b"3 EXPUNGE" in response.lines


async def a_id(srv: ServerThread) -> None:
    imap = await connect(srv)
    try:
        # RFC 2971, before login. With parameters aioimaplib writes `ID ( "name" "x" )`,
        # spaces inside the parentheses that the grammar does not allow: ID NIL here.
        response = await imap.id()
        assert response.lines == [b'("name" "pymta" "version" "0.1.0")', b"ID completed"]
        response = await raw(imap, "ID", '("name" "aioimaplib")')
        assert response.lines[0] == b'("name" "pymta" "version" "0.1.0")'
    finally:
        await imap.logout()


async def a_condstore(srv: ServerThread) -> None:
    seed(srv, USER, "Condstore", note(1), note(2))
    async with session(srv) as imap:
        start = highestmodseq(srv, USER, "Condstore")
        # select() takes no parameters: SELECT (CONDSTORE) raw (RFC 7162 §3.1.8).
        response = await raw(imap, "SELECT", "Condstore", "(CONDSTORE)")
        assert f"OK [HIGHESTMODSEQ {start}] Highest".encode() in response.lines
        imap.protocol.state = lib.SELECTED
        await imap.store("2", "+FLAGS", "(\\Answered)")
        response = await imap.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {start})")  # §3.1.4
        assert len(response.lines) == 2 and response.lines[0].startswith(b"2 FETCH (")
        changed = int(re.findall(rb"MODSEQ \((\d+)\)", response.lines[0])[0])
        response = await imap.search("MODSEQ", str(start + 1))  # §3.1.5
        assert response.lines[0] == f"2 (MODSEQ {changed})".encode()


async def a_qresync(srv: ServerThread) -> None:
    seed(srv, USER, "Qresync", note(1), note(2), note(3), flags=("\\Deleted",))
    uv = uidvalidity(srv, USER, "Qresync")
    known = highestmodseq(srv, USER, "Qresync")
    async with session(srv) as imap:
        await imap.enable("QRESYNC")
        await imap.select("Qresync")
        response = await raw(imap, "EXPUNGE", "2", prefix="UID", untagged="VANISHED")
        assert response.lines == [b"2", b"UID EXPUNGE completed"]  # RFC 7162 §3.2.10
        await imap.uid("store", "3", "-FLAGS", "(\\Deleted)")
        response = await raw(
            imap,
            "FETCH",
            "1:3",
            "(FLAGS)",
            f"(CHANGEDSINCE {known} VANISHED)",
            prefix="UID",
            untagged="VANISHED",
        )
        assert response.lines == [b"(EARLIER) 2", b"UID FETCH completed"]  # §3.2.6
        await raw(imap, "UNSELECT")
        response = await raw(imap, "SELECT", "Qresync", f"(QRESYNC ({uv} {known}))")  # §3.2.5
        assert b"VANISHED (EARLIER) 2" in response.lines
        assert [line for line in response.lines if b"FETCH" in line] == [
            b"2 FETCH (UID 3 FLAGS () MODSEQ (%d))" % highestmodseq(srv, USER, "Qresync")
        ]


async def a_getquotaroot(srv: ServerThread) -> None:
    async with session(srv, QUOTA_USER) as imap:
        response = await imap.getquotaroot("INBOX")
        assert response.lines == [
            f'"" (STORAGE 0 {QUOTA_BYTES // 1024})'.encode(),
            b"GETQUOTAROOT completed",
        ]
        response = await raw(imap, "GETQUOTAROOT", "INBOX", untagged="QUOTAROOT")
        assert response.lines[0] == b'INBOX ""'


async def a_getquota(srv: ServerThread) -> None:
    async with session(srv, QUOTA_USER) as imap:
        response = await raw(imap, "GETQUOTA", '""', untagged="QUOTA")
        assert response.lines[0] == f'"" (STORAGE 0 {QUOTA_BYTES // 1024})'.encode()
        response = await raw(imap, "GETQUOTA", '"other"', untagged="QUOTA")
        assert response.result == "NO" and b"[NONEXISTENT]" in response.lines[-1]


async def a_append_overquota(srv: ServerThread) -> None:
    async with session(srv, QUOTA_USER) as imap:
        response = await imap.append(OVER_QUOTA, "INBOX")
        assert response.result == "NO" and response.lines[-1].startswith(b"[OVERQUOTA]")
        assert (await imap.status("INBOX", "(MESSAGES)")).lines[0] == b"INBOX (MESSAGES 0)"


AIOIMAPLIB: dict[str, Callable[[ServerThread], Awaitable[None]]] = {
    "CAPABILITY": a_capability,
    "NOOP": a_noop,
    "LOGOUT": a_logout,
    "STARTTLS": a_starttls,
    "AUTHENTICATE PLAIN": a_authenticate_plain,
    "AUTHENTICATE LOGIN": a_authenticate_login,
    "LOGIN": a_login,
    "ENABLE": a_enable,
    "SELECT": a_select,
    "EXAMINE": a_examine,
    "CREATE": a_create,
    "DELETE": a_delete,
    "RENAME": a_rename,
    "RENAME INBOX": a_rename_inbox,
    "SUBSCRIBE": a_subscribe,
    "UNSUBSCRIBE": a_unsubscribe,
    "LIST": a_list,
    "LIST-EXTENDED": a_list_extended,
    "LIST-STATUS": a_list_status,
    "SPECIAL-USE": a_special_use,
    "LSUB": a_lsub,
    "NAMESPACE": a_namespace,
    "STATUS": a_status,
    "APPEND": a_append,
    "MULTIAPPEND": a_multiappend,
    "IDLE": a_idle,
    "CHECK": a_check,
    "CLOSE": a_close,
    "UNSELECT": a_unselect,
    "EXPUNGE": a_expunge,
    "UID EXPUNGE": a_uid_expunge,
    "SEARCH": a_search,
    "SEARCH CHARSET": a_search_charset,
    "ESEARCH": a_esearch,
    "FETCH": a_fetch,
    "FETCH BODY": a_fetch_body,
    "FETCH BINARY": a_fetch_binary,
    "STORE": a_store,
    "STORE UNCHANGEDSINCE": a_store_unchangedsince,
    "COPY": a_copy,
    "MOVE": a_move,
    "UID": a_uid,
    "ID": a_id,
    "CONDSTORE": a_condstore,
    "QRESYNC": a_qresync,
    "GETQUOTAROOT": a_getquotaroot,
    "GETQUOTA": a_getquota,
    "APPEND OVERQUOTA": a_append_overquota,
}


def test_aioimaplib_table_covers_every_row() -> None:
    check_coverage(AIOIMAPLIB)


@pytest.mark.parametrize("row", ROWS)
async def test_aioimaplib(srv: ServerThread, row: str) -> None:
    await AIOIMAPLIB[row](srv)

"""Every command of issue 4, exercised through imaplib (this file), imapclient and aioimaplib
(test_imap_commands_imapclient.py, test_imap_commands_aioimaplib.py).

`ROWS` names what each client's table must cover; each table maps a row to a check written
in that client's own API. Where a library has no call for a command (or for an extension
argument), the command goes raw through the library's own low-level call: imaplib's
`_simple_command` / `xatom`, imapclient's `_raw_command_untagged`, aioimaplib's
`protocol.execute(Command(...))`. Each row runs on its own connection, in folders of its
own, as the client's own user; messages a row needs are put in place through the running
server's store (as a delivery would), so a check depends only on the client under test.
"""

from __future__ import annotations

import contextlib
import datetime
import imaplib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from passlib.hash import sha512_crypt

from pymta.store import AppendItem, FolderExists, MailboxRef
from tests.integration.conftest import ServerThread, base_config, write_config
from tests.integration.test_imap_basic import client_tls, with_imap

DOMAIN = "example.test"
PASSWORD = "Secret-pass"
CLIENT_USERS = ("imaplib", "imapclient", "aioimaplib")
QUOTA_USER = "quota"
QUOTA_BYTES = 2048

# The rows every client's table covers (issue 4, "Commands").
ROWS = (
    "CAPABILITY",
    "NOOP",
    "LOGOUT",
    "STARTTLS",
    "AUTHENTICATE PLAIN",
    "AUTHENTICATE LOGIN",
    "LOGIN",
    "ENABLE",
    "SELECT",
    "EXAMINE",
    "CREATE",
    "DELETE",
    "RENAME",
    "RENAME INBOX",
    "SUBSCRIBE",
    "UNSUBSCRIBE",
    "LIST",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "SPECIAL-USE",
    "LSUB",
    "NAMESPACE",
    "STATUS",
    "APPEND",
    "MULTIAPPEND",
    "IDLE",
    "CHECK",
    "CLOSE",
    "UNSELECT",
    "EXPUNGE",
    "UID EXPUNGE",
    "SEARCH",
    "SEARCH CHARSET",
    "ESEARCH",
    "FETCH",
    "FETCH BODY",
    "FETCH BINARY",
    "STORE",
    "STORE UNCHANGEDSINCE",
    "COPY",
    "MOVE",
    "UID",
    "ID",
    "CONDSTORE",
    "QRESYNC",
    "GETQUOTAROOT",
    "GETQUOTA",
    "APPEND OVERQUOTA",
)

# -- messages -------------------------------------------------------------------------------

PLAIN = (
    b"From: Carol <carol@example.test>\r\n"
    b"To: someone@example.test\r\n"
    b"Subject: plain one\r\n"
    b"Date: Tue, 1 Jun 2021 10:00:00 +0000\r\n"
    b"Message-ID: <plain@example.test>\r\n"
    b"\r\n"
    b"Just some text\r\n"
)
ATTACHMENT = bytes(range(5))
MIXED = (
    b"From: Bob <bob@example.test>\r\n"
    b"To: someone@example.test\r\n"
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n"
    b"Date: Mon, 7 Feb 1994 21:52:25 -0800\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=XX\r\n"
    b"\r\n"
    b"--XX\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hello there\r\n"
    b"--XX\r\n"
    b"Content-Type: application/octet-stream\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"AAECAwQ=\r\n"
    b"--XX--\r\n"
)
_HEAD, _, MIXED_TEXT = MIXED.partition(b"\r\n\r\n")
MIXED_HEADER = _HEAD + b"\r\n\r\n"  # the header section with its blank line
OVER_QUOTA = b"Subject: too big\r\n\r\n" + b"x" * (2 * QUOTA_BYTES) + b"\r\n"


def note(n: int) -> bytes:
    return f"Subject: note {n}\r\nFrom: n@example.test\r\n\r\nbody of note {n}\r\n".encode()


# -- the server -----------------------------------------------------------------------------


def commands_config(tmp_path: Path, tls: tuple[Path, Path]) -> dict[str, Any]:
    doc = base_config(tmp_path, tls)
    with_imap(doc)
    # SHA512-CRYPT, as a user moved over from Dovecot would have: cheap to verify, so the
    # hundred-odd logins of these tables stay fast (argon2id costs ~150 ms each here).
    hashed = sha512_crypt.using(rounds=5000).hash(PASSWORD)
    doc["directory"]["users"] += [
        {"name": name, "domain": DOMAIN, "password_hash": hashed} for name in CLIENT_USERS
    ]
    doc["directory"]["users"].append(
        {"name": QUOTA_USER, "domain": DOMAIN, "password_hash": hashed, "quota": QUOTA_BYTES}
    )
    # Wrong passwords are part of the tables: no penalty, no lock-out here.
    doc["limits"] = {
        "auth_failure_delay": "0s",
        "auth_max_failures_per_ip": 1000,
        "auth_max_failures_per_user": 1000,
    }
    return doc


@pytest.fixture(scope="module")
def srv(
    tmp_path_factory: pytest.TempPathFactory, tls_cert: tuple[Path, Path]
) -> Iterator[ServerThread]:
    tmp_path = tmp_path_factory.mktemp("imap-commands")
    server = ServerThread(write_config(tmp_path, commands_config(tmp_path, tls_cert))).start()
    yield server
    server.stop()


def ref(user: str) -> MailboxRef:
    return MailboxRef("user", user, DOMAIN)


def seed(
    srv: ServerThread,
    user: str,
    folder: str,
    *messages: bytes,
    flags: tuple[str, ...] = (),
) -> list[int]:
    """Create `folder` (unless INBOX) and store `messages` in it through the server's store,
    as another session or a delivery would; their UIDs."""
    assert srv.server is not None
    store = srv.server.store
    if folder.upper() != "INBOX":
        with contextlib.suppress(FolderExists):
            srv.call(store.create_folder(ref(user), folder))
    items = [AppendItem(m, flags) for m in messages]
    delivered = srv.call(store.append_many(ref(user), folder, items))
    return [d.uid for d in delivered]


def uidvalidity(srv: ServerThread, user: str, folder: str) -> int:
    assert srv.server is not None
    return int(srv.call(srv.server.store.folder_info(ref(user), folder)).uidvalidity)


def highestmodseq(srv: ServerThread, user: str, folder: str) -> int:
    assert srv.server is not None
    return int(srv.call(srv.server.store.folder_info(ref(user), folder)).highestmodseq)


def numbers(text: bytes | str, item: str) -> int:
    """The number after `item` in a response ("MESSAGES 2" → 2)."""
    data = text.decode() if isinstance(text, bytes) else text
    match = re.search(re.escape(item) + r" \(?(\d+)", data)
    assert match is not None, (item, data)
    return int(match.group(1))


def check_coverage(table: dict[str, Callable[..., Any]]) -> None:
    assert sorted(table) == sorted(ROWS)


# -- imaplib ---------------------------------------------------------------------------------

USER = "imaplib"


def connect(srv: ServerThread) -> imaplib.IMAP4_SSL:
    return imaplib.IMAP4_SSL("127.0.0.1", srv.port("imaps"), ssl_context=client_tls(), timeout=10)


@contextlib.contextmanager
def session(srv: ServerThread, user: str = USER) -> Iterator[imaplib.IMAP4_SSL]:
    imap = connect(srv)
    try:
        imap.login(user, PASSWORD)
        yield imap
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


def untagged(imap: imaplib.IMAP4, name: str) -> list[Any]:
    """The untagged responses `name` received so far (and forget them)."""
    return list(imap.untagged_responses.pop(name, []))


def fetched(data: list[Any]) -> bytes:
    """imaplib's FETCH data flattened: response lines and literals in order."""
    out = b""
    for part in data:
        if isinstance(part, tuple):
            out += part[0] + part[1]
        elif part is not None:
            out += part
    return out


def i_capability(srv: ServerThread) -> None:
    imap = connect(srv)
    try:
        typ, data = imap.capability()
        caps = data[0].split()
        assert typ == "OK"
        assert {b"IMAP4rev1", b"IMAP4rev2", b"AUTH=PLAIN", b"AUTH=LOGIN", b"SASL-IR"} <= set(caps)
        assert b"STARTTLS" not in caps  # implicit TLS: nothing to start
        imap.login(USER, PASSWORD)
        typ, data = imap.capability()
        caps = data[0].split()
        assert {b"QRESYNC", b"MOVE", b"ESEARCH", b"QUOTA", b"STATUS=SIZE", b"BINARY"} <= set(caps)
        assert not any(c.startswith(b"AUTH=") for c in caps)
        assert any(c.startswith(b"APPENDLIMIT=") for c in caps)
    finally:
        imap.logout()


def i_noop(srv: ServerThread) -> None:
    seed(srv, USER, "Noop", note(1))
    with session(srv) as imap:
        assert imap.select("Noop") == ("OK", [b"1"])
        untagged(imap, "EXISTS")  # imaplib keeps SELECT's
        seed(srv, USER, "Noop", note(2))  # another writer
        typ, _ = imap.noop()
        assert typ == "OK"
        assert untagged(imap, "EXISTS") == [b"2"]  # RFC 9051 §6.1.2: NOOP reports it


def i_logout(srv: ServerThread) -> None:
    imap = connect(srv)
    imap.login(USER, PASSWORD)
    typ, data = imap.logout()
    assert typ == "BYE" and imap.state == "LOGOUT"
    assert data == [b"Logging out"]


def i_starttls(srv: ServerThread) -> None:
    imap = imaplib.IMAP4("127.0.0.1", srv.port("imap"), timeout=10)
    try:
        assert "STARTTLS" in imap.capabilities and "LOGINDISABLED" in imap.capabilities
        typ, _ = imap.starttls(client_tls())
        assert typ == "OK"
        # RFC 9051 §6.2.1: capabilities asked again; no STARTTLS, logins allowed now.
        assert "STARTTLS" not in imap.capabilities and "AUTH=PLAIN" in imap.capabilities
        assert imap.login(USER, PASSWORD)[0] == "OK"
        assert imap.select("INBOX")[0] == "OK"
    finally:
        imap.logout()


def i_authenticate_plain(srv: ServerThread) -> None:
    imap = connect(srv)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.authenticate("PLAIN", lambda _: f"\0{USER}\0wrong".encode())
        # RFC 5530 §3: acting as someone else is not allowed.
        with pytest.raises(imaplib.IMAP4.error, match="AUTHORIZATIONFAILED"):
            imap.authenticate("PLAIN", lambda _: f"bob\0{USER}\0{PASSWORD}".encode())
        typ, data = imap.authenticate("PLAIN", lambda _: f"\0{USER}\0{PASSWORD}".encode())
        assert typ == "OK" and imap.state == "AUTH"
        assert b"CAPABILITY" in data[0]
    finally:
        imap.logout()


def i_authenticate_login(srv: ServerThread) -> None:
    answers = {b"Username:": USER.encode(), b"Password:": PASSWORD.encode()}
    imap = connect(srv)
    try:
        # RFC 9051 §6.2.2: "*" cancels the exchange, answered BAD (imaplib sends "*" when
        # the callback returns None).
        with pytest.raises(imaplib.IMAP4.error, match="cancelled"):
            imap.authenticate("LOGIN", lambda challenge: None)
        typ, _ = imap.authenticate("LOGIN", lambda challenge: answers[challenge])
        assert typ == "OK" and imap.state == "AUTH"
    finally:
        imap.logout()


def i_login(srv: ServerThread) -> None:
    imap = connect(srv)
    try:
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            imap.login(USER, "wrong")
        typ, data = imap.login(f"{USER}@{DOMAIN}".upper(), PASSWORD)  # an own address
        assert typ == "OK" and b"[CAPABILITY IMAP4rev1" in data[0]
        with pytest.raises(imaplib.IMAP4.error, match="illegal in state"):
            imap.login(USER, PASSWORD)  # imaplib itself knows: not in the AUTH state
    finally:
        imap.logout()


def i_enable(srv: ServerThread) -> None:
    seed(srv, USER, "Enable", note(1))
    with session(srv) as imap:
        typ, _ = imap.enable("CONDSTORE")
        assert typ == "OK" and untagged(imap, "ENABLED") == [b"CONDSTORE"]
        typ, _ = imap.enable("CONDSTORE")  # RFC 5161 §3.1: only newly enabled ones listed
        assert untagged(imap, "ENABLED") == [b""]
        imap.select("Enable")
        typ, data = imap.fetch("1", "(FLAGS)")
        assert b"MODSEQ (" in data[0]  # RFC 7162 §3.1: FLAGS come with MODSEQ now
        imap.unselect()
        typ, _ = imap.enable("UTF8=ACCEPT")  # imaplib switches to UTF-8 itself
        assert untagged(imap, "ENABLED") == [b"UTF8=ACCEPT"]
        assert imap.create('"Entwürfe"')[0] == "OK"
        typ, data = imap.list('""', '"Entw*"')
        assert data == ['(\\HasNoChildren) "." "Entwürfe"'.encode()]  # RFC 6855 §3


def i_select(srv: ServerThread) -> None:
    seed(srv, USER, "Select", note(1))
    seed(srv, USER, "Select", note(2), flags=("\\Seen",))
    with session(srv) as imap:
        typ, data = imap.select("Select")
        assert (typ, data) == ("OK", [b"2"]) and imap.state == "SELECTED"
        assert untagged(imap, "UIDNEXT") == [b"3"]
        assert untagged(imap, "UIDVALIDITY") == [str(uidvalidity(srv, USER, "Select")).encode()]
        assert untagged(imap, "UNSEEN") == [b"1"]
        assert b"\\Seen" in untagged(imap, "FLAGS")[0]
        assert b"\\*" in untagged(imap, "PERMANENTFLAGS")[0]
        assert untagged(imap, "READ-WRITE") == [b""]
        typ, data = imap.select("Nonexistent")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0]
        assert imap.select("inbox")[0] == "OK"  # INBOX in any case (RFC 9051 §5.1)


def i_examine(srv: ServerThread) -> None:
    seed(srv, USER, "Examine", note(1))
    with session(srv) as imap:
        typ, data = imap.select("Examine", readonly=True)
        assert (typ, data) == ("OK", [b"1"])
        assert untagged(imap, "READ-ONLY") == [b""]
        typ, data = imap.fetch("1", "(BODY[TEXT] FLAGS)")
        assert b"FLAGS ()" in fetched(data)  # read-only: \Seen is not set
        typ, data = imap.store("1", "+FLAGS", "(\\Flagged)")
        assert typ == "NO" and b"[READ-ONLY]" in data[0]


def i_create(srv: ServerThread) -> None:
    with session(srv) as imap:
        assert imap.create("Projects.2026")[0] == "OK"
        typ, data = imap.list('""', "Projects*")
        assert data == [
            b'(\\HasChildren) "." "Projects"',  # the superior name was created too
            b'(\\HasNoChildren) "." "Projects.2026"',
        ]
        typ, data = imap.create("Projects")
        assert typ == "NO" and b"[ALREADYEXISTS]" in data[0]
        typ, data = imap.create("../escape")
        assert typ == "NO" and b"[CANNOT]" in data[0]
        # RFC 6154 §3 CREATE-SPECIAL-USE, raw: imaplib's create() takes a name only.
        typ, data = imap._simple_command("CREATE", "Receipts", "(USE (\\Archive))")
        assert typ == "OK"
        typ, data = imap.list('""', "Receipts")
        assert data == [b'(\\HasNoChildren \\Archive) "." "Receipts"']


def i_delete(srv: ServerThread) -> None:
    seed(srv, USER, "Doomed", note(1))
    with session(srv) as imap:
        assert imap.delete("Doomed")[0] == "OK"
        assert imap.list('""', "Doomed") == ("OK", [None])
        typ, data = imap.delete("Doomed")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0]
        typ, data = imap.delete("INBOX")
        assert typ == "NO"


def i_rename(srv: ServerThread) -> None:
    seed(srv, USER, "Old", note(1))
    seed(srv, USER, "Old.Sub", note(2), note(3))
    with session(srv) as imap:
        assert imap.rename("Old", "New")[0] == "OK"
        typ, data = imap.list('""', "New*")
        assert data == [b'(\\HasChildren) "." "New"', b'(\\HasNoChildren) "." "New.Sub"']
        assert imap.list('""', "Old*") == ("OK", [None])
        typ, data = imap.status("New.Sub", "(MESSAGES)")
        assert numbers(data[0], "MESSAGES") == 2  # inferior names move along (§6.3.6)
        typ, data = imap.rename("Nonexistent", "Other")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0]


def i_rename_inbox(srv: ServerThread) -> None:
    seed(srv, USER, "INBOX", note(1), note(2))
    with session(srv) as imap:
        before = numbers(imap.status("INBOX", "(MESSAGES)")[1][0], "MESSAGES")
        assert before >= 2
        # RFC 9051 §6.3.6: INBOX's messages move to the new name; INBOX stays, empty.
        assert imap.rename("INBOX", "Inbox-2026")[0] == "OK"
        assert numbers(imap.status("Inbox-2026", "(MESSAGES)")[1][0], "MESSAGES") == before
        assert numbers(imap.status("INBOX", "(MESSAGES)")[1][0], "MESSAGES") == 0


def i_subscribe(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Newsletters")
        imap.unsubscribe("Newsletters")
        assert imap.lsub('""', "Newsletters") == ("OK", [None])
        assert imap.subscribe("Newsletters")[0] == "OK"
        assert imap.lsub('""', "Newsletters")[1] == [b'() "." "Newsletters"']


def i_unsubscribe(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Digest")
        imap.subscribe("Digest")
        assert imap.unsubscribe("Digest")[0] == "OK"
        assert imap.lsub('""', "Digest") == ("OK", [None])
        assert imap.list('""', "Digest")[1] == [b'(\\HasNoChildren) "." "Digest"']


def i_list(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Family.Kids")
        typ, data = imap.list()
        assert data[0] == b'(\\HasNoChildren) "." INBOX'
        # SPECIAL-USE attributes (RFC 6154 §2) and CHILDREN (RFC 3348) come unasked.
        assert b'(\\HasNoChildren \\Sent) "." "Sent"' in data
        assert b'(\\HasNoChildren \\Trash) "." "Trash"' in data
        assert b'(\\HasChildren) "." "Family"' in data
        assert b'(\\HasNoChildren) "." "Family.Kids"' in data
        typ, data = imap.list('""', "%")  # "%" stops at the hierarchy delimiter
        assert typ == "OK"
        assert b'(\\HasChildren) "." "Family"' in data
        assert not any(b"Family.Kids" in line for line in data)
        _, data = imap.list('"Family."', "*")  # reference and pattern together
        assert data == [b'(\\HasNoChildren) "." "Family.Kids"']
        assert imap.list('""', '""')[1] == [b'(\\Noselect) "." ""']  # the delimiter


def i_list_extended(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Clubs.Chess")
        imap.subscribe("Clubs.Chess")
        imap.unsubscribe("Clubs")
        # RFC 5258: selection options and RETURN options, raw (imaplib's list() cannot).
        typ, _ = imap._simple_command(
            "LIST", "(SUBSCRIBED RECURSIVEMATCH)", '""', "Clubs*", "RETURN", "(CHILDREN)"
        )
        assert typ == "OK"
        lines = untagged(imap, "LIST")
        assert lines == [
            b'() "." "Clubs" ("CHILDINFO" ("SUBSCRIBED"))',  # RFC 5258 §3.5
            b'(\\HasNoChildren \\Subscribed) "." "Clubs.Chess"',
        ]
        imap._simple_command("LIST", '""', '("Clubs" "INBOX")')  # several
        assert untagged(imap, "LIST") == [
            b'(\\HasNoChildren) "." INBOX',
            b'(\\HasChildren) "." "Clubs"',
        ]


def i_list_status(srv: ServerThread) -> None:
    seed(srv, USER, "Listed", note(1), note(2))
    with session(srv) as imap:
        typ, _ = imap._simple_command(
            "LIST", '""', "Listed", "RETURN", "(STATUS (MESSAGES UNSEEN SIZE))"
        )
        assert typ == "OK"
        assert untagged(imap, "LIST") == [b'(\\HasNoChildren) "." "Listed"']
        size = len(note(1)) + len(note(2))
        assert untagged(imap, "STATUS") == [
            f'"Listed" (MESSAGES 2 UNSEEN 2 SIZE {size})'.encode()  # RFC 5819 §2
        ]


def i_special_use(srv: ServerThread) -> None:
    with session(srv) as imap:
        typ, _ = imap._simple_command("LIST", "(SPECIAL-USE)", '""', "*")
        assert typ == "OK"
        lines = untagged(imap, "LIST")
        uses = {line.split(b'"')[-2]: line.split(b")")[0] for line in lines}
        for name, use in [
            (b"Sent", b"\\Sent"),
            (b"Drafts", b"\\Drafts"),
            (b"Trash", b"\\Trash"),
            (b"Junk", b"\\Junk"),
            (b"Archive", b"\\Archive"),
        ]:
            assert use in uses[name], lines
        assert b"INBOX" not in b"".join(lines)  # only folders with a special use
        typ, _ = imap._simple_command("LIST", '""', "Sent", "RETURN", "(SPECIAL-USE)")
        assert untagged(imap, "LIST") == [b'(\\HasNoChildren \\Sent) "." "Sent"']


def i_lsub(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Feeds.Tech")
        imap.subscribe("Feeds.Tech")
        typ, data = imap.lsub('""', "Feeds*")
        assert typ == "OK" and b'() "." "Feeds.Tech"' in data
        assert b'() "." INBOX' in imap.lsub()[1]


def i_namespace(srv: ServerThread) -> None:
    with session(srv) as imap:
        assert imap.namespace() == ("OK", [b'(("" ".")) NIL NIL'])


def i_status(srv: ServerThread) -> None:
    seed(srv, USER, "Status", note(1))
    seed(srv, USER, "Status", note(2), flags=("\\Seen", "\\Deleted"))
    with session(srv) as imap:
        typ, data = imap.status(
            "Status", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY SIZE DELETED HIGHESTMODSEQ)"
        )
        line = data[0]
        assert typ == "OK" and line.startswith(b'"Status" (')
        assert numbers(line, "MESSAGES") == 2 and numbers(line, "UNSEEN") == 1
        assert numbers(line, "UIDNEXT") == 3 and numbers(line, "DELETED") == 1
        assert numbers(line, "SIZE") == len(note(1)) + len(note(2))  # RFC 8438
        assert numbers(line, "UIDVALIDITY") == uidvalidity(srv, USER, "Status")
        assert numbers(line, "HIGHESTMODSEQ") == highestmodseq(srv, USER, "Status")
        typ, data = imap.status("Nonexistent", "(MESSAGES)")
        assert typ == "NO" and b"[NONEXISTENT]" in data[0]


def i_append(srv: ServerThread) -> None:
    when = datetime.datetime(2021, 6, 1, 12, 30, 0, tzinfo=datetime.UTC)
    with session(srv) as imap:
        imap.create("Append")
        typ, data = imap.append(
            "Append", "(\\Seen $Important)", imaplib.Time2Internaldate(when), PLAIN
        )
        uv = uidvalidity(srv, USER, "Append")
        assert typ == "OK" and data[0].startswith(f"[APPENDUID {uv} 1]".encode())
        imap.select("Append")
        typ, data = imap.fetch("1", "(FLAGS INTERNALDATE RFC822.SIZE)")
        assert b"\\Seen" in data[0] and b"$Important" in data[0]
        assert b'INTERNALDATE "01-Jun-2021 12:30:00 +0000"' in data[0]
        assert numbers(data[0], "RFC822.SIZE") == len(PLAIN)
        typ, data = imap.append("Nowhere", None, None, PLAIN)
        assert typ == "NO" and b"[TRYCREATE]" in data[0]  # RFC 9051 §6.3.12


def i_multiappend(srv: ServerThread) -> None:
    with session(srv) as imap:
        imap.create("Multi")
        # RFC 3502: imaplib sends one literal per command, so the messages go as
        # non-synchronizing literals (LITERAL+, RFC 7888) in the raw arguments.
        one, two = note(1), note(2)
        typ, data = imap._simple_command(
            "APPEND",
            "Multi",
            b"(\\Seen) {%d+}\r\n%s" % (len(one), one),
            b"{%d+}\r\n%s" % (len(two), two),
        )
        uv = uidvalidity(srv, USER, "Multi")
        assert typ == "OK" and data[0].startswith(f"[APPENDUID {uv} 1:2]".encode())
        typ, data = imap.status("Multi", "(MESSAGES UNSEEN)")
        assert data == [b'"Multi" (MESSAGES 2 UNSEEN 1)']


def i_idle(srv: ServerThread) -> None:
    seed(srv, USER, "Idle", note(1))
    # imaplib (before 3.14) has no idle(): the command through its low-level calls.
    with session(srv) as imap:
        imap.select("Idle")
        untagged(imap, "EXISTS")  # imaplib keeps SELECT's
        tag = imap._command("IDLE")
        while imap._get_response():  # untagged lines until the continuation
            pass
        assert imap.continuation_response == b"idling"
        seed(srv, USER, "Idle", note(2))  # RFC 2177: the server tells while idling
        while "EXISTS" not in imap.untagged_responses:
            imap._get_response()
        assert untagged(imap, "EXISTS") == [b"2"]
        imap.send(b"DONE\r\n")
        typ, data = imap._command_complete("IDLE", tag)
        assert typ == "OK" and data == [b"IDLE terminated"]


def i_check(srv: ServerThread) -> None:
    seed(srv, USER, "Check", note(1))
    with session(srv) as imap:
        imap.select("Check")
        assert imap.check() == ("OK", [b"CHECK completed"])


def i_close(srv: ServerThread) -> None:
    seed(srv, USER, "Close", note(1))
    seed(srv, USER, "Close", note(2), flags=("\\Deleted",))
    with session(srv) as imap:
        imap.select("Close")
        typ, _ = imap.close()
        assert typ == "OK" and imap.state == "AUTH"
        assert "EXPUNGE" not in imap.untagged_responses  # RFC 9051 §6.4.1: silently
        assert imap.status("Close", "(MESSAGES)")[1] == [b'"Close" (MESSAGES 1)']


def i_unselect(srv: ServerThread) -> None:
    seed(srv, USER, "Unselect", note(1), flags=("\\Deleted",))
    with session(srv) as imap:
        imap.select("Unselect")
        typ, _ = imap.unselect()
        assert typ == "OK" and imap.state == "AUTH"
        assert imap.status("Unselect", "(MESSAGES)")[1] == [b'"Unselect" (MESSAGES 1)']


def i_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "Expunge", note(1), note(2), note(3))
    with session(srv) as imap:
        imap.select("Expunge")
        imap.store("1,3", "+FLAGS.SILENT", "(\\Deleted)")
        typ, data = imap.expunge()
        assert typ == "OK" and len(data) == 2  # one EXPUNGE response per message
        typ, data = imap.fetch("1:*", "(UID)")
        assert data == [b"1 (UID 2)"]


def i_uid_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "UidExpunge", note(1), note(2), note(3), flags=("\\Deleted",))
    with session(srv) as imap:
        imap.select("UidExpunge")
        typ, _ = imap.uid("EXPUNGE", "2")  # RFC 4315 §2.1: only UID 2
        assert typ == "OK" and untagged(imap, "EXPUNGE") == [b"2"]
        assert imap.uid("SEARCH", "ALL")[1] == [b"1 3"]


def i_search(srv: ServerThread) -> None:
    seed(srv, USER, "Search", PLAIN, MIXED)
    seed(srv, USER, "Search", note(3), flags=("\\Seen", "\\Flagged"))
    with session(srv) as imap:
        imap.select("Search")

        def search(*criteria: str) -> bytes:
            typ, data = imap.search(None, *criteria)
            assert typ == "OK", data
            return bytes(data[0])

        assert search("ALL") == b"1 2 3"
        assert search("FROM", "carol") == b"1"
        assert search("SUBJECT", '"plain one"') == b"1"
        assert search("UNSEEN") == b"1 2" and search("FLAGGED") == b"3"
        assert search("NOT", "SEEN", "LARGER", "200") == b"2"
        assert search("OR", "FROM", "bob", "SUBJECT", "note") == b"2 3"
        assert search("HEADER", "Message-ID", "plain@example.test") == b"1"
        assert search("BODY", "there") == b"2" and search("TEXT", "carol") == b"1"
        assert search("SENTBEFORE", "1-Jan-2000") == b"2"
        assert search("SENTSINCE", "1-Jan-2021", "SENTBEFORE", "1-Jan-2022") == b"1"
        assert search("2:*", "UNSEEN") == b"2" and search("UID", "1,3") == b"1 3"
        assert search("SMALLER", "100") == b"3"
        typ, data = imap.search("KOI8-R", "ALL")
        assert typ == "NO" and b"[BADCHARSET" in data[0]


def i_search_charset(srv: ServerThread) -> None:
    seed(srv, USER, "Charset", PLAIN, MIXED)
    with session(srv) as imap:
        imap.select("Charset")
        imap.literal = "grüß".encode()  # imaplib sends it as the last argument's literal
        typ, data = imap.search("UTF-8", "SUBJECT")
        assert (typ, data) == ("OK", [b"2"])  # the encoded-word subject, decoded


def i_esearch(srv: ServerThread) -> None:
    seed(srv, USER, "Esearch", note(1), note(2), note(3), note(4))
    with session(srv) as imap:
        imap.select("Esearch")
        imap.store("2", "+FLAGS", "(\\Seen)")
        typ, _ = imap._simple_command("SEARCH", "RETURN", "(MIN MAX ALL COUNT SAVE)", "UNSEEN")
        assert typ == "OK"
        [line] = untagged(imap, "ESEARCH")
        assert re.fullmatch(rb'\(TAG "\w+"\) MIN 1 MAX 4 ALL 1,3:4 COUNT 3', line), line
        typ, data = imap.fetch("$", "(UID)")  # RFC 5182: the saved result
        assert data == [b"1 (UID 1)", b"3 (UID 3)", b"4 (UID 4)"]
        typ, _ = imap._simple_command("UID", "SEARCH", "RETURN", "(COUNT)", "ALL")
        [line] = untagged(imap, "ESEARCH")
        assert line.endswith(b" UID COUNT 4")


def i_fetch(srv: ServerThread) -> None:
    seed(srv, USER, "Fetch", MIXED)
    with session(srv) as imap:
        imap.select("Fetch")
        typ, data = imap.fetch(
            "1", "(FLAGS INTERNALDATE RFC822.SIZE UID MODSEQ ENVELOPE BODY BODYSTRUCTURE)"
        )
        line = fetched(data)
        assert typ == "OK" and line.startswith(b"1 (")
        assert b"FLAGS ()" in line and b"UID 1" in line and b"MODSEQ (" in line
        assert numbers(line, "RFC822.SIZE") == len(MIXED)
        assert re.search(rb'INTERNALDATE "\d\d-\w{3}-\d{4} \d\d:\d\d:\d\d [+-]\d{4}"', line)
        assert b'ENVELOPE ("Mon, 7 Feb 1994 21:52:25 -0800" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="' in line
        assert b'(("Bob" NIL "bob" "example.test"))' in line
        assert b'BODYSTRUCTURE (("TEXT" "PLAIN" ("CHARSET" "utf-8")' in line
        assert b'"MIXED" ("BOUNDARY" "XX")' in line
        assert b'BODY (("TEXT" "PLAIN"' in line
        typ, data = imap.fetch("1", "FAST")  # a macro
        assert b"FLAGS ()" in data[0] and b"RFC822.SIZE" in data[0]
        with pytest.raises(imaplib.IMAP4.error, match="Invalid message sequence number"):
            imap.fetch("5", "(FLAGS)")  # RFC 9051 §6.4.5: no such message: BAD


def i_fetch_body(srv: ServerThread) -> None:
    seed(srv, USER, "Body", MIXED)
    with session(srv) as imap:
        imap.select("Body")

        def one(item: str, key: bytes) -> bytes:
            typ, data = imap.fetch("1", f"({item})")
            assert typ == "OK" and isinstance(data[0], tuple), data
            assert key in data[0][0], data[0][0]
            return bytes(data[0][1])

        assert one("BODY.PEEK[HEADER.FIELDS (SUBJECT)]", b"BODY[HEADER.FIELDS (SUBJECT)]") == (
            b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
        )
        assert one("BODY.PEEK[HEADER]", b"BODY[HEADER]") == MIXED_HEADER
        assert one("RFC822.HEADER", b"RFC822.HEADER") == MIXED_HEADER
        assert one("BODY.PEEK[1]", b"BODY[1]") == b"Hello there"
        assert one("BODY.PEEK[2.MIME]", b"BODY[2.MIME]").startswith(b"Content-Type: app")
        assert one("BODY.PEEK[]<0.10>", b"BODY[]<0>") == MIXED[:10]  # partial
        assert one("BODY.PEEK[TEXT]<2.4>", b"BODY[TEXT]<2>") == MIXED_TEXT[2:6]
        assert b"FLAGS" not in imap.fetch("1", "(FLAGS)")[1][0].split(b"(", 2)[2]
        assert one("RFC822.TEXT", b"RFC822.TEXT") == MIXED_TEXT  # sets \Seen
        assert b"\\Seen" in imap.fetch("1", "(FLAGS)")[1][0]
        assert one("BODY[]", b"BODY[]") == MIXED
        assert one("RFC822", b"RFC822") == MIXED


def i_fetch_binary(srv: ServerThread) -> None:
    seed(srv, USER, "Binary", MIXED)
    with session(srv) as imap:
        imap.select("Binary")
        typ, data = imap.fetch("1", "(BINARY.PEEK[2])")  # RFC 3516: decoded
        assert data[0][0].startswith(b"1 (BINARY[2] ") and data[0][1] == ATTACHMENT
        typ, data = imap.fetch("1", "(BINARY.SIZE[2] BINARY.SIZE[1])")
        assert b"BINARY.SIZE[2] 5" in data[0] and b"BINARY.SIZE[1] 11" in data[0]
        typ, data = imap.fetch("1", "(BINARY.PEEK[1]<0.5>)")
        assert data[0][1] == b"Hello"
        typ, data = imap.fetch("1", "(BINARY.PEEK[])")
        assert typ == "OK" and data[0][1] == MIXED
        assert b"FLAGS ()" in imap.fetch("1", "(FLAGS)")[1][0]  # PEEK left \Seen alone
        _, data = imap.fetch("1", "(BINARY[1])")
        assert b"\\Seen" in fetched(data)


def i_store(srv: ServerThread) -> None:
    seed(srv, USER, "Store", note(1), note(2))
    with session(srv) as imap:
        imap.select("Store")
        typ, data = imap.store("1:2", "+FLAGS", "(\\Flagged $Work)")
        assert typ == "OK" and len(data) == 2
        assert all(b"\\Flagged" in d and b"$Work" in d for d in data)
        typ, data = imap.store("1", "-FLAGS", "($Work)")
        assert b"$Work" not in data[0] and b"\\Flagged" in data[0]
        typ, data = imap.store("2", "FLAGS", "(\\Answered)")
        assert data == [b"2 (FLAGS (\\Answered))"]
        typ, data = imap.store("1", "+FLAGS.SILENT", "(\\Seen)")
        assert (typ, data) == ("OK", [None])  # .SILENT: no FETCH response
        assert b"\\Seen" in imap.fetch("1", "(FLAGS)")[1][0]


def i_store_unchangedsince(srv: ServerThread) -> None:
    seed(srv, USER, "Unchanged", note(1), note(2))
    with session(srv) as imap:
        imap.select("Unchanged")
        before = highestmodseq(srv, USER, "Unchanged")
        imap.store("2", "+FLAGS", "(\\Seen)")  # message 2 changes after `before`
        # RFC 7162 §3.1.3: the modifier goes before the item. Raw, because imaplib's
        # store() keeps only the FETCH responses, not the tagged [MODIFIED] code.
        typ, data = imap._simple_command(
            "STORE", "1:2", f"(UNCHANGEDSINCE {before})", "+FLAGS", "(\\Flagged)"
        )
        assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]")
        assert len(untagged(imap, "FETCH")) == 1  # message 1 only
        typ, data = imap.fetch("1:2", "(FLAGS)")
        assert b"\\Flagged" in data[0] and b"\\Flagged" not in data[1]


def i_copy(srv: ServerThread) -> None:
    seed(srv, USER, "CopySrc", note(1), note(2))
    with session(srv) as imap:
        imap.create("CopyDst")
        imap.select("CopySrc")
        typ, data = imap.copy("1:2", "CopyDst")
        uv = uidvalidity(srv, USER, "CopyDst")
        assert typ == "OK" and data[0].startswith(f"[COPYUID {uv} 1:2 1:2]".encode())
        assert imap.status("CopyDst", "(MESSAGES)")[1] == [b'"CopyDst" (MESSAGES 2)']
        typ, data = imap.copy("1", "Nowhere")
        assert typ == "NO" and b"[TRYCREATE]" in data[0]


def i_move(srv: ServerThread) -> None:
    seed(srv, USER, "MoveSrc", note(1), note(2))
    with session(srv) as imap:
        imap.create("MoveDst")
        imap.select("MoveSrc")
        typ, _ = imap._simple_command("MOVE", "1", "MoveDst")  # RFC 6851
        uv = uidvalidity(srv, USER, "MoveDst")
        assert typ == "OK"
        assert untagged(imap, "OK") == [f"[COPYUID {uv} 1 1] Moved".encode()]  # §4.3
        assert untagged(imap, "EXPUNGE") == [b"1"]
        assert imap.search(None, "ALL")[1] == [b"1"]
        assert imap.status("MoveDst", "(MESSAGES)")[1] == [b'"MoveDst" (MESSAGES 1)']


def i_uid(srv: ServerThread) -> None:
    seed(srv, USER, "Uids", note(1), note(2), note(3), note(4), flags=("\\Deleted",))
    with session(srv) as imap:
        imap.create("UidDst")
        imap.select("Uids")
        imap.uid("EXPUNGE", "1")  # now UIDs 2, 3, 4 are messages 1, 2, 3
        assert untagged(imap, "EXPUNGE") == [b"1"]
        assert imap.uid("SEARCH", "ALL")[1] == [b"2 3 4"]
        typ, data = imap.uid("FETCH", "3", "(FLAGS)")
        assert data == [b"2 (UID 3 FLAGS (\\Deleted))"]
        typ, data = imap.uid("STORE", "3", "-FLAGS", "(\\Deleted)")
        assert data == [b"2 (UID 3 FLAGS ())"]
        typ, data = imap._simple_command("UID", "COPY", "3:4", "UidDst")  # for COPYUID
        assert typ == "OK" and b" 3:4 1:2]" in data[0]
        typ, data = imap.uid("MOVE", "4", "UidDst")
        assert typ == "OK" and untagged(imap, "EXPUNGE") == [b"3"]
        assert imap.uid("FETCH", "99", "(FLAGS)") == ("OK", [None])  # none: not an error


def i_id(srv: ServerThread) -> None:
    imap = connect(srv)
    try:
        typ, _ = imap.xatom("ID", '("name" "imaplib")')  # RFC 2971, before login too
        assert typ == "OK"
        assert untagged(imap, "ID") == [b'("name" "pymta" "version" "0.1.0")']
    finally:
        imap.logout()


def i_condstore(srv: ServerThread) -> None:
    seed(srv, USER, "Condstore", note(1), note(2))
    with session(srv) as imap:
        typ, data = imap.status("Condstore", "(HIGHESTMODSEQ)")
        start = numbers(data[0], "HIGHESTMODSEQ")
        imap.select("Condstore")
        assert untagged(imap, "HIGHESTMODSEQ") == [str(start).encode()]
        imap.store("2", "+FLAGS", "(\\Answered)")
        typ, data = imap.fetch("1:*", f"(FLAGS) (CHANGEDSINCE {start})")  # RFC 7162 §3.1.4
        assert typ == "OK" and len(data) == 1 and data[0].startswith(b"2 (")
        changed = numbers(data[0], "MODSEQ")
        assert changed > start
        _, data = imap.search(None, "MODSEQ", str(start + 1))  # §3.1.5
        assert data == [f"2 (MODSEQ {changed})".encode()]


def i_qresync(srv: ServerThread) -> None:
    seed(srv, USER, "Qresync", note(1), note(2), note(3), flags=("\\Deleted",))
    uv = uidvalidity(srv, USER, "Qresync")
    known = highestmodseq(srv, USER, "Qresync")
    with session(srv) as imap:
        imap.enable("QRESYNC")
        imap.select("Qresync")
        typ, data = imap.uid("EXPUNGE", "2")
        assert untagged(imap, "VANISHED") == [b"2"]  # RFC 7162 §3.2.10: not EXPUNGE
        imap.uid("STORE", "3", "-FLAGS", "(\\Deleted)")
        imap.unselect()
        # RFC 7162 §3.2.5: imaplib sends the mailbox argument as given, parameters too.
        typ, data = imap.select(f"Qresync (QRESYNC ({uv} {known}))")
        assert typ == "OK"
        assert untagged(imap, "VANISHED") == [b"(EARLIER) 2"]
        changes = untagged(imap, "FETCH")
        assert len(changes) == 1 and b"UID 3" in changes[0]
        typ, data = imap.uid("FETCH", "1:*", f"(FLAGS) (CHANGEDSINCE {known} VANISHED)")
        assert untagged(imap, "VANISHED") == [b"(EARLIER) 2"]  # §3.2.6
        assert len(data) == 1 and b"UID 3" in data[0]


def i_getquotaroot(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as imap:
        typ, data = imap.getquotaroot("INBOX")
        assert typ == "OK"
        assert data == [[b'INBOX ""'], [f'"" (STORAGE 0 {QUOTA_BYTES // 1024})'.encode()]]
    with session(srv) as imap:  # a user without a quota: no quota root
        assert imap.getquotaroot("INBOX")[1] == [[b"INBOX"], [None]]


def i_getquota(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as imap:
        typ, data = imap.getquota('""')
        assert (typ, data) == ("OK", [f'"" (STORAGE 0 {QUOTA_BYTES // 1024})'.encode()])
        typ, data = imap.getquota('"other"')
        assert typ == "NO" and b"[NONEXISTENT]" in data[0]


def i_append_overquota(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as imap:
        typ, data = imap.append("INBOX", None, None, OVER_QUOTA)
        assert typ == "NO" and data[0].startswith(b"[OVERQUOTA]")  # RFC 9208 §4.3
        assert imap.status("INBOX", "(MESSAGES)")[1] == [b"INBOX (MESSAGES 0)"]


IMAPLIB: dict[str, Callable[[ServerThread], None]] = {
    "CAPABILITY": i_capability,
    "NOOP": i_noop,
    "LOGOUT": i_logout,
    "STARTTLS": i_starttls,
    "AUTHENTICATE PLAIN": i_authenticate_plain,
    "AUTHENTICATE LOGIN": i_authenticate_login,
    "LOGIN": i_login,
    "ENABLE": i_enable,
    "SELECT": i_select,
    "EXAMINE": i_examine,
    "CREATE": i_create,
    "DELETE": i_delete,
    "RENAME": i_rename,
    "RENAME INBOX": i_rename_inbox,
    "SUBSCRIBE": i_subscribe,
    "UNSUBSCRIBE": i_unsubscribe,
    "LIST": i_list,
    "LIST-EXTENDED": i_list_extended,
    "LIST-STATUS": i_list_status,
    "SPECIAL-USE": i_special_use,
    "LSUB": i_lsub,
    "NAMESPACE": i_namespace,
    "STATUS": i_status,
    "APPEND": i_append,
    "MULTIAPPEND": i_multiappend,
    "IDLE": i_idle,
    "CHECK": i_check,
    "CLOSE": i_close,
    "UNSELECT": i_unselect,
    "EXPUNGE": i_expunge,
    "UID EXPUNGE": i_uid_expunge,
    "SEARCH": i_search,
    "SEARCH CHARSET": i_search_charset,
    "ESEARCH": i_esearch,
    "FETCH": i_fetch,
    "FETCH BODY": i_fetch_body,
    "FETCH BINARY": i_fetch_binary,
    "STORE": i_store,
    "STORE UNCHANGEDSINCE": i_store_unchangedsince,
    "COPY": i_copy,
    "MOVE": i_move,
    "UID": i_uid,
    "ID": i_id,
    "CONDSTORE": i_condstore,
    "QRESYNC": i_qresync,
    "GETQUOTAROOT": i_getquotaroot,
    "GETQUOTA": i_getquota,
    "APPEND OVERQUOTA": i_append_overquota,
}


def test_imaplib_table_covers_every_row() -> None:
    check_coverage(IMAPLIB)


@pytest.mark.parametrize("row", ROWS)
def test_imaplib(srv: ServerThread, row: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # imaplib's table of commands has no IDLE (before 3.14) or ID: taught for raw use.
    monkeypatch.setitem(imaplib.Commands, "IDLE", ("SELECTED",))
    monkeypatch.setitem(imaplib.Commands, "ID", ("NONAUTH", "AUTH", "SELECTED"))
    IMAPLIB[row](srv)

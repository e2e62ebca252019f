"""Every command of issue 4 through imapclient: the rows of test_imap_commands.ROWS, each
written with imapclient's own calls; commands and arguments it has no call for go raw
through its `_raw_command` / `_raw_command_untagged`."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from imapclient import IMAPClient
from imapclient import imapclient as specials
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

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

USER = "imapclient"


def connect(srv: ServerThread) -> IMAPClient:
    return IMAPClient(
        "127.0.0.1", port=srv.port("imaps"), ssl=True, ssl_context=client_tls(), timeout=10
    )


@contextlib.contextmanager
def session(srv: ServerThread, user: str = USER) -> Iterator[IMAPClient]:
    c = connect(srv)
    try:
        c.login(user, PASSWORD)
        yield c
    finally:
        with contextlib.suppress(Exception):
            c.logout()


def raw_untagged(c: IMAPClient, name: str) -> list[Any]:
    """Untagged responses `name` the underlying connection collected (and forget them)."""
    return list(c._imap.untagged_responses.pop(name, []))


def names(folders: list[tuple[Any, bytes, str]]) -> dict[str, tuple[bytes, ...]]:
    return {name: tuple(flags) for flags, _, name in folders}


def c_capability(srv: ServerThread) -> None:
    c = connect(srv)
    try:
        caps = set(c.capabilities())
        assert {b"IMAP4REV1", b"IMAP4REV2", b"AUTH=PLAIN", b"SASL-IR"} <= caps
        c.login(USER, PASSWORD)
        caps = set(c.capabilities())  # imapclient keeps the CAPABILITY of the login OK
        assert {b"QRESYNC", b"MOVE", b"SPECIAL-USE", b"LIST-STATUS", b"UIDPLUS"} <= caps
        assert c.has_capability("STATUS=SIZE") and not c.has_capability("AUTH=PLAIN")
    finally:
        c.logout()


def c_noop(srv: ServerThread) -> None:
    seed(srv, USER, "Noop", note(1))
    with session(srv) as c:
        assert c.select_folder("Noop")[b"EXISTS"] == 1
        seed(srv, USER, "Noop", note(2))
        text, responses = c.noop()
        assert text == b"NOOP completed" and (2, b"EXISTS") in responses


def c_logout(srv: ServerThread) -> None:
    c = connect(srv)
    c.login(USER, PASSWORD)
    assert c.logout() == b"Logging out"
    with pytest.raises(IMAPClientAbortError):  # the server closed the connection
        c.noop()


def c_starttls(srv: ServerThread) -> None:
    c = IMAPClient("127.0.0.1", port=srv.port("imap"), ssl=False, timeout=10)
    try:
        assert c.has_capability("STARTTLS") and c.has_capability("LOGINDISABLED")
        c.starttls(client_tls())
        assert not c.has_capability("STARTTLS") and c.has_capability("AUTH=PLAIN")
        c.login(USER, PASSWORD)
        assert c.select_folder("INBOX")[b"READ-WRITE"]
    finally:
        c.logout()


def c_authenticate_plain(srv: ServerThread) -> None:
    c = connect(srv)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            c.plain_login(USER, "wrong")
        with pytest.raises(LoginError, match="AUTHORIZATIONFAILED"):
            c.plain_login(USER, PASSWORD, authorization_identity="bob")
        assert c.plain_login(USER, PASSWORD).startswith(b"[CAPABILITY IMAP4rev1")
        assert c.list_folders(pattern="INBOX")[0][2] == "INBOX"
    finally:
        c.logout()


def c_authenticate_login(srv: ServerThread) -> None:
    answers = {b"Username:": USER.encode(), b"Password:": PASSWORD.encode()}
    c = connect(srv)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            c.sasl_login("LOGIN", lambda ch: {**answers, b"Password:": b"wrong"}[ch])
        c.sasl_login("LOGIN", lambda challenge: answers[challenge])
        assert c.select_folder("INBOX")[b"READ-WRITE"]
    finally:
        c.logout()


def c_login(srv: ServerThread) -> None:
    c = connect(srv)
    try:
        with pytest.raises(LoginError, match="AUTHENTICATIONFAILED"):
            c.login(USER, "wrong")
        assert c.login(f"{USER}@{DOMAIN}", PASSWORD).startswith(b"[CAPABILITY")
    finally:
        c.logout()


def c_enable(srv: ServerThread) -> None:
    seed(srv, USER, "Enable", note(1))
    with session(srv) as c:
        assert c.enable("CONDSTORE", "X-UNKNOWN") == [b"CONDSTORE"]
        assert c.enable("CONDSTORE") == []  # RFC 5161 §3.1: already on
        info = c.select_folder("Enable")
        [uid] = c.search("ALL")
        assert b"MODSEQ" in c.fetch([uid], ["FLAGS"])[uid]  # RFC 7162 §3.1
        assert info[b"HIGHESTMODSEQ"] == highestmodseq(srv, USER, "Enable")


def c_select(srv: ServerThread) -> None:
    seed(srv, USER, "Select", note(1))
    seed(srv, USER, "Select", note(2), flags=("\\Seen",))
    with session(srv) as c:
        info = c.select_folder("Select")
        assert info[b"EXISTS"] == 2 and info[b"UIDNEXT"] == 3 and info[b"READ-WRITE"]
        assert info[b"UIDVALIDITY"] == uidvalidity(srv, USER, "Select")
        assert b"\\Seen" in info[b"FLAGS"] and b"\\*" in info[b"PERMANENTFLAGS"]
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            c.select_folder("Nonexistent")


def c_examine(srv: ServerThread) -> None:
    seed(srv, USER, "Examine", note(1))
    with session(srv) as c:
        info = c.select_folder("Examine", readonly=True)
        assert info[b"READ-ONLY"] and info[b"EXISTS"] == 1
        [uid] = c.search("ALL")
        assert c.fetch([uid], ["BODY[TEXT]", "FLAGS"])[uid][b"FLAGS"] == ()  # no \Seen
        with pytest.raises(IMAPClientError, match="READ-ONLY"):
            c.add_flags([uid], [b"\\Flagged"])


def c_create(srv: ServerThread) -> None:
    with session(srv) as c:
        assert c.create_folder("Projects.2026") == b"CREATE completed"
        assert names(c.list_folders(pattern="Projects*")) == {
            "Projects": (b"\\HasChildren",),
            "Projects.2026": (b"\\HasNoChildren",),
        }
        with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
            c.create_folder("Projects")
        # RFC 6154 §3 CREATE-SPECIAL-USE: create_folder() has no USE argument.
        c._raw_command_untagged(b"CREATE", [b"Receipts", b"(USE (\\Archive))"], uid=False)
        assert names(c.list_folders(pattern="Receipts")) == {
            "Receipts": (b"\\HasNoChildren", b"\\Archive")
        }


def c_delete(srv: ServerThread) -> None:
    seed(srv, USER, "Doomed", note(1))
    with session(srv) as c:
        assert c.delete_folder("Doomed") == b"DELETE completed"
        assert not c.folder_exists("Doomed")
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            c.delete_folder("Doomed")


def c_rename(srv: ServerThread) -> None:
    seed(srv, USER, "Old", note(1))
    seed(srv, USER, "Old.Sub", note(2), note(3))
    with session(srv) as c:
        c.rename_folder("Old", "New")
        assert set(names(c.list_folders(pattern="New*"))) == {"New", "New.Sub"}
        assert c.list_folders(pattern="Old*") == []
        assert c.folder_status("New.Sub", ["MESSAGES"])[b"MESSAGES"] == 2


def c_rename_inbox(srv: ServerThread) -> None:
    seed(srv, USER, "INBOX", note(1), note(2))
    with session(srv) as c:
        before = c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"]
        assert before >= 2
        c.rename_folder("INBOX", "Inbox-2026")  # RFC 9051 §6.3.6
        assert c.folder_status("Inbox-2026", ["MESSAGES"])[b"MESSAGES"] == before
        assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0


def c_subscribe(srv: ServerThread) -> None:
    with session(srv) as c:
        c.create_folder("Newsletters")
        c.unsubscribe_folder("Newsletters")
        assert c.list_sub_folders(pattern="Newsletters") == []
        assert c.subscribe_folder("Newsletters") == [b"SUBSCRIBE completed"]
        assert [f[2] for f in c.list_sub_folders(pattern="Newsletters")] == ["Newsletters"]


def c_unsubscribe(srv: ServerThread) -> None:
    with session(srv) as c:
        c.create_folder("Digest")
        c.subscribe_folder("Digest")
        assert c.unsubscribe_folder("Digest") == [b"UNSUBSCRIBE completed"]
        assert c.list_sub_folders(pattern="Digest") == []
        assert c.folder_exists("Digest")


def c_list(srv: ServerThread) -> None:
    with session(srv) as c:
        c.create_folder("Family.Kids")
        folders = names(c.list_folders())
        assert folders["INBOX"] == (b"\\HasNoChildren",)
        assert folders["Sent"] == (b"\\HasNoChildren", b"\\Sent")  # RFC 6154 §2
        assert folders["Family"] == (b"\\HasChildren",)  # RFC 3348
        assert folders["Family.Kids"] == (b"\\HasNoChildren",)
        assert "Family.Kids" not in names(c.list_folders(pattern="%"))
        assert list(names(c.list_folders("Family.", "*"))) == ["Family.Kids"]


def c_list_extended(srv: ServerThread) -> None:
    with session(srv) as c:
        c.create_folder("Clubs.Chess")
        c.subscribe_folder("Clubs.Chess")
        c.unsubscribe_folder("Clubs")
        lines = c._raw_command_untagged(
            b"LIST",
            [b"(SUBSCRIBED RECURSIVEMATCH)", b'""', b'"Clubs*"', b"RETURN", b"(CHILDREN)"],
            uid=False,
        )
        assert lines == [
            b'() "." "Clubs" ("CHILDINFO" ("SUBSCRIBED"))',  # RFC 5258 §3.5
            b'(\\HasNoChildren \\Subscribed) "." "Clubs.Chess"',
        ]


def c_list_status(srv: ServerThread) -> None:
    seed(srv, USER, "Listed", note(1), note(2))
    with session(srv) as c:
        lines = c._raw_command_untagged(
            b"LIST", [b'""', b"Listed", b"RETURN", b"(STATUS (MESSAGES UNSEEN SIZE))"], uid=False
        )
        assert lines == [b'(\\HasNoChildren) "." "Listed"']
        size = len(note(1)) + len(note(2))
        assert raw_untagged(c, "STATUS") == [
            f'"Listed" (MESSAGES 2 UNSEEN 2 SIZE {size})'.encode()  # RFC 5819 §2
        ]


def c_special_use(srv: ServerThread) -> None:
    with session(srv) as c:
        # imapclient's own look-up reads the attributes (RFC 6154 §2).
        assert c.find_special_folder(specials.SENT) == "Sent"
        assert c.find_special_folder(specials.TRASH) == "Trash"
        assert c.find_special_folder(specials.DRAFTS) == "Drafts"
        assert c.find_special_folder(specials.JUNK) == "Junk"
        assert c.find_special_folder(specials.ARCHIVE) == "Archive"
        lines = c._raw_command_untagged(b"LIST", [b"(SPECIAL-USE)", b'""', b"*"], uid=False)
        listed = {line.rsplit(b" ", 1)[1] for line in lines}
        assert {b'"Sent"', b'"Trash"', b'"Drafts"', b'"Junk"', b'"Archive"'} <= listed
        assert b"INBOX" not in listed  # only folders with a special use (RFC 6154 §3)


def c_lsub(srv: ServerThread) -> None:
    with session(srv) as c:
        c.create_folder("Feeds.Tech")
        c.subscribe_folder("Feeds.Tech")
        assert "Feeds.Tech" in [f[2] for f in c.list_sub_folders()]
        assert "INBOX" in [f[2] for f in c.list_sub_folders()]


def c_namespace(srv: ServerThread) -> None:
    with session(srv) as c:
        ns = c.namespace()
        assert (ns.personal, ns.other, ns.shared) == ((("", "."),), None, None)


def c_status(srv: ServerThread) -> None:
    seed(srv, USER, "Status", note(1))
    seed(srv, USER, "Status", note(2), flags=("\\Seen", "\\Deleted"))
    with session(srv) as c:
        status = c.folder_status(
            "Status", ["MESSAGES", "UNSEEN", "UIDNEXT", "UIDVALIDITY", "SIZE", "DELETED"]
        )
        assert status == {
            b"MESSAGES": 2,
            b"UNSEEN": 1,
            b"UIDNEXT": 3,
            b"UIDVALIDITY": uidvalidity(srv, USER, "Status"),
            b"SIZE": len(note(1)) + len(note(2)),  # RFC 8438
            b"DELETED": 1,
        }


def c_append(srv: ServerThread) -> None:
    when = datetime.datetime(2021, 6, 1, 12, 30, tzinfo=datetime.UTC)
    with session(srv) as c:
        c.create_folder("Append")
        reply = c.append("Append", PLAIN, flags=[b"\\Seen", b"$Important"], msg_time=when)
        uv = uidvalidity(srv, USER, "Append")
        assert reply.startswith(f"[APPENDUID {uv} 1]".encode())
        c.select_folder("Append")
        data = c.fetch([1], ["FLAGS", "INTERNALDATE", "RFC822.SIZE"])[1]
        assert set(data[b"FLAGS"]) == {b"\\Seen", b"$Important"}
        assert data[b"INTERNALDATE"].astimezone(datetime.UTC) == when
        assert data[b"RFC822.SIZE"] == len(PLAIN)
        with pytest.raises(IMAPClientError, match="TRYCREATE"):
            c.append("Nowhere", PLAIN)


def c_multiappend(srv: ServerThread) -> None:
    when = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    with session(srv) as c:
        c.create_folder("Multi")
        typ, data = c.multiappend(
            "Multi", [note(1), {"msg": note(2), "flags": [b"\\Seen"], "date": when}]
        )
        uv = uidvalidity(srv, USER, "Multi")
        assert typ == "OK" and data[0].startswith(f"[APPENDUID {uv} 1:2]".encode())  # RFC 3502
        c.select_folder("Multi")
        data = c.fetch([1, 2], ["FLAGS", "INTERNALDATE"])
        assert data[1][b"FLAGS"] == () and data[2][b"FLAGS"] == (b"\\Seen",)
        assert data[2][b"INTERNALDATE"].astimezone(datetime.UTC) == when


def c_idle(srv: ServerThread) -> None:
    seed(srv, USER, "Idle", note(1))
    with session(srv) as c:
        c.select_folder("Idle")
        c.idle()
        seed(srv, USER, "Idle", note(2))  # another writer; RFC 2177
        responses = c.idle_check(timeout=10)
        text, _ = c.idle_done()
        assert (2, b"EXISTS") in responses and text == b"IDLE terminated"


def c_check(srv: ServerThread) -> None:
    seed(srv, USER, "Check", note(1))
    with session(srv) as c:
        c.select_folder("Check")
        # No check() in imapclient: the raw command.
        assert c._raw_command_untagged(b"CHECK", [], uid=False) == [None]


def c_close(srv: ServerThread) -> None:
    seed(srv, USER, "Close", note(1))
    seed(srv, USER, "Close", note(2), flags=("\\Deleted",))
    with session(srv) as c:
        c.select_folder("Close")
        assert c.close_folder() == b"CLOSE completed"
        assert c.folder_status("Close", ["MESSAGES"])[b"MESSAGES"] == 1


def c_unselect(srv: ServerThread) -> None:
    seed(srv, USER, "Unselect", note(1), flags=("\\Deleted",))
    with session(srv) as c:
        c.select_folder("Unselect")
        assert c.unselect_folder() == b"UNSELECT completed"
        assert c.folder_status("Unselect", ["MESSAGES"])[b"MESSAGES"] == 1


def c_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "Expunge", note(1), note(2), note(3))
    with session(srv) as c:
        c.select_folder("Expunge")
        c.add_flags([1, 3], [b"\\Deleted"], silent=True)
        text, responses = c.expunge()
        assert text == b"EXPUNGE completed"
        assert sorted(r[1] for r in responses) == [b"EXPUNGE", b"EXPUNGE"]
        assert c.search("ALL") == [2]


def c_uid_expunge(srv: ServerThread) -> None:
    seed(srv, USER, "UidExpunge", note(1), note(2), note(3), flags=("\\Deleted",))
    with session(srv) as c:
        c.select_folder("UidExpunge")
        c.uid_expunge([2])  # RFC 4315 §2.1
        assert c.search("ALL") == [1, 3]


def c_search(srv: ServerThread) -> None:
    seed(srv, USER, "Search", PLAIN, MIXED)
    seed(srv, USER, "Search", note(3), flags=("\\Seen", "\\Flagged"))
    with session(srv) as c:
        c.select_folder("Search")
        assert c.search("ALL") == [1, 2, 3]
        assert c.search(["FROM", "carol"]) == [1]
        assert c.search(["SUBJECT", "plain one"]) == [1]
        assert c.search("UNSEEN") == [1, 2] and c.search("FLAGGED") == [3]
        assert c.search(["NOT", "SEEN", "LARGER", 200]) == [2]
        assert c.search(["OR", "FROM", "bob", "SUBJECT", "note"]) == [2, 3]
        assert c.search(["HEADER", "Message-ID", "plain@example.test"]) == [1]
        assert c.search(["BODY", "there"]) == [2]
        assert c.search(["SENTBEFORE", datetime.date(2000, 1, 1)]) == [2]
        assert c.search(["SMALLER", 100]) == [3]
        with pytest.raises(IMAPClientError, match="BADCHARSET"):
            c.search("ALL", charset="KOI8-R")


def c_search_charset(srv: ServerThread) -> None:
    seed(srv, USER, "Charset", PLAIN, MIXED)
    with session(srv) as c:
        c.select_folder("Charset")
        assert c.search(["SUBJECT", "grüß"], charset="UTF-8") == [2]  # as a literal


def c_esearch(srv: ServerThread) -> None:
    seed(srv, USER, "Esearch", note(1), note(2), note(3), note(4))
    with session(srv) as c:
        c.select_folder("Esearch")
        c.add_flags([2], [b"\\Seen"])
        [line] = c._raw_command_untagged(
            b"SEARCH",
            [b"RETURN", b"(MIN MAX ALL COUNT SAVE)", b"UNSEEN"],
            response_name="ESEARCH",
            uid=False,
        )
        assert line.endswith(b") MIN 1 MAX 4 ALL 1,3:4 COUNT 3")  # RFC 4731
        # RFC 5182: the saved result; fetch() takes message numbers only, so raw.
        lines = c._raw_command_untagged(b"FETCH", [b"$", b"(UID)"], uid=False)
        assert lines == [b"1 (UID 1)", b"3 (UID 3)", b"4 (UID 4)"]


def c_fetch(srv: ServerThread) -> None:
    seed(srv, USER, "Fetch", MIXED)
    with session(srv) as c:
        c.select_folder("Fetch")
        items = ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE", "BODYSTRUCTURE", "MODSEQ"]
        data = c.fetch([1], [*items, "BODY"])[1]
        assert data[b"FLAGS"] == () and data[b"RFC822.SIZE"] == len(MIXED)
        assert isinstance(data[b"INTERNALDATE"], datetime.datetime)
        assert data[b"MODSEQ"] == (highestmodseq(srv, USER, "Fetch"),)
        env = data[b"ENVELOPE"]
        assert env.subject == b"=?UTF-8?Q?Gr=C3=BC=C3=9Fe?="
        assert env.from_[0].mailbox == b"bob" and env.from_[0].host == b"example.test"
        sent = datetime.datetime(1994, 2, 8, 5, 52, 25, tzinfo=datetime.UTC)
        assert env.date == sent.astimezone().replace(tzinfo=None)  # imapclient: local time
        body = data[b"BODYSTRUCTURE"]
        assert body.is_multipart and body[1] == b"MIXED"
        text, attachment = body[0]
        assert text[:2] == (b"TEXT", b"PLAIN") and attachment[5] == b"BASE64"
        assert data[b"BODY"][0][0][:2] == (b"TEXT", b"PLAIN")


def c_fetch_body(srv: ServerThread) -> None:
    seed(srv, USER, "Body", MIXED)
    with session(srv) as c:
        c.select_folder("Body")
        data = c.fetch(
            [1],
            [
                "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                "BODY.PEEK[HEADER]",
                "RFC822.HEADER",
                "BODY.PEEK[1]",
                "BODY.PEEK[2.MIME]",
                "BODY.PEEK[]<0.10>",
            ],
        )[1]
        assert data[b"BODY[HEADER.FIELDS (SUBJECT)]"] == (
            b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\n\r\n"
        )
        assert data[b"BODY[HEADER]"] == MIXED_HEADER == data[b"RFC822.HEADER"]
        assert data[b"BODY[1]"] == b"Hello there"
        assert data[b"BODY[2.MIME]"].startswith(b"Content-Type: application/octet-stream")
        assert data[b"BODY[]<0>"] == MIXED[:10]
        assert c.get_flags([1])[1] == ()  # PEEK: no \Seen
        data = c.fetch([1], ["RFC822.TEXT", "RFC822"])[1]
        assert data[b"RFC822.TEXT"] == MIXED_TEXT and data[b"RFC822"] == MIXED
        assert c.get_flags([1])[1] == (b"\\Seen",)


def c_fetch_binary(srv: ServerThread) -> None:
    seed(srv, USER, "Binary", MIXED)
    with session(srv) as c:
        c.select_folder("Binary")
        data = c.fetch([1], ["BINARY.SIZE[2]", "BINARY.PEEK[1]<0.5>"])[1]
        assert data[b"BINARY.SIZE[2]"] == len(ATTACHMENT)
        assert data[b"BINARY[1]<0>"] == b"Hello"
        assert c.fetch([1], ["BINARY.PEEK[]"])[1][b"BINARY[]"] == MIXED
        # The attachment decodes to NULs, so it comes as a literal8 (RFC 3516 §4.2, "~{5}"),
        # which imapclient's parser does not read: through its imaplib connection.
        typ, data = c._imap.uid("FETCH", "1", "(BINARY.PEEK[2])")
        assert typ == "OK" and data[0][0].endswith(b"BINARY[2] ~{5}")
        assert data[0][1] == ATTACHMENT
        assert c.get_flags([1])[1] == ()


def c_store(srv: ServerThread) -> None:
    seed(srv, USER, "Store", note(1), note(2))
    with session(srv) as c:
        c.select_folder("Store")
        flags = c.add_flags([1, 2], [b"\\Flagged", b"$Work"])
        assert set(flags[1]) == {b"\\Flagged", b"$Work"} == set(flags[2])
        assert c.remove_flags([1], [b"$Work"]) == {1: (b"\\Flagged",)}
        assert c.set_flags([2], [b"\\Answered"]) == {2: (b"\\Answered",)}
        assert c.add_flags([1], [b"\\Seen"], silent=True) is None  # .SILENT
        assert set(c.get_flags([1])[1]) == {b"\\Flagged", b"\\Seen"}


def c_store_unchangedsince(srv: ServerThread) -> None:
    seed(srv, USER, "Unchanged", note(1), note(2))
    with session(srv) as c:
        c.select_folder("Unchanged")
        before = highestmodseq(srv, USER, "Unchanged")
        c.add_flags([2], [b"\\Seen"])
        # RFC 7162 §3.1.3: no STORE modifier in imapclient; raw, keeping the tagged reply.
        typ, data = c._raw_command(
            b"STORE", [b"1:2", b"(UNCHANGEDSINCE %d)" % before, b"+FLAGS", b"(\\Flagged)"]
        )
        assert typ == "OK" and data[0].startswith(b"[MODIFIED 2]")
        flags = c.get_flags([1, 2])
        assert b"\\Flagged" in flags[1] and b"\\Flagged" not in flags[2]


def c_copy(srv: ServerThread) -> None:
    seed(srv, USER, "CopySrc", note(1), note(2))
    with session(srv) as c:
        c.create_folder("CopyDst")
        c.select_folder("CopySrc")
        c.copy([1], "CopyDst")
        # copy() does not return the tagged text (imaplib's uid() drops it): raw for COPYUID.
        typ, data = c._raw_command(b"COPY", [b"2", b"CopyDst"])
        uv = uidvalidity(srv, USER, "CopyDst")
        assert typ == "OK" and data[0].startswith(f"[COPYUID {uv} 2 2]".encode())
        assert c.folder_status("CopyDst", ["MESSAGES"])[b"MESSAGES"] == 2
        with pytest.raises(IMAPClientError, match="TRYCREATE"):
            c.copy([1], "Nowhere")


def c_move(srv: ServerThread) -> None:
    seed(srv, USER, "MoveSrc", note(1), note(2))
    with session(srv) as c:
        c.create_folder("MoveDst")
        c.select_folder("MoveSrc")
        c.move([1], "MoveDst")  # RFC 6851
        assert c.search("ALL") == [2]
        assert c.folder_status("MoveDst", ["MESSAGES"])[b"MESSAGES"] == 1


def c_uid(srv: ServerThread) -> None:
    seed(srv, USER, "Uids", note(1), note(2), note(3), note(4), flags=("\\Deleted",))
    with session(srv) as c:
        c.create_folder("UidDst")
        c.select_folder("Uids")
        c.uid_expunge([1])  # now UIDs 2, 3, 4 are messages 1, 2, 3
        # imapclient speaks UID FETCH/SEARCH/STORE/COPY/MOVE by default (use_uid)...
        assert c.search("ALL") == [2, 3, 4]
        assert c.fetch([3], ["FLAGS"]) == {3: {b"FLAGS": (b"\\Deleted",), b"SEQ": 2}}
        assert c.remove_flags([3], [b"\\Deleted"]) == {3: ()}
        c.copy([3, 4], "UidDst")
        c.move([4], "UidDst")
        assert c.folder_status("UidDst", ["MESSAGES"])[b"MESSAGES"] == 3
        # ... and the sequence-number forms when told so.
        c.use_uid = False
        assert c.search("ALL") == [1, 2]
        assert c.fetch([2], ["UID"]) == {2: {b"UID": 3, b"SEQ": 2}}


def c_id(srv: ServerThread) -> None:
    c = connect(srv)
    try:
        [server_id] = c.id_({"name": "imapclient"})  # RFC 2971, before login
        assert dict(zip(server_id[::2], server_id[1::2], strict=True))[b"name"] == b"pymta"
    finally:
        c.logout()


def c_condstore(srv: ServerThread) -> None:
    seed(srv, USER, "Condstore", note(1), note(2))
    with session(srv) as c:
        start = c.folder_status("Condstore", ["HIGHESTMODSEQ"])[b"HIGHESTMODSEQ"]
        assert c.select_folder("Condstore")[b"HIGHESTMODSEQ"] == start
        c.add_flags([2], [b"\\Answered"])
        changed = c.fetch([1, 2], ["FLAGS"], modifiers=[f"CHANGEDSINCE {start}"])
        assert list(changed) == [2] and changed[2][b"MODSEQ"][0] > start  # RFC 7162 §3.1.4
        assert c.search(["MODSEQ", start + 1]) == [2]  # §3.1.5


def c_qresync(srv: ServerThread) -> None:
    seed(srv, USER, "Qresync", note(1), note(2), note(3), flags=("\\Deleted",))
    uv = uidvalidity(srv, USER, "Qresync")
    known = highestmodseq(srv, USER, "Qresync")
    with session(srv) as c:
        assert c.enable("QRESYNC") == [b"QRESYNC"]
        c.select_folder("Qresync")
        c.uid_expunge([2])
        assert raw_untagged(c, "VANISHED") == [b"2"]  # RFC 7162 §3.2.10
        c.remove_flags([3], [b"\\Deleted"])
        changed = c.fetch([1, 2, 3], ["FLAGS"], modifiers=[f"CHANGEDSINCE {known}", "VANISHED"])
        assert list(changed) == [3]
        assert raw_untagged(c, "VANISHED") == [b"(EARLIER) 2"]  # §3.2.6
        c.unselect_folder()
        # select_folder() takes no QRESYNC parameters: raw (RFC 7162 §3.2.5).
        typ, _ = c._raw_command(
            b"SELECT", [b"Qresync", b"(QRESYNC (%d %d))" % (uv, known)], uid=False
        )
        assert typ == "OK"
        assert raw_untagged(c, "VANISHED") == [b"(EARLIER) 2"]
        [change] = raw_untagged(c, "FETCH")
        assert b"UID 3" in change


def c_getquotaroot(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as c:
        roots, quotas = c.get_quota_root("INBOX")
        assert (roots.mailbox, roots.quota_roots) == ("INBOX", [""])
        assert [(q.quota_root, q.resource, q.usage, q.limit) for q in quotas] == [
            ("", "STORAGE", 0, QUOTA_BYTES // 1024)
        ]


def c_getquota(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as c:
        [quota] = c._get_quota("")  # RFC 9208 §4.1.1 GETQUOTA
        assert (quota.resource, quota.usage, quota.limit) == ("STORAGE", 0, QUOTA_BYTES // 1024)
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            c._get_quota("other")


def c_append_overquota(srv: ServerThread) -> None:
    with session(srv, QUOTA_USER) as c:
        with pytest.raises(IMAPClientError, match="OVERQUOTA"):
            c.append("INBOX", OVER_QUOTA)  # RFC 9208 §4.3
        assert c.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0


IMAPCLIENT: dict[str, Callable[[ServerThread], None]] = {
    "CAPABILITY": c_capability,
    "NOOP": c_noop,
    "LOGOUT": c_logout,
    "STARTTLS": c_starttls,
    "AUTHENTICATE PLAIN": c_authenticate_plain,
    "AUTHENTICATE LOGIN": c_authenticate_login,
    "LOGIN": c_login,
    "ENABLE": c_enable,
    "SELECT": c_select,
    "EXAMINE": c_examine,
    "CREATE": c_create,
    "DELETE": c_delete,
    "RENAME": c_rename,
    "RENAME INBOX": c_rename_inbox,
    "SUBSCRIBE": c_subscribe,
    "UNSUBSCRIBE": c_unsubscribe,
    "LIST": c_list,
    "LIST-EXTENDED": c_list_extended,
    "LIST-STATUS": c_list_status,
    "SPECIAL-USE": c_special_use,
    "LSUB": c_lsub,
    "NAMESPACE": c_namespace,
    "STATUS": c_status,
    "APPEND": c_append,
    "MULTIAPPEND": c_multiappend,
    "IDLE": c_idle,
    "CHECK": c_check,
    "CLOSE": c_close,
    "UNSELECT": c_unselect,
    "EXPUNGE": c_expunge,
    "UID EXPUNGE": c_uid_expunge,
    "SEARCH": c_search,
    "SEARCH CHARSET": c_search_charset,
    "ESEARCH": c_esearch,
    "FETCH": c_fetch,
    "FETCH BODY": c_fetch_body,
    "FETCH BINARY": c_fetch_binary,
    "STORE": c_store,
    "STORE UNCHANGEDSINCE": c_store_unchangedsince,
    "COPY": c_copy,
    "MOVE": c_move,
    "UID": c_uid,
    "ID": c_id,
    "CONDSTORE": c_condstore,
    "QRESYNC": c_qresync,
    "GETQUOTAROOT": c_getquotaroot,
    "GETQUOTA": c_getquota,
    "APPEND OVERQUOTA": c_append_overquota,
}


def test_imapclient_table_covers_every_row() -> None:
    check_coverage(IMAPCLIENT)


@pytest.mark.parametrize("row", ROWS)
def test_imapclient(srv: ServerThread, row: str) -> None:
    IMAPCLIENT[row](srv)

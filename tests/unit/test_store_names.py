"""Folder names, mailbox refs and Maildir file names: validation, encoding, parsing."""

from __future__ import annotations

import pytest

from pymta.store import InvalidFlag, InvalidName, MailboxRef, Store, split_flags
from pymta.store.flags import imap_flags
from pymta.store.maildir import MaildirName, UniqueNames
from pymta.store.names import (
    canonical_folder,
    folder_dirname,
    folder_from_dirname,
    mutf7_decode,
    mutf7_encode,
)

REF = MailboxRef("user", "alice", "example.org")

# -- modified UTF-7 (RFC 3501 §5.1.3) -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("a&b", "a&-b"),
        # The example of RFC 3501 §5.1.3.
        ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
        ("Gelöschte Elemente", "Gel&APY-schte Elemente"),
        ("😀", "&2D3eAA-"),
    ],
)
def test_mutf7_round_trip(text: str, encoded: str) -> None:
    assert mutf7_encode(text) == encoded
    assert mutf7_decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&Jjo!",  # unterminated
        "&AGE-",  # "a" shifted: printable ASCII must stand for itself
        "&U,BTFw",  # no "-"
        "a\x01b",  # control character
        "&2D0-",  # lone surrogate
        "é",  # raw non-ASCII
    ],
)
def test_mutf7_refuses_non_canonical_forms(bad: str) -> None:
    with pytest.raises(InvalidName):
        mutf7_decode(bad)


# -- folder names --------------------------------------------------------------------------


def test_inbox_is_case_insensitive_also_as_a_parent() -> None:
    assert canonical_folder("inbox") == "INBOX"
    assert canonical_folder("InBox.Sub") == "INBOX.Sub"
    assert canonical_folder("Lists.Work") == "Lists.Work"


def test_folder_directory_is_maildirplusplus_with_modified_utf7() -> None:
    assert folder_dirname("Lists.Work") == ".Lists.Work"
    assert folder_dirname("Entwürfe") == ".Entw&APw-rfe"
    assert folder_from_dirname(".Entw&APw-rfe") == "Entwürfe"


@pytest.mark.parametrize(
    "dirname", [".", "..", "cur", "..pymta-trash-00", ".INBOX", ".inbox.x", ".a..b", ".&AGE-"]
)
def test_directories_that_are_not_folders(dirname: str) -> None:
    assert folder_from_dirname(dirname) is None


TRAVERSAL_FOLDERS = [
    "../x",
    "../../etc/passwd",
    "a/../../b",
    "..",
    ".",
    ".hidden",
    "a..b",
    "a.",
    "a/b",
    "x\0y",
    "INBOX/..",
    "\n",
    "",
    "a" * 300,
]


@pytest.mark.parametrize("name", TRAVERSAL_FOLDERS)
def test_traversal_folder_names_refused(name: str) -> None:
    with pytest.raises(InvalidName):
        canonical_folder(name)


@pytest.mark.parametrize("name", TRAVERSAL_FOLDERS)
async def test_traversal_folder_names_refused_by_the_store(tmp_path, name: str) -> None:
    store = Store(tmp_path / "data", hostname="test.example")
    await store.usage(REF)  # the root exists
    before = sorted(tmp_path.rglob("*"))
    try:
        with pytest.raises(InvalidName):
            await store.create_folder(REF, name)
        with pytest.raises(InvalidName):
            await store.deliver(REF, b"Subject: x\r\n\r\n", folder=name)
        with pytest.raises(InvalidName):
            await store.rename_folder(REF, "Sent", name)
    finally:
        await store.close()
    # Refused before touching the disk: not one entry appeared, inside the root or out.
    after = [p for p in sorted(tmp_path.rglob("*")) if "pymta-index.sqlite" not in p.name]
    assert after == [p for p in before if "pymta-index.sqlite" not in p.name]


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("../bob", "example.org"),
        ("bob", ".."),
        ("bob", "example.org/../.."),
        ("a/b", "example.org"),
        (".", "example.org"),
        ("", "example.org"),
        ("bob\0", "example.org"),
        ("bob", None),
    ],
)
def test_traversal_mailbox_refs_refused(name: str, domain: str | None) -> None:
    with pytest.raises(InvalidName):
        MailboxRef("user", name, domain)


def test_traversal_public_mailbox_refused() -> None:
    with pytest.raises(InvalidName):
        MailboxRef("public", "..")
    with pytest.raises(InvalidName):
        MailboxRef("public", "shared", "example.org")


def test_maildir_paths(tmp_path) -> None:
    store = Store(tmp_path, hostname="h")
    assert store.maildir_path(REF) == tmp_path / "mail/example.org/alice/Maildir"
    assert store.maildir_path(MailboxRef("public", "Shared")) == tmp_path / "public/Shared/Maildir"


# -- Maildir file names --------------------------------------------------------------------


def test_maildir_name_parse_dovecot_style() -> None:
    name = MaildirName.parse("1700000000.M1P2.host,S=1234,W=1260,U=7:2,RSa")
    assert name.base == "1700000000.M1P2.host,S=1234,W=1260,U=7"
    assert (name.letters, name.extra, name.uid, name.has_info) == ("RS", "a", 7, True)
    # Letters we do not interpret (Dovecot keyword letters) survive a flag change.
    assert name.filename("FS") == "1700000000.M1P2.host,S=1234,W=1260,U=7:2,FSa"


def test_maildir_name_new_style_and_uid_replacement() -> None:
    name = MaildirName.parse("1700000000.M1P2.host,S=10,U=3")
    assert (name.letters, name.uid, name.has_info) == ("", 3, False)
    assert name.filename() == "1700000000.M1P2.host,S=10,U=3"
    renamed = name.with_uid(9)
    assert renamed.filename() == "1700000000.M1P2.host,S=10,U=9"
    assert MaildirName.parse("plain-name").with_uid(4).filename() == "plain-name,U=4"


def test_unique_names_escape_the_host() -> None:
    unique = UniqueNames("mx/1:a,b").next()
    assert unique.endswith(".mx\\0571\\072a\\054b")
    assert "/" not in unique and ":" not in unique and "," not in unique


# -- flags ---------------------------------------------------------------------------------


def test_imap_flags_map_to_maildir_letters() -> None:
    letters, keywords = split_flags(["\\Seen", "\\answered", "$Forwarded", "Work", "work"])
    assert letters == "PRS"
    assert keywords == ("Work",)
    assert imap_flags("DFPRST", ("Work",)) == (
        "\\Draft",
        "\\Flagged",
        "$Forwarded",
        "\\Answered",
        "\\Seen",
        "\\Deleted",
        "Work",
    )


@pytest.mark.parametrize("bad", ["\\Recent", "\\Bogus", "a b", "x(", "", "é"])
def test_bad_flags_refused(bad: str) -> None:
    with pytest.raises(InvalidFlag):
        split_flags([bad])

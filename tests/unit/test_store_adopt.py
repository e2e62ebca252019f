"""Sizes of adopted files: Maildirs of other servers usually hold bare LF line ends, IMAP
serves every message with CRLF, and RFC822.SIZE (RFC 9051 §2.3.4) is the size of that CRLF
form. The store records that size for files it finds behind its back (rescan), for folders
it adopts or rebuilds, and for what it writes itself; quota usage is the sum of them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pymta.store import AppendItem, MailboxRef, QuotaExceeded, Store, maildir
from pymta.store.maildir import MaildirName, wire_size, wire_size_of_bytes

REF = MailboxRef("user", "alice", "example.org")
LF_MESSAGE = b"From: x@example.net\nSubject: from procmail\n\nline one\nline two\n"
MIXED = b"Subject: mixed\r\n\nCRLF here\r\nbare here\nlone CR\rend\n"


def crlf(raw: bytes) -> bytes:
    """The form IMAP sends: every LF not preceded by CR becomes CRLF."""
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def drop_index(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (root / f"pymta-index.sqlite{suffix}").unlink(missing_ok=True)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store(tmp_path / "data", hostname="test.example")
    yield s
    await s.close()


def test_crlf_helper_matches_what_imap_sends() -> None:
    assert crlf(MIXED) == b"Subject: mixed\r\n\r\nCRLF here\r\nbare here\r\nlone CR\rend\r\n"
    assert wire_size_of_bytes(MIXED) == len(crlf(MIXED))
    assert wire_size_of_bytes(crlf(LF_MESSAGE)) == len(crlf(LF_MESSAGE))


async def test_bare_lf_file_dropped_behind_the_back_gets_its_crlf_size(store: Store) -> None:
    await store.usage(REF)  # the root exists and is indexed
    root = store.maildir_path(REF)
    (root / "new" / "1700000000.M1P2.procmail").write_bytes(LF_MESSAGE)
    (root / "new" / "1700000001.M1P2.procmail").write_bytes(MIXED)

    metas = await store.messages(REF, "INBOX")  # the rescan adopts both
    assert [m.size for m in metas] == [len(crlf(LF_MESSAGE)), len(crlf(MIXED))]
    assert [m.path.read_bytes() for m in metas] == [LF_MESSAGE, MIXED]  # files untouched
    usage = await store.usage(REF)
    assert usage.bytes == len(crlf(LF_MESSAGE)) + len(crlf(MIXED))
    info = await store.folder_info(REF, "INBOX")
    assert info.size == usage.bytes  # STATUS SIZE (RFC 8438) agrees

    # Expunging gives back exactly what adoption counted.
    await store.expunge(REF, "INBOX", [m.uid for m in metas])
    assert (await store.usage(REF)).bytes == 0


async def test_adopted_folder_and_rebuilt_index_count_crlf_sizes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    store = Store(data, hostname="test.example")
    root = store.maildir_path(REF)
    for sub in ("cur", "new", "tmp"):
        (root / sub).mkdir(parents=True)
        (root / ".Lists" / sub).mkdir(parents=True)
    (root / ".Lists" / "maildirfolder").touch()
    (root / "cur" / "1600000000.M1P1.old:2,S").write_bytes(LF_MESSAGE)
    (root / ".Lists" / "new" / "1600000001.M1P1.old").write_bytes(MIXED)
    try:
        [inbox] = await store.messages(REF, "INBOX")  # first use: the index is built
        [listed] = await store.messages(REF, "Lists")
        assert (inbox.size, listed.size) == (len(crlf(LF_MESSAGE)), len(crlf(MIXED)))
        assert (await store.usage(REF)).bytes == inbox.size + listed.size
    finally:
        await store.close()

    drop_index(root)  # a lost index is rebuilt from the files: the same sizes
    store = Store(data, hostname="test.example")
    try:
        [inbox] = await store.messages(REF, "INBOX")
        assert inbox.size == len(crlf(LF_MESSAGE))
        await store.reindex(REF)
        [listed] = await store.messages(REF, "Lists")
        assert listed.size == len(crlf(MIXED))
        assert (await store.usage(REF)).bytes == inbox.size + listed.size
    finally:
        await store.close()


def test_crlf_split_across_read_pieces_is_not_a_bare_lf(tmp_path: Path) -> None:
    chunk = maildir._READ_CHUNK
    # A CRLF whose CR ends the first piece read and whose LF starts the second, plus one
    # bare LF right after it and one at the very end.
    raw = b"x" * (chunk - 1) + b"\r\n\nbody\n"
    path = tmp_path / "big"
    path.write_bytes(raw)
    name = MaildirName.parse("big")
    assert wire_size(path, name, len(raw)) == len(crlf(raw)) == len(raw) + 2


def test_dovecot_virtual_size_is_believed_only_when_the_file_size_matches(
    tmp_path: Path,
) -> None:
    path = tmp_path / "msg"
    path.write_bytes(LF_MESSAGE)
    size, virtual = len(LF_MESSAGE), len(crlf(LF_MESSAGE))
    # Dovecot's S= (file size) and W= (CRLF size): no need to read the file.
    named = MaildirName.parse(f"1600000000.M1P1.old,S={size},W={virtual + 7}:2,S")
    assert (named.file_size, named.virtual_size) == (size, virtual + 7)
    assert wire_size(path, named, size) == virtual + 7  # the name is what was used
    # The file was changed since Dovecot named it (S= is stale): the file is counted.
    stale = MaildirName.parse(f"1600000000.M1P1.old,S={size - 1},W={virtual + 7}:2,S")
    assert wire_size(path, stale, size) == virtual
    # A W= smaller than the file cannot be a CRLF size: counted too.
    small = MaildirName.parse(f"1600000000.M1P1.old,S={size},W={size - 1}")
    assert wire_size(path, small, size) == virtual
    # No fields at all (procmail, Courier without sizes).
    assert wire_size(path, MaildirName.parse("1600000000.M1P1.old"), size) == virtual


async def test_appended_bare_lf_message_is_counted_in_its_crlf_form(store: Store) -> None:
    [delivered] = await store.append_many(REF, "INBOX", [AppendItem(LF_MESSAGE, ["\\Seen"])])
    assert delivered.size == len(crlf(LF_MESSAGE))
    [meta] = await store.messages(REF, "INBOX")
    assert meta.size == len(crlf(LF_MESSAGE))
    assert meta.path.read_bytes() == LF_MESSAGE
    assert f",S={len(LF_MESSAGE)}," in meta.path.name  # S= stays the file's own size
    # The quota compares the CRLF size: a quota of the file's size alone is too small.
    used = (await store.usage(REF)).bytes
    with pytest.raises(QuotaExceeded):
        await store.deliver(REF, LF_MESSAGE, quota_bytes=used + len(LF_MESSAGE))
    await store.deliver(REF, LF_MESSAGE, quota_bytes=used + len(crlf(LF_MESSAGE)))

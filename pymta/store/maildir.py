"""Maildir on disk: file names, durable writes, directory listings, the small state files.

File names follow the Maildir convention with Dovecot's fields:
`<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,U=<uid>` in new/, the same plus `:2,<flags>` in
cur/. Everything before ":2," is the *base*: it never changes for the life of the message,
so a flag change by another Maildir tool (a rename to other letters, new/ → cur/) is
recognised as the same message. Letters we do not interpret (Dovecot keyword letters a-z)
are kept as they are. S= is the size its writer recorded (the file's size for Dovecot and
for our deliveries); W= (Dovecot's, when a name has it) the size with CRLF line ends, which
is what IMAP reports (`wire_size`).

Every function here is blocking; the store runs them on its worker threads.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .flags import LETTERS

Fsync = Callable[[int], None]

INFO_SEPARATOR = ":2,"
UIDVALIDITY_FILE = "pymta-uidvalidity"
UIDNEXT_FILE = "pymta-uidnext"
SPECIAL_USE_FILE = "pymta-special-use"
FOLDER_MARKER = "maildirfolder"  # Maildir++: marks a folder directory (Dovecot, Courier)
SUBDIRS = ("cur", "new", "tmp")
STALE_TMP_S = 36 * 3600  # Maildir convention: tmp/ files untouched for 36 hours are junk
MAX_UID = 2**32 - 1  # RFC 9051 §2.3.1.1: UIDs are 32-bit


@dataclass(frozen=True)
class MaildirName:
    base: str
    letters: str  # our flag letters present in the info part, ASCII order
    extra: str  # other info characters, kept untouched
    uid: int | None  # from the U= field
    has_info: bool  # the name carries ":2,..." (cur/ style)

    @classmethod
    def parse(cls, filename: str) -> MaildirName:
        base, sep, info = filename.partition(INFO_SEPARATOR)
        if not sep:
            base, info = filename, ""
        letters = "".join(sorted({ch for ch in info if ch in LETTERS}))
        extra = "".join(sorted({ch for ch in info if ch not in LETTERS}))
        uid: int | None = None
        for field in base.split(",")[1:]:
            value = field[2:]
            if field.startswith("U=") and value.isascii() and value.isdigit():
                number = int(value)
                if 0 < number <= MAX_UID:
                    uid = number
        return cls(base, letters, extra, uid, bool(sep))

    @property
    def file_size(self) -> int | None:
        """The S= field (Dovecot: the file's size), if the name carries a valid one."""
        return self._number("S=")

    @property
    def virtual_size(self) -> int | None:
        """The W= field (Dovecot: the size with CRLF line ends), if valid."""
        return self._number("W=")

    def _number(self, prefix: str) -> int | None:
        for field in self.base.split(",")[1:]:
            value = field[2:]
            if field.startswith(prefix) and value.isascii() and value.isdigit():
                return int(value)
        return None

    def filename(self, letters: str | None = None) -> str:
        """The file name: the bare base when there is no info part (new/) and no letters
        are asked for, else base + ":2," + the letters and the kept extras in ASCII order."""
        if letters is None and not self.has_info:
            return self.base
        chosen = self.letters if letters is None else letters
        return f"{self.base}{INFO_SEPARATOR}{''.join(sorted(set(chosen + self.extra)))}"

    def with_uid(self, uid: int) -> MaildirName:
        head, *fields = self.base.split(",")
        kept = [f for f in fields if not f.startswith("U=")]
        base = ",".join([head, *kept, f"U={uid}"])
        return MaildirName(base, self.letters, self.extra, uid, self.has_info)


class UniqueNames:
    """The unique part of new file names: `<sec>.M<usec>P<pid>Q<n>.<host>`."""

    def __init__(self, hostname: str) -> None:
        # Maildir convention: "/" and ":" in the host name are written as octal escapes;
        # "," too, because it separates our fields.
        self._host = hostname.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")
        self._counter = itertools.count(1)  # next() on a count is atomic under the GIL

    def next(self) -> str:
        now = time.time_ns() // 1000
        sec, usec = divmod(now, 1_000_000)
        return f"{sec}.M{usec}P{os.getpid()}Q{next(self._counter)}.{self._host}"


def write_file(path: Path, data: bytes, fsync: Fsync, internal_date: float | None) -> float:
    """Create `path` (must not exist), write, set the mtime to `internal_date` when given,
    fsync; return the file's mtime (the internal date, as Dovecot reads it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if internal_date is not None:
            os.utime(fd, (internal_date, internal_date))
        fsync(fd)
        return os.fstat(fd).st_mtime
    except BaseException:
        os.close(fd)
        fd = -1
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        if fd >= 0:
            os.close(fd)


def fsync_dir(path: Path | str, fsync: Fsync) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path, fsync: Fsync) -> None:
    """`mkdir -p`, fsyncing the parent of every directory it creates."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue
        fsync_dir(directory.parent, fsync)


def make_maildir(path: Path, fsync: Fsync, *, folder: bool) -> None:
    """cur/new/tmp under `path` (and the Maildir++ marker for a folder), durable."""
    for sub in SUBDIRS:
        (path / sub).mkdir(mode=0o700, exist_ok=True)
    if folder:
        (path / FOLDER_MARKER).touch(mode=0o600, exist_ok=True)
    fsync_dir(path, fsync)


def list_messages(directory: Path) -> list[str]:
    """Message file names in new/ or cur/ (dot files are not messages)."""
    try:
        with os.scandir(directory) as entries:
            return [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
    except FileNotFoundError:
        return []


def clean_tmp(directory: Path, now: float) -> int:
    removed = 0
    for name in list_messages(directory):
        path = directory / name
        try:
            if now - path.stat().st_mtime > STALE_TMP_S:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


# Reading a file to count its line ends, in pieces of this size.
_READ_CHUNK = 1 << 20


def bare_lf_count(data: bytes) -> int:
    """How many LFs in `data` are not preceded by a CR."""
    return data.count(b"\n") - data.count(b"\r\n")


def wire_size_of_bytes(data: bytes) -> int:
    """The size of `data` as IMAP sends it: every bare LF as CRLF (RFC 9051 §2.3.4:
    RFC822.SIZE is the size in the RFC 5322 form, whose line ends are CRLF)."""
    return len(data) + bare_lf_count(data)


def wire_size(path: Path, name: MaildirName, st_size: int) -> int:
    """The size of a message file as IMAP sends it (see `wire_size_of_bytes`), for a file
    adopted from elsewhere: Maildirs of other servers (Dovecot, Courier, procmail) usually
    hold bare LF line ends.

    A name carrying Dovecot's `S=<file size>` and `W=<virtual size>` (the size with CRLF
    line ends) is believed when S= is the file's actual size, so taking over a Dovecot
    Maildir does not read every file; otherwise the file is read and its bare LFs counted.
    FileNotFoundError when the file is gone."""
    virtual = name.virtual_size
    if name.file_size == st_size and virtual is not None and virtual >= st_size:
        return virtual
    total = extra = 0
    after_cr = False  # the previous piece ended with CR
    with open(path, "rb") as f:
        while piece := f.read(_READ_CHUNK):
            total += len(piece)
            extra += bare_lf_count(piece)
            if after_cr and piece.startswith(b"\n"):
                extra -= 1  # a CRLF split between two pieces: its LF is not bare
            after_cr = piece.endswith(b"\r")
    return total + extra


def read_int_file(path: Path) -> int | None:
    try:
        text = path.read_text("ascii").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def write_int_file(path: Path, value: int, fsync: Fsync) -> None:
    """Replace `path` atomically and durably (write, fsync, rename, fsync the directory)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    write_file(tmp, f"{value}\n".encode("ascii"), fsync, None)
    os.rename(tmp, path)
    fsync_dir(path.parent, fsync)


# Errors of os.link that mean "no hard links here" (another file system, or one without
# links): the caller copies instead.
_NO_LINK = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP})


def link_or_copy(src: Path, dst: Path, fsync: Fsync, mtime: float) -> bool:
    """Make `dst` (must not exist) a durable copy of the message file `src`: a hard link
    when the file system allows (the data was fsynced when `src` was written; Dovecot
    copies the same way), else a copy with `mtime`, fsynced. True when linked.
    FileNotFoundError when `src` is gone."""
    try:
        os.link(src, dst)
        return True
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
    with open(src, "rb") as source:
        fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            with open(fd, "wb", closefd=False) as target:
                shutil.copyfileobj(source, target, 1 << 20)
            os.utime(fd, (mtime, mtime))
            fsync(fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(dst)
            raise
        finally:
            os.close(fd)
    return False


def link_rename(src: Path, dst: Path) -> None:
    """Rename without ever replacing an existing `dst` (link + unlink, the Maildir way)."""
    os.link(src, dst)
    os.unlink(src)

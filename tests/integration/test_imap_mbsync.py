"""mbsync (isync), a strict IMAP client, syncs a pymta account to a local Maildir and back.

Issue 4, done-when: "A test runs `mbsync` to sync a user's account to a local Maildir and
back, with a flag changed on each side." mbsync logs in after STARTTLS (trusting the test
certificate as a host certificate), keeps UIDs in the local file names (",U=<uid>") and
its sync state in the local folders, and propagates new messages and flag changes both
ways; the server side is checked with imaplib.
"""

from __future__ import annotations

import imaplib
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import PASSWORDS, ServerThread

MBSYNC = shutil.which("mbsync")
pytestmark = pytest.mark.skipif(
    MBSYNC is None, reason="mbsync not installed (Debian package isync; `make test` installs it)"
)

USER = "alice"
SUBJECTS = ["first", "second", "third"]


def with_imap(cfg: dict[str, Any]) -> None:
    cfg["listeners"]["imap"] = {
        "protocol": "imap",
        "addresses": ["127.0.0.1"],
        "port": 0,
        "tls": "starttls",
    }


def deliver(srv: ServerThread, subject: str) -> None:
    msg = (
        f"From: someone@outside.test\r\nTo: {USER}@example.test\r\n"
        f"Subject: {subject}\r\nMessage-ID: <{subject}@outside.test>\r\n\r\n"
        f"body of {subject}\r\n"
    )
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        assert c.sendmail("someone@outside.test", [f"{USER}@example.test"], msg) == {}


def write_mbsyncrc(tmp_path: Path, port: int, cert: Path) -> Path:
    """A channel between the account (far) and tmp_path/local (near), every folder."""
    local = tmp_path / "local"
    local.mkdir()
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        f"""IMAPAccount pymta
# isync checks the certificate's name against Host, by DNS name only: not 127.0.0.1.
Host localhost
Port {port}
User {USER}
Pass {PASSWORDS[USER]}
SSLType STARTTLS
# A certificate listed here is trusted as the server's own (a "host" certificate).
CertificateFile {cert}
SystemCertificates no

IMAPStore remote
Account pymta

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel pymta
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
Sync All
"""
    )
    return rc


def mbsync(rc: Path) -> str:
    assert MBSYNC is not None
    done = subprocess.run(
        [MBSYNC, "-V", "-c", str(rc), "-a"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HOME": str(rc.parent)},
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    return out


def maildir_flags(name: str) -> str:
    return name.rpartition(":2,")[2] if ":2," in name else ""


def local_messages(folder: Path) -> dict[str, tuple[Path, str]]:
    """Subject -> (file, Maildir flags) of the messages in a local Maildir folder."""
    found = {}
    for path in [*(folder / "new").iterdir(), *(folder / "cur").iterdir()]:
        m = re.search(rb"^Subject: (.*?)\r?$", path.read_bytes(), re.MULTILINE)
        assert m is not None, path
        found[m.group(1).decode()] = (path, maildir_flags(path.name))
    return found


def set_local_flag(path: Path, flag: str) -> None:
    """Add a Maildir flag the way a mail reader does: rename into cur/ (Maildir spec)."""
    flags = "".join(sorted(set(maildir_flags(path.name)) | {flag}))
    base = path.name.partition(":2,")[0]
    folder = path.parent.parent
    path.rename(folder / "cur" / f"{base}:2,{flags}")
    date_back(folder)


def date_back(*folders: Path) -> None:
    """mbsync sleeps a second when a Maildir changed within the current second (the
    granularity of directory times); dating our changes back keeps the test fast."""
    past = time.time() - 5
    for folder in folders:
        for sub in ("cur", "new"):
            os.utime(folder / sub, (past, past))


class ServerView:
    """The account seen over IMAP (imaplib, STARTTLS) for checks and server-side changes."""

    def __init__(self, port: int, cert: Path) -> None:
        self.imap = imaplib.IMAP4("127.0.0.1", port, timeout=10)
        self.imap.starttls(ssl.create_default_context(cafile=str(cert)))
        self.imap.login(USER, PASSWORDS[USER])

    def __enter__(self) -> ServerView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.imap.logout()

    def flags(self, folder: str = "INBOX") -> dict[str, set[str]]:
        """Subject -> system flags of every message in the folder."""
        typ, _ = self.imap.select(folder, readonly=True)
        assert typ == "OK"
        typ, data = self.imap.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
        assert typ == "OK", data
        found: dict[str, set[str]] = {}
        # Each message comes as (prefix with "{n}", literal) then b")" or b" FLAGS (...))":
        # FLAGS may come before or after the header literal.
        for i, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            after = data[i + 1] if i + 1 < len(data) else b""
            around = item[0] + (after if isinstance(after, bytes) else b"")
            m = re.search(rb"FLAGS \(([^)]*)\)", around)
            assert m is not None, around
            subject = re.search(rb"Subject: (.*?)\r\n", item[1])
            assert subject is not None, item
            # \Recent is a per-session flag of IMAP4rev1 (gone in rev2), not a stored one.
            flags = {f.decode() for f in m.group(1).split()} - {"\\Recent"}
            found[subject.group(1).decode()] = flags
        self.imap.close()
        return found

    def add_flag(self, subject: str, flag: str, folder: str = "INBOX") -> None:
        self.imap.select(folder)
        typ, data = self.imap.search(None, "SUBJECT", f'"{subject}"')
        assert typ == "OK" and len(data[0].split()) == 1, data
        typ, _ = self.imap.store(data[0].decode(), "+FLAGS", f"({flag})")
        assert typ == "OK"
        self.imap.close()

    def folders(self) -> set[str]:
        typ, data = self.imap.list()
        assert typ == "OK"
        names = set()
        for line in data:
            assert isinstance(line, bytes)
            names.add(line.rsplit(b" ", 1)[1].strip(b'"').decode())
        return names


@dataclass(frozen=True)
class Account:
    """Alice's account on a running server, and the mbsync config that syncs it."""

    port: int  # the IMAP (STARTTLS) port
    cert: Path
    rc: Path

    @property
    def local(self) -> Path:
        return self.rc.parent / "local"

    def server(self) -> ServerView:
        return ServerView(self.port, self.cert)


@pytest.fixture
def account(
    pymta_server: Callable[..., ServerThread], tls_cert: tuple[Path, Path], tmp_path: Path
) -> Account:
    """A pymta with an IMAP listener, three messages in alice's INBOX, an mbsync config."""
    srv = pymta_server(edit=with_imap)
    for subject in SUBJECTS:
        deliver(srv, subject)
    port = srv.port("imap")
    return Account(port, tls_cert[0], write_mbsyncrc(tmp_path, port, tls_cert[0]))


def flags_of(folder: Path) -> dict[str, str]:
    return {subject: flags for subject, (_, flags) in local_messages(folder).items()}


def test_mbsync_copies_the_account_and_syncs_a_flag_changed_on_each_side(
    account: Account,
) -> None:
    inbox = account.local / "INBOX"

    mbsync(account.rc)
    assert flags_of(inbox) == {s: "" for s in SUBJECTS}
    assert all(",U=" in path.name for path, _ in local_messages(inbox).values())

    # Flag "first" in the local Maildir; mark "second" seen on the server.
    set_local_flag(local_messages(inbox)["first"][0], "F")
    with account.server() as server:
        server.add_flag("second", "\\Seen")
    mbsync(account.rc)

    with account.server() as server:
        assert server.flags() == {"first": {"\\Flagged"}, "second": {"\\Seen"}, "third": set()}
    assert flags_of(inbox) == {"first": "F", "second": "S", "third": ""}

    # A third run finds nothing left to do and changes nothing on either side.
    date_back(inbox)
    mbsync(account.rc)
    assert flags_of(inbox) == {"first": "F", "second": "S", "third": ""}
    with account.server() as server:
        assert server.flags() == {"first": {"\\Flagged"}, "second": {"\\Seen"}, "third": set()}


def test_mbsync_uploads_local_messages_and_creates_a_local_folder_on_the_server(
    account: Account,
) -> None:
    local = account.local
    mbsync(account.rc)

    # A message written locally (as a mail reader saves a draft), and a new local folder.
    (local / "INBOX" / "cur" / "1700000000.draft.test:2,S").write_bytes(
        b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: written offline\r\n"
        b"\r\nsent from the train\r\n"
    )
    projects = local / "Projects"
    for sub in ("cur", "new", "tmp"):
        (projects / sub).mkdir(parents=True)
    (projects / "new" / "1700000001.plan.test").write_bytes(
        b"From: alice@example.test\r\nSubject: plan\r\n\r\nstep one\r\n"
    )
    date_back(local / "INBOX", projects)

    mbsync(account.rc)
    with account.server() as server:
        assert "Projects" in server.folders()
        assert server.flags("Projects") == {"plan": set()}
        assert server.flags() == {
            "first": set(),
            "second": set(),
            "third": set(),
            "written offline": {"\\Seen"},
        }
    # mbsync learnt the server's UIDs of what it uploaded (UIDPLUS, RFC 4315 APPENDUID).
    assert all(",U=" in path.name for path, _ in local_messages(local / "INBOX").values())
    assert all(",U=" in path.name for path, _ in local_messages(projects).values())

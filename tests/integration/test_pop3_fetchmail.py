"""fetchmail (the Debian package) collects a mailbox from pymta over POP3 with STLS, checking
the certificate, and hands every message to an MDA that writes it to a file: what it
delivered must be what was sent over SMTP, and the maildrop must be empty afterwards."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import PASSWORDS, ServerThread
from tests.integration.test_pop3 import deliver, message, with_pop3

FETCHMAIL = shutil.which("fetchmail")
pytestmark = pytest.mark.skipif(
    FETCHMAIL is None, reason="fetchmail is not installed (Debian package: fetchmail)"
)


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def test_fetchmail_collects_everything_over_stls(
    pymta_server: Callable[..., ServerThread], tmp_path: Path, tls_cert: tuple[Path, Path]
) -> None:
    assert FETCHMAIL is not None
    srv = pymta_server(edit=with_pop3)
    big = "".join(f"{i:06d} .line of a larger message\r\n" for i in range(20_000))
    sent = {
        "POP3 test 1": message(1),
        "POP3 test 2": message(2, ".\r\n..\r\n.starts with a dot\r\nlast\r\n"),
        "POP3 test 3": message(3, big),
    }
    deliver(srv, *sent.values())

    home = tmp_path / "fetchmail-home"
    out = tmp_path / "delivered"
    home.mkdir()
    out.mkdir()
    mda = home / "mda.sh"
    mda.write_text(f'#!/bin/sh\nexec cat > "{out}/msg.$$"\n')
    mda.chmod(0o700)
    rcfile = home / "fetchmailrc"
    cert = tls_cert[0]
    rcfile.write_text(
        f"poll localhost proto POP3 port {srv.port('pop3')} timeout 30\n"
        f'  user "alice" password "{PASSWORDS["alice"]}"\n'
        f'  sslproto "TLS1.2+" sslcertck sslcertfile "{cert}"\n'
        f'  mda "{mda}"\n'
        "  nokeep\n"
    )
    rcfile.chmod(stat.S_IRUSR | stat.S_IWUSR)  # fetchmail refuses a readable rcfile
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "FETCHMAILHOME": str(home),
        "LC_ALL": "C",
    }
    run = subprocess.run(
        [
            FETCHMAIL,
            "-f",
            str(rcfile),
            "-i",
            str(home / "fetchids"),
            "--nosyslog",
            "--nodetach",
            "--invisible",  # no Received header of its own: compare what we served
            "-v",
        ],
        env=env,
        capture_output=True,
        timeout=60,
    )
    transcript = run.stdout.decode(errors="replace") + run.stderr.decode(errors="replace")
    assert run.returncode == 0, transcript
    assert "POP3> STLS" in transcript  # RFC 2595 §4, then the certificate was checked
    assert "3 messages" in transcript

    delivered = {}
    for path in out.iterdir():
        data = path.read_bytes()
        subject = next(
            line[len(b"Subject: ") :].decode()
            for line in data.split(b"\n")
            if line.startswith(b"Subject: ")
        )
        delivered[subject] = data
    assert set(delivered) == set(sent)
    for subject, raw in sent.items():
        # The MDA gets LF line ends; pymta's own Received header comes first.
        assert lf(delivered[subject]).endswith(lf(raw)), subject
    assert srv.messages("alice") == []  # fetched, then deleted at QUIT

"""SIGHUP reload, SIGTERM, check-config and the admin commands, on a real server process."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.conftest import ServerProcess, password_hash
from tests.tomlw import dumps

MSG = b"From: a@outside.test\r\nSubject: t\r\n\r\nbody\r\n"


def pymta(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pymta", *args], capture_output=True, text=True, timeout=60
    )


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_sighup_reload_changes_routing_without_dropping_connections(
    pymta_process: Callable[..., ServerProcess],
) -> None:
    srv = pymta_process()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client")
        assert c.rcpt("carol@example.test")[0] == 503  # no MAIL yet: sanity of the session
        c.mail("a@outside.test")
        assert c.rcpt("carol@example.test")[0] == 550
        c.rset()
        srv.doc["directory"]["users"].append(
            {"name": "carol", "domain": "example.test", "password_hash": password_hash("carol")}
        )
        srv.config_path.write_text(dumps(srv.doc))
        srv.signal(signal.SIGHUP)
        wait_for(lambda: "config reloaded" in srv.log())
        # Same connection, new routing.
        c.mail("a@outside.test")
        assert c.rcpt("carol@example.test")[0] == 250
        c.data(MSG)
    assert len(srv.messages("carol")) == 1


def test_sighup_with_a_bad_file_keeps_the_old_config(
    pymta_process: Callable[..., ServerProcess],
) -> None:
    srv = pymta_process()
    srv.config_path.write_text(dumps(srv.doc) + "\n[[domains]]\nname = 42\n")
    srv.signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in srv.log())
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        assert c.sendmail("a@outside.test", ["alice@example.test"], MSG) == {}
    assert len(srv.messages("alice")) == 1


def test_removing_a_user_never_deletes_stored_mail(
    pymta_process: Callable[..., ServerProcess],
) -> None:
    srv = pymta_process()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("a@outside.test", ["bob@example.test"], MSG)
    srv.doc["directory"]["users"] = srv.doc["directory"]["users"][:1]
    srv.doc["addresses"] = []
    srv.config_path.write_text(dumps(srv.doc))
    srv.signal(signal.SIGHUP)
    wait_for(lambda: "config reloaded" in srv.log())
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client")
        c.mail("a@outside.test")
        assert c.rcpt("bob@example.test")[0] == 550
    assert len(srv.messages("bob")) == 1


def test_sigterm_stops_cleanly(pymta_process: Callable[..., ServerProcess]) -> None:
    srv = pymta_process()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("a@outside.test", ["alice@example.test"], MSG)
    assert srv.terminate() == 0
    assert "server stopped" in srv.log()
    assert len(srv.messages("alice")) == 1


def test_check_config_accepts_the_shipped_files() -> None:
    for name in ("conf/dev.toml", "conf/pymta.toml"):
        result = pymta("check-config", name)
        assert result.returncode == 0, result.stderr
        assert "OK" in result.stdout


def test_check_config_names_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[server]\nhostname = "mx.test"\ndata_dir = "/tmp/x"\n\n'
        '[[domains]]\nname = "a.test"\n\n[[domains]]\nname = "a.test"\n\n'
        '[[addresses]]\naddress = "info@a.test"\ndestinations = ["nobody"]\n'
        "\n[limits]\nmax_recipients = 5\nbogus = 1\n"
    )
    result = pymta("check-config", str(path))
    assert result.returncode == 1
    err = result.stderr
    assert f"{path}:9: domains[1].name" in err  # the duplicate domain
    assert f"{path}:13: addresses[0].destinations" in err  # points to nothing
    assert f"{path}:16: limits.max_recipients" in err
    assert f"{path}:17: limits.bogus" in err


def test_hash_password_prints_an_argon2id_hash() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pymta", "hash-password", "--stdin"],
        input="s3cret\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("$argon2id$")
    assert "s3cret" not in result.stdout


def test_mailbox_list_and_reindex(pymta_process: Callable[..., ServerProcess]) -> None:
    srv = pymta_process()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("a@outside.test", ["info@example.test"], MSG)
        c.sendmail("a@outside.test", ["alice@example.test"], MSG)
    listing = pymta("-c", str(srv.config_path), "mailbox", "list")
    assert listing.returncode == 0, listing.stderr
    alice = next(line for line in listing.stdout.splitlines() if line.startswith("alice@"))
    assert " 2 " in alice and "info@example.test" in alice
    index = srv.maildir("alice") / "pymta-index.sqlite"
    assert index.exists()
    srv.terminate()
    for f in index.parent.glob("pymta-index.sqlite*"):
        f.unlink()
    result = pymta("-c", str(srv.config_path), "reindex", "alice")
    assert result.returncode == 0, result.stderr
    assert "2 messages" in result.stdout


def test_queue_commands_on_a_stopped_server(
    pymta_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    def edit(cfg: dict) -> None:  # type: ignore[type-arg]
        cfg["addresses"].append({"address": "fwd@example.test", "destinations": ["x@remote.test"]})

    srv = pymta_process(edit)
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.sendmail("a@outside.test", ["fwd@example.test"], MSG)
    listing = pymta("-c", str(srv.config_path), "queue", "list")
    assert "x@remote.test" in listing.stdout  # while the server runs
    srv.terminate()
    listing = pymta("-c", str(srv.config_path), "queue", "list")
    queue_id = listing.stdout.split()[0]
    shown = pymta("-c", str(srv.config_path), "queue", "show", queue_id)
    assert "x@remote.test" in shown.stdout and "body" in shown.stdout
    assert pymta("-c", str(srv.config_path), "queue", "hold", queue_id).returncode == 0
    assert "HELD" in pymta("-c", str(srv.config_path), "queue", "list").stdout
    assert pymta("-c", str(srv.config_path), "queue", "release", queue_id).returncode == 0
    assert pymta("-c", str(srv.config_path), "queue", "flush").returncode == 0
    assert pymta("-c", str(srv.config_path), "queue", "delete", queue_id).returncode == 0
    assert "empty" in pymta("-c", str(srv.config_path), "queue", "list").stdout


def test_sigterm_lets_a_transaction_in_flight_finish(
    pymta_process: Callable[..., ServerProcess],
) -> None:
    srv = pymta_process()
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
        c.ehlo("client")
        c.mail("a@outside.test")
        c.rcpt("alice@example.test")
        code, _ = c.docmd("DATA")
        assert code == 354
        c.send(MSG[:20])
        srv.signal(signal.SIGTERM)
        wait_for(lambda: "SIGTERM" in srv.log())
        # New connections are no longer accepted ...
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", srv.port), timeout=2) as late,
        ):
            assert late.recv(100) == b""
        # ... but the transaction in flight completes and is acknowledged.
        c.send(MSG[20:] + b".\r\n")
        assert c.getreply()[0] == 250
    assert srv.proc is not None and srv.proc.wait(20) == 0
    assert len(srv.messages("alice")) == 1
    assert list((srv.maildir("alice") / "tmp").iterdir()) == []


def world_readable(path: Path) -> bool:
    """Can any user reach and read `path` (every parent searchable by others)?"""
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping privileges needs root")
def test_drops_privileges_after_binding(pymta_process: Callable[..., ServerProcess]) -> None:
    data = Path(tempfile.mkdtemp(prefix="pymta-drop-"))
    data.chmod(0o755)  # `nobody` must reach the data dir; tmp_path's parents are private

    def edit(cfg: dict) -> None:  # type: ignore[type-arg]
        cfg["server"]["user"] = "nobody"
        cfg["server"]["data_dir"] = str(data / "data")

    try:
        srv = pymta_process(edit)
        assert srv.proc is not None
        status = Path(f"/proc/{srv.proc.pid}/status").read_text()
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        nobody = pwd.getpwnam("nobody").pw_uid
        assert uid_line.split()[1:] == [str(nobody)] * 4
        assert (data / "data" / "mail").stat().st_uid == nobody
        if not world_readable(Path(sys.base_prefix)):
            return  # this interpreter lives where `nobody` cannot import from (e.g. /root)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:
            assert c.sendmail("a@outside.test", ["alice@example.test"], MSG) == {}
        stored = next((srv.maildir("alice") / "new").iterdir())
        assert stored.stat().st_uid == nobody
    finally:
        shutil.rmtree(data, ignore_errors=True)


def test_a_second_server_on_the_same_data_dir_refuses_to_start(
    pymta_process: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    srv = pymta_process()
    second = dict(srv.doc)
    second["listeners"] = {"smtp": {**srv.doc["listeners"]["smtp"], "port": 0}}
    path = tmp_path / "second.toml"
    path.write_text(dumps(second))
    result = pymta("serve", "-c", str(path))
    assert result.returncode == 1
    assert "refusing to start" in result.stdout
    assert pymta("-c", str(srv.config_path), "reindex", "alice").returncode == 1
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=10) as c:  # the first one is unharmed
        assert c.sendmail("a@outside.test", ["alice@example.test"], MSG) == {}

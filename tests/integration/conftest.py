"""A real pymta on loopback, for integration tests.

`pymta_server(**options)` writes a config file under the test's tmp_path and starts a
`Server` in a background thread with its own event loop (so tests can use blocking clients
such as smtplib); `pymta_process(**options)` starts `python -m pymta serve` as a separate
process, for signal and crash tests. Both use the same config builder: the demo setup of
conf/dev.toml (example.test, alice, bob, info@ → both) plus whatever the test adds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pymta.auth.passwords import Passwords
from pymta.config.loader import load_config
from pymta.server import Server
from tests.tomlw import dumps

PASSWORDS = {"alice": "alice-pass", "bob": "bob-pass", "carol": "carol-pass"}
_HASHES: dict[str, str] = {}


def password_hash(user: str) -> str:
    if user not in _HASHES:
        _HASHES[user] = Passwords().hash(PASSWORDS.get(user, user + "-pass")).reveal()
    return _HASHES[user]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def base_config(tmp_path: Path, tls: tuple[Path, Path], port: int = 0) -> dict[str, Any]:
    cert, key = tls
    return {
        "server": {
            "hostname": "mx.example.test",
            "data_dir": str(tmp_path / "data"),
            "shutdown_timeout": "5s",
        },
        "tls": {"cert_file": str(cert), "key_file": str(key)},
        "listeners": {
            "smtp": {
                "protocol": "smtp",
                "addresses": ["127.0.0.1"],
                "port": port,
                "tls": "starttls",
            }
        },
        "domains": [{"name": "example.test"}],
        "directory": {
            "backend": "local",
            "users": [
                {
                    "name": "alice",
                    "domain": "example.test",
                    "password_hash": password_hash("alice"),
                },
                {"name": "bob", "domain": "example.test", "password_hash": password_hash("bob")},
            ],
        },
        "addresses": [{"address": "info@example.test", "destinations": ["alice", "bob"]}],
        # MX lookups go to a closed local port: remote recipients fail for now and wait in
        # the queue, unless a test points the queue at its own DNS server.
        "queue": {"retry_intervals": ["1s"], "scan_interval": "1s", "nameservers": ["127.0.0.1:9"]},
        "logging": {"level": "info"},
    }


def write_config(tmp_path: Path, doc: dict[str, Any], name: str = "pymta.toml") -> Path:
    path = tmp_path / name
    path.write_text(dumps(doc))
    return path


class Mailboxes:
    """Reads what landed in the Maildirs, the way a test wants to look at it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def maildir(self, user: str, domain: str = "example.test") -> Path:
        return self.data_dir / "mail" / domain / user / "Maildir"

    def messages(self, user: str, domain: str = "example.test", folder: str = "") -> list[bytes]:
        root = self.maildir(user, domain)
        if folder:
            root = root / f".{folder}"
        files = sorted((root / "new").glob("*")) + sorted((root / "cur").glob("*"))
        return [f.read_bytes() for f in files]

    def public_messages(self, name: str) -> list[bytes]:
        root = self.data_dir / "public" / name / "Maildir"
        return [f.read_bytes() for f in sorted((root / "new").glob("*"))]


class ServerThread(Mailboxes):
    """An in-process server running on its own loop in a background thread."""

    def __init__(self, config_path: Path, *, use_uvloop: bool = False) -> None:
        self.config_path = config_path
        self.config = load_config(config_path)
        super().__init__(self.config.server.data_dir)
        if use_uvloop:  # the loop `pymta serve` runs on when uvloop is installed
            import uvloop

            self.loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        else:
            self.loop = asyncio.new_event_loop()
        self.server: Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ServerThread:
        self._thread.start()
        self.server = self.call(self._make_and_start())
        return self

    async def _make_and_start(self) -> Server:
        server = Server(self.config)
        await server.start()
        return server

    def call(self, coro: Any, timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def port(self, listener: str = "smtp") -> int:
        assert self.server is not None
        return self.server.ports[listener]

    def reload(self) -> bool:
        assert self.server is not None
        server = self.server

        async def reload() -> bool:
            return server.reload(self.config_path)

        return bool(self.call(reload()))

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def pymta_server(
    tmp_path: Path, tls_cert: tuple[Path, Path]
) -> Iterator[Callable[..., ServerThread]]:
    """Start a server: `pymta_server(edit=lambda cfg: ...)` may change the config first;
    `use_uvloop=True` runs it on a uvloop loop instead of asyncio's default one."""
    started: list[ServerThread] = []

    def start(
        edit: Callable[[dict[str, Any]], None] | None = None, *, use_uvloop: bool = False
    ) -> ServerThread:
        doc = base_config(tmp_path, tls_cert)
        if edit is not None:
            edit(doc)
        srv = ServerThread(write_config(tmp_path, doc), use_uvloop=use_uvloop).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


class ServerProcess(Mailboxes):
    """`python -m pymta serve` in a child process (signals, crashes)."""

    def __init__(self, config_path: Path, doc: dict[str, Any]) -> None:
        super().__init__(Path(doc["server"]["data_dir"]))
        self.config_path = config_path
        self.doc = doc
        self.port = int(doc["listeners"]["smtp"]["port"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config_path.with_suffix(".log")

    def start(self, timeout: float = 20) -> ServerProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pymta", "serve", "-c", str(self.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1) as s,
            ):
                if s.recv(100).startswith(b"220"):
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)


@pytest.fixture
def pymta_process(
    tmp_path: Path, tls_cert: tuple[Path, Path]
) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []

    def start(edit: Callable[[dict[str, Any]], None] | None = None) -> ServerProcess:
        doc = base_config(tmp_path, tls_cert, port=free_port())
        if edit is not None:
            edit(doc)
        proc = ServerProcess(write_config(tmp_path, copy.deepcopy(doc)), doc).start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()

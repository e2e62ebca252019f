"""POP3 RETR throughput over STLS: messages/s and MB/s for 1,000 messages of 10 KB and 100
messages of 1 MB, next to the targets of pymta's issue 6.

Starts `pymta serve` as a child process (its own core, as in production) on a temporary
data dir with a self-signed certificate; fills the INBOX of two users through the store
API before the server starts (alice: the small messages, bob: the large ones); then, per
mailbox, a minimal client connects, says STLS, logs in with USER/PASS and RETRieves every
message with up to --window commands in flight (RFC 2449 §6.6 PIPELINING), reading the
responses into one buffer and finding each terminating CRLF.CRLF with bytes.find, so its
own cost stays small next to the server's. Time runs from the first RETR sent to the last
message's terminator received; it ends with RSET and QUIT, so nothing changes and every
run sees the same mailbox. MB here is 10^6 octets of message (the sizes LIST gives).

    .venv/bin/python benchmarks/pop3.py [--runs 3] [--window 16] [--keep]
                                    [--profile FILE]

Targets (issue 6, this 2-core machine, STLS): >= 3,000 msgs/s for 10 KB and >= 100 MB/s
for 1 MB. Dovecot on the same kind of machine: about 3,900 msgs/s and 140 MB/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passlib.hash import sha512_crypt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymta.store import AppendItem, MailboxRef, Store  # noqa: E402
from tests.certs import write_self_signed  # noqa: E402
from tests.tomlw import dumps  # noqa: E402

PASSWORD = "pop3-bench-pass"
DOMAIN = "example.test"


@dataclass(frozen=True)
class Scenario:
    user: str
    count: int
    size: int
    target_msgs_per_s: float | None
    target_mb_per_s: float | None


SCENARIOS = (
    Scenario("alice", 1000, 10 * 1024, 3000.0, None),
    Scenario("bob", 100, 1024 * 1024, None, 100.0),
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_message(n: int, size: int) -> bytes:
    head = (
        f"From: Bob <bob@{DOMAIN}>\r\nTo: <alice@{DOMAIN}>\r\n"
        f"Date: Thu, 26 Nov 2026 04:00:00 +0000\r\n"
        f"Message-ID: <pop3bench{n}@{DOMAIN}>\r\nSubject: pop3 benchmark {n}\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    dotted = b".A line starting with a dot, stuffed on the way out.\r\n"
    body = (line * 9 + dotted) * (max(0, size - len(head)) // (9 * len(line) + len(dotted)) + 1)
    return head + body[: max(0, size - len(head))]


def fill(data_dir: Path) -> None:
    """The messages, through the store (fsync off: filling is not what is measured)."""
    import asyncio

    async def run() -> None:
        store = Store(data_dir, hostname="bench", fsync=lambda fd: None)
        try:
            for sc in SCENARIOS:
                ref = MailboxRef("user", sc.user, DOMAIN)
                batch: list[AppendItem] = []
                for n in range(sc.count):
                    batch.append(AppendItem(make_message(n, sc.size)))
                    if len(batch) == 100:
                        await store.append_many(ref, "INBOX", batch)
                        batch = []
                if batch:
                    await store.append_many(ref, "INBOX", batch)
        finally:
            await store.close()

    asyncio.run(run())


def config(data_dir: Path, port: int, cert: tuple[Path, Path]) -> dict[str, Any]:
    # SHA512-CRYPT at its default 5000 rounds: logins must not dominate the measurement.
    hashed = str(sha512_crypt.using(rounds=5000).hash(PASSWORD))
    return {
        "server": {"hostname": "mail.example.test", "data_dir": str(data_dir)},
        "tls": {"cert_file": str(cert[0]), "key_file": str(cert[1])},
        "listeners": {
            "pop3": {
                "protocol": "pop3",
                "addresses": ["127.0.0.1"],
                "port": port,
                "tls": "starttls",
            }
        },
        "domains": [{"name": DOMAIN}],
        "directory": {
            "backend": "local",
            "users": [
                {"name": sc.user, "domain": DOMAIN, "password_hash": hashed} for sc in SCENARIOS
            ],
        },
        "logging": {"level": "warning"},
    }


class Client:
    """A minimal POP3 client: STLS, USER/PASS, pipelined RETR."""

    def __init__(self, port: int) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.buf = bytearray()
        self.sock: socket.socket = raw
        self.expect_ok()  # greeting
        self.command(b"STLS")
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(raw)
        self.buf.clear()

    def fill(self) -> None:
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            self.fill()
        line = bytes(self.buf[:end])
        del self.buf[: end + 2]
        return line

    def expect_ok(self) -> bytes:
        line = self.line()
        if not line.startswith(b"+OK"):
            raise RuntimeError(f"server said {line!r}")
        return line

    def command(self, text: bytes) -> bytes:
        self.sock.sendall(text + b"\r\n")
        return self.expect_ok()

    def multiline_end(self) -> int:
        """Consume one multi-line body; its length on the wire (dot-stuffed)."""
        start = 0
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 0
            else:
                end = self.buf.find(b"\r\n.\r\n", start)
                if end >= 0:
                    end += 2
            if end >= 0:
                del self.buf[: end + 3]
                return end
            start = max(0, len(self.buf) - 4)
            self.fill()

    def login(self, user: str) -> None:
        self.command(b"USER " + user.encode())
        self.command(b"PASS " + PASSWORD.encode())

    def sizes(self) -> list[int]:
        self.sock.sendall(b"LIST\r\n")
        self.expect_ok()
        sizes = []
        while (line := self.line()) != b".":
            sizes.append(int(line.split()[1]))
        return sizes

    def retr_all(self, count: int, window: int) -> int:
        """RETR 1..count with up to `window` in flight; the octets received."""
        sent = received = total = 0
        while received < count:
            if sent < count and sent - received < window:
                batch = range(sent + 1, min(count, received + window) + 1)
                self.sock.sendall(b"".join(b"RETR %d\r\n" % n for n in batch))
                sent += len(batch)
            self.expect_ok()
            total += self.multiline_end()
            received += 1
        return total

    def close(self) -> None:
        self.command(b"RSET")
        self.command(b"QUIT")
        self.sock.close()


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(port: int, sc: Scenario, runs: int, window: int, pid: int) -> None:
    rates: list[tuple[float, float, float, float]] = []  # msgs/s, MB/s, server, client CPU
    for _ in range(runs):
        client = Client(port)
        client.login(sc.user)
        sizes = client.sizes()
        assert len(sizes) == sc.count, (len(sizes), sc.count)
        cpu0, own0 = proc_cpu(pid), time.process_time()
        start = time.perf_counter()
        wire = client.retr_all(sc.count, window)
        elapsed = time.perf_counter() - start
        cpu, own = proc_cpu(pid) - cpu0, time.process_time() - own0
        client.close()
        assert wire >= sum(sizes), (wire, sum(sizes))
        rates.append((sc.count / elapsed, sum(sizes) / elapsed / 1e6, cpu / elapsed, own / elapsed))
    best = max(rates)
    median_msgs = statistics.median(r[0] for r in rates)
    median_mb = statistics.median(r[1] for r in rates)
    target = ""
    if sc.target_msgs_per_s is not None:
        ok = median_msgs >= sc.target_msgs_per_s
        target = f"target >= {sc.target_msgs_per_s:,.0f} msgs/s: {'ok' if ok else 'MISSED'}"
    if sc.target_mb_per_s is not None:
        ok = median_mb >= sc.target_mb_per_s
        target = f"target >= {sc.target_mb_per_s:.0f} MB/s: {'ok' if ok else 'MISSED'}"
    label = f"{sc.count} x {sc.size // 1024} KB"
    print(
        f"RETR {label:<12} median {median_msgs:8,.0f} msgs/s {median_mb:7.1f} MB/s   "
        f"best {best[0]:8,.0f} msgs/s {best[1]:7.1f} MB/s   "
        f"CPU server {statistics.median(r[2] for r in rates):.0%} "
        f"client {statistics.median(r[3] for r in rates):.0%}   {target}"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=3, help="runs per scenario (median reported)")
    ap.add_argument("--window", type=int, default=16, help="RETR commands in flight")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    ap.add_argument("--profile", metavar="FILE", help="run the server under cProfile into FILE")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pymta-bench-pop3-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        cert = write_self_signed(tmp, days=1)
        data_dir = tmp / "data"
        t0 = time.perf_counter()
        fill(data_dir)
        print(f"filled INBOXes in {time.perf_counter() - t0:.1f} s")
        port = free_port()
        path = tmp / "pymta.toml"
        path.write_text(dumps(config(data_dir, port, cert)))
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        command = [sys.executable, *profile, "-m", "pymta", "serve", "-c", str(path)]
        proc = subprocess.Popen(command, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"pymta exited with {proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("pymta did not listen") from None
                time.sleep(0.05)
        print(f"pymta pid {proc.pid}, POP3 STLS on 127.0.0.1:{port}, window {args.window}")
        for sc in SCENARIOS:
            measure(port, sc, args.runs, args.window, proc.pid)
        print("Dovecot (issue 6): about 3,900 msgs/s for 10 KB and 140 MB/s for 1 MB")
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

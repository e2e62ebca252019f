"""Inbound SMTP throughput: messages/s delivered to Maildir (acknowledged after fsync).

Starts `pymta serve` as a child process with a temporary data dir and the demo users, then
drives it over loopback with minimal pipelining asyncio clients at concurrency 1 and 16,
with 1 KB and 100 KB messages. Prints messages/s, the server's CPU seconds and resident
memory (idle and after the run).

    .venv/bin/python benchmarks/smtp_inbound.py [--messages N] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymta.auth.passwords import Passwords  # noqa: E402
from tests.tomlw import dumps  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_stats(pid: int) -> tuple[tuple[float, float], int]:
    """((user, system) CPU seconds, RSS bytes) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) / ticks, int(fields[12]) / ticks)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    return cpu, rss


def make_message(size: int, n: int) -> bytes:
    head = (
        f"From: bench@outside.test\r\nTo: alice@example.test\r\n"
        f"Message-ID: <bench{n}@outside.test>\r\nSubject: benchmark {n}\r\n\r\n"
    ).encode()
    line = b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n"
    body = line * max(1, (size - len(head)) // len(line))
    return head + body


async def client(port: int, messages: list[bytes], rcpts: list[str], counter: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def reply() -> bytes:
        while True:
            line = await reader.readline()
            if line[3:4] != b"-":
                return line

    assert (await reply()).startswith(b"220")
    writer.write(b"EHLO bench.client\r\n")
    assert (await reply()).startswith(b"250")
    for i, msg in enumerate(messages):
        rcpt = rcpts[i % len(rcpts)]
        # RFC 2920 PIPELINING: MAIL, RCPT and DATA in one write.
        writer.write(f"MAIL FROM:<bench@outside.test>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n".encode())
        for expected in (b"250", b"250", b"354"):
            r = await reply()
            assert r.startswith(expected), r
        writer.write(msg + b".\r\n")
        r = await reply()
        assert r.startswith(b"250"), r
        counter[0] += 1
    writer.write(b"QUIT\r\n")
    await reply()
    writer.close()


async def run_case(port: int, concurrency: int, size: int, total: int) -> float:
    per_client = max(1, total // concurrency)
    msg = make_message(size, 0)
    counter = [0]
    rcpts = ["alice@example.test", "bob@example.test"]
    start = time.perf_counter()
    await asyncio.gather(
        *(client(port, [msg] * per_client, rcpts, counter) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - start
    return counter[0] / elapsed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=2000, help="messages per 1 KB case")
    ap.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="pymta-bench-"))
    port = free_port()
    ph = Passwords()
    config = {
        "server": {"hostname": "bench.example.test", "data_dir": str(tmp / "data")},
        "listeners": {
            "smtp": {"protocol": "smtp", "addresses": ["127.0.0.1"], "port": port, "tls": "none"}
        },
        "domains": [{"name": "example.test"}],
        "directory": {
            "backend": "local",
            "users": [
                {"name": u, "domain": "example.test", "password_hash": ph.hash(u).reveal()}
                for u in ("alice", "bob")
            ],
        },
        "limits": {"max_connections_per_ip": 100},
        "logging": {"level": "warning"},
    }
    (tmp / "pymta.toml").write_text(dumps(config))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pymta", "serve", "-c", str(tmp / "pymta.toml")], cwd=ROOT
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        time.sleep(0.5)
        cpu0, idle_rss = proc_stats(proc.pid)
        print(f"server idle RSS: {idle_rss / 2**20:.1f} MB")
        try:
            import uvloop

            run = uvloop.run
        except ImportError:
            run = asyncio.run
        cases = [
            (1, 1024, args.messages),
            (16, 1024, args.messages),
            (1, 100 * 1024, args.messages // 4),
            (16, 100 * 1024, args.messages // 4),
        ]
        print(
            f"{'concurrency':>11} {'size':>7} {'msgs/s':>9} {'CPU user s':>11} "
            f"{'CPU sys s':>10} {'RSS MB':>7}"
        )
        for concurrency, size, total in cases:
            cpu_before, _ = proc_stats(proc.pid)
            rate = run(run_case(port, concurrency, size, total))
            cpu_after, rss = proc_stats(proc.pid)
            print(
                f"{concurrency:>11} {size // 1024:>6}K {rate:>9.0f} "
                f"{cpu_after[0] - cpu_before[0]:>11.2f} {cpu_after[1] - cpu_before[1]:>10.2f} "
                f"{rss / 2**20:>7.1f}"
            )
        cpu1, _ = proc_stats(proc.pid)
        print(f"server CPU seconds total: {sum(cpu1) - sum(cpu0):.2f}")
    finally:
        proc.terminate()
        proc.wait(30)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"data kept in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

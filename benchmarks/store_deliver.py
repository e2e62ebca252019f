"""Store delivery throughput: durable 1 KB deliveries per second into a temporary data dir.

Run by hand (`.venv/bin/python benchmarks/store_deliver.py [--count N] [--concurrency C]`);
never a timed test. Prints deliveries/s for N sequential deliveries and N deliveries with
C in flight at once (each delivery returns only once file and directory are fsynced).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from pymta.store import MailboxRef, Store

MESSAGE = (
    b"From: Alice <alice@example.org>\r\n"
    b"To: Bob <bob@example.org>\r\n"
    b"Subject: benchmark\r\n"
    b"Message-ID: <bench@example.org>\r\n"
    b"Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"\r\n"
)
MESSAGE += b"x" * (1024 - len(MESSAGE) - 2) + b"\r\n"


async def sequential(store: Store, ref: MailboxRef, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        await store.deliver(ref, MESSAGE)
    return count / (time.perf_counter() - started)


async def concurrent(store: Store, ref: MailboxRef, count: int, concurrency: int) -> float:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await store.deliver(ref, MESSAGE)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def main(count: int, concurrency: int, data_dir: Path) -> None:
    store = Store(data_dir, hostname="bench.example")
    try:
        seq_ref = MailboxRef("user", "seq", "example.org")
        con_ref = MailboxRef("user", "con", "example.org")
        # Open both roots first: creating the default folders is not a delivery.
        await store.usage(seq_ref)
        await store.usage(con_ref)
        seq = await sequential(store, seq_ref, count)
        print(f"sequential:    {count} x 1 KB  {seq:8.0f} deliveries/s")
        con = await concurrent(store, con_ref, count, concurrency)
        print(f"concurrent {concurrency:>2}: {count} x 1 KB  {con:8.0f} deliveries/s")
        usage = await store.usage(con_ref)
        assert usage.messages == count, usage
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dir", type=Path, default=None, help="parent of the temp data dir")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pymta-bench-", dir=args.dir) as tmp:
        asyncio.run(main(args.count, args.concurrency, Path(tmp)))

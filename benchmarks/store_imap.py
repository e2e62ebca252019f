"""Store operations behind IMAP on a big folder: SELECT listing, FETCH columns, bulk STORE.

Run by hand (`.venv/bin/python benchmarks/store_imap.py [--count N] [--rounds R]`); never
a timed test. Fills a temporary data dir with N messages (default 20,000; fsync off while
filling, it is not what is measured), then times through the async `Store` API, as the
IMAP session calls it (the thread-pool hop included):

- `listing` — what SELECT needs (UIDs, flags, keywords, modseqs, counts);
- `fetch_rows` of FLAGS, ENVELOPE, BODYSTRUCTURE and SUBJECT columns for every message;
- `folder_info` — STATUS;
- `set_flags` adding and removing \\Seen on every message (STORE 1:* +FLAGS / -FLAGS);
- `copy` of every message into another folder (hard links), and `move` back;
- filling the wire forms of every message from the cached JSON (an index migrated from
  version 1), and from the files (adopted Maildir files).

Prints the median of R rounds (and the best) in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from pymta.store import AppendItem, MailboxRef, Store

T = TypeVar("T")
REF = MailboxRef("user", "bench", "example.org")
_NAMES = ("Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy")
_WORDS = ("meeting", "report", "travel", "build", "lunch", "release", "contract", "server")


def message(n: int, rng: random.Random) -> bytes:
    sender = rng.choice(_NAMES)
    to = ", ".join(f"{name} <{name.lower()}@example.org>" for name in rng.sample(_NAMES, 3))
    subject = " ".join(rng.choice(_WORDS) for _ in range(5))
    headers = (
        f"From: {sender} <{sender.lower()}@example.net>\r\nTo: {to}\r\n"
        f"Subject: {subject} {n}\r\nDate: Mon, 1 Jan 2024 10:{n % 60:02d}:00 +0000\r\n"
        f"Message-ID: <{n}.bench@example.net>\r\nMIME-Version: 1.0\r\n"
    )
    text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(200, 2000))) + "\r\n"
    if n % 5:
        return (headers + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text).encode()
    return (
        headers + 'Content-Type: multipart/alternative; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text + "--b\r\n"
        "Content-Type: text/html; charset=utf-8\r\n\r\n<p>" + text + "</p>\r\n--b--\r\n"
    ).encode()


async def fill(store: Store, count: int) -> None:
    rng = random.Random(4)
    batch: list[AppendItem] = []
    for n in range(count):
        flags = ("\\Seen",) if n % 3 else ()
        batch.append(AppendItem(message(n, rng), flags + (("Work",) if n % 7 == 0 else ())))
        if len(batch) == 500:
            await store.append_many(REF, "INBOX", batch)
            batch = []
    if batch:
        await store.append_many(REF, "INBOX", batch)


async def timed(rounds: int, fn: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    times: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        await fn()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times)


def report(label: str, result: tuple[float, float]) -> None:
    print(f"{label:<44} median {result[0]:8.1f} ms   best {result[1]:8.1f} ms")


def forget_wire(store: Store, *, everything: bool) -> None:
    """Drop the wire forms (as after a migration from index version 1), or the whole
    summaries (as for adopted files), straight in the index file."""
    db = sqlite3.connect(store.maildir_path(REF) / "pymta-index.sqlite")
    try:
        if everything:
            db.execute("DELETE FROM summaries")
        else:
            db.execute(
                "UPDATE summaries SET envelope_wire = NULL, body_wire = NULL, "
                "bodystructure_wire = NULL"
            )
        db.execute("UPDATE messages SET cached = 0")
        db.commit()
    finally:
        db.close()


async def once(fn: Callable[[], Awaitable[T]]) -> tuple[T, tuple[float, float]]:
    started = time.perf_counter()
    result = await fn()
    elapsed = (time.perf_counter() - started) * 1000
    return result, (elapsed, elapsed)


async def main(count: int, rounds: int, data_dir: Path) -> None:
    store = Store(data_dir, hostname="bench.example", fsync=lambda fd: None)
    started = time.perf_counter()
    await fill(store, count)
    print(f"filled {count} messages in {time.perf_counter() - started:.1f} s (fsync off)")
    await store.close()
    store = Store(data_dir, hostname="bench.example")  # measured with fsync on
    try:
        await store.listing(REF, "INBOX")  # open the root, warm the page cache
        listing = await store.listing(REF, "INBOX")
        print(f"folder: {listing.messages} messages, {listing.unseen} unseen")
        report("listing (SELECT)", await timed(rounds, lambda: store.listing(REF, "INBOX")))
        for label, columns in (
            ("fetch_rows uid flags keywords modseq", ("uid", "flags", "keywords", "modseq")),
            ("fetch_rows uid envelope", ("uid", "envelope")),
            ("fetch_rows uid bodystructure", ("uid", "bodystructure")),
            ("fetch_rows uid subject", ("uid", "subject")),
        ):

            def fetch(c: tuple[str, ...] = columns) -> Awaitable[list[tuple[Any, ...]]]:
                return store.fetch_rows(REF, "INBOX", None, c)

            report(label, await timed(rounds, fetch))
        report("folder_info (STATUS)", await timed(rounds, lambda: store.folder_info(REF, "INBOX")))
        uids = list(listing.uids)
        adds: list[float] = []
        removes: list[float] = []
        for _ in range(rounds):  # alternate, so that every STORE really changes every message
            _, (took_add, _) = await once(
                partial(store.set_flags, REF, "INBOX", uids, add=["\\Flagged"])
            )
            _, (took_remove, _) = await once(
                partial(store.set_flags, REF, "INBOX", uids, remove=["\\Flagged"])
            )
            adds.append(took_add)
            removes.append(took_remove)
        report("set_flags +FLAGS (STORE 1:* +FLAGS)", (statistics.median(adds), min(adds)))
        report("set_flags -FLAGS (STORE 1:* -FLAGS)", (statistics.median(removes), min(removes)))
        copied, took = await once(lambda: store.copy(REF, "INBOX", uids, REF, "Archive"))
        report("copy all into Archive (hard links)", took)
        back = [dst for _, dst in copied.pairs]
        _, took = await once(lambda: store.move(REF, "Archive", back, REF, "Trash"))
        report("move all Archive -> Trash (renames)", took)
        await store.close()

        for everything, label in (
            (False, "fill wire forms from JSON (migrated index)"),
            (True, "fill summaries from the files (adopted)"),
        ):
            forget_wire(store, everything=everything)
            store = reopened = Store(data_dir, hostname="bench.example")
            _, took = await once(
                partial(reopened.fetch_rows, REF, "INBOX", None, ("uid", "envelope"))
            )
            report(label, took)
            await reopened.close()
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: a temp dir")
    args = parser.parse_args()
    if args.data_dir is not None:
        asyncio.run(main(args.count, args.rounds, args.data_dir))
    else:
        with tempfile.TemporaryDirectory(prefix="pymta-bench-") as tmp:
            asyncio.run(main(args.count, args.rounds, Path(tmp)))

"""Nothing acknowledged is lost: kill -9 a server receiving mail, again and again.

Four clients send continuously (to a user, to an address with two mailboxes, and to an
address that is forwarded outside, so the queue is written too) while the server process
is killed with SIGKILL at random moments, 20 times. Afterwards every message that got a
250 must be in each of its mailboxes exactly once (and the forwarded ones in the queue
exactly once), the index must agree with the Maildir, and UIDs must be unique and
increasing.
"""

from __future__ import annotations

import asyncio
import random
import smtplib
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from pymta.config.loader import load_config
from pymta.queue import Queue
from pymta.store import MailboxRef, Store
from tests.integration.conftest import ServerProcess

ROUNDS = 20
TARGETS = {  # recipient → where each acknowledged copy must be
    "alice@example.test": ["alice"],
    "info@example.test": ["alice", "bob"],
    "fwd@example.test": ["bob", "queue"],
}


def sender(
    port: int, worker: int, round_no: int, acked: list[tuple[str, str]], stop: threading.Event
) -> None:
    n = 0
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
            while not stop.is_set():
                rcpt = list(TARGETS)[n % len(TARGETS)]
                mid = f"r{round_no}w{worker}n{n}"
                msg = (
                    f"From: a@outside.test\r\nTo: {rcpt}\r\nMessage-ID: <{mid}@test>\r\n"
                    f"Subject: {mid}\r\n\r\n" + "line of text\r\n" * random.randint(1, 200)
                ).encode()
                c.sendmail("a@outside.test", [rcpt], msg)  # raises unless 250
                acked.append((mid, rcpt))
                n += 1
    except (OSError, smtplib.SMTPException):
        return  # the server died under us: this message was not acknowledged


def message_ids(messages: list[bytes]) -> Counter[str]:
    ids: Counter[str] = Counter()
    for m in messages:
        head = m.split(b"\r\n\r\n", 1)[0]
        for line in head.split(b"\r\n"):
            if line.startswith(b"Message-ID: <"):
                ids[line[13:].split(b"@")[0].decode()] += 1
    return ids


@pytest.mark.slow
def test_kill_9_loses_nothing_that_was_acknowledged(
    pymta_process: Callable[..., ServerProcess],
) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["addresses"].append(
            {"address": "fwd@example.test", "destinations": ["bob", "someone@remote.test"]}
        )

    srv = pymta_process(edit)
    acked: list[tuple[str, str]] = []
    rng = random.Random(20231226)
    for round_no in range(ROUNDS):
        if round_no:
            srv.start()
        stop = threading.Event()
        workers = [
            threading.Thread(target=sender, args=(srv.port, w, round_no, acked, stop))
            for w in range(4)
        ]
        for w in workers:
            w.start()
        time.sleep(rng.uniform(0.2, 0.8))
        srv.kill()  # SIGKILL, mid-transaction
        stop.set()
        for w in workers:
            w.join(10)
    assert len(acked) > 100, "the clients should have got many messages through"
    print(f"{len(acked)} messages acknowledged over {ROUNDS} kill -9 rounds")

    expected: dict[str, Counter[str]] = {"alice": Counter(), "bob": Counter(), "queue": Counter()}
    for mid, rcpt in acked:
        for place in TARGETS[rcpt]:
            expected[place][mid] += 1

    found = {user: message_ids(srv.messages(user)) for user in ("alice", "bob")}
    config = load_config(srv.config_path)
    queue = Queue(config.server.data_dir / "queue", config.queue)
    entries = queue.list()
    found["queue"] = message_ids([e.message_path.read_bytes() for e in entries if e.message_path])
    corrupt = config.server.data_dir / "queue" / "corrupt"
    assert not corrupt.exists() or not any(corrupt.iterdir()), "queue entries went corrupt"
    assert all(e.message_path and e.message_path.exists() for e in entries)
    for place, mids in expected.items():
        missing = [m for m in mids if found[place][m] == 0]
        assert not missing, f"{place}: acknowledged but lost: {missing[:10]}"
        doubled = [m for m in mids if found[place][m] > 1]
        assert not doubled, f"{place}: acknowledged message stored twice: {doubled[:10]}"

    async def check_index() -> None:
        store = Store(config.server.data_dir, hostname="check")
        try:
            for user in ("alice", "bob"):
                ref = MailboxRef(kind="user", name=user, domain="example.test")
                metas = await store.messages(ref, "INBOX")
                uids = [m.uid for m in metas]
                assert uids == sorted(set(uids)), f"{user}: UIDs not unique and increasing"
                assert len(metas) == len(srv.messages(user)), f"{user}: index and Maildir differ"
                usage = await store.usage(ref)
                assert usage.messages == len(metas)
        finally:
            await store.close()

    asyncio.run(check_index())

"""IMAP latency and idle-connection memory on a big folder, against any IMAP server.

    .venv/bin/python benchmarks/imap.py HOST PORT USER PASSWORD [--tls | --starttls]
        [--insecure | --cafile PEM] [--messages 20000] [--folder NAME] [--populate]
        [--keep] [--runs 5] [--connections 500] [--server-pid PID]

Without --folder it creates a fresh folder `bench-<time>`, fills it with --messages
realistic 2-20 KB messages by APPEND (benchmarks/imap_populate.py) and deletes it at the
end unless --keep. With --folder it uses that folder as it is, or fills it first with
--populate. Then it times, each --runs times, from writing the command to reading its
tagged OK: SELECT, UID FETCH 1:* (FLAGS), FETCH 1:* (ENVELOPE), FETCH 1:* (BODYSTRUCTURE),
SEARCH SUBJECT, STORE 1:* +FLAGS (\\Flagged) and back, SEARCH BODY; and prints first,
min and median next to the targets of pymta's issue 4 (set for 20,000 messages over TLS).

Then it opens --connections logged-in idle connections (TLS when asked; 0 skips this) and,
with --server-pid, reports the server's resident memory per connection: VmRSS and PSS
summed over the process and all its descendants (Dovecot runs one imap-login and one imap
process per TLS session), before and after; the target is judged on RSS for a
one-process server and on PSS for a forking one. It checks with a NOOP that every
connection is still alive, so `--connections 2000` checks that the server holds 2,000 at
once. Memory is best measured on a freshly started server with `--runs 0` (after the big
FETCHes a server's heap has room that new connections reuse unseen).

The client (benchmarks/imap_client.py) is a minimal asyncio protocol written for this:
raw tagged commands; responses read into one reused buffer and scanned with bytes.find
for literals ({n}) and our tags, at about 1 GB/s, so its own cost stays small next to the
server's (the 7 MB answer to FETCH 1:* (ENVELOPE) on 20,000 messages costs it about 7 ms,
mostly while the server is still sending).

A reference Dovecot on loopback: benchmarks/dovecot/run.sh (it prints the command line).
pymta: `python -m pymta -c CONF serve` with an IMAP listener such as
    [listeners.imaps]
    protocol = "imap"
    addresses = ["127.0.0.1"]
    port = 10993
    tls = "implicit"
and [limits] max_connections and max_connections_per_ip above --connections.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import ssl
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from imap_client import BenchError, ImapConnection, Reply, quote
from imap_populate import BODY_WORD, SUBJECT_WORD, MessageFactory, populate

# Targets of issue 4, in milliseconds, for a 20,000-message folder over TLS.
TARGET_MS = {
    "SELECT": 80,
    "UID FETCH 1:* (FLAGS)": 40,
    "FETCH 1:* (ENVELOPE)": 400,
    "FETCH 1:* (BODYSTRUCTURE)": 100,
    "SEARCH SUBJECT": 80,
    "STORE 1:* +FLAGS (\\Flagged)": 600,
    "STORE 1:* -FLAGS (\\Flagged)": 600,
    "SEARCH BODY": 2500,
}
TARGET_KB_PER_CONNECTION = 200


# --- measuring -------------------------------------------------------------------------


def count_fetches(data: bytes) -> int:
    return data.count(b" FETCH (")


def count_search(data: bytes) -> int:
    """Hits in a SEARCH (RFC 3501 §7.2.5) or ESEARCH ALL (RFC 9051 §7.3.4) response."""
    for line in data.split(b"\r\n"):
        upper = line.upper()
        if upper.startswith(b"* SEARCH"):
            return len(line.split()) - 2
        if upper.startswith(b"* ESEARCH"):
            words = line.split()
            for i, w in enumerate(words[:-1]):
                if w.upper() == b"COUNT":
                    return int(words[i + 1])
                if w.upper() == b"ALL":
                    total = 0
                    for r in words[i + 1].split(b","):
                        lo, _, hi = r.partition(b":")
                        total += abs(int(hi or lo) - int(lo)) + 1
                    return total
            return 0
    return -1


def exists_of(data: bytes) -> int:
    for line in data.split(b"\r\n"):
        words = line.split()
        if len(words) == 3 and words[0] == b"*" and words[2].upper() == b"EXISTS":
            return int(words[1])
    return -1


@dataclass
class Timing:
    name: str
    samples_ms: list[float]
    check: str  # what the responses contained, for the reader to judge

    def row(self) -> str:
        target = TARGET_MS.get(self.name)
        first, low = self.samples_ms[0], min(self.samples_ms)
        median = statistics.median(self.samples_ms)
        verdict = ""
        if target is not None:
            verdict = f"≤ {target:>5} ms {'ok' if median <= target else 'OVER'}"
        return (
            f"{self.name:<32}{first:>10.1f}{low:>10.1f}{median:>10.1f}  {verdict:<16}{self.check}"
        )


async def time_command(
    conn: ImapConnection,
    name: str,
    command: str,
    runs: int,
    verify: Callable[[bytes], str],
    before: Callable[[], Awaitable[None]] | None = None,
) -> Timing:
    samples, check = [], ""
    for _ in range(runs):
        if before is not None:
            await before()
        reply = (await conn.run(command)).check(name)
        samples.append(reply.elapsed_s * 1000)
        check = verify(reply.data)
    return Timing(name, samples, check)


@dataclass(frozen=True)
class Memory:
    rss: int  # bytes, VmRSS summed over the process tree
    pss: int  # bytes, proportional set size summed (shared pages divided among sharers)
    processes: int


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, from /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, []))
    return tree


def _kb_field(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> Memory:
    tree = process_tree(pid)
    rss = sum(_kb_field(f"/proc/{p}/status", "VmRSS:") for p in tree)
    pss = sum(_kb_field(f"/proc/{p}/smaps_rollup", "Pss:") for p in tree)
    return Memory(rss, pss, len(tree))


def raise_nofile(needed: int) -> int:
    """Raise this process's RLIMIT_NOFILE soft limit (and the hard one, as root)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed
    new = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return new


# --- the benchmark ---------------------------------------------------------------------


@dataclass
class Options:
    host: str
    port: int
    user: str
    password: str
    tls: str  # none, implicit, starttls
    ctx: ssl.SSLContext | None
    messages: int
    folder: str | None
    populate: bool
    keep: bool
    runs: int
    connections: int
    open_concurrency: int
    server_pid: int | None
    settle_s: float
    subject_word: str
    body_word: str

    async def connect(self) -> ImapConnection:
        conn = await ImapConnection.open(self.host, self.port, self.tls, self.ctx)
        try:
            await conn.login(self.user, self.password)
        except BaseException:
            conn.close()
            raise
        return conn


def mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


async def prepare_folder(opts: Options, conn: ImapConnection) -> tuple[str, bool, int | None]:
    """(folder, created by us, messages we appended or None)."""
    folder, created = opts.folder, False
    if folder is None:
        folder = f"bench-{int(time.time())}"
    listing = await conn.run(f'LIST "" {quote(folder)}')
    if b"* LIST" not in listing.check("LIST").data:
        (await conn.run(f"CREATE {quote(folder)}")).check("CREATE")
        created = True
    if not (created or opts.populate):
        return folder, False, None
    factory = MessageFactory()
    mode = "pipelined, LITERAL+" if "LITERAL+" in conn.capabilities else "synchronising literals"
    print(f"populating {folder} with {opts.messages} messages ({mode}) ...", flush=True)

    def progress(done: int, total: int, nbytes: int) -> None:
        if done % 5000 == 0:
            print(f"  {done}/{total} ({mb(nbytes)})", flush=True)

    seconds, nbytes = await populate(conn, folder, opts.messages, factory, progress=progress)
    print(
        f"populated {opts.messages} messages ({mb(nbytes)}) in {seconds:.1f} s: "
        f"{opts.messages / seconds:.0f} APPEND/s"
    )
    return folder, created, opts.messages


async def run_timings(
    opts: Options, conn: ImapConnection, folder: str, appended: int | None
) -> list[Timing]:
    selected = False

    async def unselect() -> None:
        nonlocal selected
        if selected:
            cmd = "UNSELECT" if "UNSELECT" in conn.capabilities else "CLOSE"
            (await conn.run(cmd)).check(cmd)

    def seen_exists(data: bytes) -> str:
        nonlocal selected
        selected = True
        return f"{exists_of(data)} EXISTS"

    def fetches(data: bytes) -> str:
        return f"{count_fetches(data)} FETCH responses"

    def hits(expected: int | None) -> Callable[[bytes], str]:
        def verify(data: bytes) -> str:
            n = count_search(data)
            return f"{n} hits" + (f" (expected {expected})" if expected is not None else "")

        return verify

    factory = MessageFactory()
    subject_expected = body_expected = None
    if appended is not None and opts.subject_word == SUBJECT_WORD:
        subject_expected = factory.expected_subject_hits(appended)
    if appended is not None and opts.body_word == BODY_WORD:
        body_expected = factory.expected_body_hits(appended)

    runs = opts.runs
    timings = [
        await time_command(conn, "SELECT", f"SELECT {quote(folder)}", runs, seen_exists, unselect)
    ]
    for name, command, verify in [
        ("UID FETCH 1:* (FLAGS)", "UID FETCH 1:* (FLAGS)", fetches),
        ("FETCH 1:* (ENVELOPE)", "FETCH 1:* (ENVELOPE)", fetches),
        ("FETCH 1:* (BODYSTRUCTURE)", "FETCH 1:* (BODYSTRUCTURE)", fetches),
        ("SEARCH SUBJECT", f"SEARCH SUBJECT {quote(opts.subject_word)}", hits(subject_expected)),
    ]:
        timings.append(await time_command(conn, name, command, runs, verify))
    timings.extend(await time_flag_round_trip(conn, runs, fetches))
    timings.append(
        await time_command(
            conn, "SEARCH BODY", f"SEARCH BODY {quote(opts.body_word)}", runs, hits(body_expected)
        )
    )
    await unselect()
    return timings


async def time_flag_round_trip(
    conn: ImapConnection, runs: int, verify: Callable[[bytes], str]
) -> tuple[Timing, Timing]:
    """STORE 1:* +FLAGS (\\Flagged), then -FLAGS, `runs` times: each run sets and then
    clears the flag on every message."""
    plus: list[float] = []
    minus: list[float] = []
    check = ""
    for _ in range(runs):
        for samples, sign in ((plus, "+"), (minus, "-")):
            reply = (await conn.run(f"STORE 1:* {sign}FLAGS (\\Flagged)")).check("STORE")
            samples.append(reply.elapsed_s * 1000)
            check = verify(reply.data)
    return (
        Timing("STORE 1:* +FLAGS (\\Flagged)", plus, check),
        Timing("STORE 1:* -FLAGS (\\Flagged)", minus, check),
    )


async def open_idle(opts: Options) -> tuple[list[ImapConnection], list[str], float]:
    """Open and log in opts.connections connections, a few at a time."""
    gate = asyncio.Semaphore(opts.open_concurrency)

    async def one() -> ImapConnection:
        async with gate:
            return await opts.connect()

    start = time.perf_counter()
    results = await asyncio.gather(
        *(one() for _ in range(opts.connections)), return_exceptions=True
    )
    elapsed = time.perf_counter() - start
    conns = [r for r in results if isinstance(r, ImapConnection)]
    errors = sorted({repr(r) for r in results if not isinstance(r, ImapConnection)})
    return conns, errors, elapsed


async def idle_test(opts: Options) -> None:
    limit = raise_nofile(opts.connections + 256)
    tls = {"none": "plain", "implicit": "TLS", "starttls": "STARTTLS"}[opts.tls]
    print(f"\nidle logged-in {tls} connections: {opts.connections} (RLIMIT_NOFILE {limit})")
    before = tree_memory(opts.server_pid) if opts.server_pid else None
    conns, errors, elapsed = await open_idle(opts)
    print(f"opened and logged in {len(conns)}/{opts.connections} in {elapsed:.1f} s")
    for e in errors[:5]:
        print(f"  failure: {e}")
    try:
        await asyncio.sleep(opts.settle_s)
        after = tree_memory(opts.server_pid) if opts.server_pid else None
        replies = await asyncio.gather(
            *(c.run("NOOP", timeout=60) for c in conns), return_exceptions=True
        )
        alive = sum(1 for r in replies if isinstance(r, Reply) and r.status == "OK")
        print(f"held at once: {alive}/{opts.connections} answered NOOP")
        if before is not None and after is not None and conns:
            n = len(conns)
            rss_kb = (after.rss - before.rss) / n / 1024
            pss_kb = (after.pss - before.pss) / n / 1024
            # A forking server (Dovecot: an imap-login and an imap process per TLS session)
            # shares its libraries between processes: summed RSS counts them once per
            # process, PSS divides them among the sharers, so PSS is its measure. For one
            # process RSS is exact, and PSS drifts with pages shared with other programs.
            one_process = before.processes == after.processes == 1
            judged, name = (rss_kb, "RSS") if one_process else (pss_kb, "PSS")
            verdict = "ok" if judged <= TARGET_KB_PER_CONNECTION else "OVER"
            print(
                f"server memory (pid {opts.server_pid} and descendants): "
                f"RSS {mb(before.rss)} -> {mb(after.rss)}, "
                f"PSS {mb(before.pss)} -> {mb(after.pss)}, "
                f"processes {before.processes} -> {after.processes}"
            )
            print(
                f"per idle connection: {name} {judged:.0f} KB "
                f"(target ≤ {TARGET_KB_PER_CONNECTION} KB {verdict}); "
                f"summed RSS {rss_kb:.0f} KB, PSS {pss_kb:.0f} KB"
            )
        elif opts.server_pid is None:
            print("server memory: not measured (give --server-pid)")
    finally:
        for c in conns:
            c.transport.write(b"z LOGOUT\r\n")
            c.close()
        await asyncio.sleep(0.5)


async def bench(opts: Options) -> int:
    conn = await opts.connect()
    tls = {"none": "no TLS", "implicit": "implicit TLS", "starttls": "STARTTLS"}[opts.tls]
    print(f"server {opts.host}:{opts.port} ({tls}), user {opts.user}")
    folder, created, appended = await prepare_folder(opts, conn)
    try:
        if opts.runs > 0:
            timings = await run_timings(opts, conn, folder, appended)
            print(
                f"\nfolder {folder}: {timings[0].check}; {opts.runs} runs each; "
                f"targets are for 20,000 messages over TLS"
            )
            print(f"{'operation':<32}{'first ms':>10}{'min ms':>10}{'median ms':>10}  target")
            for t in timings:
                print(t.row())
        if opts.connections > 0:
            await idle_test(opts)
    finally:
        if created and not opts.keep:
            with contextlib.suppress(BenchError, asyncio.TimeoutError):
                (await conn.run(f"DELETE {quote(folder)}")).check("DELETE")
                print(f"deleted folder {folder}")
        elif created:
            print(f"kept folder {folder}")
        await conn.logout()
    return 0


def parse_args(argv: list[str] | None = None) -> Options:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("user")
    ap.add_argument("password")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--tls", action="store_true", help="implicit TLS (port 993)")
    mode.add_argument("--starttls", action="store_true", help="STARTTLS (port 143)")
    ap.add_argument("--insecure", action="store_true", help="do not check the certificate")
    ap.add_argument("--cafile", help="trust this PEM certificate (a self-signed server)")
    ap.add_argument("--messages", type=int, default=20000, help="messages to APPEND")
    ap.add_argument("--folder", help="folder to use (default: a fresh bench-<time>)")
    ap.add_argument("--populate", action="store_true", help="APPEND --messages to --folder")
    ap.add_argument("--keep", action="store_true", help="do not delete the folder created")
    ap.add_argument("--runs", type=int, default=5, help="runs of each command (0: none)")
    ap.add_argument("--connections", type=int, default=500, help="idle connections (0: none)")
    ap.add_argument("--open-concurrency", type=int, default=32, help="logins in flight")
    ap.add_argument("--server-pid", type=int, help="measure this process tree's memory")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    ap.add_argument("--subject-word", default=SUBJECT_WORD, help="for SEARCH SUBJECT")
    ap.add_argument("--body-word", default=BODY_WORD, help="for SEARCH BODY")
    a = ap.parse_args(argv)
    tls = "implicit" if a.tls else "starttls" if a.starttls else "none"
    ctx = None
    if tls != "none":
        ctx = ssl.create_default_context(cafile=a.cafile)
        if a.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    return Options(
        host=a.host,
        port=a.port,
        user=a.user,
        password=a.password,
        tls=tls,
        ctx=ctx,
        messages=a.messages,
        folder=a.folder,
        populate=a.populate,
        keep=a.keep,
        runs=a.runs,
        connections=a.connections,
        open_concurrency=a.open_concurrency,
        server_pid=a.server_pid,
        settle_s=a.settle,
        subject_word=a.subject_word,
        body_word=a.body_word,
    )


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    try:
        import uvloop

        run: Callable[[Awaitable[int]], int] = uvloop.run  # type: ignore[assignment]
    except ImportError:
        run = asyncio.run  # type: ignore[assignment]
    try:
        return run(bench(opts))
    except (TimeoutError, BenchError, OSError) as e:
        print(f"error: {e!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

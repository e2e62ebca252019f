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

The client is a minimal asyncio protocol written for this: raw tagged commands; responses
read into one reused buffer and scanned with bytes.find for literals ({n}) and our tags,
at about 1 GB/s, so its own cost stays small next to the server's (the 7 MB answer to
FETCH 1:* (ENVELOPE) on 20,000 messages costs it about 7 ms, mostly while the server is
still sending).

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
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent))

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


class BenchError(Exception):
    """The server answered something the benchmark cannot go on from."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One command's outcome: the tagged line, the untagged data before it, the timing."""

    status: str  # OK, NO or BAD
    line: bytes  # the tagged line without CRLF
    data: bytes  # untagged responses received while the command ran
    elapsed_s: float  # from writing the command to reading its tagged line

    def check(self, what: str) -> Reply:
        if self.status != "OK":
            raise BenchError(f"{what}: {self.line.decode(errors='replace')}")
        return self


class _Finder:
    """Incremental find of one needle in a filling buffer: each byte is searched once."""

    __slots__ = ("at", "needle", "until")

    def __init__(self, needle: bytes) -> None:
        self.needle = needle
        self.at = -1  # a match at or after the scan position, or -1
        self.until = 0  # no match starts before this (besides `at`)

    def next(self, buf: bytearray, pos: int, end: int) -> int:
        if self.at >= pos:
            return self.at
        i = buf.find(self.needle, max(pos, self.until), end)
        self.at = i
        if i < 0:
            self.until = max(pos, end - len(self.needle) + 1)
        return i

    def shift(self, n: int) -> None:
        self.at = self.at - n if self.at >= n else -1
        self.until = max(0, self.until - n)


class ImapProtocol(asyncio.BufferedProtocol):
    """Reads responses: finds tagged lines and continuation requests outside literals.

    The transport reads straight into one buffer that is reused from response to response
    (a BufferedProtocol: no per-read bytes objects, no fresh memory to fault in), and
    only the bytes just read are searched. The buffer always starts with CRLF (a
    sentinel), so every response line, the first included, is found as CRLF followed by
    its first byte: "*" untagged, "+" continuation (RFC 9051 §7.5), anything else one of
    our tags ("t<n>"). A line ending in "{n}" is followed by n bytes of literal (RFC 9051
    §4.3), skipped unscanned.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray(1 << 18)
        self.buf[0:2] = b"\r\n"
        self.end = 2  # bytes of buf filled
        self.pos = 0  # everything before is scanned (and outside literals)
        # One byte is found at memchr speed, three at a few GB/s: "}" is rare in responses,
        # so each hit is checked to be the end of "{n}" CRLF in Python.
        self._literal = _Finder(b"}")
        self._tagged = _Finder(b"\r\nt")
        self._continuation = _Finder(b"\r\n+")
        loop = asyncio.get_running_loop()
        self.greeting: asyncio.Future[bytes] = loop.create_future()
        # Not awaited when the connection fails before the greeting: no "never retrieved".
        self.greeting.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.waiters: dict[bytes, tuple[asyncio.Future[Reply], float]] = {}
        self.continuation: asyncio.Future[bytes] | None = None
        self._can_write = asyncio.Event()
        self._can_write.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    async def drain(self) -> None:
        await self._can_write.wait()

    def connection_lost(self, exc: Exception | None) -> None:
        self._can_write.set()
        err = BenchError(f"connection closed: {exc or 'by the server'}")
        for fut in [self.greeting, self.continuation, *(w for w, _ in self.waiters.values())]:
            if fut is not None and not fut.done():
                fut.set_exception(err)
        self.waiters.clear()

    def get_buffer(self, sizehint: int) -> memoryview:
        if len(self.buf) - self.end < 1 << 16:
            # Grow only here, while the transport holds no view of the buffer.
            self.buf.extend(bytes(len(self.buf)))
        return memoryview(self.buf)[self.end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.end += nbytes
        self._scan()

    def data_received(self, data: bytes) -> None:
        """For a transport that does not read into buffers (and for tests)."""
        view = self.get_buffer(len(data))
        n = min(len(view), len(data))
        view[:n] = data[:n]
        del view
        self.buffer_updated(n)
        if n < len(data):
            self.data_received(data[n:])

    def _consume(self, upto: int) -> None:
        """Drop the buffer up to `upto` (the CRLF that ends a line stays as the sentinel)."""
        rest = self.end - upto
        self.buf[0:rest] = self.buf[upto : self.end]
        self.end = rest
        self.pos = 0
        for f in (self._literal, self._tagged, self._continuation):
            f.shift(upto)

    def _scan(self) -> None:
        buf = self.buf
        while self.pos <= self.end:
            end = self.end
            if not self.greeting.done():
                eol = buf.find(b"\r\n", 2, end)
                if eol < 0:
                    return
                self.greeting.set_result(bytes(buf[2:eol]))
                self._consume(eol)
                continue
            lit = self._literal.next(buf, self.pos, end)
            line = self._tagged.next(buf, self.pos, end)
            if self.continuation is not None:
                cont = self._continuation.next(buf, self.pos, end)
                if cont >= 0 and (line < 0 or cont < line):
                    line = cont
            if line < 0 and lit < 0:
                return
            if lit >= 0 and (line < 0 or lit < line):
                if lit + 3 > end:
                    return  # is it "}" CRLF? wait for two more bytes
                self.pos = self._after_literal(lit)
                continue
            eol = buf.find(b"\r\n", line + 2, end)
            if eol < 0:
                return
            self._complete(line, eol)

    def _after_literal(self, close: int) -> int:
        """Where scanning goes on after the "}" at `close`: past the literal that a
        "{n}" or "~{n}" CRLF announces, else just past the "}"."""
        buf = self.buf
        if buf[close + 1 : close + 3] != b"\r\n":
            return close + 1
        brace = buf.rfind(b"{", max(self.pos, close - 24), close)
        digits = bytes(buf[brace + 1 : close]).rstrip(b"+") if brace >= 0 else b""
        if not digits.isdigit():
            return close + 1
        return close + 3 + int(digits)

    def _complete(self, line: int, eol: int) -> None:
        now = time.perf_counter()
        text = bytes(self.buf[line + 2 : eol])
        if text.startswith(b"+"):
            go_on = self.continuation
            self.continuation = None
            self._consume(eol)
            if go_on is not None and not go_on.done():
                go_on.set_result(text)
            return
        tag, _, rest = text.partition(b" ")
        waiter = self.waiters.pop(tag, None)
        data = bytes(self.buf[2 : line + 2]) if waiter is not None else b""
        self._consume(eol)
        if waiter is None:
            return
        fut, sent = waiter
        status = rest.split(b" ", 1)[0].decode(errors="replace").upper()
        if not fut.done():
            fut.set_result(Reply(status, text, data, now - sent))


def quote(s: str) -> str:
    """An IMAP quoted string (RFC 9051 §4.3): backslash and double quote escaped."""
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapConnection:
    """One client connection: send tagged commands, await their replies."""

    def __init__(self, protocol: ImapProtocol, transport: asyncio.Transport) -> None:
        self.protocol = protocol
        self.transport = transport
        self.capabilities: set[str] = set()
        self._next_tag = 0

    @classmethod
    async def open(
        cls, host: str, port: int, tls: str, ctx: ssl.SSLContext | None, timeout: float = 30
    ) -> ImapConnection:
        loop = asyncio.get_running_loop()
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(
                ImapProtocol,
                host,
                port,
                ssl=ctx if tls == "implicit" else None,
                server_hostname=host if tls == "implicit" else None,
            ),
            timeout,
        )
        conn = cls(protocol, transport)
        greeting = await asyncio.wait_for(protocol.greeting, timeout)
        if not greeting.upper().startswith(b"* OK"):
            conn.close()
            raise BenchError(f"greeting: {greeting.decode(errors='replace')}")
        conn._capabilities_from(greeting)
        if not conn.capabilities:
            await conn.refresh_capabilities()
        if tls == "starttls":
            assert ctx is not None
            await conn.starttls(ctx, host)
        return conn

    def _capabilities_from(self, text: bytes) -> bool:
        upper = text.upper()
        for marker in (b"[CAPABILITY ", b"* CAPABILITY "):
            i = upper.find(marker)
            if i >= 0:
                words = text[i + len(marker) :].split(b"]", 1)[0].split(b"\r\n", 1)[0]
                self.capabilities = {w.decode().upper() for w in words.split()}
                return True
        return False

    async def refresh_capabilities(self) -> None:
        reply = (await self.run("CAPABILITY")).check("CAPABILITY")
        self._capabilities_from(reply.data)

    async def starttls(self, ctx: ssl.SSLContext, host: str) -> None:
        if "STARTTLS" not in self.capabilities:
            raise BenchError("the server does not offer STARTTLS")
        (await self.run("STARTTLS")).check("STARTTLS")
        loop = asyncio.get_running_loop()
        transport = await loop.start_tls(self.transport, self.protocol, ctx, server_hostname=host)
        assert transport is not None
        self.transport = self.protocol.transport = transport
        # RFC 9051 §6.2.1: capabilities learnt before TLS must be discarded.
        await self.refresh_capabilities()

    def _tag(self) -> bytes:
        self._next_tag += 1
        return b"t%d" % self._next_tag

    def send(self, command: str | bytes) -> asyncio.Future[Reply]:
        """Write one command line; the future resolves with its tagged reply."""
        if isinstance(command, str):
            command = command.encode()
        tag = self._tag()
        fut: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self.protocol.waiters[tag] = (fut, time.perf_counter())
        self.transport.write(tag + b" " + command + b"\r\n")
        return fut

    async def run(self, command: str | bytes, timeout: float = 600) -> Reply:
        return await asyncio.wait_for(self.send(command), timeout)

    async def login(self, user: str, password: str) -> None:
        if "LOGINDISABLED" in self.capabilities:
            raise BenchError("LOGINDISABLED: use --tls or --starttls")
        reply = (await self.run(f"LOGIN {quote(user)} {quote(password)}")).check("LOGIN")
        # RFC 9051 §6.2.3: a server may send new capabilities with the OK; else ask.
        if not self._capabilities_from(reply.line + b"\r\n" + reply.data):
            await self.refresh_capabilities()

    def append_nowait(
        self, folder: str, message: bytes, flags: str, date: str
    ) -> asyncio.Future[Reply]:
        """APPEND with a non-synchronising literal (RFC 7888 LITERAL+): one write."""
        head = f"APPEND {quote(folder)} ({flags}) {quote(date)} {{{len(message)}+}}\r\n"
        return self.send(head.encode() + message)

    async def append(self, folder: str, message: bytes, flags: str, date: str) -> Reply:
        """APPEND with a synchronising literal: wait for "+" before sending the message."""
        cont: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self.protocol.continuation = cont
        head = f"APPEND {quote(folder)} ({flags}) {quote(date)} {{{len(message)}}}"
        reply = self.send(head)
        either: set[asyncio.Future[Any]] = {cont, reply}
        done, _ = await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if reply in done:  # refused before the data (too big, no such folder)
            self.protocol.continuation = None
            return reply.result()
        self.transport.write(message + b"\r\n")
        return await reply

    async def drain(self) -> None:
        await self.protocol.drain()

    def close(self) -> None:
        self.transport.close()

    async def logout(self) -> None:
        with contextlib.suppress(BenchError, asyncio.TimeoutError, OSError):
            await self.run("LOGOUT", timeout=10)
        self.close()


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
    plus: list[float] = []
    minus: list[float] = []
    check = ""
    for _ in range(runs):
        for samples, sign in ((plus, "+"), (minus, "-")):
            reply = (await conn.run(f"STORE 1:* {sign}FLAGS (\\Flagged)")).check("STORE")
            samples.append(reply.elapsed_s * 1000)
            check = fetches(reply.data)
    timings.append(Timing("STORE 1:* +FLAGS (\\Flagged)", plus, check))
    timings.append(Timing("STORE 1:* -FLAGS (\\Flagged)", minus, check))
    timings.append(
        await time_command(
            conn, "SEARCH BODY", f"SEARCH BODY {quote(opts.body_word)}", runs, hits(body_expected)
        )
    )
    await unselect()
    return timings


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

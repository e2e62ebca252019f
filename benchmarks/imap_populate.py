"""Realistic test messages for benchmarks/imap.py, and filling a folder with them by APPEND.

`MessageFactory(seed).make(n)` returns message n of a reproducible mailbox: 2–20 KB, varied
senders, recipients, dates and subjects (some RFC 2047 encoded), about 60 % text/plain,
20 % multipart/alternative (text + HTML) and 20 % multipart/mixed with a base64
attachment. Every SUBJECT_EVERY-th subject holds SUBJECT_WORD and every BODY_EVERY-th text
body holds BODY_WORD (never in a header), so SEARCH results can be checked.

`populate(conn, folder, count)` APPENDs them one command per message (no MULTIAPPEND):
pipelined with non-synchronising literals when the server advertises LITERAL+ (RFC 7888),
otherwise one synchronising literal at a time (RFC 9051 §4.3: wait for "+" before the data).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from imap_client import ImapConnection, Reply

SUBJECT_WORD = "invoice"
SUBJECT_EVERY = 20
BODY_WORD = "xylophone"
BODY_EVERY = 500

# Word lists as strings split once (SIM905 would have them as 150-line literals).
_FIRST = "Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Mallory Niaj Olivia".split()  # noqa: SIM905
_LAST = "Smith Jones Müller García Rossi Dubois Nowak Kowalski Jensen Silva Tanaka".split()  # noqa: SIM905
_DOMAINS = ["example.org", "example.net", "mail.example.com", "lists.example.edu"]
_TOPICS = (  # noqa: SIM905
    "meeting notes|quarterly report|travel plans|build failure|lunch on friday|"
    "release candidate|contract draft|server migration|holiday schedule|budget review|"
    "design proposal|customer feedback|weekly status|security advisory|team offsite"
).split("|")
_PREFIXES = ["", "", "", "Re: ", "Re: ", "Fwd: ", "RE: AW: "]
_WORDS = (  # noqa: SIM905
    "the a of and to in is that for it as with was on be by this are from at or an have "
    "not but which they you we were their has been more one all would there some other "
    "about out time only could new these two may first then do any like my now over such "
    "our man me even most made after also did many before must through back years where "
    "much your way well down should because each just those people how too little state "
    "good very make world still own see men work long get here between both life being "
    "under never day same another know while last might us great old year off come since "
    "against go came right used take three server mailbox folder message deliver queue "
    "schedule review budget contract release draft report meeting project customer"
).split()
_ATTACHMENTS = [
    ("application/pdf", "report.pdf"),
    ("image/png", "screenshot.png"),
    ("image/jpeg", "photo.jpg"),
    ("application/zip", "archive.zip"),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "figures.xlsx"),
]
_EPOCH = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)


def _rfc2047(text: str) -> str:
    """An RFC 2047 Q-encoded word (UTF-8) for a header value with non-ASCII text."""
    out = []
    for ch in text.encode():
        c = chr(ch)
        if c == " ":
            out.append("_")
        elif c.isalnum() and ch < 128:
            out.append(c)
        else:
            out.append(f"={ch:02X}")
    return "=?UTF-8?Q?" + "".join(out) + "?="


class MessageFactory:
    """Reproducible messages: the same seed and number always give the same bytes."""

    def __init__(self, seed: int = 4) -> None:
        rng = random.Random(seed)
        self.seed = seed
        # A pool of paragraphs, built once: composing messages from it keeps generation
        # of 20,000 messages to a few seconds.
        self.paragraphs = [self._paragraph(rng, rng.randint(40, 120)) for _ in range(300)]

    @staticmethod
    def _paragraph(rng: random.Random, words: int) -> str:
        text = " ".join(rng.choice(_WORDS) for _ in range(words))
        lines, line = [], ""
        for word in text.split():
            if len(line) + len(word) + 1 > 72:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        return "\r\n".join(lines).capitalize() + ".\r\n"

    @staticmethod
    def _person(rng: random.Random) -> tuple[str, str]:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        addr = f"{first.lower()}.{last.lower().replace('ü', 'ue')}@{rng.choice(_DOMAINS)}"
        name = f"{first} {last}"
        return (_rfc2047(name) if not name.isascii() else f'"{name}"'), addr

    def subject(self, n: int) -> str:
        rng = random.Random(self.seed * 1_000_003 + n * 7 + 1)
        topic = rng.choice(_TOPICS)
        if n % SUBJECT_EVERY == 0:
            topic = f"{SUBJECT_WORD} {rng.randint(1000, 9999)} for {topic}"
        subject = f"{rng.choice(_PREFIXES)}{topic} #{n}"
        if rng.random() < 0.1:
            return _rfc2047(subject + " — ünïcode")
        return subject

    def internal_date(self, n: int) -> datetime:
        return _EPOCH + timedelta(minutes=17 * n)

    def flags(self, n: int) -> str:
        rng = random.Random(self.seed * 31 + n)
        flags = []
        if rng.random() < 0.8:
            flags.append("\\Seen")
        if rng.random() < 0.1:
            flags.append("\\Answered")
        return " ".join(flags)

    def _text(self, rng: random.Random, n: int, size: int) -> str:
        parts: list[str] = []
        total = 0
        while total < size:
            p = rng.choice(self.paragraphs)
            parts.append(p)
            total += len(p) + 2
        if n % BODY_EVERY == 0:
            parts.insert(rng.randrange(len(parts) + 1), f"The {BODY_WORD} is in the attic.\r\n")
        return "\r\n".join(parts)

    def make(self, n: int) -> bytes:
        """Message number n (from 0) with CRLF line ends, as SMTP would have delivered it."""
        rng = random.Random(self.seed * 1_000_003 + n * 7)
        size = int(2048 * (10 ** rng.uniform(0, 1)))  # 2-20 KB, more small than big
        from_name, from_addr = self._person(rng)
        to = [self._person(rng) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        date = self.internal_date(n) - timedelta(seconds=rng.randint(5, 300))
        head = [
            f"Return-Path: <{from_addr}>",
            f"Received: from mx{rng.randint(1, 9)}.{from_addr.split('@')[1]} "
            f"(mx.{from_addr.split('@')[1]} [192.0.2.{rng.randint(1, 254)}])",
            f"\tby mail.example.test with ESMTPS id {rng.getrandbits(48):012x};",
            f"\t{date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
            f"Message-ID: <{rng.getrandbits(64):016x}.{n}@{from_addr.split('@')[1]}>",
            f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}",
            f"From: {from_name} <{from_addr}>",
            "To: " + ", ".join(f"{name} <{addr}>" for name, addr in to),
        ]
        if rng.random() < 0.3:
            cc_name, cc_addr = self._person(rng)
            head.append(f"Cc: {cc_name} <{cc_addr}>")
        if rng.random() < 0.3:
            head.append(f"In-Reply-To: <{rng.getrandbits(64):016x}@{_DOMAINS[0]}>")
        head += [f"Subject: {self.subject(n)}", "MIME-Version: 1.0"]
        kind = rng.random()
        if kind < 0.6:
            head.append("Content-Type: text/plain; charset=UTF-8; format=flowed")
            head.append("Content-Transfer-Encoding: 7bit")
            body = self._text(rng, n, size - 700)
        elif kind < 0.8:
            boundary = f"=_alt_{rng.getrandbits(40):010x}"
            head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
            text = self._text(rng, n, (size - 900) // 2)
            html = (
                "<html><body><p>" + text.replace("\r\n\r\n", "</p>\r\n<p>") + "</p></body></html>"
            )
            body = (
                f"--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                f"Content-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n"
                f"--{boundary}\r\nContent-Type: text/html; charset=UTF-8\r\n"
                f"Content-Transfer-Encoding: 7bit\r\n\r\n{html}\r\n--{boundary}--\r\n"
            )
        else:
            boundary = f"=_mixed_{rng.getrandbits(40):010x}"
            head.append(f'Content-Type: multipart/mixed; boundary="{boundary}"')
            text = self._text(rng, n, 400)
            ctype, name = rng.choice(_ATTACHMENTS)
            raw = rng.randbytes(max(256, (size - len(text) - 1200) * 3 // 4))
            encoded = base64.encodebytes(raw).decode().replace("\n", "\r\n")
            body = (
                "This is a multi-part message in MIME format.\r\n"
                f"--{boundary}\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                f"Content-Transfer-Encoding: 7bit\r\n\r\n{text}\r\n"
                f'--{boundary}\r\nContent-Type: {ctype}; name="{name}"\r\n'
                f'Content-Disposition: attachment; filename="{name}"\r\n'
                f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}--{boundary}--\r\n"
            )
        return ("\r\n".join(head) + "\r\n\r\n" + body).encode()

    def expected_subject_hits(self, count: int) -> int:
        return len(range(0, count, SUBJECT_EVERY))

    def expected_body_hits(self, count: int) -> int:
        return len(range(0, count, BODY_EVERY))


def imap_date(dt: datetime) -> str:
    """RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz" (day space-padded)."""
    return dt.strftime("%d-%b-%Y %H:%M:%S +0000").rjust(26)


async def populate(
    conn: ImapConnection,
    folder: str,
    count: int,
    factory: MessageFactory,
    *,
    window: int = 64,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[float, int]:
    """APPEND `count` messages to `folder`; returns (seconds, bytes sent)."""
    pipelined = "LITERAL+" in conn.capabilities
    in_flight: list[asyncio.Future[Reply]] = []
    total_bytes = 0
    start = time.perf_counter()
    for n in range(count):
        msg = factory.make(n)
        total_bytes += len(msg)
        date = imap_date(factory.internal_date(n))
        if pipelined:
            # RFC 7888 §3: with LITERAL+ the data follows the command at once, so many
            # APPENDs can be in flight; the window bounds what the server must buffer.
            in_flight.append(conn.append_nowait(folder, msg, factory.flags(n), date))
            if len(in_flight) >= window:
                (await in_flight.pop(0)).check("APPEND")
                await conn.drain()
        else:
            (await conn.append(folder, msg, factory.flags(n), date)).check("APPEND")
        if progress is not None and (n + 1) % 1000 == 0:
            progress(n + 1, count, total_bytes)
    for pending in in_flight:
        (await pending).check("APPEND")
    return time.perf_counter() - start, total_bytes

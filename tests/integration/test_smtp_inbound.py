"""Inbound SMTP against the real server: ESMTP extensions, TLS, smuggling, size, clients."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable
from typing import Any

import aiosmtplib
import pytest

from tests.integration.conftest import ServerThread

MSG = b"From: a@outside.test\r\nTo: alice@example.test\r\nSubject: t\r\n\r\nbody\r\n"


class Conversation:
    """A raw SMTP conversation: `send` lines, `expect` reply prefixes, in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""
        self.expect("220 ")

    def send(self, data: bytes | str) -> None:
        if isinstance(data, str):
            data = data.encode() + b"\r\n"
        self.sock.sendall(data)

    def reply(self) -> bytes:
        """One whole (possibly multi-line) reply."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed; got {lines!r}")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line)
            if line[3:4] != b"-":
                return b"\r\n".join(lines)

    def expect(self, *prefixes: str) -> list[bytes]:
        got = []
        for prefix in prefixes:
            r = self.reply()
            assert r.startswith(prefix.encode()), f"expected {prefix!r}, got {r!r}"
            got.append(r)
        return got

    def close(self) -> None:
        self.sock.close()


def test_ehlo_advertises_the_extensions(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        code, _ = c.ehlo("client.test")
        assert code == 250
        for ext in (
            "pipelining",
            "size",
            "8bitmime",
            "smtputf8",
            "enhancedstatuscodes",
            "starttls",
            "chunking",
        ):
            assert c.has_extn(ext), ext


def test_pipelined_transaction_in_one_write(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send(
        b"EHLO client\r\nMAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n"
        b"RCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
    )
    c.expect("250-", "250 2.1.0", "250 2.1.5", "550 5.1.1", "250 2.1.5", "354")
    c.send(MSG + b".\r\nQUIT\r\n")
    c.expect("250 2.0.0", "221")
    assert len(srv.messages("alice")) == 1 and len(srv.messages("bob")) == 1


def test_bdat_chunks(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send("EHLO client")
    c.expect("250-")
    first, second = MSG[:30], MSG[30:]
    c.send(b"MAIL FROM:<a@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
    c.expect("250 2.1.0", "250 2.1.5")
    c.send(b"BDAT %d\r\n" % len(first) + first)
    c.expect("250 2.0.0")
    c.send(b"BDAT %d LAST\r\n" % len(second) + second)
    c.expect("250 2.0.0")
    [msg] = srv.messages("alice")
    assert msg.endswith(MSG)


def test_bdat_without_mail_is_refused_and_its_data_consumed(
    pymta_server: Callable[..., ServerThread],
) -> None:
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send("EHLO client")
    c.expect("250-")
    c.send(b"BDAT 10 LAST\r\nNOOP NOOP!")
    c.expect("503 5.5.1")
    c.send("NOOP")
    c.expect("250 2.0.0")


def test_starttls_then_delivery_records_tls_in_received(
    pymta_server: Callable[..., ServerThread],
) -> None:
    srv = pymta_server()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", srv.port(), timeout=10) as c:
        c.starttls(context=ctx)
        c.ehlo("client.test")
        assert not c.has_extn("starttls")
        c.sendmail("a@outside.test", ["alice@example.test"], MSG)
    [msg] = srv.messages("alice")
    assert b"with ESMTPS (TLSv1." in msg


def test_starttls_discards_pipelined_plaintext_commands(
    pymta_server: Callable[..., ServerThread],
) -> None:
    """CVE-2011-0411 class: commands sent with STARTTLS before the handshake are dropped."""
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send("EHLO client")
    c.expect("250-")
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@outside.test>\r\nRCPT TO:<alice@example.test>\r\n")
    c.expect("220")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(c.sock, server_hostname="localhost")
    c.sock, c.buf = tls, b""
    c.send("EHLO client")
    c.expect("250-")
    # A MAIL now is the first one (the injected one never ran), and no stray replies wait.
    c.send("MAIL FROM:<a@outside.test>")
    c.expect("250 2.1.0")
    c.send("RCPT TO:<alice@example.test>")
    c.expect("250 2.1.5")
    c.send("DATA")
    c.expect("354")
    c.send(MSG + b".\r\n")
    c.expect("250 2.0.0")
    [msg] = srv.messages("alice")
    assert b"injected" not in msg


def test_size_refused_at_mail_and_at_end_of_data(pymta_server: Callable[..., ServerThread]) -> None:
    def edit(cfg: dict[str, Any]) -> None:
        cfg["limits"] = {"max_message_size": "10K"}

    srv = pymta_server(edit)
    c = Conversation(srv.port())
    c.send("EHLO client")
    assert b"SIZE 10240" in c.expect("250-")[0]
    c.send("MAIL FROM:<a@outside.test> SIZE=20000")
    c.expect("552 5.3.4")
    c.send("MAIL FROM:<a@outside.test>")
    c.expect("250")
    c.send("RCPT TO:<alice@example.test>")
    c.expect("250")
    c.send("DATA")
    c.expect("354")
    c.send(MSG + b"x" * 70 + b"\r\n" + (b"y" * 998 + b"\r\n") * 12 + b".\r\n")
    c.expect("552 5.3.4")
    c.send("NOOP")
    c.expect("250")
    assert srv.messages("alice") == []


SMUGGLING = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-lf": b"\r\n.\n",
    "cr-dot-crlf": b"\r.\r\n",
}


@pytest.mark.parametrize("terminator", SMUGGLING.values(), ids=SMUGGLING.keys())
def test_smuggling_never_makes_two_messages(
    pymta_server: Callable[..., ServerThread], terminator: bytes
) -> None:
    """SMTP smuggling (CVE-2023-51764): a fake end-of-data inside DATA is just content."""
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send("EHLO client")
    c.expect("250-")
    c.send("MAIL FROM:<a@outside.test>")
    c.expect("250")
    c.send("RCPT TO:<alice@example.test>")
    c.expect("250")
    c.send("DATA")
    c.expect("354")
    smuggled = (
        b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
        b"Subject: smuggled\r\n\r\nevil\r\n"
    )
    c.send(MSG + terminator + smuggled + b".\r\n")
    c.expect("250 2.0.0")
    c.send("QUIT")
    c.expect("221")
    [msg] = srv.messages("alice")
    assert b"smuggled" in msg
    assert srv.messages("bob") == []
    # Stored with canonical line ends only: no bare CR or LF survives.
    assert msg.count(b"\n") == msg.count(b"\r\n") and msg.count(b"\r") == msg.count(b"\r\n")


def test_aiosmtplib_client(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()

    async def send() -> None:
        await aiosmtplib.send(
            MSG,
            sender="a@outside.test",
            recipients=["info@example.test"],
            hostname="127.0.0.1",
            port=srv.port(),
            start_tls=True,
            validate_certs=False,
        )

    asyncio.run(send())
    assert len(srv.messages("alice")) == 1 and len(srv.messages("bob")) == 1


def test_enhanced_status_codes_on_every_reply(pymta_server: Callable[..., ServerThread]) -> None:
    srv = pymta_server()
    c = Conversation(srv.port())
    c.send("EHLO client")
    c.expect("250-")
    for command, prefix in [
        ("NOOP", "250 2.0.0"),
        ("RCPT TO:<alice@example.test>", "503 5.5.1"),
        ("DATA", "503 5.5.1"),
        ("FOO", "500 5.5."),
        ("VRFY alice", "502 5.5.1"),
        ("MAIL FROM:<a@outside.test>", "250 2.1.0"),
        ("MAIL FROM:<a@outside.test>", "503 5.5.1"),
        ("RSET", "250 2.0.0"),
        ("QUIT", "221 2.0.0"),
    ]:
        c.send(command)
        c.expect(prefix)


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks is installed by `make test`")
@pytest.mark.parametrize("tls", [[], ["--tls"]], ids=["plain", "starttls"])
def test_swaks_delivers_to_a_user(
    pymta_server: Callable[..., ServerThread], tls: list[str]
) -> None:
    """The README's check: `swaks --server ... --to alice@example.test` lands in new/."""
    srv = pymta_server()
    result = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{srv.port()}", "--to", "alice@example.test", *tls],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "250 2.0.0" in result.stdout
    [msg] = srv.messages("alice")
    assert b"This is a test mailing" in msg
    assert len(list((srv.maildir("alice") / "new").iterdir())) == 1

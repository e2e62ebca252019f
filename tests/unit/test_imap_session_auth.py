"""AUTHENTICATE through the shared SASL server (pymta.auth.sasl), and a directory outage,
as IMAP transcripts (RFC 9051 §6.2.2, RFC 4959 SASL-IR, RFC 5530 response codes)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_imap_session import PASSWORD, Env


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = Env(tmp_path, quota=10 * 1024)
    yield e
    await e.close()


class DirectoryDown:
    """A directory whose backend cannot be reached: every look-up raises OSError."""

    def __getattr__(self, name: str) -> Any:
        def unreachable(*args: Any, **kwargs: Any) -> Any:
            raise OSError("directory unreachable")

        return unreachable


async def test_plain_with_initial_response_and_authzid(env: Env) -> None:
    t = env.session()
    # RFC 5530 §3: the identity may not act as another one (no master users yet).
    await t.send(
        f"a1 AUTHENTICATE PLAIN {b64(b'bob' + bytes(1) + b'alice' + bytes(1) + b'secret')}"
    )
    t.expect("a1 NO [AUTHORIZATIONFAILED] Authorization identity not allowed")
    assert env.auth.calls == []  # refused before any password check
    # RFC 4616 §2: an authzid equal to the authcid is no other identity.
    await t.send(
        f"a2 AUTHENTICATE PLAIN {b64(b'alice' + bytes(1) + b'alice' + bytes(1) + b'secret')}"
    )
    t.expect("a2 OK [CAPABILITY ...] Logged in")


async def test_plain_exchange_cancelled_and_malformed(env: Env) -> None:
    t = env.session()
    await t.send("a1 AUTHENTICATE PLAIN")
    t.expect("+ ")
    await t.send("*")  # RFC 9051 §6.2.2: the client cancels: BAD
    t.expect("a1 BAD AUTHENTICATE cancelled")
    await t.send("a2 AUTHENTICATE PLAIN")
    t.expect("+ ")
    await t.send("not base64!")
    t.expect("a2 BAD Malformed authentication exchange")
    await t.send("a3 AUTHENTICATE PLAIN =")  # SASL-IR: an empty initial response
    t.expect("a3 BAD Malformed authentication exchange")
    await t.send(f"a4 AUTHENTICATE PLAIN {b64(bytes(1) + b'alice' + bytes(1) + b'wrong')}")
    t.expect("a4 NO [AUTHENTICATIONFAILED] Authentication failed")
    await t.send("a5 CAPABILITY")  # still not logged in, still usable
    t.expect("* CAPABILITY ...", "a5 OK CAPABILITY completed")
    assert t.session.failed_logins == 1


async def test_login_mechanism_and_unknown_mechanism(env: Env) -> None:
    t = env.session()
    await t.send("a1 AUTHENTICATE CRAM-MD5")
    t.expect("a1 NO [CANNOT] Unsupported authentication mechanism")
    await t.send("a2 authenticate login")  # mechanism names in any case
    t.expect("+ " + b64(b"Username:"))
    await t.send(b64(b"alice"))
    t.expect("+ " + b64(b"Password:"))
    await t.send(b64(PASSWORD.encode()))
    t.expect("a2 OK [CAPABILITY ...] Logged in")
    assert env.auth.calls == ["alice"]


async def test_authenticate_unavailable_directory(env: Env) -> None:
    env.auth.down = True
    t = env.session()
    await t.send(f"a1 AUTHENTICATE PLAIN {b64(bytes(1) + b'alice' + bytes(1) + b'secret')}")
    t.expect("a1 NO [UNAVAILABLE] Authentication temporarily unavailable")
    assert t.session.failed_logins == 0  # not the client's fault


async def test_logged_in_session_outlives_a_directory_outage(env: Env) -> None:
    t = await env.logged_in()
    env.holder.directory = DirectoryDown()  # type: ignore[assignment]
    # The quota of login time stands in while the directory cannot be asked.
    await t.send("q1 GETQUOTAROOT INBOX")
    t.expect('* QUOTAROOT INBOX ""', '* QUOTA "" (STORAGE 0 10)', "q1 OK GETQUOTAROOT completed")
    await t.send("a1 APPEND INBOX {20+}\r\nSubject: x\r\n\r\nbody\r\n")
    t.expect("a1 OK [APPENDUID ...")

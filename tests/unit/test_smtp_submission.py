"""Submission front end (RFC 4954 AUTH, RFC 6409): AUTH state machine, the sender rule and
DKIM at the end of DATA, over a raw wire with a fake authenticator and the fake policy."""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import ssl
from base64 import b64encode
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pymta.auth.authenticator import AuthResult, AuthStatus
from pymta.config.model import DestinationRef, Limits
from pymta.delivery.ownership import SenderOwnership, from_addresses, owns, simple_from_address
from pymta.directory.model import AddressEntry, User
from pymta.queue.dkim import DkimError
from pymta.smtp import codes
from pymta.smtp.server import SmtpListener
from pymta.smtp.submission import SubmissionStage, signing_domain
from tests.unit.test_smtp_harness import (
    HOSTNAME,
    CountingGate,
    FakePolicy,
    Wire,
    client_tls_context,
    server_tls_context,
)

MESSAGE = b"From: Alice <alice@example.test>\r\nTo: x@remote.test\r\nSubject: hi\r\n\r\nhello\r\n"


def plain(user: str, password: str) -> str:
    return b64encode(f"\0{user}\0{password}".encode()).decode()


class FakeDirectory:
    """alice@ and sales@ (an alias listing alice) are alice's; anything@catch.test is a
    catch-all to alice; bob@ is bob's."""

    def lookup(self, address: str) -> AddressEntry | None:
        address = address.lower()
        local, _, domain = address.partition("@")
        if domain == "catch.test":
            return AddressEntry(address, (DestinationRef(user="alice"),), catch_all=True)
        if domain != "example.test":
            return None
        users = {"alice": ("alice",), "sales": ("bob", "alice"), "bob": ("bob",)}.get(local)
        if users is None:
            return None
        return AddressEntry(address, tuple(DestinationRef(user=u) for u in users))


@dataclass
class Holder:
    directory: FakeDirectory = field(default_factory=FakeDirectory)


@dataclass
class FakeAuthenticator:
    """alice / alice-pass; "down" as the login: directory unavailable."""

    attempts: list[tuple[str, str]] = field(default_factory=list)

    async def authenticate(
        self, login: str, password: str, *, peer_ip: str, protocol: str
    ) -> AuthResult:
        self.attempts.append((login, protocol))
        if login == "down":
            return AuthResult(AuthStatus.UNAVAILABLE)
        if login == "alice" and password == "alice-pass":
            user = User("alice", "example.test", None, True, 0, ())
            return AuthResult(AuthStatus.OK, user)
        return AuthResult(AuthStatus.FAILED)


@dataclass
class FakeSigner:
    error: bool = False
    signed: list[str] = field(default_factory=list)

    async def sign_async(self, message: bytes, domain: str) -> bytes | None:
        if self.error:
            raise DkimError("key unusable")
        self.signed.append(domain)
        return b"DKIM-Signature: v=1; d=example.test\r\n"


@dataclass
class Submission:
    port: int
    policy: FakePolicy
    auth: FakeAuthenticator
    signer: FakeSigner
    implicit: bool

    async def session(self) -> Wire:
        tls = client_tls_context() if self.implicit else None
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", self.port, ssl=tls, server_hostname="localhost" if tls else None
        )
        wire = Wire(reader, writer)
        await wire.expect("220 ")
        await wire.send("EHLO client.example")
        await wire.expect("250-")
        return wire


@contextlib.asynccontextmanager
async def submission_server(
    tls_cert: tuple[Path, Path],
    *,
    implicit: bool = False,
    plaintext_auth: bool = False,
    submission: bool = True,
    enforce: bool = True,
) -> AsyncIterator[Submission]:
    context: ssl.SSLContext = server_tls_context(tls_cert)
    policy, auth, signer = FakePolicy(), FakeAuthenticator(), FakeSigner()
    stage = SubmissionStage(SenderOwnership(Holder(), enforce=enforce), signer)
    listener = SmtpListener(
        name="submission",
        policy=policy,
        limits=Limits(),
        hostname=HOSTNAME,
        gate=CountingGate(),
        tls_context=context,
        implicit_tls=implicit,
        submission=stage if submission else None,
        authenticator=auth if submission else None,
        plaintext_auth=plaintext_auth,
    )
    server = await asyncio.get_running_loop().create_server(
        listener.protocol_factory, "127.0.0.1", 0, ssl=context if implicit else None
    )
    try:
        yield Submission(server.sockets[0].getsockname()[1], policy, auth, signer, implicit)
    finally:
        server.close()
        listener.close_all()
        await server.wait_closed()


async def tls_session(sub: Submission) -> Wire:
    wire = await sub.session()
    await wire.send("STARTTLS")
    await wire.expect("220 2.0.0")
    await wire.starttls(client_tls_context())
    await wire.send("EHLO client.example")
    [ehlo] = await wire.expect("250-")
    assert "AUTH PLAIN LOGIN" in ehlo
    return wire


async def test_inbound_listener_refuses_auth(tls_cert: tuple[Path, Path]) -> None:
    async with submission_server(tls_cert, submission=False) as sub:
        wire = await tls_session_without_auth(sub)
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.NOT_IMPLEMENTED)
        await wire.close()


async def tls_session_without_auth(sub: Submission) -> Wire:
    wire = await sub.session()
    await wire.send("STARTTLS")
    await wire.expect("220 2.0.0")
    await wire.starttls(client_tls_context())
    await wire.send("EHLO client.example")
    [ehlo] = await wire.expect("250-")
    assert "AUTH" not in ehlo
    return wire


async def test_auth_before_tls_is_530_and_not_advertised(tls_cert: tuple[Path, Path]) -> None:
    async with submission_server(tls_cert) as sub:
        reader, writer = await asyncio.open_connection("127.0.0.1", sub.port)
        wire = Wire(reader, writer)
        await wire.expect("220 ")
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.NEED_HELO)
        await wire.send("EHLO client.example")
        [ehlo] = await wire.expect("250-")
        assert "AUTH" not in ehlo and "STARTTLS" in ehlo
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.MUST_STARTTLS)
        await wire.send("MAIL FROM:<alice@example.test>")
        await wire.expect(codes.AUTH_REQUIRED)
        assert sub.auth.attempts == []
        await wire.close()


async def test_plaintext_auth_where_allowed_then_starttls_forgets_it(
    tls_cert: tuple[Path, Path],
) -> None:
    async with submission_server(tls_cert, plaintext_auth=True) as sub:
        wire = await sub.session()
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.AUTH_OK)
        await wire.send("STARTTLS")
        await wire.expect("220 2.0.0")
        await wire.starttls(client_tls_context())
        await wire.send("EHLO client.example")
        await wire.expect("250-")
        # RFC 3207 §4.2: the session starts over, unauthenticated.
        await wire.send("MAIL FROM:<alice@example.test>")
        await wire.expect(codes.AUTH_REQUIRED)
        await wire.close()


async def test_auth_exchange_replies(tls_cert: tuple[Path, Path]) -> None:
    async with submission_server(tls_cert) as sub:
        wire = await tls_session(sub)
        await wire.send("AUTH CRAM-MD5")
        await wire.expect(codes.AUTH_MECHANISM)
        await wire.send("AUTH PLAIN not-base64!")
        await wire.expect(codes.AUTH_SYNTAX)
        await wire.send("AUTH PLAIN")
        await wire.expect("334 ")
        await wire.send("*")
        await wire.expect(codes.AUTH_CANCELLED)
        await wire.send("AUTH PLAIN " + plain("down", "x"))
        await wire.expect(codes.AUTH_UNAVAILABLE)
        await wire.send("AUTH PLAIN " + plain("alice", "wrong"))
        await wire.expect(codes.AUTH_FAILED)
        await wire.send("AUTH LOGIN " + b64encode(b"alice").decode())
        await wire.expect("334 UGFzc3dvcmQ6")  # "Password:"
        await wire.send(b64encode(b"alice-pass").decode())
        await wire.expect(codes.AUTH_OK)
        await wire.send("EHLO client.example")
        [ehlo] = await wire.expect("250-")
        assert "AUTH" not in ehlo
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.ALREADY_AUTHENTICATED)
        assert [protocol for _, protocol in sub.auth.attempts] == ["smtp"] * 3
        await wire.close()


async def test_owned_sender_is_signed_and_relayed(tls_cert: tuple[Path, Path]) -> None:
    async with submission_server(tls_cert, implicit=True) as sub:
        wire = await sub.session()
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.AUTH_OK)
        await wire.send("MAIL FROM:<sales@example.test>")
        await wire.expect(codes.SENDER_OK)
        await wire.send("RCPT TO:<alice@example.test>")
        await wire.expect(codes.RECIPIENT_OK)
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.ALREADY_AUTHENTICATED)
        await wire.send("DATA")
        await wire.expect("354")
        await wire.send_raw(MESSAGE + b".\r\n")
        await wire.expect("250 2.0.0")
        [delivery] = sub.policy.deliveries
        assert delivery.session.authenticated_user == "alice"
        assert delivery.message.startswith(b"DKIM-Signature: v=1; d=example.test\r\nReceived: ")
        assert b"with ESMTPSA" in delivery.message
        assert sub.signer.signed == ["example.test"]
        await wire.close()


@pytest.mark.parametrize(
    ("sender", "reply"),
    [
        ("bob@example.test", codes.SENDER_NOT_OWNED),
        ("alice@catch.test", codes.SENDER_NOT_OWNED),  # a catch-all owns nothing
        ("", codes.SENDER_NOT_OWNED),
        ("ALICE@Example.Test", codes.SENDER_OK),
    ],
)
async def test_envelope_sender_must_be_owned(
    tls_cert: tuple[Path, Path], sender: str, reply: codes.Reply
) -> None:
    async with submission_server(tls_cert) as sub:
        wire = await tls_session(sub)
        await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
        await wire.expect(codes.AUTH_OK)
        await wire.send(f"MAIL FROM:<{sender}>")
        await wire.expect(reply)
        await wire.close()


async def data_reply(sub: Submission, message: bytes) -> str:
    wire = await tls_session(sub)
    await wire.send("AUTH PLAIN " + plain("alice", "alice-pass"))
    await wire.expect(codes.AUTH_OK)
    await wire.send("MAIL FROM:<alice@example.test>")
    await wire.expect(codes.SENDER_OK)
    await wire.send("RCPT TO:<bob@example.test>")
    await wire.expect(codes.RECIPIENT_OK)
    await wire.send("DATA")
    await wire.expect("354")
    await wire.send_raw(message + b".\r\n")
    reply = await wire.reply()
    await wire.close()
    return reply


async def test_from_header_must_be_owned(tls_cert: tuple[Path, Path]) -> None:
    forged = MESSAGE.replace(b"alice@", b"bob@")
    async with submission_server(tls_cert) as sub:
        assert (await data_reply(sub, forged)).startswith(str(codes.FROM_NOT_OWNED))
        assert sub.policy.deliveries == [] and sub.signer.signed == []


async def test_relaxed_rule_accepts_any_sender(tls_cert: tuple[Path, Path]) -> None:
    forged = MESSAGE.replace(b"alice@", b"bob@")
    async with submission_server(tls_cert, enforce=False) as sub:
        assert (await data_reply(sub, forged)).startswith("250 2.0.0")


async def test_dkim_failure_is_451(tls_cert: tuple[Path, Path]) -> None:
    async with submission_server(tls_cert) as sub:
        sub.signer.error = True
        assert (await data_reply(sub, MESSAGE)).startswith(str(codes.DKIM_FAILED))
        assert sub.policy.deliveries == []


def test_ownership_over_the_directory() -> None:
    directory = FakeDirectory()
    assert owns(directory, "alice", "Sales@example.test")  # an alias listing her
    assert owns(directory, "bob", "sales@example.test")
    assert not owns(directory, "alice", "bob@example.test")
    assert not owns(directory, "alice", "x@catch.test")
    assert not owns(directory, "alice", "nobody@example.test")
    assert not owns(directory, "alice", "")


@pytest.mark.parametrize(
    ("head", "addresses"),
    [
        (b"From: a@x.test\r\n", ["a@x.test"]),
        (
            b"Received: from a\r\n by b\r\nFrom: A <a@x.test>,\r\n b@y.test\r\n",
            ["a@x.test", "b@y.test"],
        ),
        (b"From: a@x.test\r\nFrom: b@x.test\r\n", None),  # RFC 5322 §3.6: exactly one
        (b"To: a@x.test\r\n", None),
        (b"From: undisclosed\r\n", None),
    ],
)
def test_from_addresses(head: bytes, addresses: list[str] | None) -> None:
    assert from_addresses(head + b"\r\nbody\r\n") == addresses


@pytest.mark.parametrize(
    ("header", "domain"),
    [
        (b"From: Alice <alice@Example.TEST>", "example.test"),
        (b'From: "Smith, Alice" <alice@example.test>', "example.test"),
        (b"From: alice@example.test (Alice)", "example.test"),
        (b"From:\r\n Alice\r\n <alice@sub.example.test>", "sub.example.test"),
        (b"FROM: a@example.test, b@example.test", "example.test"),
        (b"From: a@example.test, b@other.test", None),  # two domains: whose key?
        (b"From: undisclosed:;", None),
        (b"From: not an address", None),
    ],
)
def test_signing_domain(header: bytes, domain: str | None) -> None:
    message = b"To: bob@remote.test\r\n" + header + b"\r\nSubject: x\r\n\r\nFrom: x@y.test\r\n"
    assert signing_domain(from_addresses(message)) == domain


def test_signing_domain_refuses_two_from_fields_and_none() -> None:
    assert signing_domain(from_addresses(b"From: a@a.test\r\nFrom: b@b.test\r\n\r\n")) is None
    assert signing_domain(from_addresses(b"Subject: x\r\n\r\nFrom: a@a.test\r\n")) is None


def full_parse(value: str) -> list[str] | None:
    """What the email package makes of a From: value (the path `from_addresses` takes for
    anything `simple_from_address` does not accept)."""
    try:
        header = email.policy.default.header_factory("from", value.strip())
    except Exception:
        return None
    found = [a.addr_spec for a in getattr(header, "addresses", ()) if a.username and a.domain]
    return found or None


_FROM_PIECES = st.sampled_from(
    [" ", "\t", "a", "Z", "0", ".", "-", "+", "_", "@", "<", ">", '"', "\\", ",", ";", ":",
     "(", ")", "[", "]", "=?utf-8?q?x?=", "x.test", "b@c.test", "é"]
)  # fmt: skip


_NAMES = st.one_of(
    st.text(alphabet="aZ0 \t=?-_+!#$%&*/^`{|}~'.", max_size=10),
    st.text(alphabet="aZ0 ,;:()<>@[].\\é'", max_size=8).map(lambda t: f'"{t}"'),
)
_LOCALS = st.text(alphabet="aZ0.-_+=?!#$%&*/^`{|}~'\" ()", min_size=1, max_size=8)
_DOMAINS = st.text(alphabet="ab0.-[]", min_size=1, max_size=8)
_BLANKS = st.sampled_from(["", " ", "\t"])
_STRUCTURED_FROM = st.one_of(
    st.builds("{}{}<{}@{}>{}".format, _BLANKS, _NAMES, _LOCALS, _DOMAINS, _BLANKS),
    st.builds("{}{} <{}@{}>{}".format, _BLANKS, _NAMES, _LOCALS, _DOMAINS, _BLANKS),
    st.builds("{}{}@{}{}".format, _BLANKS, _LOCALS, _DOMAINS, _BLANKS),
)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.lists(_FROM_PIECES, max_size=14).map("".join), _STRUCTURED_FROM))
def test_simple_from_parser_agrees_with_the_email_package(value: str) -> None:
    """Differential: whenever the fast path accepts a From: value, it finds exactly the
    one address the email package's RFC 5322 parser finds (so the ownership check cannot
    be fooled by a shape one of them reads differently)."""
    simple = simple_from_address(value)
    if simple is not None:
        assert full_parse(value) == [simple]


@pytest.mark.parametrize(
    "value",
    [
        " a@b.test",
        " <a@b.test>",
        " Alice <a@b.test>",
        ' "Smith, Alice" <a@b.test>',
        " John Q Public <j@x.test>",
        " =?utf-8?q?J=C3=B6rg?= <j@x.test>",
    ],
)
def test_common_from_shapes_take_the_fast_path(value: str) -> None:
    assert simple_from_address(value) is not None
    assert full_parse(value) == [simple_from_address(value)]


@pytest.mark.parametrize(
    "value",
    [
        " a@b.test (Alice)",
        ' "a\\"b" <a@b.test>',
        " a@b.test, c@d.test",
        " undisclosed:;",
        " a..b@x.test",
        " Alice <a@b.test> <c@d.test>",
        ' "mallory@evil.test" alice@example.test',
    ],
)
def test_other_shapes_go_to_the_full_parser(value: str) -> None:
    assert simple_from_address(value) is None


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "value",
    [
        " " * 20_000,
        " " * 20_000 + "x",
        "a " * 20_000 + "!",
        '"' + " " * 20_000,
        "a@" + "b-" * 20_000 + "!",
    ],
)
def test_from_fast_path_does_not_backtrack_on_long_values(value: str) -> None:
    """ReDoS regression: an earlier pattern took cubic time on a From: of blanks (a few
    thousand blanks blocked the event loop for seconds); this input took it forever."""
    assert simple_from_address(value) is None

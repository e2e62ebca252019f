"""The remote transport against real SMTP servers on loopback (aiosmtpd) and a stub resolver.

Every MX host resolves to a loopback address and the transport's port is the test server's
port; a host "down" resolves to 127.0.0.2, where nothing listens on that port.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from pymta.config.model import Secret
from pymta.queue.model import Outcome, QueueEntry, QueueRecipient
from pymta.queue.mx import CachingResolver, DnsError, MxHost, resolve_addresses, resolve_mx
from pymta.queue.remote import RemoteTransport, _orcpt_param
from tests.dns.server import DnsServer

MESSAGE = b"From: a@here.test\r\nTo: b@there.test\r\nSubject: hi\r\n\r\nHello.\r\n"


# --- a resolver stub: answers from a table, as dns.asyncresolver.Resolver would -----------


class StubResolver:
    def __init__(self, records: dict[tuple[str, str], list[str] | Exception]) -> None:
        self.records = records
        self.queries: list[tuple[str, str]] = []

    async def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        self.queries.append((qname, rdtype))
        answer = self.records.get((qname, rdtype))
        if answer is None:
            if any(name == qname for name, _ in self.records):
                raise dns.resolver.NoAnswer()
            raise dns.resolver.NXDOMAIN()
        if isinstance(answer, Exception):
            raise answer
        rdtype_value = dns.rdatatype.from_text(rdtype)
        return [dns.rdata.from_text(dns.rdataclass.IN, rdtype_value, text) for text in answer]


def zone(**domains: list[str]) -> dict[tuple[str, str], list[str] | Exception]:
    """MX records per domain; mx hosts named mx*.test resolve to 127.0.0.1."""
    records: dict[tuple[str, str], list[str] | Exception] = {}
    for domain, mxs in domains.items():
        records[(domain.replace("_", "."), "MX")] = mxs
    records[("mx.test", "A")] = ["127.0.0.1"]
    records[("mx2.test", "A")] = ["127.0.0.1"]
    records[("down.test", "A")] = ["127.0.0.2"]
    return records


# --- test SMTP servers --------------------------------------------------------------------


class Handler:
    """Replies per recipient from `rcpt_replies`; records what it was given."""

    def __init__(
        self,
        rcpt_replies: dict[str, str] | None = None,
        data_reply: str = "250 2.0.0 Ok: queued",
        drop_at_data: bool = False,
        mail_reply: str = "250 OK",
    ) -> None:
        self.mail_reply = mail_reply
        self.rcpt_replies = rcpt_replies or {}
        self.data_reply = data_reply
        self.drop_at_data = drop_at_data
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.mail_options: list[list[str]] = []
        self.ehlo_count = 0
        self.quits = 0
        self.tls: list[bool] = []
        self.auth_users: list[str] = []

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.ehlo_count += 1
        return responses

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.quits += 1
        return "221 2.0.0 Bye"

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        envelope.mail_from = address
        self.mail_options.append(list(options))
        return self.mail_reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.rcpt_replies.get(address, "250 OK")
        if reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return reply

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.drop_at_data:
            assert server.transport is not None
            server.transport.close()
            return "421 going away"
        assert envelope.content is not None and envelope.mail_from is not None
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), content))
        self.tls.append(session.ssl is not None)
        return self.data_reply


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def servers() -> Iterator[list[Controller]]:
    started: list[Controller] = []
    yield started
    for controller in started:
        controller.stop()


def serve(servers: list[Controller], handler: Handler, port: int, **kwargs: Any) -> Handler:
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    servers.append(controller)
    return handler


def entry(*rcpts: str, sender: str = "alice@here.test") -> QueueEntry:
    return QueueEntry(
        id="0005f0000000000-0123456789",
        sender=sender,
        recipients=[QueueRecipient(address=r, transport="remote") for r in rcpts],
        created=1000.0,
        next_attempt=1000.0,
        size=len(MESSAGE),
    )


def transport(resolver: StubResolver, port: int, **kwargs: Any) -> RemoteTransport:
    kwargs.setdefault("connect_timeout_s", 5)
    kwargs.setdefault("command_timeout_s", 5)
    return RemoteTransport("out.here.test", resolver, port=port, clock=lambda: 1002.5, **kwargs)


async def send(t: RemoteTransport, e: QueueEntry) -> dict[str, tuple[str, str]]:
    outcomes = await t.deliver(e, e.recipients, MESSAGE)
    assert [o.recipient for o in outcomes] == e.recipients
    return {o.recipient.address: (o.kind, o.detail) for o in outcomes}


# --- delivery -----------------------------------------------------------------------------


async def test_accepted_message_is_delivered_with_size(
    servers: list[Controller], port: int, caplog: pytest.LogCaptureFixture
) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))
    caplog.set_level(logging.INFO, logger="pymta.queue.remote")

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "delivered"
    assert "250 2.0.0 Ok: queued" in detail
    [(sender, rcpts, content)] = handler.messages
    assert (sender, rcpts) == ("alice@here.test", ["bob@there.test"])
    assert content.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")
    assert handler.mail_options == [[f"SIZE={len(MESSAGE)}"]]
    assert (
        "remote delivery id=0005f0000000000-0123456789 rcpt=bob@there.test "
        f"relay=mx.test[127.0.0.1]:{port} tls=none delay=2.5s status=sent" in caplog.text
    )


async def test_null_sender_is_sent_as_empty_path(servers: list[Controller], port: int) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test", sender=""))

    assert result["bob@there.test"][0] == "delivered"
    # aiosmtpd reports the null reverse-path as "<>": the transport sent "MAIL FROM:<>".
    assert handler.messages[0][0] == "<>"


async def test_4xx_to_rcpt_is_temporary(servers: list[Controller], port: int) -> None:
    serve(servers, Handler({"bob@there.test": "450 4.2.1 Mailbox busy"}), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "temporary"
    assert "450 4.2.1 Mailbox busy" in detail


async def test_5xx_to_rcpt_is_permanent_with_the_reply(
    servers: list[Controller], port: int, caplog: pytest.LogCaptureFixture
) -> None:
    handler = serve(servers, Handler({"bob@there.test": "550 5.1.1 No such user"}), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))
    caplog.set_level(logging.INFO, logger="pymta.queue.remote")

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "permanent"
    assert (
        detail
        == f"host mx.test[127.0.0.1]:{port} said: 550 5.1.1 No such user (in reply to RCPT TO)"
    )
    assert handler.messages == []
    assert "status=bounced" in caplog.text


async def test_mixed_recipients_get_their_own_outcomes(
    servers: list[Controller], port: int
) -> None:
    replies = {"busy@there.test": "451 4.3.0 Try later", "gone@there.test": "550 5.1.1 Gone"}
    handler = serve(servers, Handler(replies), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(
        transport(resolver, port), entry("ok@there.test", "busy@there.test", "gone@there.test")
    )

    assert {a: k for a, (k, _) in result.items()} == {
        "ok@there.test": "delivered",
        "busy@there.test": "temporary",
        "gone@there.test": "permanent",
    }
    assert [m[1] for m in handler.messages] == [["ok@there.test"]]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [("451 4.3.2 Sender rate limited", "temporary"), ("553 5.7.1 Sender refused", "permanent")],
)
async def test_reply_to_mail_from_applies_to_every_recipient(
    servers: list[Controller], port: int, reply: str, kind: str
) -> None:
    handler = serve(servers, Handler(mail_reply=reply), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("a@there.test", "b@there.test"))

    assert result == {
        a: (kind, f"host mx.test[127.0.0.1]:{port} said: {reply} (in reply to MAIL FROM)")
        for a in ("a@there.test", "b@there.test")
    }
    assert handler.messages == []


async def test_data_reply_applies_to_every_accepted_recipient(
    servers: list[Controller], port: int
) -> None:
    serve(servers, Handler(data_reply="554 5.6.0 Content rejected"), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("a@there.test", "b@there.test"))

    for kind, detail in result.values():
        assert kind == "permanent"
        assert "554 5.6.0 Content rejected (in reply to end of DATA)" in detail


async def test_dropped_connection_is_temporary(servers: list[Controller], port: int) -> None:
    serve(servers, Handler(drop_at_data=True), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    assert result["bob@there.test"][0] == "temporary"


async def test_nobody_listening_is_temporary(port: int) -> None:
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "temporary"
    assert f"connect to mx.test[127.0.0.1]:{port}" in detail


# --- MX handling --------------------------------------------------------------------------


async def test_first_mx_down_second_used(servers: list[Controller], port: int) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(there_test=["10 down.test.", "20 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    assert result["bob@there.test"][0] == "delivered"
    assert len(handler.messages) == 1
    assert ("down.test", "A") in resolver.queries


async def test_4xx_greeting_moves_on_to_the_next_mx(servers: list[Controller], port: int) -> None:
    greeted: list[bool] = []

    async def busy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeted.append(True)
        writer.write(b"421 4.3.2 busy.test Service not available, try later\r\n")
        await writer.drain()
        writer.close()

    busy_server = await asyncio.start_server(busy, "127.0.0.2", port)
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(there_test=["10 down.test.", "20 mx.test."]))
    try:
        result = await send(transport(resolver, port), entry("bob@there.test"))
    finally:
        busy_server.close()
        await busy_server.wait_closed()

    assert result["bob@there.test"][0] == "delivered"
    assert greeted == [True]
    assert len(handler.messages) == 1


async def test_every_mx_failing_is_temporary_with_the_last_error(port: int) -> None:
    resolver = StubResolver(zone(there_test=["10 down.test.", "20 mx.test."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "temporary"
    assert detail.startswith(f"connect to mx.test[127.0.0.1]:{port}")


async def test_no_mx_means_the_domain_itself(servers: list[Controller], port: int) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver({("there.test", "A"): ["127.0.0.1"]})

    result = await send(transport(resolver, port), entry("bob@there.test"))

    assert result["bob@there.test"][0] == "delivered"
    assert len(handler.messages) == 1
    assert resolver.queries[:2] == [("there.test", "MX"), ("there.test", "A")]


async def test_null_mx_is_permanent(port: int) -> None:
    resolver = StubResolver(zone(there_test=["0 ."]))

    result = await send(transport(resolver, port), entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "permanent"
    assert "null MX" in detail


async def test_nxdomain_is_permanent(port: int) -> None:
    result = await send(transport(StubResolver({}), port), entry("bob@nowhere.test"))

    assert result["bob@nowhere.test"] == ("permanent", "nowhere.test: no such domain")


@pytest.mark.parametrize("error", [dns.resolver.NoNameservers(), dns.exception.Timeout()])
async def test_dns_failure_is_temporary(port: int, error: Exception) -> None:
    resolver = StubResolver({("there.test", "MX"): error})

    result = await send(transport(resolver, port), entry("bob@there.test"))

    assert result["bob@there.test"][0] == "temporary"


async def test_mx_order_by_preference() -> None:
    resolver = StubResolver(
        zone(there_test=["30 c.test.", "10 a.test.", "20 b.test.", "10 a2.test."])
    )

    hosts = await resolve_mx("There.Test", resolver)

    assert [h.priority for h in hosts] == [10, 10, 20, 30]
    assert {h.host for h in hosts[:2]} == {"a.test", "a2.test"}
    assert hosts[2:] == [MxHost(20, "b.test"), MxHost(30, "c.test")]


async def test_addresses_ipv4_then_ipv6_and_none_is_permanent() -> None:
    resolver = StubResolver(
        {("h.test", "AAAA"): ["::1"], ("h.test", "A"): ["127.0.0.1"], ("e.test", "TXT"): ["x"]}
    )

    assert await resolve_addresses("h.test", resolver) == ["127.0.0.1", "::1"]
    with pytest.raises(DnsError) as excinfo:
        await resolve_addresses("e.test", resolver)
    assert excinfo.value.permanent


async def test_domains_sharing_an_mx_reuse_one_connection(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(one_test=["10 mx.test."], two_test=["10 mx.test."]))

    result = await send(
        transport(resolver, port, concurrency_per_domain=1),
        entry("a@one.test", "b@one.test", "c@two.test"),
    )

    assert {k for k, _ in result.values()} == {"delivered"}
    assert sorted(sorted(m[1]) for m in handler.messages) == [
        ["a@one.test", "b@one.test"],
        ["c@two.test"],
    ]
    # Both domains resolve to one host; two transactions share one session unless the
    # domains overlapped in time, in which case each opened its own.
    assert handler.ehlo_count in (1, 2)


async def test_queue_entries_one_after_another_share_one_cached_connection(
    servers: list[Controller], port: int
) -> None:
    """The connection cache (Postfix's): the second entry for the same MX reuses the
    first one's session — one EHLO, no new handshake — and it is QUIT once idle."""
    handler = serve(servers, Handler(), port)
    t = transport(StubResolver(zone(one_test=["10 mx.test."])), port, cache_idle_s=0.2)

    first = await send(t, entry("a@one.test"))
    assert t.cached_sessions == 1
    second = await send(t, entry("b@one.test"))

    assert {k for k, _ in [*first.values(), *second.values()]} == {"delivered"}
    assert [m[1] for m in handler.messages] == [["a@one.test"], ["b@one.test"]]
    assert handler.ehlo_count == 1 and handler.quits == 0
    deadline = asyncio.get_running_loop().time() + 5
    while handler.quits == 0:  # idle for cache_idle_s: closed with QUIT
        assert asyncio.get_running_loop().time() < deadline, "the idle session was kept"
        await asyncio.sleep(0.05)
    assert t.cached_sessions == 0


async def test_a_cached_session_past_its_age_is_not_reused(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port)
    t = transport(StubResolver(zone(one_test=["10 mx.test."])), port, cache_max_age_s=0.0)

    await send(t, entry("a@one.test"))
    await send(t, entry("b@one.test"))

    assert handler.ehlo_count == 2 and len(handler.messages) == 2
    await t.close()


async def test_a_cached_session_the_server_dropped_is_replaced_silently(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port)
    t = transport(StubResolver(zone(one_test=["10 mx.test."])), port)
    await send(t, entry("a@one.test"))
    servers[0].stop()  # the server goes away, and with it the idle connection
    servers.clear()
    serve(servers, handler, port)

    result = await send(t, entry("b@one.test"))

    assert result["b@one.test"][0] == "delivered"
    assert [m[1] for m in handler.messages] == [["a@one.test"], ["b@one.test"]]
    await t.close()


async def test_close_quits_every_cached_session(servers: list[Controller], port: int) -> None:
    handler = serve(servers, Handler(), port)
    t = transport(StubResolver(zone(one_test=["10 mx.test."])), port)
    await send(t, entry("a@one.test"))
    assert t.cached_sessions == 1

    await t.close()

    assert t.cached_sessions == 0 and handler.quits == 1


async def test_many_recipients_are_split_into_transactions_of_100(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))
    rcpts = [f"u{i}@there.test" for i in range(150)]

    result = await send(transport(resolver, port), entry(*rcpts))

    assert {k for k, _ in result.values()} == {"delivered"}
    assert [len(m[1]) for m in handler.messages] == [100, 50]
    assert handler.ehlo_count == 1


# --- TLS and the smarthost ----------------------------------------------------------------


def server_tls(tls_cert: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*tls_cert)
    return context


async def test_starttls_used_when_offered(
    servers: list[Controller],
    port: int,
    tls_cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler = serve(servers, Handler(), port, tls_context=server_tls(tls_cert))
    resolver = StubResolver(zone(there_test=["10 mx.test."]))
    caplog.set_level(logging.INFO, logger="pymta.queue.remote")

    result = await send(transport(resolver, port), entry("bob@there.test"))

    assert result["bob@there.test"][0] == "delivered"
    assert handler.tls == [True]
    assert "tls=TLSv1.3" in caplog.text
    assert "remote tls relay=mx.test[127.0.0.1]" in caplog.text


async def test_failed_tls_handshake_falls_back_to_plaintext(
    servers: list[Controller], port: int, tls_cert: tuple[Path, Path]
) -> None:
    server_context = server_tls(tls_cert)
    server_context.minimum_version = ssl.TLSVersion.TLSv1_3
    handler = serve(servers, Handler(), port, tls_context=server_context)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    def old_tls_only() -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        return context

    t = transport(resolver, port, tls_context_factory=old_tls_only)
    result = await send(t, entry("bob@there.test"))

    assert result["bob@there.test"][0] == "delivered"
    assert handler.tls == [False]


class Accounts:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)


async def test_smarthost_with_auth_skips_mx(
    servers: list[Controller],
    port: int,
    tls_cert: tuple[Path, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    handler = serve(
        servers,
        Handler(),
        port,
        tls_context=server_tls(tls_cert),
        authenticator=Accounts({"relayuser": "s3cret"}),
        auth_require_tls=True,
    )
    resolver = StubResolver({})
    t = transport(
        resolver,
        25,
        relay_host=("127.0.0.1", port),
        relay_auth=("relayuser", Secret("s3cret")),
    )

    result = await send(t, entry("bob@there.test", "carol@elsewhere.test"))

    assert {k for k, _ in result.values()} == {"delivered"}
    assert resolver.queries == []
    assert [sorted(m[1]) for m in handler.messages] == [["bob@there.test", "carol@elsewhere.test"]]
    assert handler.tls == [True]
    assert "s3cret" not in caplog.text


async def test_smarthost_refusing_our_login_is_temporary(
    servers: list[Controller], port: int, tls_cert: tuple[Path, Path]
) -> None:
    handler = serve(
        servers,
        Handler(),
        port,
        tls_context=server_tls(tls_cert),
        authenticator=Accounts({"relayuser": "other"}),
        auth_require_tls=True,
    )
    t = transport(
        StubResolver({}), 25, relay_host=("127.0.0.1", port), relay_auth=("relayuser", Secret("x"))
    )

    result = await send(t, entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "temporary"
    assert "refused our login" in detail
    assert handler.messages == []


async def test_credentials_never_sent_without_tls(servers: list[Controller], port: int) -> None:
    handler = serve(servers, Handler(), port)
    t = transport(
        StubResolver({}), 25, relay_host=("127.0.0.1", port), relay_auth=("u", Secret("p"))
    )

    result = await send(t, entry("bob@there.test"))

    kind, detail = result["bob@there.test"]
    assert kind == "temporary"
    assert "not sending credentials" in detail
    assert handler.messages == []


# --- DSN parameters (RFC 3461 §4) ---------------------------------------------------------


def test_orcpt_is_relayed_as_received_and_a_bare_address_encoded() -> None:
    """RFC 3461 §4: ENVID/ORCPT are stored xtext-encoded, as they came, and relayed so."""
    assert _orcpt_param("rfc822;x+2By@there.test") == "ORCPT=rfc822;x+2By@there.test"
    assert _orcpt_param("x+y@there.test") == "ORCPT=rfc822;x+2By@there.test"


# --- against the loopback DNS server (tests/dns) -----------------------------------------


async def test_real_dns_mx_null_mx_and_nxdomain(
    servers: list[Controller],
    port: int,
    dns_server: DnsServer,
    dns_resolver: dns.asyncresolver.Resolver,
) -> None:
    dns_server.set_zone(
        "there.test",
        "@ MX 20 mx2\n@ MX 10 down\nmx2 A 127.0.0.1\ndown A 127.0.0.2\n"
        "nomail MX 0 .\nbare A 127.0.0.1\n",
    )
    handler = serve(servers, Handler(), port)
    t = transport(dns_resolver, port)

    result = await send(
        t,
        entry("bob@there.test", "x@nomail.there.test", "y@bare.there.test", "z@gone.there.test"),
    )

    assert result["bob@there.test"][0] == "delivered"
    assert result["y@bare.there.test"][0] == "delivered"  # RFC 5321 §5.1 implicit MX
    assert result["x@nomail.there.test"][0] == "permanent"
    assert "null MX" in result["x@nomail.there.test"][1]
    assert result["z@gone.there.test"] == ("permanent", "gone.there.test: no such domain")
    assert sorted(r for m in handler.messages for r in m[1]) == [
        "bob@there.test",
        "y@bare.there.test",
    ]


class ScriptedServer:
    """A bare SMTP server that advertises `extensions` and records every command line."""

    def __init__(self, extensions: list[str]) -> None:
        self.extensions = extensions
        self.lines: list[str] = []

    async def __call__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 mx.test ESMTP\r\n")
        while line := await reader.readline():
            command = line.decode("utf-8").rstrip("\r\n")
            self.lines.append(command)
            verb = command.split(" ", 1)[0].split(":", 1)[0].upper()
            if verb == "EHLO":
                ehlo = ["mx.test", *self.extensions]
                for text in ehlo[:-1]:
                    writer.write(f"250-{text}\r\n".encode())
                writer.write(f"250 {ehlo[-1]}\r\n".encode())
            elif verb == "DATA":
                writer.write(b"354 go on\r\n")
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                writer.write(b"250 2.0.0 queued\r\n")
            elif verb == "QUIT":
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()


async def scripted_outcomes(
    extensions: list[str], e: QueueEntry, message: bytes
) -> tuple[list[str], Sequence[Outcome]]:
    server = ScriptedServer(extensions)
    listener = await asyncio.start_server(server, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        t = transport(StubResolver(zone(there_test=["10 mx.test."])), port)
        outcomes = await t.deliver(e, e.recipients, message)
    finally:
        listener.close()
        await listener.wait_closed()
    assert {o.kind for o in outcomes} == {"delivered"}
    return server.lines, outcomes


async def scripted(extensions: list[str], e: QueueEntry, message: bytes) -> list[str]:
    lines, _ = await scripted_outcomes(extensions, e, message)
    return lines[: lines.index("DATA")]


def dsn_entry() -> QueueEntry:
    e = entry("bob@there.test")
    e.ret, e.envid = "HDRS", "id+2042+2Bx"
    e.recipients[0].notify = ("SUCCESS", "FAILURE")
    e.recipients[0].orcpt = "rfc822;bob@there.test"
    return e


async def test_caching_resolver_keeps_answers_for_their_ttl(
    dns_server: DnsServer, dns_resolver: dns.asyncresolver.Resolver
) -> None:
    dns_server.set_zone("there.test", "$TTL 60\n@ MX 10 mx\nmx A 127.0.0.1\n")
    now = [time.time()]
    cached = CachingResolver(dns_resolver, clock=lambda: now[0])

    for _ in range(3):
        assert [h.host for h in await resolve_mx("there.test", cached)] == ["mx.there.test"]
        assert await resolve_addresses("mx.there.test", cached) == ["127.0.0.1"]
    asked = [(q.name, q.rdtype) for q in dns_server.queries]
    # Once each: MX and A are kept for their TTL, and so is "no AAAA records" for the
    # SOA's negative TTL (RFC 2308 §5).
    assert asked.count(("there.test", "MX")) == 1
    assert asked.count(("mx.there.test", "A")) == 1
    assert asked.count(("mx.there.test", "AAAA")) == 1

    now[0] += 61  # past the TTL: asked again
    await resolve_mx("there.test", cached)
    assert [(q.name, q.rdtype) for q in dns_server.queries].count(("there.test", "MX")) == 2


async def test_dsn_parameters_passed_on_when_offered() -> None:
    lines = await scripted(["SIZE 1000000", "DSN"], dsn_entry(), MESSAGE)

    assert lines == [
        "EHLO out.here.test",
        f"MAIL FROM:<alice@here.test> SIZE={len(MESSAGE)} RET=HDRS ENVID=id+2042+2Bx",
        "RCPT TO:<bob@there.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob@there.test",
    ]


async def test_success_is_ours_to_report_only_when_the_server_has_no_dsn() -> None:
    """RFC 3461 §5.2.1: a DSN server reports success itself; one without DSN means we
    "relayed" the message (§5.2.2 (b)), which the queue reports if the sender asked."""
    _, with_dsn = await scripted_outcomes(["DSN"], dsn_entry(), MESSAGE)
    _, without = await scripted_outcomes([], dsn_entry(), MESSAGE)
    assert [o.dsn_action for o in with_dsn] == [None]
    assert [o.dsn_action for o in without] == ["relayed"]
    assert without[0].detail.endswith("said: 250 2.0.0 queued")


async def test_dsn_parameters_dropped_when_not_offered() -> None:
    lines = await scripted(["SIZE 1000000"], dsn_entry(), MESSAGE)

    assert lines[1:] == [
        f"MAIL FROM:<alice@here.test> SIZE={len(MESSAGE)}",
        "RCPT TO:<bob@there.test>",
    ]


async def test_8bit_body_declared_and_utf8_addresses_need_smtputf8() -> None:
    body = "Subject: café\r\n\r\nbonjour\r\n".encode()
    e = entry("zoë@there.test")
    e.size = 0

    lines = await scripted(["8BITMIME", "SMTPUTF8"], e, body)

    assert lines[1:] == [
        "MAIL FROM:<alice@here.test> BODY=8BITMIME SMTPUTF8",
        "RCPT TO:<zoë@there.test>",
    ]


async def test_utf8_address_to_a_server_without_smtputf8_is_permanent(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port, enable_SMTPUTF8=False)
    resolver = StubResolver(zone(there_test=["10 mx.test."]))

    result = await send(transport(resolver, port), entry("zoë@there.test"))

    kind, detail = result["zoë@there.test"]
    assert kind == "permanent"
    assert "SMTPUTF8" in detail
    assert handler.messages == []


async def test_concurrency_per_domain_limits_simultaneous_sessions() -> None:
    limit = 2
    active = 0
    most = 0
    enough = asyncio.Event()

    async def gated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # A transaction runs from MAIL to the DATA reply; each holds its DATA reply until
        # `limit` transactions are running at once, so one past the limit would be counted.
        nonlocal active, most
        writer.write(b"220 mx.test\r\n")
        while line := await reader.readline():
            if line.startswith(b"MAIL"):
                active += 1
                most = max(most, active)
                if active >= limit:
                    enough.set()
                writer.write(b"250 OK\r\n")
            elif line.startswith(b"DATA"):
                writer.write(b"354 go on\r\n")
                while (await reader.readline()) not in (b".\r\n", b""):
                    pass
                await enough.wait()
                active -= 1
                writer.write(b"250 queued\r\n")
            elif line.startswith(b"QUIT"):
                writer.write(b"221 bye\r\n")
                break
            else:
                writer.write(b"250 OK\r\n")
            await writer.drain()
        writer.close()

    listener = await asyncio.start_server(gated, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    t = transport(
        StubResolver(zone(there_test=["10 mx.test."])), port, concurrency_per_domain=limit
    )
    entries = [entry(f"u{i}@there.test") for i in range(5)]
    try:
        results = await asyncio.gather(*(t.deliver(e, e.recipients, MESSAGE) for e in entries))
    finally:
        listener.close()
        await listener.wait_closed()

    assert [o.kind for outcomes in results for o in outcomes] == ["delivered"] * 5
    assert most == limit


async def test_address_literal_is_delivered_without_mx_lookup(
    servers: list[Controller], port: int
) -> None:
    handler = serve(servers, Handler(), port)
    resolver = StubResolver({})

    result = await send(transport(resolver, port), entry("bob@[127.0.0.1]"))

    assert result["bob@[127.0.0.1]"][0] == "delivered"
    assert resolver.queries == []
    assert len(handler.messages) == 1


async def test_a_looping_message_is_bounced_not_relayed() -> None:
    """RFC 5321 §6.3: 100 Received headers mean a loop; nothing is sent anywhere."""
    from pymta.queue.dsn import HOP_LIMIT_ERROR

    looping = b"".join(b"Received: from a by b; x\r\n" for _ in range(100)) + MESSAGE
    transport = RemoteTransport("here.test", _NoResolver(), port=9)
    rcpt = QueueRecipient(address="bob@there.test", transport="remote")
    entry = QueueEntry(
        id="loop", sender="alice@here.test", recipients=[rcpt], created=0.0, next_attempt=0.0
    )
    [outcome] = await transport.deliver(entry, [rcpt], looping)
    assert (outcome.kind, outcome.detail) == ("permanent", HOP_LIMIT_ERROR)


class _NoResolver:
    async def resolve(self, qname: str, rdtype: str) -> list[object]:
        raise AssertionError("a looping message must not even be looked up")

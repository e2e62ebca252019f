"""The loopback DNS server that the remote-transport and filter tests use, asked by dnspython's
blocking and async resolvers the way pymta will ask it."""

from __future__ import annotations

import socket
import threading

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from tests.dns.fixture import resolver_for
from tests.dns.server import DnsServer, Query, txt_strings

REMOTE_ZONE = """
@        MX  10 mx
@        MX  20 mx2.backup.test.
@        TXT "v=spf1 ip4:127.0.0.2 -all"
mx       A   127.0.0.2
mx       AAAA ::2
www      CNAME mx
alias    CNAME nowhere
a.b      A   127.0.0.9
"""

DKIM_KEY = "v=DKIM1; k=rsa; p=" + "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA" * 9  # ~410 bytes


@pytest.fixture
def remote(dns_server: DnsServer) -> DnsServer:
    dns_server.set_zone("remote.test", REMOTE_ZONE)
    return dns_server


def ask(server: DnsServer, name: str, rdtype: str, *, tcp: bool = False) -> dns.message.Message:
    """One raw query, without a resolver's retries, to look at the message itself."""
    query = dns.message.make_query(name, rdtype)
    if tcp:
        return dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=2)
    return dns.query.udp(query, "127.0.0.1", port=server.port, timeout=2)


# -- answers through the blocking resolver ----------------------------------------------------


def test_mx_answer_is_authoritative_with_exchange_addresses(remote: DnsServer) -> None:
    answer = remote.resolver().resolve("remote.test", "MX")
    assert sorted((rd.preference, rd.exchange.to_text()) for rd in answer) == [
        (10, "mx.remote.test."),
        (20, "mx2.backup.test."),
    ]
    assert answer.response.flags & dns.flags.AA
    # the exchange we hold comes with its addresses (RFC 1035 §3.3.9); the other we do not hold
    additional = {(rr.name.to_text(), rr.rdtype) for rr in answer.response.additional}
    assert additional == {("mx.remote.test.", 1), ("mx.remote.test.", 28)}


def test_a_aaaa_and_txt(remote: DnsServer) -> None:
    resolver = remote.resolver()
    assert [rd.address for rd in resolver.resolve("mx.remote.test", "A")] == ["127.0.0.2"]
    assert [rd.address for rd in resolver.resolve("mx.remote.test", "AAAA")] == ["::2"]
    txt = resolver.resolve("remote.test", "TXT")
    assert [b"".join(rd.strings) for rd in txt] == [b"v=spf1 ip4:127.0.0.2 -all"]


def test_names_are_case_insensitive(remote: DnsServer) -> None:
    answer = remote.resolver().resolve("MX.Remote.TEST", "A")
    assert [rd.address for rd in answer] == ["127.0.0.2"]


def test_cname_is_followed_inside_our_zones(remote: DnsServer) -> None:
    answer = remote.resolver().resolve("www.remote.test", "A")
    assert answer.canonical_name.to_text() == "mx.remote.test."
    assert [rd.address for rd in answer] == ["127.0.0.2"]


def test_nxdomain_carries_the_soa_with_negative_ttl(remote: DnsServer) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        remote.resolver().resolve("nobody.remote.test", "A")
    reply = ask(remote, "nobody.remote.test", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert reply.flags & dns.flags.AA
    [soa] = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    assert soa.ttl == 60  # RFC 2308 §3: min(SOA TTL, SOA MINIMUM)


def test_cname_to_a_missing_name_is_nxdomain(remote: DnsServer) -> None:
    reply = ask(remote, "alias.remote.test", "A")
    assert reply.rcode() == dns.rcode.NXDOMAIN
    assert [rr.rdtype for rr in reply.answer] == [dns.rdatatype.CNAME]


def test_nodata_is_noerror_with_an_empty_answer(remote: DnsServer) -> None:
    with pytest.raises(dns.resolver.NoAnswer):
        remote.resolver().resolve("mx.remote.test", "MX")
    reply = ask(remote, "mx.remote.test", "MX")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []
    assert [rr.rdtype for rr in reply.authority] == [dns.rdatatype.SOA]


def test_empty_non_terminal_is_nodata_not_nxdomain(remote: DnsServer) -> None:
    # b.remote.test owns no records but a.b.remote.test exists (RFC 8020 §2)
    reply = ask(remote, "b.remote.test", "A")
    assert reply.rcode() == dns.rcode.NOERROR
    assert reply.answer == []


def test_names_outside_the_zones_are_refused(remote: DnsServer) -> None:
    reply = ask(remote, "example.org", "A")
    assert reply.rcode() == dns.rcode.REFUSED
    assert not reply.flags & dns.flags.AA
    with pytest.raises(dns.resolver.NoNameservers):
        remote.resolver().resolve("example.org", "A")


def test_zone_without_records_has_default_soa_and_ns(dns_server: DnsServer) -> None:
    dns_server.set_zone("empty.test", "")
    resolver = dns_server.resolver()
    [soa] = resolver.resolve("empty.test", "SOA")
    assert soa.mname.to_text() == "ns1.empty.test."
    [ns] = resolver.resolve("empty.test", "NS")
    assert ns.target.to_text() == "ns1.empty.test."


def test_ptr_and_the_most_specific_zone_wins(dns_server: DnsServer) -> None:
    dns_server.set_zone("127.in-addr.arpa", "2.0.0 PTR mx.outer.test.\n")
    dns_server.set_zone("outer.test", "mx A 127.0.0.1\n")
    dns_server.set_zone("inner.outer.test", "mx A 127.0.0.3\n")
    resolver = dns_server.resolver()
    [ptr] = resolver.resolve("2.0.0.127.in-addr.arpa", "PTR")
    assert ptr.target.to_text() == "mx.outer.test."
    assert [rd.address for rd in resolver.resolve("mx.inner.outer.test", "A")] == ["127.0.0.3"]


# -- size: long TXT strings, truncation and TCP fallback --------------------------------------


def test_long_txt_in_zone_text_is_served_as_several_strings(dns_server: DnsServer) -> None:
    dns_server.set_zone("signer.test", f"default._domainkey TXT {txt_strings(DKIM_KEY)}\n")
    [rd] = dns_server.resolver().resolve("default._domainkey.signer.test", "TXT")
    assert len(rd.strings) == 2
    assert all(len(s) <= 255 for s in rd.strings)
    assert b"".join(rd.strings).decode() == DKIM_KEY


def test_txt_strings_escapes_quotes_and_backslashes(dns_server: DnsServer) -> None:
    value = 'say "hi" \\ bye'
    dns_server.set_zone("q.test", f"@ TXT {txt_strings(value)}\n")
    [rd] = dns_server.resolver().resolve("q.test", "TXT")
    assert b"".join(rd.strings).decode() == value


def test_big_answer_truncates_over_udp_and_resolver_retries_over_tcp(remote: DnsServer) -> None:
    big = "k=" + "A" * 1500  # over 512 bytes, and over dnspython's EDNS default too
    remote.add_record("big.remote.test", "TXT", big)
    udp = ask(remote, "big.remote.test", "TXT")
    assert udp.flags & dns.flags.TC
    assert udp.answer == []  # no partial RRsets (RFC 2181 §9)

    [rd] = remote.resolver().resolve("big.remote.test", "TXT")
    assert b"".join(rd.strings).decode() == big
    assert remote.queries[-2:] == [
        Query("big.remote.test", "TXT", "udp"),
        Query("big.remote.test", "TXT", "tcp"),
    ]


def test_edns_payload_allows_a_bigger_udp_answer(remote: DnsServer) -> None:
    remote.add_record("big.remote.test", "TXT", "A" * 700)
    query = dns.message.make_query("big.remote.test", "TXT", use_edns=0, payload=1232)
    reply = dns.query.udp(query, "127.0.0.1", port=remote.port, timeout=2)
    assert not reply.flags & dns.flags.TC
    assert len(reply.answer) == 1


def test_tcp_connection_carries_several_queries(remote: DnsServer) -> None:
    with socket.create_connection(("127.0.0.1", remote.port), timeout=2) as sock:
        for name in ("mx.remote.test", "remote.test"):
            query = dns.message.make_query(name, "A")
            dns.query.send_tcp(sock, query)
            reply, _ = dns.query.receive_tcp(sock)
            assert reply.id == query.id
    assert [q.transport for q in remote.queries] == ["tcp", "tcp"]


# -- changing DNS during a test -----------------------------------------------------------------


def test_add_and_remove_records_at_run_time(remote: DnsServer) -> None:
    resolver = remote.resolver()
    remote.add_record("new.remote.test", "A", "127.0.0.5")
    remote.add_record("new.remote.test.", "A", "127.0.0.6", ttl=5)
    answer = resolver.resolve("new.remote.test", "A")
    assert sorted(rd.address for rd in answer) == ["127.0.0.5", "127.0.0.6"]
    assert answer.rrset is not None and answer.rrset.ttl == 5

    remote.add_record("remote.test", "MX", "5 new")  # relative to the zone origin
    mx = resolver.resolve("remote.test", "MX")
    assert "new.remote.test." in {rd.exchange.to_text() for rd in mx}

    remote.remove_records("new.remote.test", "A")
    with pytest.raises(dns.resolver.NXDOMAIN):
        resolver.resolve("new.remote.test", "A")


def test_add_record_outside_every_zone_is_an_error(dns_server: DnsServer) -> None:
    with pytest.raises(LookupError):
        dns_server.add_record("nowhere.test", "A", "127.0.0.1")


def test_set_zone_replaces_and_remove_zone_refuses(remote: DnsServer) -> None:
    resolver = remote.resolver()
    remote.set_zone("remote.test", "mx A 127.0.0.7\n")
    assert [rd.address for rd in resolver.resolve("mx.remote.test", "A")] == ["127.0.0.7"]
    with pytest.raises(dns.resolver.NoAnswer):
        resolver.resolve("remote.test", "MX")
    remote.remove_zone("remote.test")
    assert ask(remote, "mx.remote.test", "A").rcode() == dns.rcode.REFUSED


def test_changes_from_other_threads_while_answering(remote: DnsServer) -> None:
    resolver = remote.resolver()

    def writer() -> None:
        for i in range(50):
            remote.add_record(f"h{i}.remote.test", "A", f"127.0.1.{i}")

    thread = threading.Thread(target=writer)
    thread.start()
    for _ in range(20):
        assert [rd.address for rd in resolver.resolve("mx.remote.test", "A")] == ["127.0.0.2"]
    thread.join()
    assert [rd.address for rd in resolver.resolve("h49.remote.test", "A")] == ["127.0.1.49"]


# -- temporary failures -------------------------------------------------------------------------


def test_servfail_until_healed(remote: DnsServer) -> None:
    remote.fail("remote.test", "servfail", rdtype="MX")
    assert ask(remote, "remote.test", "MX").rcode() == dns.rcode.SERVFAIL
    assert ask(remote, "remote.test", "TXT").rcode() == dns.rcode.NOERROR  # other types answer
    with pytest.raises(dns.resolver.NoNameservers):
        remote.resolver().resolve("remote.test", "MX")
    remote.heal("remote.test")
    assert len(remote.resolver().resolve("remote.test", "MX")) == 2


def test_timeout_gives_no_answer(remote: DnsServer) -> None:
    remote.fail("mx.remote.test", "timeout")
    with pytest.raises(dns.exception.Timeout):
        remote.resolver(lifetime=0.3).resolve("mx.remote.test", "A")
    with pytest.raises(dns.exception.Timeout):
        ask_with_timeout(remote, "mx.remote.test", "A", tcp=True)
    remote.heal("mx.remote.test")
    assert len(remote.resolver().resolve("mx.remote.test", "A")) == 1


def ask_with_timeout(server: DnsServer, name: str, rdtype: str, *, tcp: bool) -> None:
    query = dns.message.make_query(name, rdtype)
    if tcp:
        dns.query.tcp(query, "127.0.0.1", port=server.port, timeout=0.3)
    else:
        dns.query.udp(query, "127.0.0.1", port=server.port, timeout=0.3)


# -- the async resolver, as the remote transport uses it ----------------------------------------


async def test_async_resolver_mx_a_txt(
    remote: DnsServer, dns_resolver: dns.asyncresolver.Resolver
) -> None:
    assert dns_resolver.nameservers == ["127.0.0.1"]
    assert dns_resolver.port == remote.port
    mx = await dns_resolver.resolve("remote.test", "MX")
    best = min(mx, key=lambda rd: rd.preference)
    a = await dns_resolver.resolve(best.exchange, "A")
    assert [rd.address for rd in a] == ["127.0.0.2"]
    txt = await dns_resolver.resolve("remote.test", "TXT")
    assert b"".join(next(iter(txt)).strings).startswith(b"v=spf1")


async def test_async_resolver_negative_answers(
    remote: DnsServer, dns_resolver: dns.asyncresolver.Resolver
) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        await dns_resolver.resolve("nobody.remote.test", "MX")
    with pytest.raises(dns.resolver.NoAnswer):
        await dns_resolver.resolve("mx.remote.test", "MX")


async def test_async_resolver_tcp_fallback_and_servfail(
    remote: DnsServer, dns_resolver: dns.asyncresolver.Resolver
) -> None:
    remote.add_record("default._domainkey.remote.test", "TXT", DKIM_KEY * 3)
    [rd] = await dns_resolver.resolve("default._domainkey.remote.test", "TXT")
    assert b"".join(rd.strings).decode() == DKIM_KEY * 3
    assert remote.queries[-1].transport == "tcp"

    remote.fail("remote.test", "servfail")
    with pytest.raises(dns.resolver.NoNameservers):
        await dns_resolver.resolve("remote.test", "MX")


async def test_async_resolver_sees_changes_and_times_out(remote: DnsServer) -> None:
    resolver = resolver_for(remote, lifetime=0.3)
    remote.add_record("late.remote.test", "A", "127.0.0.8")
    assert [rd.address for rd in await resolver.resolve("late.remote.test", "A")] == ["127.0.0.8"]
    remote.fail("late.remote.test", "timeout")
    with pytest.raises(dns.exception.Timeout):
        await resolver.resolve("late.remote.test", "A")


# -- life cycle ---------------------------------------------------------------------------------


def test_udp_and_tcp_share_the_port_and_stop_frees_it() -> None:
    server = DnsServer({"x.test": "@ A 127.0.0.1\n"})
    with pytest.raises(RuntimeError):
        _ = server.port
    with server:
        port = server.port
        assert ask(server, "x.test", "A").answer
        assert ask(server, "x.test", "A", tcp=True).answer
    again = DnsServer({"x.test": "@ A 127.0.0.1\n"}, port=port)
    with again:
        assert again.port == port


def test_garbage_and_non_queries_get_no_crash(remote: DnsServer) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.sendto(b"\x00\x01garbage", ("127.0.0.1", remote.port))
    update = dns.message.make_query("remote.test", "SOA")
    update.set_opcode(dns.opcode.UPDATE)
    reply = dns.query.udp(update, "127.0.0.1", port=remote.port, timeout=2)
    assert reply.rcode() == dns.rcode.NOTIMP
    assert ask(remote, "mx.remote.test", "A").answer  # still serving


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(
    not _has_ipv6_loopback(), reason="needs an IPv6 loopback (::1); the CI container has none"
)
def test_serves_on_ipv6_loopback() -> None:
    server = DnsServer({"six.test": "@ AAAA ::1\n"}, host="::1")
    server.start()
    try:
        [rd] = server.resolver().resolve("six.test", "AAAA")
        assert rd.address == "::1"
    finally:
        server.stop()

"""An authoritative DNS server on loopback, built on dnspython, serving zones the tests write.

    server = DnsServer({"remote.test": "@ MX 10 mx\\nmx A 127.0.0.2\\n"})
    server.start()
    resolver = server.async_resolver()          # dns.asyncresolver.Resolver, no resolv.conf
    server.add_record("remote.test", "TXT", "v=spf1 -all")
    server.fail("mx.remote.test", "servfail")   # or "timeout": no answer at all
    server.stop()

Zone text is zone-file text (RFC 1035 §5) with `$ORIGIN` taken from the dict key; names may be
relative to it. A zone without SOA/NS at its apex gets a default pair, so a test only writes
the records it cares about. TXT values given to `add_record` unquoted are split into
255-byte strings (RFC 1035 §3.3.14), which is how long DKIM keys are published.

Not supported (not needed by pymta's tests): wildcards, delegations below a zone, DNSSEC,
zone transfers, dynamic update.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import socket
import socketserver
import struct
import threading
from collections.abc import Mapping
from types import TracebackType
from typing import Literal

import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.ANY.TXT
import dns.resolver
import dns.rrset
import dns.zone

log = logging.getLogger(__name__)

Failure = Literal["servfail", "timeout"]
Transport = Literal["udp", "tcp"]

# RFC 1035 §4.2.1: a UDP message without EDNS carries at most 512 bytes; larger answers are
# truncated (TC) and the client retries over TCP (RFC 7766 §5).
UDP_PLAIN_MAX_BYTES = 512
# RFC 1035 §4.2.2: a TCP message is prefixed by its 16-bit length.
TCP_MAX_BYTES = 65535
# RFC 1035 §3.3.14: a TXT <character-string> holds at most 255 bytes.
TXT_STRING_MAX_BYTES = 255
MAX_CNAME_CHAIN = 8
DEFAULT_TTL = 60


@dataclasses.dataclass(frozen=True)
class Query:
    """One question the server received: for tests that check what was asked, and how."""

    name: str  # absolute, lower case, without the trailing dot
    rdtype: str  # "MX", "TXT", ...
    transport: Transport


def txt_strings(value: str) -> str:
    """`value` as zone-file TXT rdata: quoted strings of at most 255 bytes each.

    For writing a long TXT (a DKIM key) into zone text: `f"sel._domainkey TXT {txt_strings(k)}"`.
    """
    return " ".join(f'"{_escape(chunk)}"' for chunk in _chunks(value.encode()))


def _chunks(data: bytes) -> list[bytes]:
    if not data:
        return [b""]
    return [data[i : i + TXT_STRING_MAX_BYTES] for i in range(0, len(data), TXT_STRING_MAX_BYTES)]


def _escape(chunk: bytes) -> str:
    return chunk.decode().replace("\\", "\\\\").replace('"', '\\"')


def _absolute(name: str) -> dns.name.Name:
    return dns.name.from_text(name.rstrip(".") + ".") if name not in ("", ".") else dns.name.root


class DnsServer:
    """An authoritative DNS server on `host`:`port` (UDP and TCP), answering from threads.

    `zones` maps an origin ("example.test") to zone-file text. `port=0` picks a free port,
    the same for UDP and TCP; read it from `.port` after `start()`.
    """

    def __init__(
        self,
        zones: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._lock = threading.Lock()
        self._zones: dict[dns.name.Name, dns.zone.Zone] = {}
        self._failures: dict[tuple[dns.name.Name, dns.rdatatype.RdataType | None], Failure] = {}
        self._queries: list[Query] = []
        self._udp: _UdpServer | None = None
        self._tcp: _TcpServer | None = None
        self._threads: list[threading.Thread] = []
        for origin, text in (zones or {}).items():
            self.set_zone(origin, text)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError("DnsServer is not started")
        return int(self._udp.server_address[1])

    def start(self) -> None:
        """Bind UDP and TCP on one port and serve from background threads."""
        if self._udp is not None:
            raise RuntimeError("DnsServer already started")
        self._udp, self._tcp = self._bind()
        for srv in (self._udp, self._tcp):
            thread = threading.Thread(
                target=srv.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"dns-{type(srv).__name__}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("dns_started host=%s port=%d", self.host, self.port)

    def stop(self) -> None:
        """Stop serving and close the sockets; idempotent."""
        for srv in (self._udp, self._tcp):
            if srv is not None:
                srv.shutdown()
                srv.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self._udp = self._tcp = None

    def __enter__(self) -> DnsServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _bind(self) -> tuple[_UdpServer, _TcpServer]:
        # Bind UDP first (ephemeral port), then TCP on the same number; another process may
        # hold that TCP port, so try again with a fresh one a few times.
        last_error: OSError | None = None
        for _ in range(20):
            udp = _UdpServer((self.host, self._requested_port), self)
            try:
                tcp = _TcpServer((self.host, int(udp.server_address[1])), self)
            except OSError as exc:
                udp.server_close()
                last_error = exc
                if self._requested_port:
                    break
                continue
            return udp, tcp
        raise OSError(f"cannot bind UDP and TCP on one port: {last_error}")

    # -- clients ------------------------------------------------------------------------------

    def async_resolver(self, *, lifetime: float = 2.0) -> dns.asyncresolver.Resolver:
        """A dnspython async resolver that asks only this server (no /etc/resolv.conf)."""
        resolver = dns.asyncresolver.Resolver(configure=False)
        self._configure(resolver, lifetime)
        return resolver

    def resolver(self, *, lifetime: float = 2.0) -> dns.resolver.Resolver:
        """A dnspython blocking resolver that asks only this server (no /etc/resolv.conf)."""
        resolver = dns.resolver.Resolver(configure=False)
        self._configure(resolver, lifetime)
        return resolver

    def _configure(self, resolver: dns.resolver.BaseResolver, lifetime: float) -> None:
        resolver.port = self.port  # before nameservers: they take the port when assigned
        resolver.nameservers = [self.host]
        resolver.timeout = lifetime
        resolver.lifetime = lifetime
        resolver.cache = None

    @property
    def queries(self) -> list[Query]:
        """The questions received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._queries)

    # -- changing DNS at run time -------------------------------------------------------------

    def set_zone(self, origin: str, text: str) -> None:
        """Serve `text` (zone-file text, names relative to `origin`) as the zone `origin`,
        replacing any zone of that origin."""
        name = _absolute(origin)
        zone = self._parse_zone(name, text)
        with self._lock:
            self._zones[name] = zone

    def remove_zone(self, origin: str) -> None:
        with self._lock:
            self._zones.pop(_absolute(origin), None)

    def add_record(self, name: str, rdtype: str, value: str, ttl: int = DEFAULT_TTL) -> None:
        """Add one record to the zone that holds `name` (absolute, with or without the dot).

        `value` is rdata text (names in it relative to the zone origin unless they end in a
        dot); a TXT value that is not already quoted is taken literally and split into
        255-byte strings. Raises LookupError if no zone holds `name`.
        """
        qname = _absolute(name)
        rtype = dns.rdatatype.from_text(rdtype)
        with self._lock:
            zone = self._zone_for(qname)
            if zone is None:
                raise LookupError(f"no zone holds {qname}")
            rdata = _rdata(rtype, value, zone.origin)
            rdataset = zone.find_rdataset(qname, rtype, create=True)
            rdataset.add(rdata, ttl)
            rdataset.update_ttl(ttl)

    def remove_records(self, name: str, rdtype: str | None = None) -> None:
        """Remove `name`'s records of `rdtype` (or all its records); the name then answers
        NODATA or NXDOMAIN as the rest of the zone dictates."""
        qname = _absolute(name)
        with self._lock:
            zone = self._zone_for(qname)
            if zone is None:
                return
            if rdtype is None:
                zone.delete_node(qname)
            else:
                zone.delete_rdataset(qname, dns.rdatatype.from_text(rdtype))

    def fail(self, name: str, mode: Failure = "servfail", rdtype: str | None = None) -> None:
        """Make queries for `name` (of `rdtype`, or any type) answer SERVFAIL, or not at all
        ("timeout"), until `heal(name)`: temporary DNS failures (RFC 5321 §5.1, 4xx)."""
        rtype = dns.rdatatype.from_text(rdtype) if rdtype else None
        with self._lock:
            self._failures[(_absolute(name), rtype)] = mode

    def heal(self, name: str) -> None:
        """Undo every `fail()` on `name`."""
        qname = _absolute(name)
        with self._lock:
            for key in [k for k in self._failures if k[0] == qname]:
                del self._failures[key]

    @staticmethod
    def _parse_zone(origin: dns.name.Name, text: str) -> dns.zone.Zone:
        # A default TTL so the test's records need none; a $TTL in `text` overrides it.
        zone = dns.zone.from_text(
            f"$TTL {DEFAULT_TTL}\n{text}",
            origin=origin,
            relativize=False,
            check_origin=False,
            allow_include=False,
        )
        apex = zone.find_node(origin, create=True)
        if apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.NS) is None:
            ns = zone.find_rdataset(origin, dns.rdatatype.NS, create=True)
            ns.add(_rdata(dns.rdatatype.NS, "ns1", origin), 3600)
        if apex.get_rdataset(dns.rdataclass.IN, dns.rdatatype.SOA) is None:
            soa = zone.find_rdataset(origin, dns.rdatatype.SOA, create=True)
            # minimum 60 s: the negative-caching TTL (RFC 2308 §4)
            soa.add(_rdata(dns.rdatatype.SOA, "ns1 hostmaster 1 3600 600 86400 60", origin), 3600)
        return zone

    def _zone_for(self, qname: dns.name.Name) -> dns.zone.Zone | None:
        """The zone with the longest origin that `qname` is at or below (lock held)."""
        for count in range(len(qname.labels), 0, -1):
            _, suffix = qname.split(count)
            zone = self._zones.get(suffix)
            if zone is not None:
                return zone
        return None

    # -- answering ----------------------------------------------------------------------------

    def handle(self, wire: bytes, transport: Transport) -> bytes | None:
        """The reply to one query message, or None to stay silent (bad message, "timeout")."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            log.info("dns_bad_query transport=%s bytes=%d", transport, len(wire))
            return None
        if query.flags & dns.flags.QR:
            return None
        response = dns.message.make_response(query)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response.to_wire()
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response.to_wire()
        question = query.question[0]
        with self._lock:
            self._queries.append(
                Query(
                    question.name.to_text(omit_final_dot=True).lower(),
                    dns.rdatatype.to_text(question.rdtype),
                    transport,
                )
            )
            failure = self._failures.get((question.name, question.rdtype)) or self._failures.get(
                (question.name, None)
            )
            if failure == "timeout":
                return None
            try:
                if failure == "servfail":
                    response.set_rcode(dns.rcode.SERVFAIL)
                else:
                    self._answer(response, question.name, question.rdtype, question.rdclass)
                return self._to_wire(query, response, transport)
            except Exception:
                # A bug here, or zone data that cannot be sent: say so rather than go silent.
                log.exception("dns_answer_failed name=%s", question.name)
                failed = dns.message.make_response(query)
                failed.set_rcode(dns.rcode.SERVFAIL)
                return failed.to_wire()

    def _answer(
        self,
        response: dns.message.Message,
        qname: dns.name.Name,
        qtype: dns.rdatatype.RdataType,
        qclass: dns.rdataclass.RdataClass,
    ) -> None:
        """Fill `response` for (qname, qtype) from the zones (lock held). RFC 1034 §4.3.2."""
        zone = self._zone_for(qname)
        if zone is None or qclass != dns.rdataclass.IN:
            # Not ours: an authoritative-only server refuses (RFC 1035 §4.1.1 rcode 5).
            response.set_rcode(dns.rcode.REFUSED)
            return
        response.flags |= dns.flags.AA
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            node = zone.get_node(name)
            if node is None:
                if self._has_descendants(zone, name):
                    # RFC 8020 §2: an empty non-terminal exists; it has no data (NODATA).
                    self._add_soa(response, zone)
                else:
                    # RFC 2308 §2.1: NXDOMAIN with the zone's SOA in the authority section.
                    # After a CNAME, the rcode is the target's (RFC 6604 §2.1).
                    response.set_rcode(dns.rcode.NXDOMAIN)
                    self._add_soa(response, zone)
                return
            if qtype == dns.rdatatype.ANY:
                for rdataset in node.rdatasets:
                    response.answer.append(_rrset(name, rdataset))
                return
            rdataset = node.get_rdataset(dns.rdataclass.IN, qtype)
            if rdataset is not None:
                response.answer.append(_rrset(name, rdataset))
                self._add_glue(response, zone, rdataset)
                return
            cname = node.get_rdataset(dns.rdataclass.IN, dns.rdatatype.CNAME)
            if cname is None:
                # RFC 2308 §2.2: NODATA is NOERROR, an empty answer and the SOA.
                self._add_soa(response, zone)
                return
            # RFC 1034 §4.3.2 step 3a: give the CNAME and follow it while it stays in our zones.
            response.answer.append(_rrset(name, cname))
            name = next(iter(cname)).target
            target_zone = self._zone_for(name)
            if target_zone is None:
                return  # the resolver chases it elsewhere
            zone = target_zone
        response.set_rcode(dns.rcode.SERVFAIL)  # a CNAME loop in the test's zones

    @staticmethod
    def _has_descendants(zone: dns.zone.Zone, name: dns.name.Name) -> bool:
        return any(n != name and n.is_subdomain(name) for n in zone.nodes)

    @staticmethod
    def _add_soa(response: dns.message.Message, zone: dns.zone.Zone) -> None:
        origin = zone.origin
        assert origin is not None
        soa = zone.get_rdataset(origin, dns.rdatatype.SOA)
        assert soa is not None
        rrset = _rrset(origin, soa)
        # RFC 2308 §3: the negative answer's SOA TTL is min(SOA TTL, SOA MINIMUM).
        minimum = next(iter(soa)).minimum
        rrset.update_ttl(min(soa.ttl, minimum))
        response.authority.append(rrset)

    def _add_glue(
        self, response: dns.message.Message, zone: dns.zone.Zone, rdataset: dns.rdataset.Rdataset
    ) -> None:
        """Addresses of MX exchanges and NS hosts we hold, as additional data (RFC 1035 §3.3.9)."""
        if rdataset.rdtype == dns.rdatatype.MX:
            targets = [rd.exchange for rd in rdataset]
        elif rdataset.rdtype == dns.rdatatype.NS:
            targets = [rd.target for rd in rdataset]
        else:
            return
        for target in targets:
            target_zone = self._zone_for(target)
            if target_zone is None:
                continue
            for atype in (dns.rdatatype.A, dns.rdatatype.AAAA):
                found = target_zone.get_rdataset(target, atype)
                if found is not None:
                    response.additional.append(_rrset(target, found))

    @staticmethod
    def _to_wire(
        query: dns.message.Message, response: dns.message.Message, transport: Transport
    ) -> bytes:
        if transport == "tcp":
            max_size = TCP_MAX_BYTES
        elif query.edns >= 0:
            # RFC 6891 §6.2.5: the requester's payload size, never below 512.
            max_size = max(UDP_PLAIN_MAX_BYTES, query.payload)
        else:
            max_size = UDP_PLAIN_MAX_BYTES
        try:
            return response.to_wire(max_size=max_size)
        except dns.exception.TooBig:
            pass
        # RFC 2181 §9 / RFC 1035 §4.2.1: set TC and send no partial RRsets; the client
        # asks again over TCP.
        truncated = dns.message.make_response(query)
        truncated.flags |= response.flags & dns.flags.AA
        truncated.flags |= dns.flags.TC
        truncated.set_rcode(response.rcode())
        return truncated.to_wire(max_size=max_size)


def _rdata(
    rtype: dns.rdatatype.RdataType, value: str, origin: dns.name.Name | None
) -> dns.rdata.Rdata:
    if rtype == dns.rdatatype.TXT and not value.lstrip().startswith('"'):
        return dns.rdtypes.ANY.TXT.TXT(
            dns.rdataclass.IN, dns.rdatatype.TXT, _chunks(value.encode())
        )
    return dns.rdata.from_text(dns.rdataclass.IN, rtype, value, origin=origin, relativize=False)


def _rrset(name: dns.name.Name, rdataset: dns.rdataset.Rdataset) -> dns.rrset.RRset:
    return dns.rrset.from_rdata_list(name, rdataset.ttl, list(rdataset))


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, address: tuple[str, int], dns_server: DnsServer) -> None:
        self.dns_server = dns_server
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _UdpHandler)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], dns_server: DnsServer) -> None:
        self.dns_server = dns_server
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, _TcpHandler)


class _UdpHandler(socketserver.BaseRequestHandler):
    server: _UdpServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.dns_server.handle(data, "udp")
        if reply is not None:
            sock.sendto(reply, self.client_address)


class _TcpHandler(socketserver.BaseRequestHandler):
    """Length-prefixed messages (RFC 1035 §4.2.2), several per connection (RFC 7766 §6.2.1)."""

    server: _TcpServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.settimeout(10)
        with contextlib.suppress(OSError):
            while True:
                header = _recv_exactly(sock, 2)
                if header is None:
                    return
                (length,) = struct.unpack("!H", header)
                wire = _recv_exactly(sock, length)
                if wire is None:
                    return
                reply = self.server.dns_server.handle(wire, "tcp")
                if reply is not None:
                    sock.sendall(struct.pack("!H", len(reply)) + reply)


def _recv_exactly(sock: socket.socket, count: int) -> bytes | None:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data

"""Where mail for a domain goes: MX lookup and address lookup for the remote transport.

`resolve_mx` returns the hosts to try in order (RFC 5321 §5.1); `resolve_addresses` the
IP addresses of one host. Both raise `DnsError`, whose `permanent` flag says whether the
message should bounce (the name does not exist, a null MX) or wait for a retry (SERVFAIL,
timeout). The resolver is injected: dnspython's `dns.asyncresolver.Resolver` in the
server, a resolver pointed at a loopback DNS server or a stub in tests.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import dns.exception
import dns.rdatatype
import dns.resolver


class Resolver(Protocol):
    """The one method of `dns.asyncresolver.Resolver` we call: records of one type."""

    async def resolve(self, qname: str, rdtype: str) -> Iterable[Any]: ...


class CachingResolver:
    """Answers kept in front of `resolver` until they expire.

    dnspython's own cache (see `server.make_resolver`) also keeps answers, but every hit
    there still builds a query and a resolution; the queue asks for the same MX, A and
    AAAA records for every message to a domain, so they are kept here as lists: positive
    answers until their `expiration` (the TTL), "no records of this type" (NoAnswer, such
    as a host without AAAA) for the negative TTL of its SOA (RFC 2308 §5: the lesser of
    the SOA's TTL and MINIMUM). Failures (SERVFAIL, timeouts, NXDOMAIN) are not kept here,
    and answers without an `expiration` or SOA (test stubs) are not kept at all.
    """

    def __init__(
        self,
        resolver: Resolver,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resolver = resolver
        self._max_entries = max_entries
        self._clock = clock  # dnspython's `expiration` is time.time() based
        # (name, type) → (expires, records); records None: NoAnswer.
        self._answers: dict[tuple[str, str], tuple[float, list[Any] | None]] = {}

    async def resolve(self, qname: str, rdtype: str) -> Iterable[Any]:
        key = (qname, rdtype)
        cached = self._answers.get(key)
        if cached is not None and cached[0] > self._clock():
            if cached[1] is None:
                raise dns.resolver.NoAnswer()  # type: ignore[no-untyped-call]
            return cached[1]
        try:
            answer = await self._resolver.resolve(qname, rdtype)
        except dns.resolver.NoAnswer as exc:
            ttl = _negative_ttl(exc)
            if ttl > 0:
                self._keep(key, self._clock() + ttl, None)
            raise
        records = list(answer)
        expiration = getattr(answer, "expiration", None)
        if isinstance(expiration, float | int):
            self._keep(key, float(expiration), records)
        return records

    def _keep(self, key: tuple[str, str], expires: float, records: list[Any] | None) -> None:
        if len(self._answers) >= self._max_entries:
            self._answers.clear()  # simple and bounded; refilled at the TTLs' pace
        self._answers[key] = (expires, records)


def _negative_ttl(exc: dns.resolver.NoAnswer) -> float:
    """RFC 2308 §5: how long a NODATA answer may be kept; 0 when it carries no SOA."""
    try:
        response = exc.response()  # type: ignore[no-untyped-call]
    except (KeyError, AttributeError):
        return 0.0
    for rrset in getattr(response, "authority", ()):
        if rrset.rdtype == dns.rdatatype.SOA and len(rrset):
            return float(min(rrset.ttl, rrset[0].minimum))
    return 0.0


@dataclass(frozen=True)
class MxHost:
    priority: int
    host: str  # without the trailing dot


class DnsError(Exception):
    """A lookup that gave no usable answer; `permanent` if retrying cannot help."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.permanent = permanent


async def _lookup(resolver: Resolver, name: str, rdtype: str) -> list[Any] | None:
    """The records of `name`; None when the name exists without records of that type.

    NXDOMAIN is permanent (RFC 5321 §5.1: the domain does not exist); anything else that
    keeps us from an answer (SERVFAIL, no nameserver answering, timeout) is temporary.
    """
    try:
        return list(await resolver.resolve(name, rdtype))
    except dns.resolver.NXDOMAIN:
        raise DnsError(f"{name}: no such domain", permanent=True) from None
    except dns.resolver.NoAnswer:
        return None
    except dns.resolver.NoNameservers:
        raise DnsError(f"{name}: {rdtype} lookup failed (SERVFAIL)", permanent=False) from None
    except dns.exception.Timeout:
        raise DnsError(f"{name}: {rdtype} lookup timed out", permanent=False) from None
    except dns.exception.DNSException as exc:
        raise DnsError(f"{name}: {rdtype} lookup failed: {exc}", permanent=False) from None


async def resolve_mx(domain: str, resolver: Resolver) -> list[MxHost]:
    """The mail exchangers of `domain`, most preferred first (random among equals)."""
    domain = domain.rstrip(".").lower()
    records = await _lookup(resolver, domain, "MX")
    if not records:
        # RFC 5321 §5.1: no MX records, the domain itself is the implicit MX (its
        # address records are looked up when it is tried).
        return [MxHost(0, domain)]
    hosts = [MxHost(int(r.preference), str(r.exchange).rstrip(".").lower()) for r in records]
    # RFC 7505 §3: a single MX with an empty exchange ("0 .") says the domain accepts no mail.
    if any(h.host == "" for h in hosts):
        raise DnsError(f"{domain}: domain accepts no mail (null MX)", permanent=True)
    # RFC 5321 §5.1: try in order of preference; equal preferences SHOULD be randomised.
    shuffled = random.sample(hosts, len(hosts))
    return sorted(shuffled, key=lambda h: h.priority)


async def resolve_addresses(host: str, resolver: Resolver) -> list[str]:
    """The IPv4 then IPv6 addresses of `host`; DnsError when it has none."""
    host = host.rstrip(".").lower()
    addresses: list[str] = []
    temporary: DnsError | None = None
    for rdtype in ("A", "AAAA"):
        try:
            records = await _lookup(resolver, host, rdtype)
        except DnsError as exc:
            if exc.permanent:
                raise
            temporary = exc
            continue
        addresses.extend(str(r.address) for r in records or ())
    if addresses:
        return addresses
    if temporary is not None:
        raise temporary
    # RFC 5321 §5.1: a name with neither MX nor address records cannot receive mail.
    raise DnsError(f"{host}: no address records", permanent=True)

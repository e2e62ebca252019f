"""pytest fixtures for the loopback DNS server: `dns_server`, and `dns_resolver` bound to it.

def test_mx(dns_server: DnsServer, dns_resolver: dns.asyncresolver.Resolver) -> None:
    dns_server.set_zone("remote.test", "@ MX 10 mx\nmx A 127.0.0.2\n")
    answer = await dns_resolver.resolve("remote.test", "MX")
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.asyncresolver
import pytest

from tests.dns.server import DnsServer


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    """A started DnsServer with no zones, on an ephemeral loopback port; stopped afterwards."""
    with DnsServer() as server:
        yield server


@pytest.fixture
def dns_resolver(dns_server: DnsServer) -> dns.asyncresolver.Resolver:
    """A dnspython async resolver that asks only `dns_server` (no /etc/resolv.conf)."""
    return resolver_for(dns_server)


def resolver_for(server: DnsServer, *, lifetime: float = 2.0) -> dns.asyncresolver.Resolver:
    """A dnspython async resolver configured for `server`: nameservers=[127.0.0.1], its port."""
    return server.async_resolver(lifetime=lifetime)

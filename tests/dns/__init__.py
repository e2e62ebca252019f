"""A small authoritative DNS server on loopback, for tests.

`server.DnsServer` serves zones that the tests write (zone-file text) over UDP and TCP on
127.0.0.1, from background threads, so blocking and asyncio clients alike can query it;
`fixture.dns_server` is the function-scoped pytest fixture around it. The remote transport
(MX lookups), DKIM verification and the filter pipeline (SPF, DMARC, DNSBL) tests all use it.

Invariants: the zones are only read or changed while holding the server's lock, so a test may
change DNS from its own thread while queries are answered; the server is authoritative only
(no recursion, no referrals below a zone cut) and answers REFUSED outside its zones; UDP and
TCP listen on the same port.
"""

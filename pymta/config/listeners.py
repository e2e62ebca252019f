"""Reading `[listeners.NAME]`: protocol, bind addresses, port and TLS mode of each socket.

A listener's name is its table key. Addresses are normalised by `ipaddress` (`address =
"..."` or `addresses = [...]`); two listeners may not bind one address and port, nor an
address beside a wildcard of it on the same port. Plaintext AUTH is allowed only on
loopback-only listeners, and TLS only when `[tls]` has a certificate.
"""

from __future__ import annotations

import ipaddress

from pymta.config.errors import KeyPath
from pymta.config.model import ListenerConfig, Protocol, TlsConfig, TlsMode
from pymta.config.tables import Problems, Table


class ListenerReader:
    """Reads the `[listeners]` table into ListenerConfigs, reporting to `problems`."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def listeners(self, t: Table, tls: TlsConfig) -> tuple[ListenerConfig, ...]:
        listeners: list[ListenerConfig] = []
        for name, value in t.items():
            if not isinstance(value, dict):
                t.wrong_type(t.at(name), value, f"a table ([listeners.{name}])")
                continue
            listener = self.listener(Table(self.problems, value, t.at(name)), name)
            if listener is None:
                continue
            self.check_bind_conflicts(listener, listeners)
            if listener.tls is not TlsMode.NONE and (tls.cert_file is None or tls.key_file is None):
                self.problems.add(
                    (*t.at(name), "tls"),
                    "TLS is on but [tls] has no certificate (expected [tls] cert_file and "
                    'key_file, or tls = "none")',
                )
            listeners.append(listener)
        return tuple(listeners)

    def listener(self, t: Table, name: str) -> ListenerConfig | None:
        protocol = t.choice("protocol", [p.value for p in Protocol], None)
        addresses = self.bind_addresses(t)
        # 0: the kernel picks a free port (used by the test suite and benchmarks).
        port = t.integer("port", None, minimum=0, maximum=65535)
        tls = t.choice("tls", [m.value for m in TlsMode], None)
        plaintext_auth = t.boolean("allow_plaintext_auth", False)
        t.finish()
        if plaintext_auth and addresses:
            outside = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
            if outside:
                # Secure by default: a password sent in clear over a network is exposed;
                # on loopback it never leaves the host (RFC 4954 §4 wants TLS for PLAIN).
                t.report(
                    "allow_plaintext_auth",
                    f"plaintext AUTH would send passwords in clear: {outside[0]} is not a "
                    "loopback address (expected false, or only loopback addresses)",
                )
        if protocol is None or addresses is None or port is None or tls is None:
            return None
        return ListenerConfig(
            name=name,
            protocol=Protocol(protocol),
            addresses=addresses,
            port=port,
            tls=TlsMode(tls),
            allow_plaintext_auth=plaintext_auth,
        )

    def bind_addresses(self, t: Table) -> tuple[str, ...] | None:
        """`addresses = [...]`, or one `address = "..."`, normalised by ipaddress."""
        expected = "IP addresses"
        one = t.take("address")
        if one is not None and t.take("addresses") is not None:
            t.report("address", "both address and addresses are set (expected one of them)")
            return None
        items: list[tuple[KeyPath, str]] | None
        if one is None:
            if t.take("addresses") is None:
                t.missing("addresses", f"an array of {expected}")
                return None
            items = t.strings("addresses", expected="an IP address")
            if items == []:
                t.report("addresses", f"empty array (expected {expected}, at least one)")
        elif isinstance(one, str):
            items = [(t.at("address"), one)]
        else:
            t.wrong_type(t.at("address"), one, "an IP address")
            return None
        if not items:
            return None
        addresses: list[str] = []
        for path, text in items:
            try:
                address = str(ipaddress.ip_address(text))
            except ValueError:
                self.problems.add(path, f"malformed IP address {text!r} (expected {expected})")
                continue
            if address in addresses:
                self.problems.add(path, f"{address} is listed twice")
                continue
            addresses.append(address)
        return tuple(addresses) if len(addresses) == len(items) else None

    def check_bind_conflicts(self, new: ListenerConfig, earlier: list[ListenerConfig]) -> None:
        """Two sockets cannot listen on one address and port, nor beside a wildcard of it."""
        for i, text in enumerate(new.addresses):
            address = ipaddress.ip_address(text)
            for other in earlier:
                if other.port != new.port or new.port == 0:
                    continue
                for other_text in other.addresses:
                    other_address = ipaddress.ip_address(other_text)
                    clash = address == other_address or (
                        address.version == other_address.version
                        and (address.is_unspecified or other_address.is_unspecified)
                    )
                    if clash:
                        self.problems.add(
                            ("listeners", new.name, "addresses", i),
                            f"{text} port {new.port} clashes with {other_text} port "
                            f"{other.port} of listener {other.name!r} (expected another "
                            "address or port)",
                        )

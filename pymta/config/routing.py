"""Reading where mail goes: `[[domains]]`, `[[public_mailboxes]]`, `[[addresses]]`.

Every destination (a domain's `catch_all` or `copy_inbound_to`, an address's
`destinations`) is parsed where it is read and remembered; `RoutingReader.check` resolves
them once every table is known (`_Resolver`): a user or public mailbox must exist, and an
address of one of our domains must lead to a user, an `[[addresses]]` entry or a
catch-all, never back to itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pymta.config.errors import KeyPath, format_key_path
from pymta.config.model import (
    AddressConfig,
    DestinationRef,
    DirectoryConfig,
    DomainConfig,
    PublicMailboxConfig,
)
from pymta.config.names import (
    domain_problem,
    local_part_problem,
    public_name_problem,
    user_name_problem,
)
from pymta.config.tables import Problems, Table


@dataclass(frozen=True)
class _PendingDestination:
    """A destination read syntactically, resolved once every table is read."""

    path: KeyPath
    ref: DestinationRef
    owner: tuple[str, str | None] | None = None  # the [[addresses]] entry it belongs to
    catch_all_of: str | None = None  # the domain whose catch_all this is


class RoutingReader:
    """Reads the routing tables, remembering every destination for `check`."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems
        self.pending: list[_PendingDestination] = []

    def check(
        self,
        domains: tuple[DomainConfig, ...],
        directory: DirectoryConfig,
        public: tuple[PublicMailboxConfig, ...],
        addresses: tuple[AddressConfig, ...],
    ) -> None:
        """Report every destination read so far that leads nowhere."""
        _Resolver(self.problems, domains, directory, public, addresses).check(self.pending)

    # [[domains]]

    def domains(self, tables: list[Table]) -> tuple[DomainConfig, ...]:
        domains: list[DomainConfig] = []
        first: dict[str, KeyPath] = {}
        for t in tables:
            name = self.domain_name(t, first)
            add_user = t.boolean("add_user_addresses", DomainConfig.add_user_addresses)
            accept = t.boolean("accept_unknown_recipients", False)
            catch_all = self.destination(t, "catch_all", catch_all_of=name)
            copy_to = self.destination(t, "copy_inbound_to")
            t.finish()
            if accept and catch_all is None:
                t.report(
                    "accept_unknown_recipients",
                    "unknown recipients need somewhere to go (expected a catch_all)",
                )
            if accept and add_user:
                t.report(
                    "accept_unknown_recipients",
                    "accept_unknown_recipients replaces per-user addresses (expected "
                    "add_user_addresses = false)",
                )
            if catch_all is not None and not accept:
                t.report(
                    "catch_all",
                    "a catch_all receives only unknown recipients (expected "
                    "accept_unknown_recipients = true)",
                )
            if name is not None:
                first[name] = t.path
                domains.append(DomainConfig(name, add_user, accept, catch_all, copy_to))
        return tuple(domains)

    def domain_name(self, t: Table, first: Mapping[str, KeyPath]) -> str | None:
        """The lower-cased name of a [[domains]] entry; None when bad or a duplicate."""
        name = t.string("name", required=True, expected="a domain name")
        if name is None:
            return None
        name = name.lower()
        problem = domain_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        if name in first:
            t.report("name", f"duplicate domain {name} (first in {format_key_path(first[name])})")
            return None
        return name

    def destination(
        self, t: Table, key: str, *, catch_all_of: str | None = None
    ) -> DestinationRef | None:
        expected = 'a user name, "public:NAME" or an email address'
        value = t.string(key, expected=expected)
        if value is None:
            return None
        return self.destination_value(t.at(key), value, catch_all_of=catch_all_of)

    def destination_value(
        self,
        path: KeyPath,
        value: str,
        *,
        owner: tuple[str, str | None] | None = None,
        catch_all_of: str | None = None,
    ) -> DestinationRef | None:
        """Parse one destination string (it is resolved later, in `_Resolver`)."""
        ref: DestinationRef | None = None
        if value.startswith("public:"):
            name = value.removeprefix("public:")
            problem = public_name_problem(name)
            ref = DestinationRef(public=name) if problem is None else None
        elif "@" in value:
            local, _, domain = value.rpartition("@")
            domain = domain.lower()
            problem = local_part_problem(local) or domain_problem(domain)
            ref = DestinationRef(address=f"{local}@{domain}") if problem is None else None
        else:
            name = value.lower()
            problem = user_name_problem(name)
            ref = DestinationRef(user=name) if problem is None else None
        if problem is not None or ref is None:
            self.problems.add(path, f"malformed destination {value!r}: {problem}")
            return None
        self.pending.append(_PendingDestination(path, ref, owner, catch_all_of))
        return ref

    # [[public_mailboxes]]

    def public_mailboxes(self, tables: list[Table]) -> tuple[PublicMailboxConfig, ...]:
        mailboxes: list[PublicMailboxConfig] = []
        for t in tables:
            name = t.string("name", required=True, expected="a mailbox name")
            quota = t.size("quota")
            t.finish()
            if name is None:
                continue
            problem = public_name_problem(name)
            if problem is not None:
                t.report("name", problem)
                continue
            # Case-insensitively: the name is a directory, and file systems may fold case.
            if any(m.name.lower() == name.lower() for m in mailboxes):
                t.report("name", f"duplicate public mailbox {name}")
                continue
            mailboxes.append(PublicMailboxConfig(name, quota))
        return tuple(mailboxes)

    # [[addresses]]

    def addresses(
        self, tables: list[Table], domains: tuple[DomainConfig, ...]
    ) -> tuple[AddressConfig, ...]:
        domain_names = [d.name for d in domains]
        entries: list[AddressConfig] = []
        for t in tables:
            key = self.address_key(t, domain_names)
            destinations: list[DestinationRef] = []
            raw = t.take("destinations")
            if raw is None:
                t.missing("destinations", "an array of destinations")
            elif raw == []:
                t.report("destinations", "empty array (expected at least one destination)")
            for path, value in t.strings("destinations", expected="destinations") or []:
                ref = self.destination_value(path, value, owner=key)
                if ref is not None:
                    destinations.append(ref)
            internal = t.boolean("internal", False)
            t.finish()
            if key is None:
                continue
            if any((e.local_part, e.domain) == key for e in entries):
                t.report("address", f"duplicate address {_address_text(*key)}")
                continue
            entries.append(AddressConfig(key[0], key[1], tuple(destinations), internal))
        return tuple(entries)

    def address_key(self, t: Table, domain_names: list[str]) -> tuple[str, str | None] | None:
        expected = '"local" (in every domain) or "local@domain"'
        value = t.string("address", required=True, expected=expected)
        if value is None:
            return None
        local, at, domain_text = value.lower().rpartition("@")
        if not at:
            local, domain_text = domain_text, ""
        problem = local_part_problem(local)
        if problem is not None:
            t.report("address", f"{problem} (in {value!r})")
            return None
        if not at:
            return local, None
        if domain_text not in domain_names:
            t.report(
                "address",
                f"{domain_text} is not one of ours (expected a [[domains]] name, or no domain "
                "for every domain)",
            )
            return None
        return local, domain_text


def _address_text(local: str, domain: str | None) -> str:
    return local if domain is None else f"{local}@{domain}"


class _Resolver:
    """Checks that every destination leads somewhere, once all tables are known."""

    def __init__(
        self,
        problems: Problems,
        domains: tuple[DomainConfig, ...],
        directory: DirectoryConfig,
        public: tuple[PublicMailboxConfig, ...],
        addresses: tuple[AddressConfig, ...],
    ) -> None:
        self.problems = problems
        self.domains = {d.name: d for d in domains}
        self.users = {u.name for u in directory.users}
        self.public = {p.name for p in public}
        self.addresses = {(a.local_part, a.domain) for a in addresses}

    def check(self, pending: list[_PendingDestination]) -> None:
        for item in pending:
            problem = self.problem(item)
            if problem is not None:
                self.problems.add(item.path, problem)

    def problem(self, item: _PendingDestination) -> str | None:
        ref = item.ref
        if ref.public is not None:
            if ref.public not in self.public:
                return f"no public mailbox {ref.public} (expected a [[public_mailboxes]] name)"
            return None
        if ref.user is not None:
            if ref.user not in self.users:
                return f"no user {ref.user} (expected a [[directory.users]] name)"
            return None
        assert ref.address is not None
        local, _, domain_name = ref.address.rpartition("@")
        domain = self.domains.get(domain_name)
        if domain is None:
            return None  # not ours: relayed
        local = local.lower()
        exact = (local, domain_name) in self.addresses
        # The directory looks up an exact local@domain entry before a domain-less one.
        if item.owner == (local, domain_name) or (item.owner == (local, None) and not exact):
            return "an address cannot deliver to itself"
        if domain.add_user_addresses and local in self.users:
            return None
        if exact or (local, None) in self.addresses:
            return None
        if domain.accept_unknown_recipients:
            if item.catch_all_of == domain_name:
                return "the catch_all points back to this domain's catch_all"
            return None
        return (
            f"destination points to nothing: {local}@{domain_name} is no user address, "
            "[[addresses]] entry or catch-all (expected an existing address)"
        )

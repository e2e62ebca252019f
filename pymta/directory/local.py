"""The local directory backend: domains, users and addresses from the config file."""

from __future__ import annotations

from pymta.config.model import AddressConfig, Config, DestinationRef, DomainConfig

from .model import AddressEntry, Mailbox, User


def split_address(address: str) -> tuple[str, str] | None:
    """("local", "domain") lower-cased, or None when `address` is not local@domain."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    return local.lower(), domain.lower().rstrip(".")


class LocalDirectory:
    """An immutable snapshot of the directory described by one `Config`."""

    def __init__(self, config: Config) -> None:
        default_quota = config.mailboxes.default_quota_bytes
        self._domains = {d.name: d for d in config.domains}
        self._users = {
            u.name: User(
                name=u.name,
                domain=u.domain,
                password_hash=u.password_hash,
                enabled=u.enabled,
                quota_bytes=default_quota if u.quota_bytes is None else u.quota_bytes,
                groups=u.groups,
            )
            for u in config.directory.users
        }
        self._public = {
            p.name: Mailbox(
                "public",
                p.name,
                None,
                True,
                default_quota if p.quota_bytes is None else p.quota_bytes,
            )
            for p in config.public_mailboxes
        }
        self._exact: dict[tuple[str, str], AddressConfig] = {}
        self._any_domain: dict[str, AddressConfig] = {}
        for a in config.addresses:
            if a.domain is None:
                self._any_domain[a.local_part] = a
            else:
                self._exact[(a.local_part, a.domain)] = a

    def domain(self, name: str) -> DomainConfig | None:
        return self._domains.get(name.lower().rstrip("."))

    def is_local_domain(self, name: str) -> bool:
        return self.domain(name) is not None

    def lookup(self, address: str) -> AddressEntry | None:
        """One level of resolution, in this order of precedence: an address bound to this
        domain, an address bound to every domain, a user address, the domain's catch-all."""
        parts = split_address(address)
        if parts is None:
            return None
        local, domain_name = parts
        domain = self._domains.get(domain_name)
        if domain is None:
            return None
        normalized = f"{local}@{domain_name}"
        entry = self._exact.get((local, domain_name)) or self._any_domain.get(local)
        if entry is not None:
            return AddressEntry(normalized, entry.destinations, entry.internal)
        if domain.add_user_addresses and local in self._users:
            return AddressEntry(normalized, (DestinationRef(user=local),))
        if domain.accept_unknown_recipients and domain.catch_all is not None:
            return AddressEntry(normalized, (domain.catch_all,), catch_all=True)
        return None

    def user(self, name: str) -> User | None:
        return self._users.get(name.lower())

    def users(self) -> list[User]:
        return list(self._users.values())

    def public_mailbox(self, name: str) -> Mailbox | None:
        return self._public.get(name)

    def public_mailboxes(self) -> list[Mailbox]:
        return list(self._public.values())

    def addresses_of(self, mailbox: Mailbox) -> list[str]:
        """The addresses that name `mailbox` directly (one level), for admin listings."""
        found: list[str] = []
        if mailbox.kind == "user":
            found += [
                f"{mailbox.name}@{d.name}" for d in self._domains.values() if d.add_user_addresses
            ]
        ref = (
            DestinationRef(user=mailbox.name)
            if mailbox.kind == "user"
            else DestinationRef(public=mailbox.name)
        )
        for (local, domain), entry in sorted(self._exact.items()):
            if ref in entry.destinations:
                found.append(f"{local}@{domain}")
        for local, entry in sorted(self._any_domain.items()):
            if ref in entry.destinations:
                found += [f"{local}@{d}" for d in sorted(self._domains)]
        for d in self._domains.values():
            if d.catch_all == ref:
                found.append(f"*@{d.name}")
        return found

"""Reading `[directory]`: the local users (`[[directory.users]]`) and groups.

Names are lower-cased; a user's domain must be one of the `[[domains]]`; a password hash
travels as a `Secret` and no problem ever quotes it. Group membership may be stated on
either side (a user's `groups`, a group's `members`); `_merge_memberships` makes both
sides agree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from pymta.config.model import DirectoryConfig, DomainConfig, GroupConfig, Secret, UserConfig
from pymta.config.names import user_name_problem
from pymta.config.tables import Problems, Table

# Hash formats the auth layer verifies: argon2 (argon2-cffi) and SHA512-CRYPT (libpass).
PASSWORD_HASH_PREFIXES = ("$argon2id$", "$argon2i$", "$6$")


class DirectoryReader:
    """Reads the `[directory]` table into a DirectoryConfig, reporting to `problems`."""

    def __init__(self, problems: Problems) -> None:
        self.problems = problems

    def directory(self, t: Table, domains: tuple[DomainConfig, ...]) -> DirectoryConfig:
        backend = t.choice("backend", ("local",), DirectoryConfig.backend)
        domain_names = [d.name for d in domains]
        users: dict[str, UserConfig] = {}
        for user_table in t.tables("users"):
            user = self.user(user_table, domain_names)
            if user is None:
                continue
            if user.name in users:
                user_table.report("name", f"duplicate user {user.name}")
                continue
            users[user.name] = user
        groups: dict[str, GroupConfig] = {}
        for group_table in t.tables("groups"):
            group = self.group(group_table, users.keys())
            if group is None:
                continue
            if group.name in groups:
                group_table.report("name", f"duplicate group {group.name}")
                continue
            groups[group.name] = group
        t.finish()
        merged_users, merged_groups = _merge_memberships(users.values(), groups.values())
        return DirectoryConfig(backend or "local", merged_users, merged_groups)

    def user(self, t: Table, domain_names: list[str]) -> UserConfig | None:
        name = t.string("name", required=True, expected="a user name")
        domain = t.string("domain", required=True, expected="one of the [[domains]] names")
        password_hash = self.password_hash(t)
        enabled = t.boolean("enabled", True)
        quota = t.size("quota")
        groups = t.strings("groups", expected="group names") or []
        t.finish()
        group_names: list[str] = []
        for path, group in groups:
            group = group.lower()
            problem = user_name_problem(group)
            if problem is not None:
                self.problems.add(path, problem)
            elif group not in group_names:
                group_names.append(group)
        if domain is not None and domain.lower() not in domain_names:
            t.report(
                "domain",
                f"{domain.lower()} is not one of ours (expected one of the [[domains]]: "
                f"{', '.join(domain_names) or 'none defined'})",
            )
            domain = None
        if name is None:
            return None
        name = name.lower()
        problem = user_name_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        if domain is None:
            return None
        return UserConfig(
            name=name,
            domain=domain.lower(),
            password_hash=password_hash,
            enabled=enabled,
            quota_bytes=quota,
            groups=tuple(group_names),
        )

    def password_hash(self, t: Table) -> Secret | None:
        """The hash as a Secret. Problems never quote the value, not even in part."""
        expected = "a hash starting with " + ", ".join(PASSWORD_HASH_PREFIXES)
        value = t.take("password_hash")
        if value is None:
            return None  # no password: this user cannot log in
        if not isinstance(value, str):
            t.wrong_type(t.at("password_hash"), value, expected)
            return None
        if not value.startswith(PASSWORD_HASH_PREFIXES):
            t.report("password_hash", f"not a supported password hash (expected {expected})")
            return None
        return Secret(value)

    def group(self, t: Table, user_names: Collection[str]) -> GroupConfig | None:
        name = t.string("name", required=True, expected="a group name")
        members = t.strings("members", expected="user names") or []
        t.finish()
        member_names: list[str] = []
        for path, member in members:
            member = member.lower()
            if member not in user_names:
                self.problems.add(
                    path, f"{member} is not a user (expected a [[directory.users]] name)"
                )
            elif member not in member_names:
                member_names.append(member)
        if name is None:
            return None
        name = name.lower()
        problem = user_name_problem(name)
        if problem is not None:
            t.report("name", problem)
            return None
        return GroupConfig(name, tuple(member_names))


def _merge_memberships(
    users: Collection[UserConfig], groups: Collection[GroupConfig]
) -> tuple[tuple[UserConfig, ...], tuple[GroupConfig, ...]]:
    """Make `user.groups` and `group.members` agree, whichever side the file stated.

    A group named only in users' `groups` exists too, after the declared ones.
    """
    members: dict[str, list[str]] = {g.name: list(g.members) for g in groups}
    user_groups: dict[str, list[str]] = {}
    for user in users:
        user_groups[user.name] = list(user.groups)
        for group in user.groups:
            names = members.setdefault(group, [])
            if user.name not in names:
                names.append(user.name)
    for group, names in members.items():
        for name in names:
            if group not in user_groups[name]:
                user_groups[name].append(group)
    return (
        tuple(replace(u, groups=tuple(user_groups[u.name])) for u in users),
        tuple(GroupConfig(name, tuple(names)) for name, names in members.items()),
    )

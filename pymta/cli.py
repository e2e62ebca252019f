"""The `pymta` command: serve, check-config, hash-password, reindex, mailbox, queue."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pymta.config.model import Config
    from pymta.queue import Queue
    from pymta.store import Store

DEFAULT_CONFIG = "/etc/pymta/pymta.toml"


def _load(path: str) -> Config:
    from pymta.config.loader import load_config

    return load_config(Path(path))


def cmd_serve(args: argparse.Namespace) -> int:
    from pymta.server import serve

    return serve(Path(args.config))


def cmd_check_config(args: argparse.Namespace) -> int:
    from pymta.config.errors import ConfigError

    path = args.file or args.config
    try:
        config = _load(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{path}: OK ({len(config.domains)} domains, {len(config.directory.users)} users, "
        f"{len(config.addresses)} addresses, {len(config.listeners)} listeners)"
    )
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from pymta.auth.passwords import Passwords

    if args.stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            print("passwords differ", file=sys.stderr)
            return 1
    if not password:
        print("empty password", file=sys.stderr)
        return 1
    print(Passwords().hash(password).reveal())
    return 0


def _store(config: Config) -> Store:
    from pymta.store import Store

    return Store(config.server.data_dir, hostname=config.server.hostname)


def cmd_reindex(args: argparse.Namespace) -> int:
    from pymta.delivery.deliver import mailbox_ref
    from pymta.directory.local import LocalDirectory

    config = _load(args.config)
    directory = LocalDirectory(config)
    user = directory.user(args.user)
    mailbox = user.mailbox if user is not None else directory.public_mailbox(args.user)
    if mailbox is None:
        print(f"no such user or public mailbox: {args.user}", file=sys.stderr)
        return 1

    async def run() -> None:
        store = _store(config)
        try:
            await store.reindex(mailbox_ref(mailbox))
            usage = await store.usage(mailbox_ref(mailbox))
            print(f"{mailbox}: reindexed, {usage.messages} messages, {usage.bytes} bytes")
        finally:
            await store.close()

    from pymta.datalock import DataDirLock, DataDirLocked

    try:
        with DataDirLock(config.server.data_dir):
            asyncio.run(run())
    except DataDirLocked:
        print("the server is running on this data directory: stop it first", file=sys.stderr)
        return 1
    return 0


def _size(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1024
    return f"{n:.1f}T"


@dataclass(frozen=True)
class MailboxRow:
    mailbox: str
    enabled: bool
    addresses: list[str]
    quota_bytes: int
    used_bytes: int
    messages: int


def cmd_mailbox_list(args: argparse.Namespace) -> int:
    from pymta.delivery.deliver import mailbox_ref
    from pymta.directory.local import LocalDirectory

    config = _load(args.config)
    directory = LocalDirectory(config)
    mailboxes = [u.mailbox for u in directory.users()] + directory.public_mailboxes()

    async def run() -> list[MailboxRow]:
        store = _store(config)
        rows = []
        try:
            for m in mailboxes:
                usage = await store.usage(mailbox_ref(m))
                rows.append(
                    MailboxRow(
                        str(m),
                        m.enabled,
                        directory.addresses_of(m),
                        m.quota_bytes,
                        usage.bytes,
                        usage.messages,
                    )
                )
        finally:
            await store.close()
        return rows

    rows = asyncio.run(run())
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
        return 0
    print(f"{'MAILBOX':<32} {'MESSAGES':>8} {'USED':>9} {'QUOTA':>9}  ADDRESSES")
    for r in rows:
        quota = _size(r.quota_bytes) if r.quota_bytes else "-"
        name = r.mailbox + ("" if r.enabled else " (disabled)")
        print(
            f"{name:<32} {r.messages:>8} {_size(r.used_bytes):>9} {quota:>9}  "
            f"{', '.join(r.addresses)}"
        )
    return 0


def _queue(config: Config) -> Queue:
    from pymta.queue import Queue

    return Queue(config.server.data_dir / "queue", config.queue)


def cmd_queue(args: argparse.Namespace) -> int:
    config = _load(args.config)
    queue = _queue(config)
    action = args.action
    if action == "list":
        entries = queue.list()
        if not entries:
            print("queue is empty")
            return 0
        now = time.time()
        for e in entries:
            state = " HELD" if e.held else ""
            print(
                f"{e.id}{state}  from=<{e.sender}>  age={_age(now - e.created)}  "
                f"attempts={e.attempts}  size={_size(e.size)}"
            )
            for r in e.recipients:
                err = f"  ({r.last_error})" if r.last_error else ""
                print(f"    {r.status:<9} {r.transport:<7} {r.address}{err}")
        return 0
    if action == "flush":
        print(f"{queue.flush()} entries scheduled now")
        return 0
    if not args.id:
        print(f"queue {action} needs an ID", file=sys.stderr)
        return 2
    if action == "show":
        entry = queue.get(args.id)
        if entry is None:
            print(f"no queue entry {args.id}", file=sys.stderr)
            return 1
        print(f"id: {entry.id}\nfrom: <{entry.sender}>\ncreated: {time.ctime(entry.created)}")
        print(f"attempts: {entry.attempts}\nnext attempt: {time.ctime(entry.next_attempt)}")
        print(f"held: {entry.held}\nlast error: {entry.last_error}")
        for r in entry.recipients:
            print(
                f"recipient: {r.address} transport={r.transport} status={r.status}"
                f" attempts={r.attempts} error={r.last_error!r}"
            )
        print()
        sys.stdout.flush()
        if entry.message_path is not None:
            sys.stdout.buffer.write(entry.message_path.read_bytes())
        return 0
    ops = {"delete": queue.delete, "hold": queue.hold, "release": queue.release}
    if not ops[action](args.id):
        print(f"no queue entry {args.id}", file=sys.stderr)
        return 1
    print(f"{args.id}: {action} done")
    return 0


def cmd_dkim_keygen(args: argparse.Namespace) -> int:
    import importlib.util
    import os

    from pymta.queue.dkim import Algorithm, DkimKeys, KeyExists, zone_line

    config = _load(args.config)
    keys = DkimKeys(config.server.data_dir)
    algorithm: Algorithm = "ed25519" if args.ed25519 else "rsa"
    try:
        path, record = keys.keygen(
            args.domain, args.selector, algorithm, args.bits, force=args.force
        )
    except KeyExists as exc:
        print(f"{exc} (use --force to replace it)", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    domain, selector = path.parent.name, path.stem
    if os.geteuid() == 0 and config.server.user is not None:
        # The server reads keys after dropping privileges (`[server] user`): hand them over.
        import grp
        import pwd

        pw = pwd.getpwnam(config.server.user)
        gid = grp.getgrnam(config.server.group).gr_gid if config.server.group else pw.pw_gid
        for owned in (keys.root, path.parent, path):
            os.chown(owned, pw.pw_uid, gid)
    if algorithm == "ed25519" and importlib.util.find_spec("nacl") is None:
        print("warning: signing with Ed25519 keys needs PyNaCl (pynacl)", file=sys.stderr)
    # Comment lines start with ";" so the output pastes into a zone file as it is.
    print(f"; DKIM key for {domain} written to {path}")
    print(f"; publish this record at {selector}._domainkey.{domain}:")
    print(zone_line(domain, selector, record))
    return 0


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pymta", description="pymta mail server")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="config file (TOML)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the server in the foreground")
    s.add_argument("-c", "--config", default=argparse.SUPPRESS)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("check-config", help="validate a config file")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("hash-password", help="print an argon2id hash for the config")
    s.add_argument("--stdin", action="store_true", help="read the password from stdin")
    s.set_defaults(func=cmd_hash_password)

    s = sub.add_parser("reindex", help="rebuild a mailbox's index, keeping every UID")
    s.add_argument("-c", "--config", default=argparse.SUPPRESS)
    s.add_argument("user")
    s.set_defaults(func=cmd_reindex)

    s = sub.add_parser("mailbox", help="mailbox administration")
    s.add_argument("-c", "--config", default=argparse.SUPPRESS)
    msub = s.add_subparsers(dest="mailbox_command", required=True)
    ml = msub.add_parser("list", help="mailboxes with addresses, quota, usage, messages")
    ml.add_argument("--json", action="store_true")
    ml.set_defaults(func=cmd_mailbox_list)

    s = sub.add_parser("queue", help="inspect and manage the outbound queue")
    s.add_argument("-c", "--config", default=argparse.SUPPRESS)
    s.add_argument("action", choices=["list", "show", "flush", "delete", "hold", "release"])
    s.add_argument("id", nargs="?")
    s.set_defaults(func=cmd_queue)

    s = sub.add_parser("dkim", help="DKIM signing keys")
    s.add_argument("-c", "--config", default=argparse.SUPPRESS)
    dsub = s.add_subparsers(dest="dkim_command", required=True)
    dk = dsub.add_parser("keygen", help="write a signing key, print the DNS TXT record")
    dk.add_argument("domain")
    dk.add_argument("--selector", default="default")
    dk.add_argument("--ed25519", action="store_true", help="an Ed25519 key (RFC 8463)")
    dk.add_argument("--bits", type=int, default=2048, help="RSA key size")
    dk.add_argument("--force", action="store_true", help="replace an existing key")
    dk.set_defaults(func=cmd_dkim_keygen)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())

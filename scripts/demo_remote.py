"""The other end of `make run`'s outbound mail: a loopback DNS server and a second pymta.

`make run` (conf/dev.toml) sends remote mail only to this setup, never to the Internet: its
queue asks the DNS server on 127.0.0.1:5353 for MX records and connects to port 2525. This
script starts

- that DNS server, serving `remote.test` (MX mx.remote.test → 127.0.0.2) and the DKIM key
  record of `example.test` (`default._domainkey.example.test`; the key is created under
  var/dkim/ on first start, as `pymta dkim keygen example.test` would);
- a second pymta on 127.0.0.2:2525, hostname mx.remote.test, domain `remote.test` with the
  user `someone`, data under var/remote/.

    .venv/bin/python scripts/demo_remote.py           # serve until Ctrl-C
    .venv/bin/python scripts/demo_remote.py verify    # DKIM-check what someone@ received

`verify` checks the DKIM signature of every message in someone@remote.test's Maildir with
dkimpy, asking the demo DNS server for the key, and prints one line per message. The
README's "Sending mail" section walks through it.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import dkim
import dns.resolver

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pymta.queue.dkim import DkimKeys, KeyExists  # noqa: E402
from tests.dns.server import DnsServer  # noqa: E402
from tests.tomlw import dumps  # noqa: E402

DNS_PORT = 5353  # conf/dev.toml [queue] nameservers
REMOTE_IP = "127.0.0.2"  # all of 127/8 is loopback on Linux
REMOTE_SMTP_PORT = 2525  # conf/dev.toml [queue] remote_port
DATA = ROOT / "var"
REMOTE_DATA = DATA / "remote"
SIGNING_DOMAIN = "example.test"


def remote_config() -> dict[str, object]:
    return {
        "server": {"hostname": "mx.remote.test", "data_dir": str(REMOTE_DATA / "data")},
        "tls": {
            "cert_file": str(ROOT / "certs" / "server.pem"),
            "key_file": str(ROOT / "certs" / "server.key"),
        },
        "listeners": {
            "smtp": {
                "protocol": "smtp",
                "addresses": [REMOTE_IP],
                "port": REMOTE_SMTP_PORT,
                "tls": "starttls",
            }
        },
        "domains": [{"name": "remote.test"}],
        # someone has no password: nobody logs in here, mail is only delivered.
        "directory": {"backend": "local", "users": [{"name": "someone", "domain": "remote.test"}]},
        "queue": {"nameservers": [f"127.0.0.1:{DNS_PORT}"], "remote_port": REMOTE_SMTP_PORT},
    }


def dkim_record() -> str:
    """The TXT value for example.test's key, created first if there is none."""
    keys = DkimKeys(DATA)
    try:
        _, record = keys.keygen(SIGNING_DOMAIN)
        print(f"created the DKIM key {keys.path(SIGNING_DOMAIN)}")
    except KeyExists:
        key = keys.load(SIGNING_DOMAIN)
        assert key is not None
        record = key.txt_record
    return record


def serve() -> int:
    if not (ROOT / "certs" / "server.pem").exists():
        print("no certs/server.pem: run `make run` (or `make certs`) first", file=sys.stderr)
        return 1
    dns_server = DnsServer(
        {
            "remote.test": f"@ MX 10 mx\nmx A {REMOTE_IP}\n",
            SIGNING_DOMAIN: "@ MX 10 mail\nmail A 127.0.0.1\n",
        },
        port=DNS_PORT,
    )
    dns_server.add_record(f"default._domainkey.{SIGNING_DOMAIN}", "TXT", dkim_record())
    dns_server.start()
    print(f"DNS on 127.0.0.1:{DNS_PORT} (UDP and TCP): remote.test, {SIGNING_DOMAIN}")
    REMOTE_DATA.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pymta-demo-remote-") as tmp:
        config = Path(tmp) / "remote.toml"
        config.write_text(dumps(remote_config()))
        proc = subprocess.Popen([sys.executable, "-m", "pymta", "serve", "-c", str(config)])
        print(f"remote MX mx.remote.test on {REMOTE_IP}:{REMOTE_SMTP_PORT}; Ctrl-C stops both")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            while proc.poll() is None and not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(15)
            dns_server.stop()
    return 0 if proc.returncode in (0, -signal.SIGTERM) else 1


def verify() -> int:
    maildir = REMOTE_DATA / "data" / "mail" / "remote.test" / "someone" / "Maildir"
    files = sorted((maildir / "new").glob("*")) + sorted((maildir / "cur").glob("*"))
    if not files:
        print(f"no mail in {maildir}")
        return 1
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = DNS_PORT

    def txt(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode(), "TXT", lifetime=timeout)
        return b"".join(b"".join(rr.strings) for rr in answer)

    failed = 0
    for path in files:
        message = path.read_bytes()
        signed = b"DKIM-Signature:" in message
        ok = signed and dkim.verify(message, dnsfunc=txt)
        failed += not ok
        verdict = "DKIM pass" if ok else ("DKIM FAIL" if signed else "not signed")
        print(f"{verdict}: {path.name}")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", choices=("serve", "verify"), default="serve")
    args = parser.parse_args()
    return serve() if args.command == "serve" else verify()


if __name__ == "__main__":
    sys.exit(main())

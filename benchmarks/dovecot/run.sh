#!/bin/sh
# A reference Dovecot on loopback for benchmarks/imap.py, in the foreground.
#
#   benchmarks/dovecot/run.sh [DIR]
#
# DIR (default: a new temporary folder) receives the generated config, a self-signed
# certificate, a passwd-file with one plain-text user and the Maildirs; nothing is written
# inside the repository. Dovecot runs unprivileged: as the calling user, or, when started
# as root, as $DOVECOT_RUN_AS (default nobody). Ctrl-C or SIGTERM stops it.
#
# Environment: IMAP_PORT (default 10143, STARTTLS), IMAPS_PORT (default 10993, implicit
# TLS), BENCH_USER / BENCH_PASSWORD (default bench / bench).
# Needs the Debian packages dovecot-imapd and openssl.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$(mktemp -d /tmp/dovecot-bench.XXXXXX)}
port=${IMAP_PORT:-10143}
tlsport=${IMAPS_PORT:-10993}
user=${BENCH_USER:-bench}
password=${BENCH_PASSWORD:-bench}

command -v dovecot >/dev/null || { echo "dovecot not found: apt-get install dovecot-imapd" >&2; exit 1; }
mkdir -p "$dir/run" "$dir/state" "$dir/mail" "$dir/home"
dir=$(cd "$dir" && pwd)

if [ "$(id -u)" = 0 ]; then
    runas=${DOVECOT_RUN_AS:-nobody}
else
    runas=$(id -un)
fi
group=$(id -gn "$runas")

if [ ! -f "$dir/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=localhost" \
        -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$dir/key.pem" -out "$dir/cert.pem" 2>/dev/null
fi
printf '%s:{PLAIN}%s\n' "$user" "$password" >"$dir/passwd"
sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@TLSPORT@|$tlsport|g" \
    -e "s|@USER@|$runas|g" -e "s|@GROUP@|$group|g" \
    "$here/dovecot.conf.in" >"$dir/dovecot.conf"
chmod 600 "$dir/key.pem" "$dir/passwd"
if [ "$(id -u)" = 0 ]; then
    chown -R "$runas:$group" "$dir"
fi

echo "dovecot: imap 127.0.0.1:$port (STARTTLS), imaps 127.0.0.1:$tlsport; user $user" \
    "password $password; dir $dir; log $dir/dovecot.log" >&2
echo "benchmark: .venv/bin/python benchmarks/imap.py 127.0.0.1 $tlsport $user $password" \
    "--tls --insecure --server-pid \$(cat $dir/run/master.pid)" >&2
if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid="$runas" --regid="$group" --clear-groups \
        dovecot -F -c "$dir/dovecot.conf"
fi
exec dovecot -F -c "$dir/dovecot.conf"

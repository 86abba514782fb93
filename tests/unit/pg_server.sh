#!/usr/bin/env bash
# Runs a test against a real PostgreSQL server started here, in a
# temporary folder, and stopped after: pg_server.sh COMMAND [ARGS...], with
# FERRY_TEST_PG set to the folder of its socket.
# The server listens on a Unix socket in that folder only (no TCP port),
# trusts its one user `ferry`, and runs without fsync (a test's data need
# not survive a power cut). PostgreSQL refuses to run as root: as root the
# server runs as the `postgres` user of Debian's package.
set -euo pipefail

bin=/usr/lib/postgresql/15/bin
if [[ ! -x $bin/initdb ]]; then
    echo "pg_server.sh: $bin/initdb missing (Debian package postgresql-15; make deps)" >&2
    exit 1
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/ferry-pg.XXXXXX")
as=()
if [[ $(id -u) -eq 0 ]]; then
    chown postgres "$dir"
    as=(runuser -u postgres --)
fi
stop() {
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$dir"
}
trap stop EXIT
"${as[@]}" "$bin/initdb" -D "$dir/data" -A trust -U ferry -E UTF8 --locale=C --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-k $dir -c listen_addresses='' -c fsync=off -c max_connections=40" start >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
FERRY_TEST_PG=$dir "$@"

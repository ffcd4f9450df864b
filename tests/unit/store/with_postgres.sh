#!/bin/sh
# Runs a command with a throwaway PostgreSQL server (Debian postgresql-15):
# initdb in a temp dir, listening on a Unix socket in that dir only (no TCP),
# trust authentication for a superuser `s2test`, stopped and deleted on exit.
# The command gets the libpq connection string in S2_TEST_POSTGRES.
#   with_postgres.sh unit_store --test-suite-exclude=lmdb-only
# PostgreSQL refuses to run as root: as root the server runs as `postgres`.
set -eu
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
  echo "with_postgres.sh: no PostgreSQL server found (apt-get install postgresql-15)" >&2
  exit 1
fi
dir=$(mktemp -d /tmp/s2pg.XXXXXX)
chmod 755 "$dir"
as_pg=""
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as_pg="runuser -u postgres --"
fi
stop() {
  $as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT INT TERM
$as_pg "$PGBIN/initdb" -D "$dir/data" -U s2test --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
  { cat "$dir/initdb.log" >&2; exit 1; }
$as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200" start >/dev/null ||
  { cat "$dir/server.log" >&2; exit 1; }
export S2_TEST_POSTGRES="host=$dir dbname=postgres user=s2test"
"$@" && rc=0 || rc=$?
[ $rc -eq 0 ] || tail -n 20 "$dir/server.log" >&2
exit $rc

#!/bin/sh
# The official postgres image's entrypoint, reduced to what the manifests use:
# on an empty PGDATA, initdb as POSTGRES_USER with POSTGRES_PASSWORD
# (scram-sha-256 over TCP, trust on the socket), create POSTGRES_DB, then run
# postgres with the given arguments ("-c x=y" alone means postgres -c x=y).
set -eu
case "${1:-}" in -*) set -- postgres "$@" ;; esac
# As the official entrypoint, on every start: a pod restarted on its volume
# may find PGDATA group-writable (kubelet applies fsGroup), which postgres refuses.
if [ "${1:-}" = postgres ]; then mkdir -p "$PGDATA" && chmod 0700 "$PGDATA"; fi
if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
	user=${POSTGRES_USER:-postgres} db=${POSTGRES_DB:-${POSTGRES_USER:-postgres}}
	pw=$(mktemp) && printf '%s\n' "$POSTGRES_PASSWORD" >"$pw"
	initdb -D "$PGDATA" --username="$user" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8
	rm -f "$pw"
	printf 'host all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
	if [ "$db" != postgres ]; then psql -v ON_ERROR_STOP=1 -U "$user" -d postgres -c "CREATE DATABASE \"$db\""; fi
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "postgres stand-in: initialised $PGDATA for $user/$db"
fi
if [ "${1:-}" = postgres ]; then
	shift
	exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"

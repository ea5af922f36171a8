#!/usr/bin/env bash
# Checks, and installs when it can, what a Car Build command needs on the
# machine. Idempotent and quick when everything is present (it only looks
# things up; apt runs only for what is missing).
#
#   scripts/deps.sh test   # everything `make test` needs (the default)
#   scripts/deps.sh run    # what `make run` needs: Go, and a PostgreSQL to use or boot
#
# For `test`, missing Debian packages are installed with apt when running
# as root (or with sudo when it works without a password); otherwise the
# script prints the exact apt-get line and fails. For `run` it only checks
# and says what is missing: starting the system never installs anything.
#
# Go itself is never installed here: Debian 12's golang is 1.19 and the
# modules need 1.26 (go.mod's `go 1.26.0`).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-test}
case $mode in test | run) ;; *)
	echo "usage: scripts/deps.sh [test|run]" >&2
	exit 2
	;;
esac

failed=0
fail() {
	echo "deps: $*" >&2
	failed=1
}

# Go: required by both. The version check reads go.mod's minimum, so the
# message stays right when the modules move to a newer Go.
want_go=$(sed -n 's/^go \([0-9]*\.[0-9]*\).*/\1/p' shared/go.mod)
if ! command -v go >/dev/null 2>&1; then
	fail "Go $want_go or newer is required and 'go' is not on PATH (https://go.dev/dl; Debian's golang package is too old)"
else
	have_go=$(go env GOVERSION | sed -n 's/^go\([0-9]*\.[0-9]*\).*/\1/p')
	if [ -n "$have_go" ] && [ "$(printf '%s\n%s\n' "$want_go" "$have_go" | sort -V | head -1)" != "$want_go" ]; then
		fail "Go $want_go or newer is required, found $(go env GOVERSION) at $(command -v go)"
	fi
fi

pg_binaries() { command -v initdb >/dev/null 2>&1 || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; }

if [ "$mode" = run ]; then
	# make run uses DATABASE_URL, else a server on 127.0.0.1:5432, else boots
	# a private one with initdb/pg_ctl (migrations/pgboot): one must exist.
	if [ -z "${DATABASE_URL:-}" ] && ! pg_binaries && ! (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
		fail "PostgreSQL: DATABASE_URL is not set, nothing answers on 127.0.0.1:5432 and the server binaries (initdb, pg_ctl) are not installed; install them with: apt-get install -y postgresql (or set DATABASE_URL)"
	fi
	exit $failed
fi

# test: every command the suites call, with the Debian package that brings it.
# A tool found anywhere on PATH counts (a machine may bring Node.js or
# PostgreSQL from elsewhere).
missing=()
need() { # need COMMAND-OR-ABSOLUTE-PATH DEBIAN-PACKAGE
	if [[ $1 == /* ]]; then [ -e "$1" ] && return 0; else command -v "$1" >/dev/null 2>&1 && return 0; fi
	missing+=("$2")
}
need make make
need git git
need gcc gcc                 # cgo, which go test -race needs
need /usr/include/stdlib.h libc6-dev
need openssl openssl
need curl curl
need protoc protobuf-compiler
need /usr/include/google/protobuf/timestamp.proto libprotobuf-dev
need promtool prometheus
need locust python3-locust # its shebang is Debian's /usr/bin/python3
need /usr/bin/chromium chromium
need node nodejs
need npm npm
need busybox busybox
# make test-kind (k8s/kind): a Docker engine it starts itself, with Debian's
# 20.10 client for BuildKit; debootstrap for the base images; jq (the runc
# wrapper and the checks); nft to find and remove what the engine and
# kube-proxy leave on the host.
need /usr/sbin/dockerd docker.io
need /usr/bin/docker docker.io
need debootstrap debootstrap
need jq jq
need nft nftables
pg_binaries || missing+=(postgresql)

if [ "${#missing[@]}" -gt 0 ]; then
	sudo=()
	if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo=(sudo); fi
	if command -v apt-get >/dev/null 2>&1 && { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; }; then
		echo "deps: installing with apt: ${missing[*]}"
		"${sudo[@]}" apt-get update -qq
		DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		fail "missing Debian packages; install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}"
	fi
fi

if [ "$failed" -eq 0 ]; then
	echo "deps: everything make test needs is present ($(go env GOVERSION))"
fi
exit $failed

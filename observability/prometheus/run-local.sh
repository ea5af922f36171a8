#!/usr/bin/env bash
# run-local.sh starts Prometheus for the local run, in the foreground, with
# prometheus.local.yml (static targets for catalog, pricing and gateway) and a
# throw-away data directory that is removed when it stops.
#
# When the prometheus binary is missing it says so, tells how to install it and
# exits 0, so a stack runner can always call it.
#
# Environment:
#   PROMETHEUS_BIN         binary to run (default: prometheus on PATH)
#   PROMETHEUS_LISTEN      listen address (default 127.0.0.1:9090)
#   PROMETHEUS_DATA_DIR    data directory to use and keep (default: a temp dir, removed on exit)
#   PROMETHEUS_RETENTION   TSDB retention (default 1d)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
config="$here/prometheus.local.yml"
bin="${PROMETHEUS_BIN:-prometheus}"
listen="${PROMETHEUS_LISTEN:-127.0.0.1:9090}"
retention="${PROMETHEUS_RETENTION:-1d}"

if ! command -v "$bin" >/dev/null 2>&1; then
	cat >&2 <<MSG
run-local.sh: Prometheus skipped: no '$bin' binary on PATH.
  Install it with:  apt-get update && apt-get install -y --no-install-recommends prometheus
  (Debian's package; it also brings promtool, used by observability/prometheus/check.sh.)
MSG
	exit 0
fi

data_dir="${PROMETHEUS_DATA_DIR:-}"
cleanup_dir=""
if [[ -z "$data_dir" ]]; then
	data_dir="$(mktemp -d "${TMPDIR:-/tmp}/carbuild-prometheus.XXXXXX")"
	cleanup_dir="$data_dir"
fi

echo "run-local.sh: starting Prometheus on http://$listen (config $config, data $data_dir)" >&2

# Run as a child, not exec, so the temp dir is removed after Prometheus stops.
"$bin" \
	--config.file="$config" \
	--web.listen-address="$listen" \
	--storage.tsdb.path="$data_dir" \
	--storage.tsdb.retention.time="$retention" \
	--web.enable-lifecycle &
pid=$!

# shellcheck disable=SC2317 # called by the trap
stop() { kill -TERM "$pid" 2>/dev/null || true; }
trap stop INT TERM
status=0
wait "$pid" || status=$?
# A signal interrupts the first wait; wait again for Prometheus to finish.
if kill -0 "$pid" 2>/dev/null; then wait "$pid" || status=$?; fi
if [[ -n "$cleanup_dir" ]]; then rm -rf "$cleanup_dir"; fi
exit "$status"

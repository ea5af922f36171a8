#!/usr/bin/env bash
# Prove the kustomize overlays against a real control plane with simulated nodes:
# build the pinned binaries (cached), boot the cluster on 127.0.0.1, run the Go tests in this
# directory against it, tear everything down. Extra arguments go to `go test` (e.g. -run Switch).
#
#   k8s/sim/run.sh                 # everything
#   k8s/sim/run.sh -run Negative   # one test
#
# Environment: K8S_SIM_CACHE (binary cache root), K8S_SIM_PORT_* (ports), K8S_SIM_KEEP_LOGS=DIR
# (copy component logs there), KUBECTL (kubectl binary). See README.md.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[k8s-sim %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
T0=$(now)

t=$(now); BIN=$("$HERE/build.sh"); log "build step: $(since "$t")"
# /usr/bin/kubectl on Debian is the Google Cloud SDK dispatcher (+0.2 s a call); use its 1.33 client directly.
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$(command -v kubectl || true)
  if [ -n "$KUBECTL" ] && [ -x "$(dirname "$(readlink -f "$KUBECTL")")/kubectl.1.33" ]; then
    KUBECTL=$(dirname "$(readlink -f "$KUBECTL")")/kubectl.1.33
  fi
fi
[ -n "$KUBECTL" ] || KUBECTL=$BIN/kubectl   # built by build.sh when the machine has none
export KUBECTL

RUN=$(mktemp -d "${TMPDIR:-/tmp}/k8s-sim.XXXXXX")
rc=0
cleanup() {
  "$HERE/cluster.sh" down "$RUN" || true
  if [ -n "${K8S_SIM_KEEP_LOGS:-}" ]; then mkdir -p "$K8S_SIM_KEEP_LOGS" && cp -r "$RUN/logs/." "$K8S_SIM_KEEP_LOGS/" || true; fi
  if [ "$rc" != 0 ] && [ -d "$RUN/logs" ]; then
    for f in "$RUN"/logs/*.log; do echo "--- last lines of $(basename "$f")" >&2; tail -n 8 "$f" >&2; done
  fi
  rm -rf "$RUN"
  log "total $(since "$T0"), exit $rc"
}
trap 'rc=$?; cleanup' EXIT
trap 'rc=130; exit 130' INT TERM

K8S_SIM_BIN=$BIN "$HERE/cluster.sh" up "$RUN"

t=$(now)
log "go test: broken manifests rejected, nodes mirror ctlptl.yaml, every overlay applied in turn on the live cluster"
set +e
(cd "$HERE" && GOWORK=off K8S_SIM_KUBECONFIG="$RUN/admin.kubeconfig" go test -count=1 -v -timeout 15m "$@" .)
rc=$?
set -e
log "go test: $(since "$t"), exit $rc"
exit $rc

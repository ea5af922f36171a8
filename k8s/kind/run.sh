#!/usr/bin/env bash
# run.sh — `make test-kind`: the Kubernetes dev loop on a real Kind cluster,
# offline. Starts a Docker engine when none answers, builds what cannot be
# pulled (cached by version under ~/.cache/carbuild/kind/), creates the cluster
# and registry from ctlptl.yaml, runs `tilt ci` for the dev overlay, then the
# checks in checks.sh. Whatever happens, the EXIT trap deletes the cluster and
# registry, stops the dockerd it started (by PID) and restores the host.
#
#   k8s/kind/run.sh                 everything
#   KIND_STEPS="dev overlays" ...   only some check groups (see checks.sh)
#   KIND_KEEP=1 ...                 keep the cluster after a failure, to look; then
#   k8s/kind/run.sh down STATE      tear that kept run down (STATE: the directory it logged)
#   KIND_TOOLS=script ...           do without tilt and ctlptl even when found (tiltless.sh, cluster.sh)
set -euo pipefail
KIND_DIR=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$KIND_DIR/../.." && pwd)
export KIND_DIR REPO
# shellcheck source=versions.env
. "$KIND_DIR/versions.env"
. "$KIND_DIR/engine.sh"
. "$KIND_DIR/images.sh"
. "$KIND_DIR/cluster.sh"
. "$KIND_DIR/checks.sh"
. "$KIND_DIR/tiltless.sh"

KIND_CACHE=${KIND_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/carbuild/kind}/$K8S_VERSION-kind$KIND_VERSION
KIND_BINS=$KIND_CACHE/bin
KIND_DOCKER_DATA=$KIND_CACHE/docker
KIND_STATE=$(mktemp -d /tmp/carbuild-kind.XXXXXX)
export KIND_CACHE KIND_BINS KIND_DOCKER_DATA KIND_STATE
export KUBECONFIG=$KIND_STATE/kubeconfig
# kubectl's discovery cache too: never the user's ~/.kube/cache, never stale from an earlier cluster on the same port.
export KUBECACHEDIR=$KIND_STATE/kubecache
RUN_T0=$(date +%s)

teardown() {
	local rc=$?
	set +e
	trap - EXIT INT TERM
	if [[ ${KIND_KEEP:-0} == 1 && $rc != 0 ]]; then
		log "KIND_KEEP=1: cluster kept; state $KIND_STATE, DOCKER_HOST=${DOCKER_HOST:-}, KUBECONFIG=$KUBECONFIG"
		return
	fi
	stop_started_processes
	[[ -z ${LIVEUPDATE_FILE:-} ]] || rm -f "$LIVEUPDATE_FILE"
	cluster_delete
	engine_down "$KIND_STATE"
	host_restore "$KIND_STATE"
	check_nothing_left || rc=1
	rm -rf "$KIND_STATE"
	log "teardown done; run took $(($(date +%s) - RUN_T0)) s, exit $rc"
	exit "$rc"
}

# Processes this run started in the background (tilt, locust, load loops), by PID.
STARTED_PIDS=()
stop_started_processes() {
	local p
	for p in "${STARTED_PIDS[@]}"; do
		if kill -0 "$p" 2>/dev/null; then kill -TERM "$p" 2>/dev/null; fi
	done
	for p in "${STARTED_PIDS[@]}"; do
		for _ in $(seq 1 20); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	done
	STARTED_PIDS=()
}

check_nothing_left() {
	local left=0 line p
	if [[ -f $KIND_STATE/dockerd.pid ]] && kill -0 "$(cat "$KIND_STATE/dockerd.pid")" 2>/dev/null && [[ ! -f $KIND_STATE/engine.external ]]; then
		log "LEFT: dockerd $(cat "$KIND_STATE/dockerd.pid")"; left=1
	fi
	if pgrep -f "$KIND_STATE/" >/dev/null 2>&1; then log "LEFT: processes under $KIND_STATE: $(pgrep -af "$KIND_STATE/" | head -3)"; left=1; fi
	if awk '{print $2}' /proc/mounts | grep -qE "^($KIND_STATE|$KIND_DOCKER_DATA)/"; then log "LEFT: mounts under $KIND_STATE or $KIND_DOCKER_DATA"; left=1; fi
	while IFS= read -r line; do
		[[ $(sysctl -n "${line%%=*}" 2>/dev/null) == "${line#*=}" ]] || { log "LEFT: sysctl ${line%%=*}=$(sysctl -n "${line%%=*}") (was ${line#*=})"; left=1; }
	done <"$KIND_STATE/sysctls"
	if [[ -f $KIND_STATE/nft-tables ]] && ! diff -q "$KIND_STATE/nft-tables" <(nft list tables 2>/dev/null | sort) >/dev/null; then
		log "LEFT: nft tables $(comm -13 "$KIND_STATE/nft-tables" <(nft list tables 2>/dev/null | sort) | tr '\n' ' ')"; left=1
	fi
	if ! diff -q "$KIND_STATE/links" <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort) >/dev/null; then
		log "LEFT: links $(comm -13 "$KIND_STATE/links" <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort) | tr '\n' ' ')"; left=1
	fi
	for p in "${STARTED_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && { log "LEFT: process $p"; left=1; }; done
	if [[ $left == 0 ]]; then
		log "host check: no dockerd, process, mount, sysctl, nft table or link left from this run"
	fi
	return $left
}

find_tool() { # name: PATH, then ~/.cache/carbuild/tools/bin
	local name=$1 dir=${XDG_CACHE_HOME:-$HOME/.cache}/carbuild/tools/bin
	if command -v "$name" >/dev/null; then command -v "$name"; return; fi
	if [[ -x $dir/$name ]]; then echo "$dir/$name"; return; fi
	return 1
}

if [[ ${1:-} == down ]]; then # the teardown of a run kept with KIND_KEEP=1
	rm -rf "$KIND_STATE"
	KIND_STATE=${2:?usage: run.sh down STATE}
	KUBECONFIG=$KIND_STATE/kubeconfig
	[[ ! -S $KIND_STATE/docker.sock ]] || export DOCKER_HOST=unix://$KIND_STATE/docker.sock
	KIND_CLUSTER=$(jq -r .cluster "$KIND_STATE/summary.json" 2>/dev/null || true)
	KIND_REGISTRY=$(jq -r .registry "$KIND_STATE/summary.json" 2>/dev/null || true)
	export PATH=$KIND_BINS:$PATH KIND_KEEP=0
	trap teardown EXIT
	exit 0
fi

mkdir -p "$KIND_CACHE"
exec 9>"${KIND_CACHE%/*}/.lock"
flock -n 9 || { log "another test-kind run holds ${KIND_CACHE%/*}/.lock"; rm -rf "$KIND_STATE"; exit 1; }
trap teardown EXIT
trap "exit 130" INT TERM

host_record "$KIND_STATE"
TILT=$(find_tool tilt) || { TILT=""; log "tilt not found on PATH or in ~/.cache/carbuild/tools/bin: the Tiltfile's build, push, deploy and live update run by script (tiltless.sh); install Tilt (https://docs.tilt.dev/install.html) to test Tilt itself"; }
CTLPTL=$(find_tool ctlptl) || { CTLPTL=""; log "ctlptl not found on PATH or in ~/.cache/carbuild/tools/bin: the cluster and registry are created by script (same checks)"; }
if [[ ${KIND_TOOLS:-} == script ]]; then TILT="" CTLPTL=""; log "KIND_TOOLS=script: tilt and ctlptl not used (the script path)"; fi
[[ -z $TILT ]] || log "tilt: $TILT ($("$TILT" version 2>/dev/null | head -1))"
[[ -z $CTLPTL ]] || log "ctlptl: $CTLPTL"
export TILT CTLPTL

t0=$(date +%s)
mkdir -p "$KIND_BINS"
"$KIND_DIR/build-bins.sh" "$KIND_BINS"
export PATH=$KIND_BINS:$PATH
log "Go binaries ready in $(($(date +%s) - t0)) s ($KIND_BINS)"

t0=$(date +%s)
engine_up "$KIND_STATE" "$KIND_DOCKER_DATA"
[[ -f $KIND_STATE/dockerd.started ]] || touch "$KIND_STATE/engine.external"
host_guard_services
# Kind needs more inotify instances than Debian's default (recorded, restored).
(($(sysctl -n fs.inotify.max_user_instances) >= 512)) || sysctl -q -w fs.inotify.max_user_instances=512
(($(sysctl -n fs.inotify.max_user_watches) >= 524288)) || sysctl -q -w fs.inotify.max_user_watches=524288
images_build "$KIND_BINS"
NODE_IMAGE=$(node_image "$KIND_BINS")
log "images ready in $(($(date +%s) - t0)) s; node image $NODE_IMAGE"
IMAGES_READY=$(date +%s)

STEPS=${KIND_STEPS:-all}
if [[ $STEPS == all || " $STEPS " == *" dockerfile "* ]]; then
	log "=== dockerfile"
	check_dockerfile
fi
STEPS=$(sed "s/\bdockerfile\b//" <<<"$STEPS")

cluster_create "$NODE_IMAGE"
cluster_verify

run_checks "$STEPS"
echo "service-cidr-packets-rejected-at-host packets=$(host_guard_rejected)" >>"$KIND_STATE/figures"
[[ ! -s $KIND_STATE/figures ]] || { log "figures:"; sed "s/^/  /" "$KIND_STATE/figures" >&2; }
log "PASS: make test-kind ($(($(date +%s) - RUN_T0)) s; $(($(date +%s) - IMAGES_READY)) s from images ready)"

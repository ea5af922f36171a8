#!/usr/bin/env bash
# engine.sh — host side of the real-cluster test, sourced by run.sh.
#
#   host_record STATE      remember the sysctls, nft tables and links the run may change
#   engine_up STATE DATA   use the Docker engine that answers, else start Debian's dockerd
#                          (runc-wrap.sh as default runtime, data root DATA, socket in STATE)
#   engine_down STATE      stop the dockerd this run started (by PID) and clean what it left
#   host_guard_services    reject forwarded packets to the Service CIDR (a table of its own)
#   host_guard_rejected    how many such packets were rejected so far
#   host_restore STATE     put the recorded sysctls back, drop new nft tables and links
#
# Everything the run changes on the host is recorded in STATE first, so the
# EXIT trap can undo it whether the run passed or failed.

# Sysctls that kubelet, Kind or dockerd change on the host.
HOST_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops
	fs.inotify.max_user_instances fs.inotify.max_user_watches
	net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding
	net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
	net.ipv4.conf.all.route_localnet kernel.keys.root_maxkeys kernel.keys.root_maxbytes
	net.netfilter.nf_conntrack_max)

log() { echo "kind-test $(date -u +%H:%M:%S) $*" >&2; }

host_record() {
	local state=$1 s
	: >"$state/sysctls"
	for s in "${HOST_SYSCTLS[@]}"; do
		if v=$(sysctl -n "$s" 2>/dev/null); then printf '%s=%s\n' "$s" "$v" >>"$state/sysctls"; fi
	done
	nft list tables 2>/dev/null | sort >"$state/nft-tables" || true
	ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort >"$state/links"
}

host_restore() {
	local state=$1 line s v t l
	[[ -f $state/sysctls ]] || return 0
	while IFS= read -r line; do
		s=${line%%=*} v=${line#*=}
		if [[ $(sysctl -n "$s" 2>/dev/null) != "$v" ]]; then
			log "restore sysctl $s=$v (was $(sysctl -n "$s" 2>/dev/null))"
			sysctl -q -w "$s=$v" || log "could not restore $s"
		fi
	done <"$state/sysctls"
	# nft tables the run created (dockerd's and kube-proxy's iptables-nft tables).
	while IFS= read -r t; do
		[[ -n $t ]] || continue
		log "delete $t"
		# shellcheck disable=SC2086 # "table FAMILY NAME"
		nft delete $t || true
	done < <(comm -13 "$state/nft-tables" <(nft list tables 2>/dev/null | sort))
	while IFS= read -r l; do
		[[ -n $l ]] || continue
		log "delete link $l"
		ip link delete "$l" 2>/dev/null || true
	done < <(comm -13 "$state/links" <(ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort))
}

# The Service CIDR is virtual: a packet to a ClusterIP exists only inside a node,
# until kube-proxy's rule rewrites it to a pod. A dial made before that rule exists
# (the API server dials metrics-server's Service the moment its APIService appears)
# leaves the node un-DNATed, through the Docker bridge to this host. On a laptop
# the packet is lost and the dial retried; in this sandbox the egress interceptor
# answers any address (HTTPS: 404, `server: keryx`), and the aggregator keeps that
# HTTP/2 connection until the API server restarts (k8s/README.md, "Escaped
# Service packets"). So the host refuses them, and the dial fails at once and is
# retried. Kind's Service CIDR is 10.96.0.0/16, inside kubeadm's default /12.
# The table is new, so host_restore drops it with the others the run created.
KIND_GUARD_TABLE=carbuild_kind_guard
KIND_SERVICE_CIDR=10.96.0.0/12
host_guard_services() {
	command -v nft >/dev/null || { log "nft not found (Debian: apt-get install nftables): cannot keep packets to the Service CIDR from leaving the host"; return 1; }
	nft -f - <<EOF
table ip $KIND_GUARD_TABLE {
	chain forward {
		type filter hook forward priority filter - 10; policy accept;
		ip daddr $KIND_SERVICE_CIDR meta l4proto tcp counter reject with tcp reset
		ip daddr $KIND_SERVICE_CIDR counter reject with icmp type net-unreachable
	}
}
EOF
	log "host rejects forwarded packets to the Service CIDR $KIND_SERVICE_CIDR (nft table ip $KIND_GUARD_TABLE)"
}

host_guard_rejected() {
	nft -j list table ip "$KIND_GUARD_TABLE" 2>/dev/null |
		jq '[.nftables[] | .rule? // empty | .expr[] | .counter? // empty | .packets] | add // 0'
}

engine_up() {
	local state=$1 data=$2 i
	if docker info >/dev/null 2>&1; then
		log "using the Docker engine that answers ($(docker info -f '{{.ServerVersion}}'))"
		return 0
	fi
	command -v dockerd >/dev/null || { log "no Docker engine answers and dockerd is not installed (Debian: apt-get install docker.io)"; return 1; }
	mkdir -p "$data" "$state/exec"
	install -m 0755 "$KIND_DIR/runc-wrap.sh" "$state/runc-wrap"
	log "starting dockerd (data root $data)"
	dockerd --data-root "$data" --exec-root "$state/exec" --pidfile "$state/dockerd.pid" \
		-H "unix://$state/docker.sock" --add-runtime "carbuild-runc=$state/runc-wrap" \
		--default-runtime carbuild-runc >"$state/dockerd.log" 2>&1 &
	echo $! >"$state/dockerd.started"
	export DOCKER_HOST="unix://$state/docker.sock"
	for i in $(seq 1 120); do
		if docker info >/dev/null 2>&1; then
			log "dockerd $(docker info -f '{{.ServerVersion}}') answers after ${i}x0.5 s (pid $(cat "$state/dockerd.started"))"
			return 0
		fi
		kill -0 "$(cat "$state/dockerd.started")" 2>/dev/null || break
		sleep 0.5
	done
	tail -20 "$state/dockerd.log" >&2
	log "dockerd did not answer"
	return 1
}

engine_down() {
	local state=$1 pid i m
	[[ -f $state/dockerd.started ]] || return 0
	pid=$(cat "$state/dockerd.started")
	if kill -0 "$pid" 2>/dev/null; then
		log "stopping dockerd (pid $pid)"
		kill -TERM "$pid"
		for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		if kill -0 "$pid" 2>/dev/null; then log "dockerd still runs after 30 s: SIGKILL"; kill -KILL "$pid" || true; fi
	fi
	# Mounts left under the engine's directories (overlays, netns, shm).
	while IFS= read -r m; do
		log "umount $m"
		umount -l "$m" 2>/dev/null || true
	done < <(awk '{print $2}' /proc/mounts | grep -E "^($state|${KIND_DOCKER_DATA:-/nonexistent})/" | sort -r)
	rm -f "$state/dockerd.started"
}

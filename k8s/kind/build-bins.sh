#!/usr/bin/env bash
# build-bins.sh OUT: builds, niced, every Go binary the offline Kind cluster
# needs into OUT (skipping those already there at the version versions.env
# names: OUT/NAME.version): Kubernetes from the wrapper module in kube/, etcd,
# Prometheus, CoreDNS, the NetworkPolicy enforcer (netpol/), metrics-server and kind itself,
# all from the Go module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
out=${1:?usage: build-bins.sh OUT}
mkdir -p "$out"
nice_=(nice -n "${KIND_NICE:-10}")
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath

have() { # name version: $out/name was built at that version
	[[ -x $out/$1 && $(cat "$out/$1.version" 2>/dev/null) == "$2" ]]
}

timed() { # name version cmd...: runs cmd unless have name version, logs the time
	local name=$1 version=$2 t0
	shift 2
	if have "$name" "$version"; then return 0; fi
	t0=$(date +%s)
	"$@"
	echo "$version" >"$out/$name.version"
	echo "build-bins: $name $version built in $(($(date +%s) - t0)) s" >&2
}

major=${K8S_VERSION#v}; major=${major%%.*}
minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
kv="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
kv="$kv -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
# One go build for all of them: they share most packages, and one build graph
# (-p KIND_BUILD_P) keeps both cores busy instead of compiling them in turn.
# Stamped with kube/go.mod's hash too: its godebug line changes the binaries.
kcmds=(kubeadm kubectl kube-apiserver kube-scheduler kube-proxy kube-controller-manager kubelet)
kube_v=$K8S_VERSION-$(sha256sum <"$here/kube/go.mod" | cut -c1-8)
missing=()
for c in "${kcmds[@]}"; do have "$c" "$kube_v" || missing+=("k8s.io/kubernetes/cmd/$c"); done
if ((${#missing[@]})); then
	t0=$(date +%s)
	(cd "$here/kube" && "${nice_[@]}" go build -p "${KIND_BUILD_P:-6}" -ldflags "-s -w $kv" -o "$out/" "${missing[@]}")
	for c in "${missing[@]##*/}"; do echo "$kube_v" >"$out/$c.version"; done
	echo "build-bins: ${missing[*]##*/} built in $(($(date +%s) - t0)) s" >&2
fi
local_v=$(cat "$here/kube/go.sum" "$here"/kube/cmd/*/*.go | sha256sum | cut -c1-12)
timed pause "$local_v" bash -c "cd '$here/kube' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/pause' ./cmd/pause"
timed kindcfg "$local_v" bash -c "cd '$here/kube' && go build -o '$out/kindcfg' ./cmd/kindcfg"
timed hammer "$local_v" bash -c "cd '$here/kube' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/hammer' ./cmd/hammer"
timed grafana-standin "$local_v" bash -c "cd '$here/kube' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/grafana-standin' ./cmd/grafana-standin"

gi() { # name module@version: go install into a scratch GOBIN, then move
	local name=$1 mod=$2 tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && GOBIN="$tmp/bin" "${nice_[@]}" go install -ldflags '-s -w' "$mod")
	mv "$tmp"/bin/* "$out/$name"
	rm -rf "$tmp"
}
timed kind "$KIND_VERSION" gi kind "sigs.k8s.io/kind@$KIND_VERSION"
# etcd's server module has replace directives (go install refuses it): etcd/ pins it.
timed etcd "$ETCD_VERSION" bash -c "cd '$here/etcd' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/etcd' go.etcd.io/etcd/server/v3"
# trimmed_src MODULE@VERSION FILE REPLACEMENT: prints a scratch directory
# holding a writable copy of the module's source with FILE replaced by
# REPLACEMENT (trim/README.md: Go refuses -overlay for module-cache files).
trimmed_src() {
	local dir tmp
	dir=$(cd / && go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[[ -d $dir ]] || { echo "build-bins: $1 not in the module cache" >&2; return 1; }
	tmp=$(mktemp -d)
	cp -r "$dir/." "$tmp/"
	chmod -R u+w "$tmp"
	cp "$3" "$tmp/$2"
	echo "$tmp"
}
trim_v() { sha256sum "$here/trim/$1" | cut -c1-8; }

# CoreDNS with the plugins of kubeadm's Corefile (trim/coredns/zplugin.go),
# built as its own main module, as `go install` would.
build_coredns() {
	local src
	src=$(trimmed_src "github.com/coredns/coredns@$COREDNS_VERSION" core/plugin/zplugin.go "$here/trim/coredns/zplugin.go")
	(cd "$src" && "${nice_[@]}" go build -ldflags '-s -w' -o "$out/coredns" .)
	rm -rf "$src"
}
timed coredns "$COREDNS_VERSION-trim$(trim_v coredns/zplugin.go)" build_coredns
# NetworkPolicy enforcement: kube-network-policies' engine with an iptables
# diversion (netpol/main.go says why); versioned by its source.
netpol_v=$KNP_VERSION-$(cat "$here/netpol/go.sum" "$here/netpol/"*.go | sha256sum | cut -c1-12)
timed netpol "$netpol_v" bash -c "cd '$here/netpol' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/netpol' ."
timed metrics-server "$METRICS_SERVER_VERSION" gi metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"
# The prom/prometheus stand-in: Prometheus' own Go module (prometheus/ pins it;
# its replace directive makes go install refuse it). No web UI assets (the
# builtinassets tag is off): the API, scraping and rules are what the cluster uses.
# Only the service discoveries the cluster uses (trim/prometheus/plugins.go):
# a scratch copy of prometheus/ builds against the trimmed source.
pv="-X github.com/prometheus/common/version.Version=${PROMETHEUS_VERSION#v} -X github.com/prometheus/common/version.Branch=HEAD -X github.com/prometheus/common/version.Revision=$PROMETHEUS_MODULE"
prom_v=$PROMETHEUS_VERSION-trim$(trim_v prometheus/plugins.go)
if ! have prometheus "$prom_v" || ! have promtool "$prom_v"; then
	t0=$(date +%s)
	src=$(trimmed_src "github.com/prometheus/prometheus@$PROMETHEUS_MODULE" plugins/plugins.go "$here/trim/prometheus/plugins.go")
	wrap=$(mktemp -d)
	cp "$here/prometheus/"* "$wrap/"
	(cd "$wrap" && go mod edit -replace "github.com/prometheus/prometheus=$src" &&
		"${nice_[@]}" go build -p "${KIND_BUILD_P:-6}" -ldflags "-s -w $pv" -o "$out/" \
			github.com/prometheus/prometheus/cmd/prometheus github.com/prometheus/prometheus/cmd/promtool)
	rm -rf "$src" "$wrap"
	echo "$prom_v" >"$out/prometheus.version"
	echo "$prom_v" >"$out/promtool.version"
	echo "build-bins: prometheus, promtool $prom_v built in $(($(date +%s) - t0)) s" >&2
fi

#!/usr/bin/env bash
# build-bins.sh OUT: builds, niced, every Go binary the offline Kind cluster
# needs into OUT (skipping those already there): Kubernetes from the wrapper
# module in kube/, etcd, CoreDNS, kube-network-policies, metrics-server and
# kind itself, all from the Go module proxy.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
out=${1:?usage: build-bins.sh OUT}
mkdir -p "$out"
nice_=(nice -n "${KIND_NICE:-10}")
export CGO_ENABLED=0 GOWORK=off GOFLAGS=-trimpath

timed() { # name cmd...: runs cmd unless $out/name exists, logs the time
	local name=$1 t0
	shift
	if [[ -x $out/$name ]]; then return 0; fi
	t0=$(date +%s)
	"$@"
	echo "build-bins: $name built in $(($(date +%s) - t0)) s" >&2
}

major=${K8S_VERSION#v}; major=${major%%.*}
minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
kv="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
kv="$kv -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
# One go build for all of them: they share most packages, and one build graph
# (-p KIND_BUILD_P) keeps both cores busy instead of compiling them in turn.
kcmds=(kubeadm kubectl kube-apiserver kube-scheduler kube-proxy kube-controller-manager kubelet)
missing=()
for c in "${kcmds[@]}"; do [[ -x $out/$c ]] || missing+=("k8s.io/kubernetes/cmd/$c"); done
if ((${#missing[@]})); then
	t0=$(date +%s)
	(cd "$here/kube" && "${nice_[@]}" go build -p "${KIND_BUILD_P:-6}" -ldflags "-s -w $kv" -o "$out/" "${missing[@]}")
	echo "build-bins: ${missing[*]##*/} built in $(($(date +%s) - t0)) s" >&2
fi
timed pause bash -c "cd '$here/kube' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/pause' ./cmd/pause"
timed kindcfg bash -c "cd '$here/kube' && go build -o '$out/kindcfg' ./cmd/kindcfg"
timed grafana-standin bash -c "cd '$here/kube' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/grafana-standin' ./cmd/grafana-standin"

gi() { # name module@version: go install into a scratch GOBIN, then move
	local name=$1 mod=$2 tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && GOBIN="$tmp/bin" "${nice_[@]}" go install -ldflags '-s -w' "$mod")
	mv "$tmp"/bin/* "$out/$name"
	rm -rf "$tmp"
}
timed kind gi kind "sigs.k8s.io/kind@$KIND_VERSION"
# etcd's server module has replace directives (go install refuses it): etcd/ pins it.
timed etcd bash -c "cd '$here/etcd' && ${nice_[*]} go build -ldflags '-s -w' -o '$out/etcd' go.etcd.io/etcd/server/v3"
timed coredns gi coredns "github.com/coredns/coredns@$COREDNS_VERSION"
timed kube-network-policies gi kube-network-policies "sigs.k8s.io/kube-network-policies/cmd@$KNP_VERSION"
timed metrics-server gi metrics-server "sigs.k8s.io/metrics-server/cmd/metrics-server@$METRICS_SERVER_VERSION"

#!/usr/bin/env bash
# Build the pinned control-plane binaries (kube-apiserver, kube-controller-manager,
# kube-scheduler, etcd, kwok) from the Go module proxy into a version-keyed cache dir.
# Skips the build when all binaries are already there. Prints the bin dir on the last line.
#
# Pins: v1.33.13 is the newest 1.33 that resolves on our module proxy (k8s/sim/README.md).
set -euo pipefail

KV=${KV:-v1.33.13}; EV=${EV:-v3.5.21}; KWOKV=${KWOKV:-v0.8.0}
SV=v0.${KV#v1.}
CACHE=${K8S_SIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/carbuild/k8s-sim}
OUT=${K8S_SIM_BIN:-$CACHE/$KV-etcd${EV#v}-kwok${KWOKV#v}/bin}
BINS=(kube-apiserver kube-controller-manager kube-scheduler etcd kwok)
# kubectl comes from the machine (Debian package kubectl); without one, build v1.33 from the same
# wrapper module (about a minute once the Kubernetes build cache is warm).
if [ "${K8S_SIM_BUILD_KUBECTL:-}" = 1 ] || ! command -v kubectl >/dev/null; then BINS+=(kubectl); fi
NICE=${K8S_SIM_NICE:-10}

log() { printf '[k8s-sim build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }

missing=()
for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "cached: $OUT (kubernetes $KV, etcd $EV, kwok $KWOKV)"
  echo "$OUT"; exit 0
fi
log "building ${missing[*]} into $OUT (kubernetes $KV, etcd $EV, kwok $KWOKV); ~12 min with cold Go caches on an idle 2-core machine, ~1 min with warm ones"
command -v go >/dev/null || { log "go not found"; exit 1; }
mkdir -p "$OUT"
W=$(mktemp -d "${TMPDIR:-/tmp}/k8s-sim-build.XXXXXX"); trap 'rm -rf "$W"' EXIT
GO="nice -n $NICE go"
export GOWORK=off
T0=$(now)

need() { for b in "$@"; do [ -x "$OUT/$b" ] || return 0; done; return 1; }

KBINS=(kube-apiserver kube-controller-manager kube-scheduler)
case " ${BINS[*]} " in *" kubectl "*) KBINS+=(kubectl) ;; esac
KMISSING=(); for b in "${KBINS[@]}"; do [ -x "$OUT/$b" ] || KMISSING+=("$b"); done
if [ ${#KMISSING[@]} -gt 0 ]; then
  KBINS=("${KMISSING[@]}")
  t=$(now); mkdir "$W/k"; cd "$W/k"
  MODF=$($GO mod download -json "k8s.io/kubernetes@$KV" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$MODF" ] || { log "could not download k8s.io/kubernetes@$KV"; exit 1; }
  { printf 'module kbuild\n\ngo 1.24.0\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KV"
    # k8s.io/kubernetes replaces every staging repo with ./staging/...; re-point them at the published v0.MINOR.PATCH.
    grep -oE '^\s+k8s.io/[a-z0-9-]+ => ./staging' "$MODF" | awk -v sv="$SV" '{print "\t" $1 " => " $1 " " sv}'
    echo ")"; } > go.mod
  { printf '//go:build tools\npackage tools\nimport (\n'; for b in "${KBINS[@]}"; do printf '_ "k8s.io/kubernetes/cmd/%s"\n' "$b"; done; printf ')\n'; } > tools.go
  $GO mod tidy
  log "kubernetes: go mod tidy $(since "$t")"
  t=$(now)
  MINOR=${KV#v1.}; MINOR=${MINOR%%.*}
  $GO build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KV -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$MINOR" \
    -o "$OUT/" $(for b in "${KBINS[@]}"; do echo "k8s.io/kubernetes/cmd/$b"; done)
  log "kubernetes: go build ${KBINS[*]} $(since "$t")"
fi

if need etcd; then
  t=$(now); mkdir "$W/e"; cd "$W/e"
  EMODF=$($GO mod download -json "go.etcd.io/etcd/server/v3@$EV" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$EMODF" ] || { log "could not download go.etcd.io/etcd/server/v3@$EV"; exit 1; }
  { printf 'module ebuild\n\ngo 1.23\n\nrequire go.etcd.io/etcd/server/v3 %s\n\nreplace (\n' "$EV"
    grep -oE '^\s+go.etcd.io/etcd/[a-z0-9/]+ => \.\./' "$EMODF" | awk '{print $1}' | while read -r m; do
      v=$EV; [ "$m" = go.etcd.io/etcd/client/v2 ] && v=v2.305.${EV#v3.5.}; printf '\t%s => %s %s\n' "$m" "$m" "$v"; done
    echo ")"; } > go.mod
  printf '//go:build tools\npackage tools\nimport _ "go.etcd.io/etcd/server/v3"\n' > tools.go
  $GO mod tidy
  $GO build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  log "etcd: tidy+build $(since "$t")"
fi

if need kwok; then
  t=$(now)
  GOBIN="$OUT" $GO install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOKV"
  log "kwok: go install $(since "$t")"
fi

for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || { log "missing $OUT/$b after build"; exit 1; }; done
log "done in $(since "$T0"): $OUT"
echo "$OUT"

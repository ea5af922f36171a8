#!/usr/bin/env bash
# Checks that every Go module builds and vets on its own (GOWORK=off), the
# way a container build or a consumer outside the workspace sees it, and
# that go.mod/go.sum are tidy: then the workspace build and the per-module
# builds resolve the same code. Usage: scripts/modcheck.sh [module dir...]
# (default: every module of the repository except the Kind image sources
# under k8s/kind, which build upstream Kubernetes).
set -euo pipefail
cd "$(dirname "$0")/.."
mods=("$@")
if [ ${#mods[@]} -eq 0 ]; then
  mapfile -t mods < <(git ls-files '*go.mod' | grep -v '^k8s/kind/' | xargs -n1 dirname | sort)
fi
want=$(sed -n 's/^go //p' go.work)
fail=0
for m in "${mods[@]}"; do
  got=$(sed -n 's/^go //p' "$m/go.mod")
  if [ "$got" != "$want" ]; then
    echo "modcheck: $m/go.mod says go $got, go.work says go $want" >&2; fail=1
  fi
  if ! (cd "$m" && GOWORK=off go mod tidy -diff >/dev/null); then
    echo "modcheck: $m: go.mod/go.sum are not tidy; run: (cd $m && GOWORK=off go mod tidy)" >&2
    (cd "$m" && GOWORK=off go mod tidy -diff) >&2 || true
    fail=1
  fi
  if ! (cd "$m" && GOWORK=off go build ./... && GOWORK=off go vet ./...); then
    echo "modcheck: $m does not build or vet with GOWORK=off" >&2; fail=1
  fi
done
[ $fail -eq 0 ] && echo "modcheck: ${#mods[@]} modules build, vet and are tidy on their own (go $want)"
exit $fail

#!/usr/bin/env bash
# The lint lane of `make test`: staticcheck and govulncheck over every Go
# module of the repository (the go.work modules, and k8s/proof and
# observability/check with GOWORK=off). Both tools come from the Go module
# proxy at pinned versions, installed once into ~/.cache/carbuild/tools like
# the protoc plugins of scripts/generate.sh.
#
# The vulnerability database: vuln.go.dev cannot be reached from our
# machines, so by default the database is built offline from a pinned
# snapshot of the Go vulnerability database's own repository
# (golang.org/x/vulndb, served by the module proxy: its data/osv holds the
# OSV entries vuln.go.dev publishes) with that repository's indexdb command.
# Advisories published after the snapshot's date are not seen: move
# VULNDB_SNAPSHOT forward to pick them up. On a machine that reaches the
# live database, CARBUILD_VULNDB=https://vuln.go.dev uses it instead.
#
# A vulnerability the code calls fails the lane unless scripts/vuln-accepted.txt
# lists it, with the reason, for that module (scripts/vulngate).
#
#   scripts/lint.sh                 # both
#   scripts/lint.sh staticcheck     # one of them
#   scripts/lint.sh govulncheck
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK=v0.8.2 # honnef.co/go/tools
GOVULNCHECK=v1.9.0 # golang.org/x/vuln
VULNDB_SNAPSHOT=v0.0.0-20261105234957-e22db6528018 # golang.org/x/vulndb

WORK_MODULES=(shared catalog pricing gateway migrations dev loadtest)
OWN_MODULES=(k8s/proof observability/check) # not in go.work
TOOLS=${CARBUILD_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/carbuild/tools}

which=${1:-all}
say() { printf 'lint: %s\n' "$*" >&2; }

# install NAME VERSION PACKAGE@VERSION: go install into TOOLS/NAME-VERSION once.
install() {
	local dir=$TOOLS/$1-$2
	if [ ! -x "$dir/$1" ]; then
		say "installing $3 into $dir"
		mkdir -p "$dir"
		GOBIN=$dir GOWORK=off GOFLAGS=-mod=mod go install "$3"
	fi
	echo "$dir/$1"
}

run_staticcheck() {
	local sc rc=0
	sc=$(install staticcheck "$STATICCHECK" "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK")
	say "staticcheck $STATICCHECK: ${WORK_MODULES[*]} (workspace)"
	local pkgs=()
	for m in "${WORK_MODULES[@]}"; do pkgs+=("./$m/..."); done
	"$sc" "${pkgs[@]}" || rc=1
	for m in "${OWN_MODULES[@]}"; do
		say "staticcheck $STATICCHECK: $m"
		(cd "$m" && GOWORK=off "$sc" ./...) || rc=1
	done
	[ "$rc" -eq 0 ] && say "staticcheck: no findings"
	return $rc
}

# vulndb prints the database URL govulncheck should use.
vulndb() {
	if [ -n "${CARBUILD_VULNDB:-}" ]; then
		echo "$CARBUILD_VULNDB"
		return
	fi
	local dir=$TOOLS/vulndb-$VULNDB_SNAPSHOT
	if [ ! -s "$dir/index/db.json" ]; then
		local indexdb src tmp stamp
		indexdb=$(install indexdb "$VULNDB_SNAPSHOT" "golang.org/x/vulndb/cmd/indexdb@$VULNDB_SNAPSHOT")
		src=$(GOWORK=off GOFLAGS=-mod=mod go mod download -json "golang.org/x/vulndb@$VULNDB_SNAPSHOT" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')
		say "building the vulnerability database from golang.org/x/vulndb@$VULNDB_SNAPSHOT into $dir"
		tmp=$(mktemp -d "$TOOLS/vulndb.XXXXXX")
		"$indexdb" -vulns "$src/data/osv" -out "$tmp/db"
		# indexdb leaves the database's modified time at zero; the snapshot's
		# commit time (in its pseudo-version) is when it was last modified,
		# and govulncheck prints it.
		stamp=$(sed -E 's/.*-([0-9]{4})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})([0-9]{2})-.*/\1-\2-\3T\4:\5:\6Z/' <<<"$VULNDB_SNAPSHOT")
		printf '{"modified":"%s"}' "$stamp" >"$tmp/db/index/db.json"
		gzip -9 -c "$tmp/db/index/db.json" >"$tmp/db/index/db.json.gz"
		rm -rf "$dir"
		mv "$tmp/db" "$dir"
		rmdir "$tmp"
	fi
	echo "file://$dir"
}

run_govulncheck() {
	local gv db out m rc=0
	gv=$(install govulncheck "$GOVULNCHECK" "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK")
	db=$(vulndb)
	out=$(mktemp -d)
	trap 'rm -rf "$out"' RETURN
	for m in "${WORK_MODULES[@]}" "${OWN_MODULES[@]}"; do
		say "govulncheck $GOVULNCHECK: $m"
		local env=()
		[[ " ${OWN_MODULES[*]} " == *" $m "* ]] && env=(GOWORK=off)
		# -format json always exits 0: vulngate decides, over all modules at once.
		env "${env[@]}" "$gv" -C "$m" -db "$db" -format json ./... >"$out/${m//\//_}.json" || rc=1
	done
	[ "$rc" -eq 0 ] || {
		say "govulncheck could not scan every module"
		return 1
	}
	GOWORK=off go run scripts/vulngate/main.go -accepted scripts/vuln-accepted.txt "$out"/*.json
}

case $which in
all)
	rc=0
	run_staticcheck || rc=1
	run_govulncheck || rc=1
	exit $rc
	;;
staticcheck) run_staticcheck ;;
govulncheck) run_govulncheck ;;
*)
	echo "usage: scripts/lint.sh [all|staticcheck|govulncheck]" >&2
	exit 2
	;;
esac

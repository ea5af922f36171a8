#!/bin/sh
# runc-wrap.sh: the Docker engine's default runtime on machines whose root lacks
# CAP_SYS_RESOURCE in its bounding set (our CI microVMs). Docker grants every
# capability to privileged containers (Kind nodes are privileged), and runc
# then fails with "unable to apply caps: operation not permitted". This removes
# CAP_SYS_RESOURCE from the OCI bundle's config.json (create/run) and from an
# exec's --process JSON, then runs the real runc with the same arguments.
set -eu
REAL_RUNC=${REAL_RUNC:-/usr/sbin/runc}
bundle="" process="" cmd="" prev=""
for a in "$@"; do
	case "$prev" in
	--bundle | -b) bundle=$a ;;
	--process | -p) process=$a ;;
	esac
	case "$a" in
	--bundle=*) bundle=${a#--bundle=} ;;
	--process=*) process=${a#--process=} ;;
	create | run | exec) [ -n "$cmd" ] || cmd=$a ;;
	esac
	prev=$a
done
strip() { # file jq-path
	[ -f "$1" ] || return 0
	jq "if $2 then $2 |= with_entries(.value |= (if type == \"array\" then map(select(. != \"CAP_SYS_RESOURCE\")) else . end)) else . end" "$1" >"$1.carbuild-tmp"
	mv "$1.carbuild-tmp" "$1"
}
case "$cmd" in
create | run) strip "${bundle:-.}/config.json" .process.capabilities ;;
exec) [ -z "$process" ] || strip "$process" .capabilities ;;
esac
exec "$REAL_RUNC" "$@"

#!/bin/sh
# restart.sh: PID 1 of the dev images. Runs the service ("$@") and restarts it
# on SIGHUP, which Tilt's live update sends (`kill -HUP 1`) after syncing a new
# binary, so a change is running seconds after a save without a new pod. The
# service gets the SIGHUP too: it drains and exits without its SHUTDOWN_DELAY,
# which is there for a pod leaving its Service's endpoints, not for a restart
# in place (shared/boot.SignalContext).
# SIGTERM/SIGINT are passed on to the service (graceful shutdown), and the
# wrapper exits with the service's status when it exits on its own.
set -u

child=""
restart=0

forward() { # signal
	if [ -n "$child" ]; then kill "-$1" "$child" 2>/dev/null; fi
}
on_hup() {
	restart=1
	forward HUP
}
on_term() {
	trap - TERM INT
	forward TERM
	status=143
	while [ -n "$child" ] && kill -0 "$child" 2>/dev/null; do
		status=0
		wait "$child" || status=$?
	done
	exit "$status"
}
trap on_hup HUP
trap on_term TERM INT

while :; do
	"$@" &
	child=$!
	status=0
	wait "$child" || status=$?
	# A trapped signal interrupts wait; keep waiting until the child is gone.
	while kill -0 "$child" 2>/dev/null; do
		status=0
		wait "$child" || status=$?
	done
	if [ "$restart" = 1 ]; then
		restart=0
		echo "restart.sh: restarting $1" >&2
		continue
	fi
	exit "$status"
done

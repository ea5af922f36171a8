#!/usr/bin/env bash
# Runs make targets one after the other (the stages of `make test`), prints
# each one's wall time as it starts and ends, stops at the first failure,
# and ends with a table of the stage times and a pass/fail count line.
#
#   scripts/stages.sh deps vet test-go     # what `make test` does with TEST_STAGES
set -uo pipefail
cd "$(dirname "$0")/.." || exit

start=$(date +%s)
declare -a names=() secs=() results=()
summary() {
	printf '\n%-22s %8s  %s\n' stage seconds result
	for i in "${!names[@]}"; do
		printf '%-22s %8s  %s\n' "${names[$i]}" "${secs[$i]}" "${results[$i]}"
	done
	printf '%-22s %8s\n' total "$(($(date +%s) - start))"
}

passed=0
for stage in "$@"; do
	printf '\n==> [%5ds] %s\n' "$(($(date +%s) - start))" "$stage"
	t=$(date +%s)
	make --no-print-directory "$stage"
	rc=$?
	names+=("$stage") secs+=("$(($(date +%s) - t))")
	if [ "$rc" -ne 0 ]; then
		results+=("FAILED (exit $rc)")
		summary
		# The stages after a failure did not run: they count as neither.
		echo "stages: $passed passed, 1 failed"
		exit "$rc"
	fi
	results+=(ok)
	passed=$((passed + 1))
done
summary
echo "stages: $passed passed, 0 failed"

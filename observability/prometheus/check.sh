#!/usr/bin/env bash
# check.sh validates the Prometheus configuration and rules with promtool:
#   promtool check config   prometheus.local.yml (and the rule files it loads)
#   promtool check rules    rules/*.yml
#   promtool test rules     tests/*.yml (unit tests; every rule file must have some)
# It exits non-zero on the first failure, and when promtool is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
promtool="${PROMTOOL:-promtool}"

if ! command -v "$promtool" >/dev/null 2>&1; then
	echo "check.sh: FAIL: no promtool on PATH." >&2
	echo "  Install it with: apt-get update && apt-get install -y --no-install-recommends prometheus" >&2
	exit 1
fi

shopt -s nullglob
rules=(rules/*.yml)
tests=(tests/*.yml)
if ((${#rules[@]} == 0 || ${#tests[@]} == 0)); then
	echo "check.sh: FAIL: no rule files or no test files under $here" >&2
	exit 1
fi

# Every rule file must be loaded by at least one unit test file.
for r in "${rules[@]}"; do
	if ! grep -qF -- "../$r" "${tests[@]}"; then
		echo "check.sh: FAIL: $r has no unit test (no tests/*.yml lists ../$r in rule_files)" >&2
		exit 1
	fi
done

echo "== promtool check config prometheus.local.yml"
"$promtool" check config prometheus.local.yml
echo "== promtool check rules ${rules[*]}"
"$promtool" check rules "${rules[@]}"
echo "== promtool test rules ${tests[*]}"
"$promtool" test rules "${tests[@]}"
echo "check.sh: OK (${#rules[@]} rule files, ${#tests[@]} test files)"

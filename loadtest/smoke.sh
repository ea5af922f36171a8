#!/usr/bin/env bash
# Short Locust run of the shopper journeys against CARBUILD_URL (both API
# surfaces, 15 s each by default); fails on any failed request or check, or
# when nothing was sent.
set -euo pipefail
cd "$(dirname "$0")"
url=${CARBUILD_URL:-http://127.0.0.1:8000}
dur=${SMOKE_DURATION:-15s}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for api in v1 compat; do
  echo "smoke: locust $api journeys, 20 users, $dur against $url"
  CARBUILD_API=$api locust -f locustfile.py --headless -u 20 -r 10 -t "$dur" --host "$url" \
    --only-summary --csv "$out/$api" --exit-code-on-error 1
  awk -F, 'NR>1 && $2=="Aggregated" { if ($3+0 == 0) { print "smoke: no requests were sent"; exit 1 }
    if ($4+0 > 0) { print "smoke: " $4 " failures"; exit 1 } print "smoke: " $3 " requests, 0 failures" }' "$out/${api}_stats.csv"
done

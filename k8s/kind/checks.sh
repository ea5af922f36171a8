#!/usr/bin/env bash
# checks.sh — what the real cluster is asked, sourced by run.sh after the
# cluster exists. Each check waits for states (bounded, the time logged) and
# fails with what it saw. Groups run in this order; KIND_STEPS picks some.
#
#   dockerfile  (before the cluster) the root Dockerfile builds; prod image non-root, read-only
#   dev         tilt ci for the dev overlay: every resource built, pushed, deployed, healthy;
#               the README's curl paths through localhost:8000
#   server      every overlay passes the API server's strict validation (server-side dry
#               run, no warning)
#   smoke       the project's Locust journeys (loadtest/smoke.sh) through localhost:8000, 0 failures
#   netpol      every NetworkPolicy: allowed flows connect, others are refused
#   prometheus  Prometheus' service account may read pods in carbuild only; promtool checks
#               the mounted config; every service pod a target and up; every recording rule has series
#   liveness    a wedged (SIGSTOPped) process is restarted by its liveness probe
#   liveupdate  tilt up, a source change, time until the new code answers; same pod
#   restart     rolling restart of each service under load: 0 failed requests, orders == rows
#   baseline, replicated, spread, autoscale: tilt ci --overlay=NAME, pods Ready; spread: one
#               per worker, pod kill and worker drain under load; autoscale: HPA up and back
#   tls         tilt ci --overlay=tls: HTTPS only (HSTS), mutual TLS between services (the
#               server checks the client's identity), PostgreSQL over TLS only; plaintext refused
#   experiments (only when named) the earlier Locust matrix per overlay, reports under results/
# Helpers defined inside checks run indirectly (wait_for, under_load).
# shellcheck disable=SC2317
NS=carbuild
BASE_URL=http://localhost:8000

run_checks() {
	local steps=$1 s
	[[ $steps == all ]] && steps="server dev smoke netpol prometheus liveness liveupdate restart baseline replicated spread autoscale tls"
	for s in $steps; do
		log "=== $s"
		"check_$s"
	done
}

tilt_ci() { # overlay
	local t0 rc=0
	# The completed migrate Job of the last overlay goes first, so that every
	# overlay's deploy runs its migration afresh, as the first one does: with
	# it left in place Tilt re-applied the same Job, attached to its finished
	# pod, and once left catalog, pricing and gateway "waiting-for-dep" on a
	# migrate that was ok, until tilt ci's timeout (baseline right after dev).
	# Without Tilt it matters as much: a Job's pod template is immutable, and
	# an overlay that changes more than the image (tls adds a volume) cannot
	# be applied over the last one's Job.
	kubectl -n "$NS" delete job migrate --ignore-not-found --cascade=foreground --wait=true >/dev/null
	[[ -n $TILT ]] || { tiltless_ci "$1"; return; }
	t0=$(date +%s)
	(cd "$REPO" && "$TILT" ci --web-mode=prod --port 0 --timeout 15m --context "$KIND_CONTEXT" -- --overlay="$1") \
		>"$KIND_STATE/tilt-ci-$1.log" 2>&1 || rc=$?
	if [[ $rc != 0 ]]; then
		tail -60 "$KIND_STATE/tilt-ci-$1.log" >&2
		kubectl -n "$NS" get pods -o wide >&2 || true
		log "FAIL: tilt ci --overlay=$1 exit $rc"
		return 1
	fi
	log "tilt ci --overlay=$1: $(grep -E 'SUCCESS' "$KIND_STATE/tilt-ci-$1.log" | tail -1) in $(($(date +%s) - t0)) s"
}

# http_expect CODE METHOD URL [curl args...]: exact status, body to stdout
# (CURL_CA: the CA file that verifies an https URL).
http_expect() {
	local want=$1 method=$2 url=$3 out code
	shift 3
	out=$(mktemp)
	code=$(curl -sS ${CURL_CA:+--cacert "$CURL_CA"} -o "$out" -w '%{http_code}' -X "$method" "$@" "$url") || code=000
	cat "$out"
	rm -f "$out"
	if [[ $code != "$want" ]]; then
		log "FAIL: $method $url -> $code, want $want"
		return 1
	fi
}

check_curl_paths() {
	local body id key receipt json=(-H 'Content-Type: application/json')
	http_expect 200 GET "$BASE_URL/healthz" >/dev/null
	http_expect 200 GET "$BASE_URL/readyz" >/dev/null
	body=$(http_expect 200 GET "$BASE_URL/v1/cars")
	for c in fusca civic corolla; do [[ $body == *"\"$c\""* ]] || { log "FAIL: /v1/cars lacks $c: $body"; return 1; }; done
	body=$(http_expect 200 GET "$BASE_URL/v1/cars/civic/parts?year=2023&page_size=3")
	[[ $body == *nextPageToken* ]] || { log "FAIL: parts page: $body"; return 1; }
	body=$(http_expect 200 POST "$BASE_URL/v1/quotes" "${json[@]}" -d '{"items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}]}')
	[[ $body == *874500* ]] || { log "FAIL: quote: $body"; return 1; }
	http_expect 415 POST "$BASE_URL/v1/quotes" -d '{"items":[{"partId":"7","quantity":1}]}' >/dev/null
	# A guest's order, as the README places one: a random key, read back with its receipt only.
	key=guest-kind-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	body=$(http_expect 200 POST "$BASE_URL/v1/orders" "${json[@]}" \
		-d '{"idempotencyKey":"'"$key"'","items":[{"partId":"7","quantity":1},{"partId":"10","quantity":2}],"expectedTotal":{"currencyCode":"BRL","minorUnits":"874500"}}')
	id=$(jq -r '.id // .order.id' <<<"$body")
	receipt=$(jq -r '.receiptToken // .order.receiptToken // empty' <<<"$body")
	[[ -n $id && -n $receipt ]] || { log "FAIL: order answer without id or receiptToken: $body"; return 1; }
	http_expect 200 GET "$BASE_URL/v1/orders/$id" -H "Order-Receipt: $receipt" >/dev/null
	http_expect 404 GET "$BASE_URL/v1/orders/$id" >/dev/null
	http_expect 404 GET "$BASE_URL/v1/cars/gol/parts" >/dev/null
	body=$(http_expect 200 POST "$BASE_URL/get-pecas" "${json[@]}" -d '{"modelo":"Civic","ano":2023}')
	[[ $body == *Chassi* ]] || { log "FAIL: /get-pecas: $body"; return 1; }
	http_expect 200 GET "$BASE_URL/" >/dev/null
	http_expect 200 GET "$BASE_URL/openapi.json" >/dev/null
	log "curl: the README's paths answer through $BASE_URL (guest order $id stored and read back with its receipt)"
}

check_dev() {
	tilt_ci dev
	kubectl -n "$NS" get pods -o wide >&2
	check_curl_paths
}

# check_server: what the API server itself rejects or warns about, for every
# overlay (unknown or misspelled fields, bad values, PodSecurity `restricted`
# on the carbuild namespace, deprecated APIs).
check_server() {
	local o out n=0 skip_jobs=0
	# Namespaced objects are validated in their namespace: it must exist.
	kubectl apply -f "$REPO/k8s/base/namespace.yaml" >/dev/null
	# A Job's pod template is immutable: once tilt ci made the migrate Job,
	# the overlays' Jobs (image not yet rewritten) are left out of the dry run.
	kubectl -n "$NS" get job migrate >/dev/null 2>&1 && skip_jobs=1
	# The tls overlay's Secrets come from git-ignored certificate files.
	[[ -f $REPO/k8s/overlays/tls/certs/ca.crt ]] || (cd "$REPO" && go run ./dev/cmd/devcerts -out k8s/overlays/tls/certs >/dev/null)
	for o in "$REPO"/k8s/overlays/*/; do
		o=$(basename "$o")
		out=$(kubectl kustomize "$REPO/k8s/overlays/$o" |
			awk -v skip="$skip_jobs" 'function flush() { if (!(skip && doc ~ /\nkind: Job\n/)) printf "%s", doc; doc = "" }
				/^---$/ { flush(); doc = "---\n"; next } { doc = doc $0 "\n" } END { flush() }' |
			kubectl apply --dry-run=server --validate=strict -f - 2>&1 >/dev/null) ||
			{ echo "$out" >&2; log "FAIL: overlay $o: the API server rejects it"; return 1; }
		[[ -z $out ]] || { echo "$out" >&2; log "FAIL: overlay $o: the API server warns"; return 1; }
		n=$((n + 1))
	done
	log "server: all $n overlays pass strict server-side validation with no warning$([[ $skip_jobs == 0 ]] || echo " (Jobs left out: migrate exists)")"
	# The same validation must bite: broken manifests are refused, each for its reason.
	kubectl apply -f "$KIND_DIR/testdata/negative/namespace.yaml" >/dev/null
	local f want
	while IFS='|' read -r f want; do
		if out=$(kubectl apply --dry-run=server --validate=strict -f "$KIND_DIR/testdata/negative/$f" 2>&1); then
			log "FAIL: server: broken manifest $f accepted"; return 1
		fi
		grep -qF -- "$want" <<<"$out" || { echo "$out" >&2; log "FAIL: server: $f refused, but not for \"$want\""; return 1; }
	done <<-'CASES'
		typo.yaml|unknown field "spec.replica"
		selector-mismatch.yaml|`selector` does not match template `labels`
		root-pod.yaml|violates PodSecurity "restricted:latest"
	CASES
	kubectl delete namespace kind-negative --wait=false >/dev/null
	log "server: 3 broken manifests refused (unknown field, selector mismatch, PodSecurity restricted)"
}

# ---------------------------------------------------------------- load helpers

# locust_run NAME DURATION USERS: the project's Locust journeys (v1) from the
# host against localhost:8000, in the background; locust_wait NAME checks it.
# --stop-timeout: at the end of the run every user finishes the journey step in
# flight, so an order the database stored is one Locust counted (without it
# Locust cut one off now and then: 34 confirmed, 35 stored).
locust_start() {
	local name=$1 dur=$2 users=$3
	(cd "$REPO/loadtest" && CARBUILD_API=v1 exec locust -f locustfile.py --headless -u "$users" -r "$users" -t "$dur" --stop-timeout 20 \
		--host "$BASE_URL" --only-summary --csv "$KIND_STATE/locust-$name" --exit-code-on-error 0) \
		>"$KIND_STATE/locust-$name.log" 2>&1 &
	LOCUST_PID=$!
	STARTED_PIDS+=("$LOCUST_PID")
}

# locust_result NAME: prints "requests failures orders" of a finished run
# (wait for LOCUST_PID first, in this shell: a $(...) subshell cannot wait for it).
locust_result() {
	local name=$1 csv
	csv=$KIND_STATE/locust-${name}_stats.csv
	[[ -s $csv ]] || { tail -20 "$KIND_STATE/locust-$name.log" >&2; log "FAIL: locust $name wrote no stats"; return 1; }
	awk -F, 'NR>1 && $2=="Aggregated" {r=$3; f=$4} NR>1 && $1=="POST" && $2=="/v1/orders" {o=$3-$4} END {print r+0, f+0, o+0}' "$csv"
}

pg() { # SQL: runs in the postgres pod as the owner
	kubectl -n "$NS" exec postgres-0 -c postgres -- psql -U carbuild -d carbuild -tAc "$1"
}

# under_load NAME DURATION ACTION...: Locust journeys for DURATION while ACTION
# runs; then requests, failures, confirmed orders and rows added are logged.
# Failures must be 0, and no order may be lost: every order Locust saw
# confirmed (its ledger, CARBUILD_ORDER_LOG, by idempotency key) must be a row.
# A row Locust never saw confirmed (its answer cut off, e.g. by the end of the
# run) is no loss, since a client retrying with the same key gets that order;
# such rows are counted and shown, with their time against the run's end.
under_load() {
	local name=$1 dur=$2 t0 res req fail orders ledger stored missing unseen
	shift 2
	ledger=$KIND_STATE/orders-$name.txt
	: >"$ledger"
	t0=$(pg "SELECT now()")
	CARBUILD_ORDER_LOG=$ledger locust_start "$name" "$dur" "${KIND_LOAD_USERS:-10}"
	sleep 5
	"$@"
	wait "$LOCUST_PID" || true
	res=$(locust_result "$name")
	read -r req fail orders <<<"$res"
	pg "SELECT idempotency_key FROM orders.orders WHERE created_at >= '$t0' AND idempotency_key LIKE 'locust-%'" | sort -u >"$ledger.stored"
	awk '{print $2}' "$ledger" | sort -u >"$ledger.confirmed"
	stored=$(wc -l <"$ledger.stored")
	missing=$(comm -23 "$ledger.confirmed" "$ledger.stored" | wc -l)
	unseen=$(comm -13 "$ledger.confirmed" "$ledger.stored" | wc -l)
	log "$name: $req requests, $fail failed; $orders orders confirmed ($(wc -l <"$ledger.confirmed") in the ledger), $stored rows stored, $missing confirmed orders missing, $unseen rows never seen confirmed"
	echo "$name requests=$req failed=$fail confirmed=$orders stored=$stored lost=$missing unseen=$unseen" >>"$KIND_STATE/figures"
	if ((unseen > 0)); then
		log "$name: rows stored whose answer Locust never recorded (created_at; the run ended $(date -u +%H:%M:%S)):"
		comm -13 "$ledger.confirmed" "$ledger.stored" | while read -r key; do
			pg "SELECT idempotency_key, created_at FROM orders.orders WHERE idempotency_key = '$key'"
		done >&2
	fi
	if ((req == 0 || fail != 0)); then
		grep -A3 -i 'error\|fail' "$KIND_STATE/locust-$name.log" | head -20 >&2
		# Which hop failed: the services' warnings and errors of the run.
		local svc
		for svc in gateway pricing catalog; do
			kubectl -n "$NS" logs -l "app.kubernetes.io/name=$svc" --since=3m --prefix --tail=-1 2>&1 |
				grep -E '"level":"(WARN|ERROR)"|level=(WARN|ERROR)' | tail -20 >&2 || true
		done
		log "FAIL: $name: $fail of $req requests failed"
		return 1
	fi
	((missing == 0)) || { comm -23 "$ledger.confirmed" "$ledger.stored" | head >&2; log "FAIL: $name: $missing confirmed orders are not in the database"; return 1; }
	(($(wc -l <"$ledger.confirmed") == orders)) || { log "FAIL: $name: Locust counted $orders confirmed orders, its ledger $(wc -l <"$ledger.confirmed")"; return 1; }
}

# ------------------------------------------------------------------- checks

check_smoke() {
	local out
	out=$(cd "$REPO" && CARBUILD_URL=$BASE_URL SMOKE_DURATION=${KIND_SMOKE:-15s} bash loadtest/smoke.sh 2>&1) || { echo "$out" >&2; log "FAIL: Locust smoke"; return 1; }
	log "Locust journeys through $BASE_URL: $(grep -o 'smoke: [0-9]* requests, 0 failures' <<<"$out" | tr '\n' ';')"
}

# Readiness gates traffic: each service restarted (rolling) under load, 0 failures.
check_restart() {
	local s
	for s in catalog pricing gateway; do
		restart_one() {
			kubectl -n "$NS" rollout restart "deploy/$1" >/dev/null
			kubectl -n "$NS" rollout status "deploy/$1" --timeout=180s >/dev/null
		}
		under_load "restart-$s" 40s restart_one "$s"
	done
}

# Liveness: a wedged process (SIGSTOP) is restarted by the kubelet.
check_liveness() {
	local s pod before pods=() befores=() i
	restarted() { (($(kubectl -n "$NS" get pod "$1" -o jsonpath='{.status.containerStatuses[0].restartCount}') > $2)); }
	# Both wedged at once: each waits out its probes and grace period, so in parallel.
	for s in catalog gateway; do
		pod=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$s" -o jsonpath='{.items[0].metadata.name}')
		before=$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
		# In the dev image PID 1 is restart.sh; the service is its child.
		kubectl -n "$NS" exec "$pod" -- sh -c 'for p in /proc/[0-9]*; do set -- $(tr "\0" " " <$p/cmdline 2>/dev/null); [ "${1:-}" = /app/server ] && kill -STOP ${p#/proc/} && echo "stopped ${p#/proc/}"; done; true'
		pods+=("$pod") befores+=("$before")
	done
	for i in 0 1; do
		wait_for "liveness restarted wedged ${pods[i]}" 180 restarted "${pods[i]}" "${befores[i]}"
	done
	for pod in "${pods[@]}"; do kubectl -n "$NS" wait --for=condition=Ready "pod/$pod" --timeout=180s >/dev/null; done
}

# ------------------------------------------------------------------ overlays

# pods_ready SVC N: exactly N pods of SVC, all Ready, none terminating.
pods_ready() {
	local n
	n=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$1" -o json |
		jq '[.items[] | select(.metadata.deletionTimestamp == null) | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))] | length')
	[[ $(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$1" --no-headers 2>/dev/null | wc -l) == "$2" && $n == "$2" ]]
}

overlay_apply() { # overlay replicas
	local s
	tilt_ci "$1"
	for s in catalog pricing gateway; do
		kubectl -n "$NS" rollout status "deploy/$s" --timeout=300s >/dev/null
		wait_for "$1: $s has $2 Ready pods" 300 pods_ready "$s" "$2"
	done
	check_curl_paths
}

check_baseline() { overlay_apply baseline 1; }
check_replicated() { overlay_apply replicated 3; }

# experiments (opt-in, not in make test: KIND_STEPS="dev experiments"): the
# earlier system's Locust matrix (loadtest/cmd/experiments, users and
# durations scaled by KIND_EXPERIMENTS_SCALE) through the NodePort, once per
# overlay of its report (one replica each, three, three spread one per
# worker); one report per overlay under results/experiments-<time>/.
check_experiments() {
	local o
	for o in baseline:1 replicated:3 spread:3; do # overlay:replicas
		overlay_apply "${o%:*}" "${o#*:}"
		o=${o%:*}
		(cd "$REPO" && go run ./loadtest/cmd/experiments -target "kind-$o=$BASE_URL" -scale "${KIND_EXPERIMENTS_SCALE:-0.1}" \
			-workers "${KIND_EXPERIMENTS_WORKERS:-0}") || { log "FAIL: experiments on $o"; return 1; }
	done
}

check_spread() {
	local s nodes workers
	overlay_apply spread 3
	workers=$(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[*].metadata.name}' | tr ' ' '\n' | sort | tr '\n' ' ')
	for s in catalog pricing gateway; do
		nodes=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$s" -o jsonpath='{range .items[*]}{.spec.nodeName}{"\n"}{end}' | sort | tr '\n' ' ')
		[[ $nodes == "$workers" ]] || { log "FAIL: spread: $s on [$nodes], want one on each of [$workers]"; return 1; }
	done
	log "spread: catalog, pricing and gateway have one pod on each worker ($workers)"
	check_smoke
	# A pod killed under load, then a worker drained under load: no order lost.
	kill_pod() {
		local pod
		for s in gateway pricing catalog; do
			pod=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$s" -o jsonpath='{.items[0].metadata.name}')
			kubectl -n "$NS" delete pod "$pod" --wait=false >/dev/null
			log "deleted pod $pod under load"
		done
		for s in catalog pricing gateway; do wait_for "spread: $s back to 3 Ready" 240 pods_ready "$s" 3; done
	}
	under_load kill-pods 60s kill_pod
	local victim
	victim=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=gateway -o jsonpath='{.items[0].spec.nodeName}')
	[[ $(kubectl -n "$NS" get pod postgres-0 -o jsonpath='{.spec.nodeName}') != "$victim" ]] ||
		victim=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=gateway -o jsonpath='{.items[1].spec.nodeName}')
	drain() {
		local t0
		t0=$(date +%s)
		kubectl drain "$victim" --ignore-daemonsets --delete-emptydir-data --timeout=240s >"$KIND_STATE/drain.log" 2>&1 || { cat "$KIND_STATE/drain.log" >&2; return 1; }
		log "drained $victim in $(($(date +%s) - t0)) s"
		for s in catalog pricing gateway; do
			# One per worker is impossible with a worker cordoned: the spread
			# constraint (DoNotSchedule) keeps the third replica Pending.
			wait_for "drain: $s has 2 Ready pods off $victim" 240 pods_ready_off "$s" "$victim" 2
		done
	}
	under_load drain-worker 60s drain
	kubectl uncordon "$victim" >/dev/null
	for s in catalog pricing gateway; do wait_for "uncordon: $s back to 3 Ready" 300 pods_ready "$s" 3; done
}

pods_ready_off() { # svc node n: n Ready pods of svc, none on node
	kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$1" -o json | jq -e --arg node "$2" --argjson n "$3" '
		[.items[] | select(.metadata.deletionTimestamp == null) | select(any(.status.conditions[]?; .type == "Ready" and .status == "True"))]
		| (length == $n) and all(.spec.nodeName != $node)' >/dev/null
}

check_autoscale() {
	local s
	tilt_ci autoscale
	# The API server's first dials to metrics-server's Service may be made
	# before kube-proxy has its rule; the host refuses those (host_guard_services)
	# and the aggregator dials again. Anything else keeping the metrics API
	# down is a failure, with what the aggregator and metrics-server say.
	local t0
	t0=$(date +%s)
	wait_for "APIService v1beta1.metrics.k8s.io Available" 180 kubectl wait --for=condition=Available apiservice/v1beta1.metrics.k8s.io --timeout=5s ||
		{ metrics_api_report; return 1; }
	wait_for "the API server forwards the metrics API" 120 metrics_api_routed || { metrics_api_report; return 1; }
	echo "metrics-api-available seconds=$(($(date +%s) - t0))" >>"$KIND_STATE/figures"
	wait_for "metrics-server serves pod metrics" 300 kubectl -n "$NS" top pods
	for s in catalog pricing gateway; do
		wait_for "HPA $s reads CPU" 180 hpa_has_metric "$s"
	done
	kubectl -n "$NS" get hpa >&2
	scaled_up() { (($(kubectl -n "$NS" get hpa gateway -o jsonpath='{.status.desiredReplicas}') > 1)) || (($(kubectl -n "$NS" get hpa catalog -o jsonpath='{.status.desiredReplicas}') > 1)) || (($(kubectl -n "$NS" get hpa pricing -o jsonpath='{.status.desiredReplicas}') > 1)); }
	# Locust's shoppers (think time 1-3 s) barely use the pods' CPU requests:
	# hammer adds closed-loop quotes (gateway and pricing) until a scale-up,
	# while the shoppers' journeys must still see no failure and lose no order.
	hpa_load() {
		local hpid rc=0 res
		"$KIND_BINS/hammer" -c "${KIND_HPA_CONNS:-16}" -d 240s -body '{"items":[{"partId":"1","quantity":1},{"partId":"2","quantity":2}]}' \
			"$BASE_URL/v1/quotes" >"$KIND_STATE/hammer.out" 2>&1 &
		hpid=$!
		STARTED_PIDS+=("$hpid")
		wait_for "an HPA scaled up under load" 240 scaled_up || rc=1
		kubectl -n "$NS" get hpa >&2
		kill -INT "$hpid" 2>/dev/null; wait "$hpid" 2>/dev/null || true
		read -r res <"$KIND_STATE/hammer.out" || true
		log "hammer (closed-loop quotes): ${res:-none} (requests failed)"
		return $rc
	}
	KIND_LOAD_USERS=${KIND_HPA_USERS:-10} under_load hpa-up 60s hpa_load
	back() { for s in catalog pricing gateway; do (($(kubectl -n "$NS" get deploy "$s" -o jsonpath='{.status.replicas}') == 1)) || return 1; done; }
	wait_for "HPAs scaled every service back to 1 after the load" 420 back
}

# metrics_api_report: what the aggregator and metrics-server say, when the
# metrics API did not come up (the failed run leaves nothing else to read).
metrics_api_report() {
	log "packets to the Service CIDR refused at the host so far: $(host_guard_rejected)"
	kubectl get apiservice v1beta1.metrics.k8s.io \
		-o jsonpath='{range .status.conditions[*]}APIService {.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
	kubectl -n kube-system get pods,endpointslices -l k8s-app=metrics-server -o wide >&2 || true
	kubectl -n kube-system describe pods -l k8s-app=metrics-server 2>&1 | sed -n '/^Events:/,$p' >&2 || true
	kubectl -n kube-system logs -l k8s-app=metrics-server --all-containers --prefix --tail=40 >&2 || true
	# Who answers the aggregator: the same request from the control-plane
	# node, to the Service and to the pod, with the route it takes.
	local ip pod target
	kubectl get nodes -o jsonpath='{range .items[*]}{.metadata.name} podCIDR={.spec.podCIDR} {.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}' >&2 || true
	ip=$(kubectl -n kube-system get svc metrics-server -o jsonpath='{.spec.clusterIP}' 2>/dev/null) || true
	pod=$(kubectl -n kube-system get pods -l k8s-app=metrics-server -o jsonpath='{.items[0].status.podIP}' 2>/dev/null) || true
	for target in "$ip:443" "$pod:10250"; do
		echo "--- from $KIND_CLUSTER-control-plane to $target" >&2
		docker exec "$KIND_CLUSTER-control-plane" sh -c "ip route get ${target%:*}; curl -sk -m 5 -D - \
			--cert /etc/kubernetes/pki/front-proxy-client.crt --key /etc/kubernetes/pki/front-proxy-client.key \
			-H 'X-Remote-User: system:kube-aggregator' -H 'X-Remote-Group: system:masters' \
			https://$target/apis/metrics.k8s.io/v1beta1 | head -c 800; echo" >&2 || true
	done
}

# metrics_api_routed: the API server forwards the metrics API to metrics-server.
metrics_api_routed() { kubectl get --raw /apis/metrics.k8s.io/v1beta1 >/dev/null; }

hpa_has_metric() {
	kubectl -n "$NS" get hpa "$1" -o json | jq -e '.status.currentMetrics[0].resource.current.averageUtilization != null' >/dev/null
}

# ----------------------------------------------------------- NetworkPolicies

# probe_pod NAME LABEL: a pod that only connects (Python in the Locust image),
# labelled app.kubernetes.io/name=LABEL to borrow that workload's identity. A
# readiness gate nobody sets keeps it out of every Service's endpoints.
probe_pod() {
	kubectl -n "$NS" apply -f - >/dev/null <<-YAML
		apiVersion: v1
		kind: Pod
		metadata:
		  name: $1
		  labels: {app.kubernetes.io/name: "$2", carbuild.dev/kind-probe: "true"}
		spec:
		  readinessGates: [{conditionType: carbuild.dev/never}]
		  automountServiceAccountToken: false
		  securityContext: {runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: {type: RuntimeDefault}}
		  containers:
		    - name: probe
		      image: locustio/locust:2.37.0
		      command: ["sleep", "infinity"]
		      resources: {requests: {cpu: 5m, memory: 16Mi}, limits: {cpu: 100m, memory: 64Mi}}
		      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
	YAML
}

connects() { # probe ip port: one TCP connect, 3 s timeout
	kubectl -n "$NS" exec "$1" -- python3 -c "import socket,sys; socket.create_connection(('$2', $3), 3).close()" 2>/dev/null
}

# check_netpol: for every NetworkPolicy in the namespace, every ingress rule's
# sources reach a selected pod on the rule's ports, and a pod of no allowed
# identity does not (the same target and port, checked right after an allowed
# connection succeeded, so the refusal is the policy's).
# Enforcement is kube-network-policies' engine run by netpol/ (DaemonSet
# kube-network-policies in kube-system).
check_netpol() {
	local flows ident pol target ip port src n=0 denied=0
	kubectl -n kube-system rollout status ds/kube-network-policies --timeout=120s >/dev/null || { log "FAIL: the NetworkPolicy enforcer is not running"; return 1; }
	flows=$(kubectl -n "$NS" get networkpolicy -o json | jq -r '
		.items[] | .metadata.name as $p | (.spec.podSelector.matchLabels // {}) as $sel
		| if (.spec.ingress // []) == [] then "\($p) \($sel | tojson) - -"
		  else .spec.ingress[] | (.ports // [{port: "-"}])[] as $port
		  | if (.from // []) == [] then "\($p) \($sel | tojson) \($port.port) *"
		    else (.from[] | .podSelector.matchLabels["app.kubernetes.io/name"]) as $src | "\($p) \($sel | tojson) \($port.port) \($src)" end end')
	echo "$flows" >"$KIND_STATE/netpol-flows.txt"
	for ident in $(awk '$4 != "-" && $4 != "*" {print $4}' <<<"$flows" | sort -u) outsider; do
		probe_pod "probe-$ident" "kind-probe-$ident"
		[[ $ident == outsider ]] || kubectl -n "$NS" label pod "probe-$ident" --overwrite "app.kubernetes.io/name=$ident" >/dev/null
	done
	kubectl -n "$NS" wait --for=jsonpath='{.status.phase}'=Running pod -l carbuild.dev/kind-probe=true --timeout=120s >/dev/null
	while read -r pol sel port src; do
		if [[ $port == - ]]; then
			# A deny-all policy: a pod only it selects, on a port it declares.
			read -r target ip port < <(kubectl -n "$NS" get pods -o json | jq -r --argjson sel "$sel" --slurpfile np <(kubectl -n "$NS" get networkpolicy -o json) '
				[.items[] | select(.status.phase == "Running" and (.metadata.labels["carbuild.dev/kind-probe"] == null))
				 | select(.metadata.labels as $l | ($sel | to_entries | all($l[.key] == .value)))
				 | select(.metadata.labels as $l | [$np[0].items[] | select((.spec.podSelector.matchLabels // {}) != {}) | select(.spec.podSelector.matchLabels | to_entries | all($l[.key] == .value))] | length == 0)
				 | select([.spec.containers[].ports[]?] | length > 0)][0]
				| "\(.metadata.name) \(.status.podIP) \(.spec.containers[0].ports[0].containerPort)"')
			[[ -n $ip ]] || { log "FAIL: netpol $pol: no pod only it selects"; return 1; }
			if connects probe-outsider "$ip" "$port"; then log "FAIL: netpol $pol: outsider reached $target:$port"; return 1; fi
			log "netpol $pol: outsider -> $target:$port refused"
			denied=$((denied + 1))
			continue
		fi
		read -r target ip < <(kubectl -n "$NS" get pods -o json | jq -r --argjson sel "$sel" '
			[.items[] | select(.status.phase == "Running" and .metadata.labels["carbuild.dev/kind-probe"] == null)
			 | select(.metadata.labels as $l | ($sel | to_entries | all($l[.key] == .value)))][0] | "\(.metadata.name) \(.status.podIP)"')
		[[ $ip != null && -n $ip ]] || { log "FAIL: netpol $pol: no running pod selected by $sel"; return 1; }
		local from=probe-$src
		[[ $src == "*" ]] && from=probe-outsider
		wait_for "netpol $pol: ${src/\*/anyone} -> $target:$port allowed" 60 connects "$from" "$ip" "$port" || return 1
		n=$((n + 1))
		if [[ $src != "*" ]]; then
			if connects probe-outsider "$ip" "$port"; then log "FAIL: netpol $pol: outsider reached $target:$port"; return 1; fi
			log "netpol $pol: outsider -> $target:$port refused"
			denied=$((denied + 1))
		fi
	done <<<"$flows"
	# Gone before the next step: they carry the services' labels.
	kubectl -n "$NS" delete pod -l carbuild.dev/kind-probe=true --grace-period=1 --timeout=120s >/dev/null
	log "NetworkPolicies: $n allowed flows connect, $denied denied flows refused ($(kubectl -n "$NS" get networkpolicy --no-headers | wc -l) policies)"
	echo "netpol allowed=$n refused=$denied" >>"$KIND_STATE/figures"
	return 0
}

# --------------------------------------------------------------- Prometheus

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# port_forward RESOURCE PORT [tcp]: kubectl port-forward in the background on
# a free local port (PF_PORT), stopped by PID (PF_PID, also in STARTED_PIDS);
# ready when an HTTP request goes through, or, with tcp (a port that does not
# speak plain HTTP), once kubectl says it forwards.
# Called directly, not in $(...): the PIDs must reach this shell.
port_forward() {
	local ready
	PF_PORT=$(free_port)
	ready=(curl -s -o /dev/null "http://127.0.0.1:$PF_PORT/")
	[[ ${3:-} != tcp ]] || ready=(grep -q '^Forwarding from' "$KIND_STATE/pf-$PF_PORT.log")
	kubectl -n "$NS" port-forward "$1" "$PF_PORT:$2" >"$KIND_STATE/pf-$PF_PORT.log" 2>&1 &
	PF_PID=$!
	STARTED_PIDS+=("$PF_PID")
	wait_for "port-forward $1 on :$PF_PORT" 30 "${ready[@]}"
}

# check_rbac: through the real authorizer, Prometheus' service account reads
# pods in carbuild and nothing else.
check_rbac() {
	local verb res ns want got where sub r=0
	while read -r verb res ns want; do
		[[ -n $verb && $verb != \#* ]] || continue
		where=(-n "$ns")
		[[ $ns != - ]] || where=(--all-namespaces)
		# can-i reads RESOURCE/NAME: a subresource goes in --subresource.
		sub=()
		[[ $res != */* ]] || { sub=(--subresource "${res#*/}"); res=${res%%/*}; }
		got=$(kubectl auth can-i "$verb" "$res" "${sub[@]}" "${where[@]}" --as="system:serviceaccount:$NS:prometheus" 2>/dev/null) || true
		[[ $got == "$want" ]] || { log "FAIL: RBAC: prometheus may $verb $res ${sub[*]} (${where[*]}): $got, want $want"; return 1; }
		r=$((r + 1))
	done <<-'EOF2'
		# verb resource namespace(- = cluster-wide) answer
		list pods carbuild yes
		watch pods carbuild yes
		get pods carbuild yes
		list pods kube-system no
		list pods - no
		create pods carbuild no
		delete pods carbuild no
		create pods/exec carbuild no
		get pods/log carbuild no
		get secrets carbuild no
		get configmaps carbuild no
		list nodes - no
		get nodes/proxy - no
		patch deployments.apps carbuild no
		create serviceaccounts/token carbuild no
		create rolebindings.rbac.authorization.k8s.io carbuild no
	EOF2
	log "RBAC as Prometheus' service account: $r answers as expected (get/list/watch pods in $NS only)"
}

check_prometheus() {
	local p want targets rules r missing="" out
	check_rbac
	# The in-cluster config and rules as mounted, checked by the promtool of
	# the Prometheus that runs them (the static checks use Debian's).
	out=$(kubectl -n "$NS" exec deploy/prometheus -- promtool check config /etc/prometheus/prometheus.yml 2>&1) ||
		{ echo "$out" >&2; log "FAIL: promtool check config in the Prometheus pod"; return 1; }
	log "promtool $(kubectl -n "$NS" exec deploy/prometheus -- promtool --version 2>&1 | head -1 | awk '{print $3}'): config and $(grep -c 'SUCCESS: .* rules found' <<<"$out") rule files pass in the pod"
	port_forward svc/prometheus 9090
	p=$PF_PORT
	# The services' own pods (the netpol step's probe pods borrow their labels).
	want=$(kubectl -n "$NS" get pods -l 'app.kubernetes.io/name in (catalog,pricing,gateway),!carbuild.dev/kind-probe' --field-selector=status.phase=Running --no-headers | wc -l)
	all_up() {
		curl -fsS "http://127.0.0.1:$p/api/v1/targets?state=active" | jq -e --argjson want "$want" '
			[.data.activeTargets[] | select(.labels.job | IN("catalog","pricing","gateway"))] | (length == $want) and all(.health == "up")' >/dev/null
	}
	wait_for "Prometheus: all $want service pods are targets and up" 180 all_up || {
		curl -fsS "http://127.0.0.1:$p/api/v1/targets?state=active" | jq -c '.data.activeTargets[] | {job: .labels.job, pod: .labels.pod, health, lastError}' >&2
		return 1
	}
	targets=$(curl -fsS "http://127.0.0.1:$p/api/v1/targets?state=active" | jq -r '[.data.activeTargets[] | "\(.labels.job)/\(.labels.pod // .labels.instance)"] | join(" ")')
	log "Prometheus targets up: $targets"
	rules=$(curl -fsS "http://127.0.0.1:$p/api/v1/rules?type=record" | jq -r '.data.groups[].rules[].name' | sort -u)
	# Traffic, so every rate has samples; then each recording rule must have a series.
	(cd "$REPO" && CARBUILD_URL=$BASE_URL SMOKE_DURATION=20s bash loadtest/smoke.sh >/dev/null 2>&1) || true
	has_series() { curl -fsS "http://127.0.0.1:$p/api/v1/query" --data-urlencode "query=count($1)" | jq -e '.data.result | length > 0' >/dev/null; }
	all_series() {
		missing=""
		for r in $rules; do has_series "$r" || missing="$missing $r"; done
		[[ -z $missing ]]
	}
	wait_for "Prometheus: all $(wc -w <<<"$rules") recording rules have series" 180 all_series || { log "FAIL: no series for:$missing"; return 1; }
	kill "$PF_PID" 2>/dev/null || true
}

# --------------------------------------------------------------- live update

# check_liveupdate: with `tilt up` running (dev overlay), a new file in the
# gateway's embedded storefront; time from the save until the gateway answers
# with the new binary on localhost:8000, and the pod must be the same pod (no new pod, no
# container restart: restart.sh restarted the process in place).
check_liveupdate() {
	local tp pod uid rc nonce f t0 t1 ms
	if [[ -n $TILT ]]; then
		tp=$(free_port)
		(cd "$REPO" && exec "$TILT" up --web-mode=prod --port "$tp" --stream --context "$KIND_CONTEXT" -- --overlay=dev) >"$KIND_STATE/tilt-up.log" 2>&1 &
		STARTED_PIDS+=("$!")
		TILT_UP_PID=$!
		# Manual buttons (auto_init=False) stay at updateStatus "none": never triggered.
	tilt_settled() {
			"$TILT" get uiresource --port "$tp" -o json 2>/dev/null | jq -e '
				[.items[] | select(.status.disableStatus.state != "Disabled") | select(.metadata.name != "(Tiltfile)")]
				| length > 0 and all((.status.updateStatus | IN("ok","not_applicable","none")) and (.status.runtimeStatus | IN("ok","not_applicable")))' >/dev/null
		}
		wait_for "tilt up: every resource up to date and healthy" 600 tilt_settled || { tail -40 "$KIND_STATE/tilt-up.log" >&2; return 1; }
	fi
	pod=$(kubectl -n "$NS" get pods -l app.kubernetes.io/name=gateway -o jsonpath='{.items[0].metadata.name}')
	uid=$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.metadata.uid}')
	rc=$(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}')
	nonce=liveupdate-$(date +%s)
	# A new file in the storefront the gateway binary embeds (gateway/web/static):
	# the Tiltfile's gateway-compile rebuilds, live update syncs and restarts,
	# and the file answers on localhost:8000 only once the new binary runs.
	f=$REPO/gateway/web/static/kind-liveupdate.json
	LIVEUPDATE_FILE=$f
	new_code() { curl -fsS --max-time 2 "$BASE_URL/kind-liveupdate.json" 2>/dev/null | grep -q "\"$nonce\""; }
	t0=$(date +%s%N)
	printf '{"written_by": "k8s/kind/checks.sh (live update check), removed after it", "nonce": "%s"}\n' "$nonce" >"$f"
	[[ -n $TILT ]] || tiltless_live gateway
	for _ in $(seq 1 1200); do
		new_code && break
		sleep 0.1
	done
	t1=$(date +%s%N)
	new_code || { tail -40 "$KIND_STATE/tilt-up.log" >&2; log "FAIL: live update: the new gateway code never answered in 120 s"; return 1; }
	ms=$(((t1 - t0) / 1000000))
	log "live update: save -> new gateway code answering on localhost:8000 in $ms ms (goal <= 5000 ms)"
	echo "liveupdate ms=$ms" >>"$KIND_STATE/figures"
	[[ $(kubectl -n "$NS" get pods -l app.kubernetes.io/name=gateway -o jsonpath='{.items[*].metadata.uid}') == "$uid" ]] ||
		{ log "FAIL: live update: gateway pod $pod was replaced"; return 1; }
	[[ $(kubectl -n "$NS" get pod "$pod" -o jsonpath='{.status.containerStatuses[0].restartCount}') == "$rc" ]] ||
		{ log "FAIL: live update: gateway container restarted"; return 1; }
	grep -q 'restart.sh: restarting' < <(kubectl -n "$NS" logs "$pod" 2>&1) || { log "FAIL: live update: restart.sh did not restart the process"; return 1; }
	log "live update: same pod $pod (uid $uid), restartCount $rc, process restarted by restart.sh"
	rm -f "$f"
	[[ -n $TILT ]] || tiltless_live gateway
	# Back means the gateway is up again and the file is gone (404), not unreachable.
	wait_for "live update: the original code is back" 180 bash -c "[[ \$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 $BASE_URL/kind-liveupdate.json) == 404 ]] && curl -fsS --max-time 2 $BASE_URL/readyz"
	if [[ -n $TILT ]]; then
		kill -TERM "$TILT_UP_PID"
		wait "$TILT_UP_PID" 2>/dev/null || true
	fi
}

# ------------------------------------------------------- the root Dockerfile

# check_dockerfile: the root Dockerfile builds unchanged (stand-in bases),
# prod and dev targets; the prod image runs as uid 65532 with a read-only root
# file system and answers. Sizes logged.
check_dockerfile() {
	local s t0 c port size df
	# The one change: `# syntax=docker/dockerfile:1` makes BuildKit pull its
	# Dockerfile frontend from Docker Hub, which is unreachable here; without
	# it the engine's built-in frontend (which has RUN --mount) builds the rest
	# of the file as written.
	df=$KIND_STATE/Dockerfile.offline
	sed '/^# syntax=/d' "$REPO/Dockerfile" >"$df"
	for s in catalog pricing gateway migrate; do
		t0=$(date +%s)
		(cd "$REPO" && nice -n "${KIND_NICE:-10}" env DOCKER_BUILDKIT=1 /usr/bin/docker build -q -f "$df" --build-arg "SERVICE=$s" -t "carbuild/$s:kind-test" . >/dev/null)
		size=$(docker image inspect -f '{{.Size}}' "carbuild/$s:kind-test")
		log "Dockerfile: carbuild/$s (prod) built in $(($(date +%s) - t0)) s, $((size / 1000000)) MB, user $(docker image inspect -f '{{.Config.User}}' "carbuild/$s:kind-test")"
		echo "image $s prod bytes=$size" >>"$KIND_STATE/figures"
	done
	(cd "$REPO" && env DOCKER_BUILDKIT=1 /usr/bin/docker build -q -f "$df" --build-arg SERVICE=gateway --target dev -t carbuild/gateway:kind-test-dev . >/dev/null)
	size=$(docker image inspect -f '{{.Size}}' carbuild/gateway:kind-test-dev)
	log "Dockerfile: carbuild/gateway (dev target) $((size / 1000000)) MB"
	echo "image gateway dev bytes=$size" >>"$KIND_STATE/figures"
	# The listen address as the manifest sets it (the default is loopback only).
	c=$(docker run -d --read-only --cap-drop ALL --security-opt no-new-privileges -e GATEWAY_HTTP_ADDR=:8000 -p 127.0.0.1::8000 carbuild/gateway:kind-test)
	port=$(docker port "$c" 8000/tcp | head -1 | sed 's/.*://')
	healthz() { curl -fsS "http://127.0.0.1:$port/healthz"; }
	if ! wait_for "prod gateway image: /healthz on a read-only root file system" 60 healthz; then
		docker logs "$c" >&2
		docker rm -f "$c" >/dev/null
		return 1
	fi
	local uid
	uid=$(awk '/^Uid:/ {print $2}' "/proc/$(docker inspect -f '{{.State.Pid}}' "$c")/status")
	log "prod gateway runs as uid $uid on a read-only root file system"
	[[ $uid == 65532 ]] || { docker rm -f "$c" >/dev/null; log "FAIL: prod image does not run as 65532"; return 1; }
	docker rm -f "$c" >/dev/null
	docker rmi carbuild/{catalog,pricing,gateway,migrate}:kind-test carbuild/gateway:kind-test-dev >/dev/null
}

# ---------------------------------------------------------------------- tls

# grpc_health ADDR NAME [grpcurl flags...]: grpc.health.v1 Check against a
# port-forwarded gRPC port, verifying the server as NAME with the dev CA.
grpc_health() {
	local addr=$1 name=$2
	shift 2
	"$KIND_STATE/bin/grpcurl" -max-time 5 "$@" -servername "$name" "$addr" grpc.health.v1.Health/Check 2>&1
}

# check_tls: the tls overlay for real. The gateway answers only HTTPS on
# localhost:8000 (the dev CA's certificate for localhost, HSTS) and the
# README's paths and the Locust journeys pass through it; plain HTTP is
# refused. catalog and pricing speak only mutual TLS: their health answers
# the gateway's certificate, and refuses plaintext, a client without a
# certificate and one with a certificate of the same CA but another identity.
# PostgreSQL takes only TLS connections, and every service's is one.
check_tls() {
	local certs=$REPO/k8s/overlays/tls/certs s out code hdr plain n
	[[ -f $certs/ca.crt ]] || (cd "$REPO" && go run ./dev/cmd/devcerts -out k8s/overlays/tls/certs >/dev/null)
	tilt_ci tls
	for s in catalog pricing gateway; do
		kubectl -n "$NS" rollout status "deploy/$s" --timeout=300s >/dev/null
		wait_for "tls: $s has 1 Ready pod" 300 pods_ready "$s" 1
	done
	# The new pods started beside the last overlay's plaintext ones, and a
	# client that met a plaintext peer first (pricing's catalog channel: TLS
	# handshakes failing until the old catalog pod went) waits out gRPC's
	# reconnect backoff before it dials the new pod: quotes answer 504 for a
	# while after every pod is Ready (seen 2026-12-06 23:42). Wait for the
	# chain, bounded, and record how long it took.
	local t0
	t0=$(date +%s)
	tls_quote() { curl -sSf --cacert "$certs/ca.crt" -m 5 -H 'Content-Type: application/json' \
		-d '{"items":[{"partId":"1","quantity":1}]}' https://localhost:8000/v1/quotes; }
	wait_for "tls: a quote answers through the gateway over HTTPS" 120 tls_quote || return 1
	echo "tls-first-quote seconds=$(($(date +%s) - t0))" >>"$KIND_STATE/figures"
	hdr=$(curl -sS --cacert "$certs/ca.crt" -D - -o /dev/null https://localhost:8000/readyz) || { log "FAIL: tls: https://localhost:8000/readyz: $hdr"; return 1; }
	grep -qi '^strict-transport-security: max-age=' <<<"$hdr" || { echo "$hdr" >&2; log "FAIL: tls: no HSTS header over HTTPS"; return 1; }
	code=$(curl -s -o /dev/null -w '%{http_code}' http://localhost:8000/readyz) || true
	[[ $code != 200 ]] || { log "FAIL: tls: plain HTTP on localhost:8000 answered 200"; return 1; }
	log "tls: HTTPS with HSTS, plain HTTP refused ($code)"
	BASE_URL=https://localhost:8000 CURL_CA=$certs/ca.crt check_curl_paths
	BASE_URL=https://localhost:8000 REQUESTS_CA_BUNDLE=$certs/ca.crt check_smoke
	GOBIN=$KIND_STATE/bin go install github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.3
	for s in catalog:50051 pricing:50052; do
		port_forward "deploy/${s%:*}" "${s#*:}" tcp
		s=${s%:*}
		out=$(grpc_health "127.0.0.1:$PF_PORT" "$s-headless" -cacert "$certs/ca.crt" -cert "$certs/gateway.crt" -key "$certs/gateway.key") &&
			grep -q SERVING <<<"$out" || { echo "$out" >&2; log "FAIL: tls: $s refuses the gateway's certificate"; return 1; }
		for plain in "-plaintext" "-cacert $certs/ca.crt" "-cacert $certs/ca.crt -cert $certs/postgres.crt -key $certs/postgres.key"; do
			# shellcheck disable=SC2086 # the flags are split on purpose
			if out=$(grpc_health "127.0.0.1:$PF_PORT" "$s-headless" $plain); then
				echo "$out" >&2
				log "FAIL: tls: $s answered with grpcurl $plain"
				return 1
			fi
		done
		kill "$PF_PID" 2>/dev/null || true
		log "tls: $s answers the gateway's client certificate; refuses plaintext, no client certificate and another identity's certificate"
	done
	if out=$(kubectl -n "$NS" exec postgres-0 -c postgres -- env PGPASSWORD=carbuild-dev-password PGCONNECT_TIMEOUT=5 \
		psql "host=127.0.0.1 user=carbuild dbname=carbuild sslmode=disable" -tAc 'SELECT 1' 2>&1); then
		log "FAIL: tls: PostgreSQL accepted a plaintext TCP connection"; return 1
	fi
	grep -q 'no encryption' <<<"$out" || { echo "$out" >&2; log "FAIL: tls: PostgreSQL refused plaintext, but not for want of encryption"; return 1; }
	n=$(pg "SELECT count(*) FILTER (WHERE NOT s.ssl) || ' ' || count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL")
	[[ ${n%% *} == 0 && ${n##* } -gt 0 ]] || { log "FAIL: tls: PostgreSQL client connections not over TLS / all: $n"; return 1; }
	log "tls: PostgreSQL refuses plaintext TCP (no encryption); all ${n##* } service connections use TLS"
}


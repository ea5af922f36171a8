#!/usr/bin/env bash
# cluster.sh — the Kind cluster and registry ctlptl.yaml declares, sourced by run.sh.
#
#   cluster_create NODE_IMAGE   with ctlptl when found, else the same by script
#   cluster_verify              what both paths must yield (summary from kindcfg)
#   cluster_delete              cluster, registry and the kind network
#
# KUBECONFIG points into the run's state directory, so the user's own
# kubeconfig is never touched and nothing of the cluster survives the run.

cluster_create() {
	local image=$1 t0
	"$KIND_BINS/kindcfg" -in "$REPO/ctlptl.yaml" -image "$image" \
		-ctlptl "$KIND_STATE/ctlptl.yaml" -kind "$KIND_STATE/kind.yaml" -summary "$KIND_STATE/summary.json"
	KIND_CLUSTER=$(jq -r .cluster "$KIND_STATE/summary.json")
	KIND_CONTEXT=$(jq -r .context "$KIND_STATE/summary.json")
	KIND_REGISTRY=$(jq -r .registry "$KIND_STATE/summary.json")
	KIND_REGISTRY_PORT=$(jq -r .registryPort "$KIND_STATE/summary.json")
	export KIND_CLUSTER KIND_CONTEXT KIND_REGISTRY KIND_REGISTRY_PORT
	t0=$(date +%s)
	if [[ -n ${CTLPTL:-} ]]; then
		log "ctlptl apply -f ctlptl.yaml (node image $image)"
		# ctlptl's Docker client does not negotiate down: pin the engine's API version.
		DOCKER_API_VERSION=${DOCKER_API_VERSION:-$(docker version -f '{{.Server.APIVersion}}')} "$CTLPTL" apply -f "$KIND_STATE/ctlptl.yaml"
		KIND_CREATED_BY=ctlptl
	else
		log "no ctlptl: creating the registry and cluster by script, as ctlptl does"
		docker run -d --restart=always --name "$KIND_REGISTRY" \
			-p "127.0.0.1:$KIND_REGISTRY_PORT:5000" -l dev.tilt.ctlptl.role=registry registry:2 >/dev/null
		kind create cluster --name "$KIND_CLUSTER" --config "$KIND_STATE/kind.yaml" --retain=false
		docker network connect kind "$KIND_REGISTRY"
		local n
		for n in $(kind get nodes --name "$KIND_CLUSTER"); do
			docker exec "$n" mkdir -p "/etc/containerd/certs.d/localhost:$KIND_REGISTRY_PORT"
			printf '[host."http://%s:5000"]\n' "$KIND_REGISTRY" |
				docker exec -i "$n" tee "/etc/containerd/certs.d/localhost:$KIND_REGISTRY_PORT/hosts.toml" >/dev/null
		done
		kubectl apply -f - <<-YAML
			apiVersion: v1
			kind: ConfigMap
			metadata:
			  name: local-registry-hosting
			  namespace: kube-public
			data:
			  localRegistryHosting.v1: |
			    host: "localhost:$KIND_REGISTRY_PORT"
			    hostFromContainerRuntime: "$KIND_REGISTRY:5000"
			    help: "https://github.com/tilt-dev/ctlptl"
		YAML
		KIND_CREATED_BY=script
	fi
	log "cluster created by $KIND_CREATED_BY in $(($(date +%s) - t0)) s"
	kubectl config use-context "$KIND_CONTEXT" >/dev/null
	wait_for "4 nodes Ready" 300 nodes_ready
	storage_up
}

nodes_ready() {
	local want
	want=$(jq '.nodes | length' "$KIND_STATE/summary.json")
	[[ $(kubectl get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null | grep -c True) == "$want" ]]
}

# wait_for WHAT SECONDS CMD...: polls CMD every second until it succeeds;
# logs how long it took, fails after SECONDS and then shows what the last
# try of CMD printed.
wait_for() {
	local what=$1 limit=$2 t0 now out
	shift 2
	t0=$(date +%s)
	out=$(mktemp "${KIND_STATE:-${TMPDIR:-/tmp}}/wait.XXXXXX")
	while :; do
		if "$@" >"$out" 2>&1; then
			log "$what after $(($(date +%s) - t0)) s"
			rm -f "$out"
			return 0
		fi
		now=$(date +%s)
		if ((now - t0 >= limit)); then
			log "FAIL: $what not reached in $limit s; the last try of '$*' printed:"
			tail -n 20 "$out" >&2
			rm -f "$out"
			return 1
		fi
		sleep 1
	done
}

# Kind's node images ship local-path-provisioner; ours ships the default
# StorageClass "standard" without a provisioner (node/default-storage.yaml), and
# this makes a local PersistentVolume per worker, so PostgreSQL's claim binds wherever it is scheduled.
storage_up() {
	local n i=0
	for n in $(kubectl get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{.items[*].metadata.name}'); do
		i=$((i + 1))
		docker exec "$n" mkdir -m 0777 -p /var/local-pv/pv
		kubectl apply -f - >/dev/null <<-YAML
			apiVersion: v1
			kind: PersistentVolume
			metadata:
			  name: local-$n
			spec:
			  capacity: {storage: 2Gi}
			  accessModes: [ReadWriteOnce]
			  persistentVolumeReclaimPolicy: Delete
			  storageClassName: standard
			  local: {path: /var/local-pv/pv}
			  nodeAffinity:
			    required:
			      nodeSelectorTerms:
			        - matchExpressions:
			            - {key: kubernetes.io/hostname, operator: In, values: [$n]}
		YAML
	done
	log "storage: $i local PersistentVolumes for StorageClass standard"
}

# cluster_verify: the cluster and registry are what ctlptl.yaml declares
# (same checks whichever path created them).
cluster_verify() {
	local got want cm n
	want=$(jq -c '[.nodes[] | {role, labels: (.labels // {})}] | sort_by(.role, (.labels|tostring))' "$KIND_STATE/summary.json")
	got=$(kubectl get nodes -o json | jq -c --argjson want "$want" '[.items[] | {
		role: (if .metadata.labels["node-role.kubernetes.io/control-plane"] != null then "control-plane" else "worker" end),
		labels: ((.metadata.labels | with_entries(select(.key == ($want | map(.labels | keys) | add | unique)[])))) }]
		| sort_by(.role, (.labels|tostring))')
	[[ $got == "$want" ]] || { log "FAIL: nodes $got, want $want"; return 1; }
	[[ $(docker inspect -f '{{.State.Running}}' "$KIND_REGISTRY") == true ]] || { log "FAIL: registry $KIND_REGISTRY not running"; return 1; }
	[[ $(docker port "$KIND_REGISTRY" 5000/tcp) == *":$KIND_REGISTRY_PORT" ]] || { log "FAIL: registry port $(docker port "$KIND_REGISTRY" 5000/tcp)"; return 1; }
	docker inspect -f '{{json .NetworkSettings.Networks}}' "$KIND_REGISTRY" | jq -e 'has("kind")' >/dev/null || { log "FAIL: registry not on the kind network"; return 1; }
	cm=$(kubectl -n kube-public get configmap local-registry-hosting -o jsonpath='{.data.localRegistryHosting\.v1}')
	[[ $cm == *"localhost:$KIND_REGISTRY_PORT"* ]] || { log "FAIL: local-registry-hosting: $cm"; return 1; }
	for n in $(kind get nodes --name "$KIND_CLUSTER"); do
		docker exec "$n" cat "/etc/containerd/certs.d/localhost:$KIND_REGISTRY_PORT/hosts.toml" | grep -q "$KIND_REGISTRY:5000" ||
			{ log "FAIL: $n has no registry hosts.toml"; return 1; }
	done
	log "cluster matches ctlptl.yaml (created by $KIND_CREATED_BY): $(jq -c '[.nodes[].role]' "$KIND_STATE/summary.json"), registry $KIND_REGISTRY localhost:$KIND_REGISTRY_PORT"
	# The NodePort mapping to localhost:8000.
	local pm
	pm=$(jq -r '.portMappings | to_entries[0] | "\(.key) \(.value)"' "$KIND_STATE/summary.json")
	docker port "$KIND_CLUSTER-control-plane" "${pm#* }/tcp" | grep -qx "${pm% *}" || { log "FAIL: port mapping ${pm% *} -> ${pm#* } missing"; return 1; }
}

cluster_delete() {
	[[ -n ${KIND_CLUSTER:-} ]] || return 0
	if docker ps -a --format '{{.Names}}' | grep -q "^$KIND_CLUSTER-"; then
		log "deleting cluster $KIND_CLUSTER"
		kind delete cluster --name "$KIND_CLUSTER" >/dev/null 2>&1 || true
	fi
	docker rm -f "$KIND_REGISTRY" >/dev/null 2>&1 || true
	docker network rm kind >/dev/null 2>&1 || true
}

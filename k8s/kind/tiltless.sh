#!/usr/bin/env bash
# tiltless.sh — what the Tiltfile does, by script, for machines without the
# `tilt` binary (sourced by run.sh; used only when tilt is not found, and the
# run's log says so). The same steps, in the Tiltfile's order:
#
#   tiltless_ci OVERLAY      each service compiled on the host (CGO_ENABLED=0,
#                            the nodes' GOARCH) into build/, its image built from
#                            k8s/image/Dockerfile.tilt with only that binary and
#                            restart.sh, pushed to the local registry ctlptl.yaml
#                            declares, the overlay's manifests applied with the
#                            image references rewritten as Tilt rewrites them;
#                            then PostgreSQL, the migrate Job and every workload
#                            waited for (what `tilt ci` calls healthy)
#   tiltless_live SERVICE    the dev overlay's live_update: compile, copy the
#                            binary to /app/server in the running pod, `kill -HUP 1`

TILTLESS_SERVICES=(catalog:./catalog/cmd/catalog pricing:./pricing/cmd/pricing gateway:./gateway/cmd/gateway migrate:./migrations/cmd/migrate)

tiltless_compile() { # name pkg
	(cd "$REPO" && CGO_ENABLED=0 GOOS=linux GOARCH=$(kubectl get nodes -o jsonpath='{.items[0].status.nodeInfo.architecture}') \
		nice -n "${KIND_NICE:-10}" go build -ldflags='-s -w' -o "build/$1" "$2")
}

# tiltless_image NAME: builds and pushes carbuild/NAME; prints the reference
# the manifests get (registry/carbuild_NAME:tilt-HASH, as Tilt names it).
tiltless_image() {
	local name=$1 ctx hash ref
	ctx=$(mktemp -d "$KIND_STATE/tiltless.XXXX")
	mkdir -p "$ctx/build" "$ctx/k8s/image"
	cp "$REPO/build/$name" "$ctx/build/"
	cp "$REPO/k8s/image/restart.sh" "$ctx/k8s/image/"
	hash=$(cat "$ctx/build/$name" "$REPO/k8s/image/restart.sh" "$REPO/k8s/image/Dockerfile.tilt" | sha256sum | cut -c1-16)
	ref=localhost:$KIND_REGISTRY_PORT/carbuild_$name:tilt-$hash
	DOCKER_BUILDKIT=1 /usr/bin/docker build -q -f "$REPO/k8s/image/Dockerfile.tilt" --build-arg "SERVICE=$name" -t "$ref" "$ctx" >/dev/null
	docker push -q "$ref" >/dev/null
	rm -rf "$ctx"
	echo "$ref"
}

tiltless_ci() {
	local overlay=$1 t0 s name pkg ref sed_args=() manifest deploys d
	t0=$(date +%s)
	log "tilt not found: the Tiltfile's build and deploy for overlay $overlay by script (k8s/kind/tiltless.sh)"
	for s in "${TILTLESS_SERVICES[@]}"; do
		name=${s%%:*} pkg=${s#*:}
		tiltless_compile "$name" "$pkg"
		ref=$(tiltless_image "$name")
		sed_args+=(-e "s#^\( *image: \)carbuild/$name\$#\1$ref#")
	done
	manifest=$KIND_STATE/tiltless-$overlay.yaml
	kubectl kustomize "$REPO/k8s/overlays/$overlay" | sed "${sed_args[@]}" >"$manifest"
	# The last overlay's migrate Job is gone: tilt_ci (checks.sh) deletes it
	# first, on either path (a Job's pod template is immutable).
	kubectl apply -f "$manifest" >"$KIND_STATE/tiltless-$overlay.log"
	kubectl -n "$NS" rollout status statefulset/postgres --timeout=300s >/dev/null
	kubectl -n "$NS" wait --for=condition=complete job/migrate --timeout=300s >/dev/null
	deploys=$(kubectl -n "$NS" get deploy -o jsonpath='{.items[*].metadata.name}')
	for d in $deploys; do kubectl -n "$NS" rollout status "deploy/$d" --timeout=300s >/dev/null; done
	if grep -q 'name: metrics-server' "$manifest"; then
		kubectl -n kube-system rollout status deploy/metrics-server --timeout=300s >/dev/null
	fi
	log "tiltless ci --overlay=$overlay: images pushed, applied, postgres, migrate and $(wc -w <<<"$deploys") deployments healthy in $(($(date +%s) - t0)) s"
}

tiltless_live() { # service
	local s pkg pod
	for s in "${TILTLESS_SERVICES[@]}"; do [[ ${s%%:*} == "$1" ]] && pkg=${s#*:}; done
	tiltless_compile "$1" "$pkg"
	pod=$(kubectl -n "$NS" get pods -l "app.kubernetes.io/name=$1" -o jsonpath='{.items[0].metadata.name}')
	kubectl -n "$NS" cp "$REPO/build/$1" "$pod:/app/server" -c "$1"
	kubectl -n "$NS" exec "$pod" -c "$1" -- sh -c 'kill -HUP 1' # Tilt's run() goes through sh too
}

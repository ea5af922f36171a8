#!/usr/bin/env bash
# images.sh — every image the offline cluster needs, built from Debian packages
# and Go modules, sourced by run.sh. Each image is built only when its tag is
# missing from the engine; the node image's tag carries a hash of its recipe.
#
#   images_build BINS   BINS: directory of build-bins.sh output
#
# Stand-ins (tagged with the names the project's Dockerfiles and manifests use,
# because no registry is reachable here):
#   alpine:3.22                              Debian bookworm minbase (sh, tar, coreutils)
#   golang:1.26                              Debian + the host's Go toolchain
#   gcr.io/distroless/static-debian12:nonroot  passwd/group + CA certificates, uid 65532
#   postgres:15.14-alpine                    Debian's PostgreSQL 15, uid 70, official-style entrypoint
#   prom/prometheus:v3.5.0                   Prometheus v3.5.0 from its Go module (no web UI assets)
#   locustio/locust:2.37.0                   Debian's python3-locust 2.12
#   grafana/grafana:11.6.0                   kube/cmd/grafana-standin (NOT Grafana: checks provisioning, serves /api/health)
#   registry:2                               Debian's docker-registry 2.8
#   registry.k8s.io/*                        built from Go modules at versions.env

D() { DOCKER_BUILDKIT=1 /usr/bin/docker "$@"; }

have_image() { docker image inspect "$1" >/dev/null 2>&1; }
# image_recipe TAG: the recipe hash the image TAG was built with ("" if none).
image_recipe() { docker image inspect -f '{{index .Config.Labels "carbuild.kind.recipe"}}' "$1" 2>/dev/null || true; }

# recipe_hash DOCKERFILE CONTEXT ARGS...: changes with the Dockerfile, its
# build args and the scripts it copies from images/, so a changed recipe
# rebuilds the image (the hash is a label on each image built here).
recipe_hash() {
	local file=$1 ctx=$2
	shift 2
	{
		cat "$file"
		echo "$@"
		[[ $ctx != "$KIND_DIR/images" ]] || cat "$KIND_DIR/images/"*.sh
	} | sha256sum | cut -c1-12
}

# build TAG DOCKERFILE CONTEXT [docker build args...]: skipped when TAG exists
# with the current recipe hash.
build() {
	local tag=$1 file=$2 ctx=$3 t0 h
	shift 3
	h=$(recipe_hash "$file" "$ctx" "$@")
	if [[ $(image_recipe "$tag") == "$h" ]]; then return 0; fi
	t0=$(date +%s)
	nice -n "${KIND_NICE:-10}" /usr/bin/env DOCKER_BUILDKIT=1 /usr/bin/docker build -q --label "carbuild.kind.recipe=$h" -t "$tag" -f "$file" "$@" "$ctx" >/dev/null
	log "image $tag built in $(($(date +%s) - t0)) s"
}

tag_as() { # src dst...
	local src=$1 d
	shift
	for d in "$@"; do docker tag "$src" "$d"; done
}

images_base() {
	local img=$KIND_DIR/images rootfs t0
	if ! have_image carbuild-kind/debian-rootfs:bookworm; then
		command -v debootstrap >/dev/null || { log "debootstrap missing (apt-get install debootstrap)"; return 1; }
		rootfs=$(mktemp -d "$KIND_STATE/rootfs.XXXX")
		t0=$(date +%s)
		nice -n "${KIND_NICE:-10}" debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >"$KIND_STATE/debootstrap.log" 2>&1 ||
			{ tail -20 "$KIND_STATE/debootstrap.log" >&2; return 1; }
		tar -C "$rootfs" -c . | docker import - carbuild-kind/debian-rootfs:bookworm >/dev/null
		rm -rf "$rootfs"
		log "debootstrap bookworm minbase imported in $(($(date +%s) - t0)) s"
	fi
	build carbuild-kind/debian:bookworm "$img/debian.Dockerfile" "$img"
	build carbuild-kind/distroless:root "$img/distroless.Dockerfile" "$img" --target root
	build carbuild-kind/distroless:nonroot "$img/distroless.Dockerfile" "$img" --target nonroot
	local ctx
	ctx=$(mktemp -d "$KIND_STATE/golang.XXXX")
	# Hard links when GOROOT is on the same file system: no copy of 250 MB.
	cp -al "$(go env GOROOT)" "$ctx/go" 2>/dev/null || cp -a "$(go env GOROOT)" "$ctx/go"
	mkdir -p "$ctx/ca"
	cp /usr/local/share/ca-certificates/*.crt "$ctx/ca/" 2>/dev/null || true
	build carbuild-kind/golang:1.26 "$img/golang.Dockerfile" "$ctx" --build-arg "GOPROXY=$(go env GOPROXY)" --build-arg "GOVERSION=$(go env GOVERSION)"
	rm -rf "$ctx"
	tag_as carbuild-kind/golang:1.26 golang:1.26
	tag_as carbuild-kind/debian:bookworm alpine:3.22
	tag_as carbuild-kind/distroless:nonroot gcr.io/distroless/static-debian12:nonroot
	tag_as carbuild-kind/distroless:root gcr.io/distroless/static-debian12:latest
}

# bin_image TAG BASE BINDIR NAME DEST: one binary on a base image, rebuilt
# when the binary's version stamp (BINDIR/NAME.version) changes.
bin_image() {
	local tag=$1 base=$2 dir=$3 name=$4 dest=$5 ctx args
	args=(--build-arg "BASE=$base" --build-arg "SRC=$name" --build-arg "DEST=$dest" --build-arg "BIN_VERSION=$(cat "$dir/$name.version")")
	[[ $(image_recipe "$tag") != "$(recipe_hash "$KIND_DIR/images/bin.Dockerfile" - "${args[@]}")" ]] || return 0
	ctx=$(mktemp -d "$KIND_STATE/ctx.XXXX")
	cp "$dir/$name" "$ctx/"
	build "$tag" "$KIND_DIR/images/bin.Dockerfile" "$ctx" "${args[@]}"
	rm -rf "$ctx"
}

images_standins() {
	local img=$KIND_DIR/images bins=$1
	build postgres:15.14-alpine "$img/postgres.Dockerfile" "$img"
	local ctx
	ctx=$(mktemp -d "$KIND_STATE/ctx.XXXX")
	cp "$bins/prometheus" "$bins/promtool" "$ctx/"
	build "prom/prometheus:$PROMETHEUS_VERSION" "$img/prometheus.Dockerfile" "$ctx" --build-arg "VERSION=$PROMETHEUS_VERSION" --build-arg "BIN_VERSION=$(cat "$bins/prometheus.version")"
	rm -rf "$ctx"
	build locustio/locust:2.37.0 "$img/locust.Dockerfile" "$img"
	build registry:2 "$img/registry.Dockerfile" "$img"
	bin_image grafana/grafana:11.6.0 carbuild-kind/distroless:nonroot "$bins" grafana-standin /usr/bin/grafana-standin
	fix_entrypoint grafana/grafana:11.6.0 '["/usr/bin/grafana-standin"]'
}

# The images the node preloads: Kubernetes' own (names from kubeadm), the pod
# network and policy DaemonSets, metrics-server.
node_image_list() {
	"$1/kubeadm" config images list --kubernetes-version "$K8S_VERSION" 2>/dev/null
	echo "carbuild-kind/cni:local"
	# Third-party images the manifests name (stand-ins), as a user's nodes would pull them.
	echo postgres:15.14-alpine
	echo "prom/prometheus:$PROMETHEUS_VERSION"
	echo locustio/locust:2.37.0
	echo grafana/grafana:11.6.0
	echo "carbuild-kind/netpol:$(cat "$1/netpol.version")"
	echo "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION"
}

images_kube() {
	local bins=$1 ref name ctx
	while read -r ref; do
		name=${ref##*/}
		name=${name%%:*}
		case "$name" in
		kube-apiserver | kube-controller-manager | kube-scheduler)
			bin_image "$ref" carbuild-kind/distroless:root "$bins" "$name" "/usr/local/bin/$name" ;;
		kube-proxy)
			if ! have_image "$ref"; then
				ctx=$(mktemp -d "$KIND_STATE/ctx.XXXX") && cp "$bins/kube-proxy" "$ctx/"
				build "$ref" "$KIND_DIR/images/debtools.Dockerfile" "$ctx" && rm -rf "$ctx"
			fi ;;
		etcd) bin_image "$ref" carbuild-kind/distroless:root "$bins" etcd /usr/local/bin/etcd ;;
		coredns) bin_image "$ref" carbuild-kind/distroless:root "$bins" coredns /coredns ;;
		pause) bin_image "$ref" carbuild-kind/distroless:root "$bins" pause /pause ;;
		cni)
			if ! have_image "$ref"; then
				ctx=$(mktemp -d "$KIND_STATE/ctx.XXXX") && cp "$bins/kubectl" "$KIND_DIR/node/cni-node.sh" "$ctx/"
				build "$ref" "$KIND_DIR/images/debtools.Dockerfile" "$ctx" && rm -rf "$ctx"
			fi ;;
		netpol) # needs iptables: Debian with network tools, like kube-proxy
			if ! have_image "$ref"; then
				ctx=$(mktemp -d "$KIND_STATE/ctx.XXXX") && cp "$bins/netpol" "$ctx/"
				build "$ref" "$KIND_DIR/images/debtools.Dockerfile" "$ctx" && rm -rf "$ctx"
			fi ;;
		metrics-server) bin_image "$ref" carbuild-kind/distroless:nonroot "$bins" metrics-server /metrics-server ;;
		postgres | prometheus | locust | grafana) have_image "$ref" || { log "stand-in $ref missing"; return 1; } ;;
		*) log "no recipe for image $ref"; return 1 ;;
		esac
	done < <(node_image_list "$bins")
	# Entrypoints, as the upstream images have them (kubeadm's manifests give
	# only the command for the control plane; these need one).
	fix_entrypoint "registry.k8s.io/coredns/coredns:$COREDNS_VERSION" '["/coredns"]'
	fix_entrypoint "registry.k8s.io/metrics-server/metrics-server:$METRICS_SERVER_VERSION" '["/metrics-server"]'
	fix_entrypoint "$(node_image_list "$bins" | grep /pause:)" '["/pause"]'
}

fix_entrypoint() { # ref json
	have_image "$1" || return 1
	[[ $(docker image inspect -f '{{json .Config.Entrypoint}}' "$1") == "$2" ]] && return 0
	local c
	# docker create needs a command; it is never run.
	c=$(docker create --entrypoint /none "$1")
	docker commit -c "ENTRYPOINT $2" "$c" "$1" >/dev/null
	docker rm "$c" >/dev/null
}

# node_image BINS: prints the node image's tag, building it when missing.
node_image() {
	local bins=$1 kind_files hash tag ctx pause c t0
	kind_files=$(go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)/images/base/files
	# Every binary's version stamp: a rebuilt binary's image is preloaded anew.
	hash=$(cat "$bins/"*.version "$KIND_DIR/versions.env" "$KIND_DIR/images/node.Dockerfile" "$KIND_DIR/node/"* "$KIND_DIR/images/"*.Dockerfile "$KIND_DIR/images/"*.sh "$KIND_DIR/images.sh" | sha256sum | cut -c1-12)
	tag="carbuild-kind/node:$K8S_VERSION-$hash"
	if have_image "$tag"; then echo "$tag"; return 0; fi
	t0=$(date +%s)
	ctx=$(mktemp -d "$KIND_STATE/node.XXXX")
	cp -r "$kind_files" "$ctx/kind" && chmod -R u+w "$ctx/kind"
	mkdir -p "$ctx/bin" "$ctx/manifests"
	cp "$bins"/{kubeadm,kubelet,kubectl} "$ctx/bin/"
	sed "s|NETPOL_IMAGE|$(node_image_list "$bins" | grep /netpol:)|" "$KIND_DIR/node/default-cni.yaml" >"$ctx/manifests/default-cni.yaml"
	cp "$KIND_DIR/node/default-storage.yaml" "$ctx/manifests/"
	echo "$K8S_VERSION" >"$ctx/version"
	pause=$(node_image_list "$bins" | grep /pause:)
	build "$tag-base" "$KIND_DIR/images/node.Dockerfile" "$ctx" --build-arg "PAUSE_IMAGE=$pause"
	# Preload: import every image into the node's containerd, then commit.
	node_image_list "$bins" | xargs docker save -o "$ctx/images.tar"
	c=$(docker run -d --privileged --entrypoint /usr/bin/containerd -v "$ctx/images.tar:/images.tar:ro" "$tag-base")

	for _ in $(seq 1 60); do docker exec "$c" ctr version >/dev/null 2>&1 && break; sleep 0.5; done
	docker exec "$c" ctr -n k8s.io images import --no-unpack --all-platforms /images.tar >/dev/null
	docker exec "$c" ctr -n k8s.io images ls -q | sort >"$KIND_STATE/node-images.txt"
	docker stop "$c" >/dev/null
	docker commit -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' "$c" "$tag" >/dev/null
	docker rm "$c" >/dev/null
	docker rmi "$tag-base" >/dev/null
	rm -rf "$ctx"
	log "node image $tag built in $(($(date +%s) - t0)) s ($(wc -l <"$KIND_STATE/node-images.txt") images preloaded)"
	echo "$tag"
}

images_build() {
	local bins=$1
	images_base
	images_standins "$bins"
	images_kube "$bins"
}

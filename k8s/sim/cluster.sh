#!/usr/bin/env bash
# Simulated Kubernetes cluster on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake kubelets), with nodes that mirror ctlptl.yaml
# (1 tainted control-plane node + 3 workers labelled worker-id=1..3).
#
#   cluster.sh up RUNDIR     boot into RUNDIR (certs, data, logs, pids); KUBECONFIG=RUNDIR/admin.kubeconfig
#   cluster.sh down RUNDIR   stop every process recorded in RUNDIR/pids, in reverse order, and wait for each
#
# Binaries come from build.sh (version-keyed cache). Every port is on 127.0.0.1; override with
# K8S_SIM_PORT_* if the defaults are taken. See README.md for what this does and does not prove.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KWOKV=${KWOKV:-v0.8.0}
CLUSTER=${K8S_SIM_CLUSTER:-carbuild}          # Kind cluster name in ctlptl.yaml (kind-<name>)
WORKERS=${K8S_SIM_WORKERS:-3}
NODE_CPU=${K8S_SIM_NODE_CPU:-4}               # a laptop-sized Kind node
NODE_MEM=${K8S_SIM_NODE_MEMORY:-8Gi}
NODE_PODS=${K8S_SIM_NODE_PODS:-110}
P_API=${K8S_SIM_PORT_APISERVER:-6443}
P_ETCD=${K8S_SIM_PORT_ETCD:-2379}
P_PEER=${K8S_SIM_PORT_ETCD_PEER:-2380}
P_ETCDM=${K8S_SIM_PORT_ETCD_METRICS:-2381}
P_KCM=${K8S_SIM_PORT_KCM:-10257}
P_SCHED=${K8S_SIM_PORT_SCHEDULER:-10259}
P_KWOK=${K8S_SIM_PORT_KWOK:-10247}

# /usr/bin/kubectl on Debian is the Google Cloud SDK dispatcher (+0.2 s a call); use its 1.33 client directly.
if [ -z "${KUBECTL:-}" ]; then
  KUBECTL=$(command -v kubectl || true)
  if [ -n "$KUBECTL" ] && [ -x "$(dirname "$(readlink -f "$KUBECTL")")/kubectl.1.33" ]; then
    KUBECTL=$(dirname "$(readlink -f "$KUBECTL")")/kubectl.1.33
  fi
fi

log() { printf '[k8s-sim %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1fs", b-a}'; }
die() { log "ERROR: $*"; exit 1; }

# wait_for DESC TIMEOUT_S CMD... : poll CMD every 0.1 s; on timeout show the newest log lines.
wait_for() {
  local desc=$1 timeout=$2; shift 2
  local deadline; deadline=$(awk -v n="$(now)" -v t="$timeout" 'BEGIN{printf "%.0f", n+t}')
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "timed out after ${timeout}s waiting for $desc"
      for f in "$RUN"/logs/*.log; do echo "--- tail $f" >&2; tail -n 15 "$f" >&2; done
      return 1
    fi
    check_alive
    sleep 0.1
  done
}

# Fail fast when a process we started has died.
check_alive() {
  [ -f "$RUN/pids" ] || return 0
  local name pid
  while read -r name pid; do
    kill -0 "$pid" 2>/dev/null || { log "$name (pid $pid) exited; last log lines:"; tail -n 30 "$RUN/logs/$name.log" >&2; exit 1; }
  done < "$RUN/pids"
}

start() { # name cmd...
  local name=$1; shift
  # Background jobs of a non-interactive shell ignore SIGINT, so Ctrl-C reaches our trap, which stops
  # them in order; they stay in the caller's process group, so a CI job killing that group kills them too.
  "$@" > "$RUN/logs/$name.log" 2>&1 < /dev/null &
  echo "$name $!" >> "$RUN/pids"
}

kubeconfig() { # name cert
  cat > "$RUN/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sim
  cluster: {server: "https://127.0.0.1:$P_API", certificate-authority: "$RUN/pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$RUN/pki/$2.crt", client-key: "$RUN/pki/$2.key"}
contexts:
- name: sim
  context: {cluster: sim, user: $1}
current-context: sim
EOF
}

pki() {
  mkdir -p "$RUN/pki"; cd "$RUN/pki"
  local ossl="openssl"
  # ECDSA P-256 throughout: key generation is instant, where RSA costs seconds on a busy machine.
  $ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=carbuild-k8s-sim-ca" 2>/dev/null
  $ossl ecparam -name prime256v1 -genkey -noout -out sa.key 2>/dev/null && $ossl ec -in sa.key -pubout -out sa.pub 2>/dev/null
  sign() { # name subj [san]
    $ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
    if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$3" > "$1.ext"
    else printf 'extendedKeyUsage=clientAuth\n' > "$1.ext"; fi
    $ossl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" -out "$1.crt" -days 30 -extfile "$1.ext" 2>/dev/null
  }
  sign apiserver "/CN=kube-apiserver" "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local" &
  sign admin "/O=system:masters/CN=kubernetes-admin" &
  sign kcm "/CN=system:kube-controller-manager" &
  sign sched "/CN=system:kube-scheduler" &
  sign kwok "/O=system:masters/CN=kwok-controller" &
  wait
  for c in apiserver admin kcm sched kwok; do [ -s "$c.crt" ] || die "failed to sign $c certificate"; done
  cd - >/dev/null
  kubeconfig admin admin; kubeconfig kcm kcm; kubeconfig sched sched; kubeconfig kwok kwok
}

# Render kwok's stage configs from its module (cached next to the binaries). The volume stages are
# re-pointed at StorageClass "standard", the default class of a Kind cluster.
stages() {
  local dst=$BIN/../stages
  if [ ! -s "$dst/stages-volume.yaml" ]; then
    local dir
    dir=$(cd "${TMPDIR:-/tmp}" && GOWORK=off GOFLAGS= go mod download -json "sigs.k8s.io/kwok@$KWOKV" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    [ -d "$dir/kustomize/stage" ] || die "kwok $KWOKV module not found (go mod download sigs.k8s.io/kwok@$KWOKV)"
    mkdir -p "$dst.tmp"
    "$KUBECTL" kustomize "$dir/kustomize/stage/fast" > "$dst.tmp/stages-fast.yaml"
    for f in pv-bind pv-delete pvc-provision pvc-delete; do
      sed "s/storageClassName == 'kwok-volume'/storageClassName == 'standard'/" "$dir/kustomize/stage/volume/fast/$f.yaml"; echo "---"
    done > "$dst.tmp/stages-volume.yaml"
    grep -q "'standard'" "$dst.tmp/stages-volume.yaml" || die "kwok volume stages changed shape; cannot re-point them"
    rm -rf "$dst"; mv "$dst.tmp" "$dst"
  fi
  STAGES=$(cd "$dst" && pwd)
}

nodes_yaml() {
  node() { # name labels taints
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: $1
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
  labels: {kubernetes.io/hostname: $1, kubernetes.io/os: linux, kubernetes.io/arch: amd64$2}
spec: {$3}
status:
  allocatable: {cpu: "$NODE_CPU", memory: $NODE_MEM, pods: "$NODE_PODS", ephemeral-storage: 100Gi}
  capacity: {cpu: "$NODE_CPU", memory: $NODE_MEM, pods: "$NODE_PODS", ephemeral-storage: 100Gi}
  nodeInfo: {architecture: amd64, operatingSystem: linux, kubeletVersion: fake}
EOF
  }
  node "$CLUSTER-control-plane" ", node-role.kubernetes.io/control-plane: \"\"" \
    "taints: [{key: node-role.kubernetes.io/control-plane, effect: NoSchedule}]"
  local i name
  for i in $(seq 1 "$WORKERS"); do
    name=$CLUSTER-worker; [ "$i" -gt 1 ] && name=$CLUSTER-worker$i   # Kind's naming: worker, worker2, worker3
    node "$name" ", worker-id: \"$i\"" ""
  done
  cat <<EOF
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kwok.x-k8s.io/volume
reclaimPolicy: Delete
volumeBindingMode: Immediate
EOF
}

up() {
  [ -e "$RUN/pids" ] && die "$RUN already has a cluster (pids file present)"
  mkdir -p "$RUN/logs"
  local T0 t; T0=$(now)
  BIN=${K8S_SIM_BIN:-$("$HERE/build.sh")}
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do [ -x "$BIN/$b" ] || die "missing $BIN/$b"; done
  [ -n "$KUBECTL" ] || KUBECTL=$BIN/kubectl   # built by build.sh when the machine has none
  [ -x "$KUBECTL" ] || die "kubectl not found (Debian: apt-get install kubectl; or set KUBECTL)"
  command -v openssl >/dev/null || die "openssl not found"
  for p in $P_API $P_ETCD $P_PEER $P_ETCDM $P_KCM $P_SCHED $P_KWOK; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then die "port 127.0.0.1:$p is in use (set K8S_SIM_PORT_* to move)"; fi
  done

  t=$(now); pki; stages; nodes_yaml > "$RUN/nodes.yaml"; log "pki + kwok stages: $(since "$t")"
  export KUBECONFIG=$RUN/admin.kubeconfig
  local K="$KUBECTL --kubeconfig=$RUN/admin.kubeconfig --request-timeout=5s"

  t=$(now)
  start etcd "$BIN/etcd" --name sim --data-dir "$RUN/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$P_ETCD" --advertise-client-urls "http://127.0.0.1:$P_ETCD" \
    --listen-peer-urls "http://127.0.0.1:$P_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$P_PEER" \
    --initial-cluster "sim=http://127.0.0.1:$P_PEER" --listen-metrics-urls "http://127.0.0.1:$P_ETCDM"
  wait_for "etcd /health" 30 curl -fsS "http://127.0.0.1:$P_ETCDM/health"
  log "etcd ready: $(since "$t")"

  t=$(now)
  start kube-apiserver "$BIN/kube-apiserver" --etcd-servers="http://127.0.0.1:$P_ETCD" \
    --bind-address=127.0.0.1 --secure-port="$P_API" --advertise-address=127.0.0.1 --endpoint-reconciler-type=none \
    --tls-cert-file="$RUN/pki/apiserver.crt" --tls-private-key-file="$RUN/pki/apiserver.key" --client-ca-file="$RUN/pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$RUN/pki/sa.pub" --service-account-signing-key-file="$RUN/pki/sa.key" \
    --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true \
    --cert-dir="$RUN/apiserver-certs"
  wait_for "kube-apiserver /readyz" 60 $K get --raw /readyz
  log "kube-apiserver ready: $(since "$t")"

  t=$(now)
  start kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$RUN/kcm.kubeconfig" \
    --authentication-kubeconfig="$RUN/kcm.kubeconfig" --authorization-kubeconfig="$RUN/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$P_KCM" --leader-elect=false \
    --service-account-private-key-file="$RUN/pki/sa.key" --root-ca-file="$RUN/pki/ca.crt" \
    --use-service-account-credentials=true --cluster-signing-cert-file="$RUN/pki/ca.crt" \
    --cluster-signing-key-file="$RUN/pki/ca.key" --controllers='*,bootstrapsigner,tokencleaner' \
    --horizontal-pod-autoscaler-sync-period=2s
  start kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$RUN/sched.kubeconfig" \
    --authentication-kubeconfig="$RUN/sched.kubeconfig" --authorization-kubeconfig="$RUN/sched.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port="$P_SCHED" --leader-elect=false
  start kwok "$BIN/kwok" --kubeconfig="$RUN/kwok.kubeconfig" \
    --config="$STAGES/stages-fast.yaml" --config="$STAGES/stages-volume.yaml" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --node-ip=127.0.0.1 --node-port="$P_KWOK" --cidr=10.244.0.0/16 --node-lease-duration-seconds=40 \
    --server-address="127.0.0.1:$P_KWOK"
  wait_for "kube-controller-manager /healthz" 60 curl -fsSk "https://127.0.0.1:$P_KCM/healthz"
  wait_for "kube-scheduler /healthz" 60 curl -fsSk "https://127.0.0.1:$P_SCHED/healthz"
  wait_for "kwok /healthz" 60 curl -fsS "http://127.0.0.1:$P_KWOK/healthz"
  log "controller-manager, scheduler, kwok healthy: $(since "$t")"

  t=$(now)
  $K apply -f "$RUN/nodes.yaml" >/dev/null
  nodes_ready() {
    [ "$($K get nodes -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" = $((WORKERS + 1)) ]
  }
  wait_for "$((WORKERS + 1)) nodes Ready" 60 nodes_ready
  wait_for "ServiceAccount default/default" 60 $K get serviceaccount default -n default
  log "$((WORKERS + 1)) nodes Ready, default ServiceAccount present: $(since "$t")"
  log "cluster up in $(since "$T0"): export KUBECONFIG=$RUN/admin.kubeconfig"
}

down() {
  [ -f "$RUN/pids" ] || return 0
  local t name pid i; t=$(now)
  # All at once (each takes ~2 s to shut down gracefully; the state is thrown away anyway), then
  # wait for every PID; SIGKILL what is still there after 10 s.
  while read -r name pid; do kill -TERM "$pid" 2>/dev/null || true; done < <(tac "$RUN/pids")
  while read -r name pid; do
    for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then log "$name (pid $pid) ignored SIGTERM for 10s; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  done < <(tac "$RUN/pids")
  rm -f "$RUN/pids"
  log "cluster stopped: $(since "$t")"
}

cmd=${1:-}; RUN=${2:-}
[ -n "$cmd" ] && [ -n "$RUN" ] || { echo "usage: $0 up|down RUNDIR" >&2; exit 2; }
mkdir -p "$RUN"; RUN=$(cd "$RUN" && pwd)
case $cmd in
  up) trap 'rc=$?; [ $rc -eq 0 ] || down; exit $rc' EXIT; trap 'exit 130' INT TERM; up ;;
  down) down ;;
  *) echo "usage: $0 up|down RUNDIR" >&2; exit 2 ;;
esac

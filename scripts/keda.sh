#!/usr/bin/env bash
# KEDA (operator + external metrics adapter) next to Shoal's real-node test cluster, for the
# side-by-side scaling benchmark (bench/scaling_real.py) and its short e2e variant.
#
#   scripts/keda.sh build            build (or reuse) the pinned binaries from Go modules (≈ 7 min on
#                                    2 cores, once) into ${SHOAL_KEDA_CACHE:-~/.cache/shoal/keda}/<version>
#   scripts/keda.sh up   STATE_DIR   run them on the host (logs, certificates, pids in STATE_DIR)
#                                    against the cluster of $KUBECONFIG; the API server reaches the
#                                    metrics adapter at $NODE_IP (the node bridge address); needs the
#                                    API server's front-proxy flags (aggregation layer)
#   scripts/keda.sh down STATE_DIR   stop what `up` started
#   scripts/keda.sh --print-dir      the binary directory
# kubectl: $KUBECTL (default: kubectl on PATH).
set -euo pipefail

KEDA_VERSION=2.21.0
CACHE_ROOT=${SHOAL_KEDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/keda}
BIN_DIR=$CACHE_ROOT/$KEDA_VERSION

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

build() {
  mkdir -p "$BIN_DIR"
  exec 9>"$CACHE_ROOT/.lock"
  flock 9
  if [[ -x $BIN_DIR/keda-operator && -x $BIN_DIR/keda-adapter && -f $BIN_DIR/.complete ]]; then
    log "keda $KEDA_VERSION: cached in $BIN_DIR"
    return
  fi
  local work start
  work=$(mktemp -d)
  # shellcheck disable=SC2064  # expand now: the trap must remove this build's directory
  trap "rm -rf '$work'" RETURN
  start=$(date +%s)
  log "keda $KEDA_VERSION: building operator and adapter (≈ 7 min on 2 cores)"
  (
    cd "$work"
    export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
    go mod init kedabin >/dev/null 2>&1
    gomod=$(go mod download -json "github.com/kedacore/keda/v2@v$KEDA_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
    # KEDA's go.mod carries replace directives that a dependent module does not inherit: repeat them.
    sed -n 's#^replace \(\S*\) \(\S*\) => \(\S*\) \(\S*\)#\1@\2=\3@\4#p' "$gomod" |
      while read -r r; do go mod edit -replace="$r"; done
    go get "github.com/kedacore/keda/v2/cmd/operator@v$KEDA_VERSION" \
      "github.com/kedacore/keda/v2/cmd/adapter@v$KEDA_VERSION" >/dev/null 2>&1
    for c in operator adapter; do
      go build -trimpath -ldflags "-s -w" -o "$work/keda-$c" "github.com/kedacore/keda/v2/cmd/$c"
    done
    mkdir -p "$work/crds"
    cp "$(go env GOMODCACHE)/github.com/kedacore/keda/v2@v$KEDA_VERSION/config/crd/bases/"*.yaml "$work/crds/"
    chmod -R u+w "$work/crds"
  )
  rm -rf "${BIN_DIR:?}/crds"
  mv -f "$work/keda-operator" "$work/keda-adapter" "$work/crds" "$BIN_DIR/"
  touch "$BIN_DIR/.complete" # written last: an interrupted build never looks complete
  log "keda $KEDA_VERSION: built in $(($(date +%s) - start)) s"
}

up() {
  local dir=${1:?usage: keda.sh up STATE_DIR} k c
  : "${KUBECONFIG:?KUBECONFIG: the cluster to run KEDA against}" "${NODE_IP:?NODE_IP: the node bridge address}"
  [[ -f $BIN_DIR/.complete ]] || build
  k="${KUBECTL:-kubectl} --kubeconfig $KUBECONFIG"
  c=$dir/keda-certs
  mkdir -p "$c"
  export POD_NAMESPACE=keda WATCH_NAMESPACE="" KEDA_CLUSTER_OBJECT_NAMESPACE=keda
  $k apply --server-side -f "$BIN_DIR/crds/" >/dev/null
  $k create namespace keda >/dev/null 2>&1 || true
  # The adapter runs on the host: a selector-less Service + EndpointSlice at the node address
  # serve the APIService (the API server dials it through the aggregation layer).
  $k apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata: {name: keda-metrics-apiserver, namespace: keda}
spec: {ports: [{name: https, port: 443, targetPort: 6443}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: keda-metrics-host, namespace: keda, labels: {kubernetes.io/service-name: keda-metrics-apiserver}}
addressType: IPv4
ports: [{name: https, port: 6443, protocol: TCP}]
endpoints: [{addresses: ["$NODE_IP"]}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.external.metrics.k8s.io}
spec: {service: {name: keda-metrics-apiserver, namespace: keda, port: 443}, group: external.metrics.k8s.io, version: v1beta1, groupPriorityMinimum: 100, versionPriority: 100}
YAML
  local op=("$BIN_DIR/keda-operator" --enable-cert-rotation=true --cert-dir "$c"
    --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 127.0.0.1:0
    --metrics-service-bind-address "$NODE_IP:9666" --enable-webhook-patching=false)
  # The first start only writes its certificates into Secret keda/kedaorg-certs and exits (in a
  # pod it would be restarted): copy them to the cert dir, then start it for good.
  "${op[@]}" >"$dir/keda-operator-certs.log" 2>&1 || true
  for f in ca.crt tls.crt tls.key; do
    $k get secret -n keda kedaorg-certs -o "jsonpath={.data.${f//./\\.}}" | base64 -d >"$c/$f"
  done
  setsid "${op[@]}" >"$dir/keda-operator.log" 2>&1 &
  echo $! >>"$dir/keda.pids"
  setsid "$BIN_DIR/keda-adapter" --secure-port=6443 --bind-address="$NODE_IP" \
    --tls-cert-file="$c/tls.crt" --tls-private-key-file="$c/tls.key" --cert-dir="$c" \
    --client-ca-file="$c/ca.crt" --authentication-kubeconfig="$KUBECONFIG" \
    --authorization-kubeconfig="$KUBECONFIG" --lister-kubeconfig="$KUBECONFIG" \
    --metrics-service-address="$NODE_IP:9666" --metrics-service-grpc-authority=keda-operator.keda.svc \
    >"$dir/keda-adapter.log" 2>&1 &
  echo $! >>"$dir/keda.pids"
  local start=$SECONDS
  until [[ $($k get apiservice v1beta1.external.metrics.k8s.io \
    -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}') == True ]]; do
    if ((SECONDS - start > 90)); then
      echo "keda: the metrics APIService is not Available after 90 s; logs in $dir" >&2
      down "$dir"
      exit 1
    fi
    sleep 0.5
  done
  log "keda $KEDA_VERSION: operator and metrics adapter up in $((SECONDS - start)) s (logs in $dir)"
}

down() {
  local dir=${1:?usage: keda.sh down STATE_DIR} pid
  [[ -f $dir/keda.pids ]] || return 0
  while read -r pid; do
    kill -TERM -- "-$pid" 2>/dev/null || true # setsid: the pid leads its own group
  done <"$dir/keda.pids"
  rm -f "$dir/keda.pids"
}

case ${1:-} in
  build) build ;;
  up) up "${2:-}" ;;
  down) down "${2:-}" ;;
  --print-dir) echo "$BIN_DIR" ;;
  *) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac

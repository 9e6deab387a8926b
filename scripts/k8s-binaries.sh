#!/usr/bin/env bash
# Build (or reuse) the pinned binaries of Shoal's Kubernetes test cluster.
#
# Everything is built from Go modules (the Go module proxy is the only thing this needs from
# outside) into a per-user cache keyed by the Kubernetes version:
#   ${SHOAL_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/k8s}/<k8s-version>/bin
# Each binary has a stamp file (.<name>.version) so changing one pin rebuilds only that binary.
# If KUBEBUILDER_ASSETS is set (envtest layout), its kube-apiserver and etcd are used instead.
#
# Usage: scripts/k8s-binaries.sh [--with-node] [--with-helm] [--print-dir]
set -euo pipefail

K8S_VERSION=1.37.2
ETCD_VERSION=3.6.16
KWOK_VERSION=0.7.0
HELM_VERSION=3.22.0

CACHE_ROOT=${SHOAL_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/shoal/k8s}
BIN_DIR=$CACHE_ROOT/$K8S_VERSION/bin

with_node=0
with_helm=0
for arg in "$@"; do
  case $arg in
    --with-node) with_node=1 ;;
    --with-helm) with_helm=1 ;;
    --print-dir) echo "$BIN_DIR"; exit 0 ;;
    -h | --help) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
now() { date +%s; }

mkdir -p "$BIN_DIR"
# Concurrent callers (parallel test runs, a user plus CI) must not build into the same files.
exec 9>"$CACHE_ROOT/.lock"
flock 9

# present NAME VERSION: true if the cached binary was built from this pin.
present() {
  [[ -f $BIN_DIR/$1 && -x $BIN_DIR/$1 && -f $BIN_DIR/.$1.version && $(<"$BIN_DIR/.$1.version") == "$2" ]]
}
# from_assets NAME: true if KUBEBUILDER_ASSETS provides NAME (then we do not build it).
from_assets() {
  [[ -n ${KUBEBUILDER_ASSETS:-} && -f $KUBEBUILDER_ASSETS/$1 && -x $KUBEBUILDER_ASSETS/$1 ]]
}
# install_bin NAME VERSION SRC: move a finished build into place; the stamp is written last so an
# interrupted build never looks complete.
install_bin() {
  rm -rf "${BIN_DIR:?}/$1"
  mv -f "$3" "$BIN_DIR/$1"
  echo "$2" >"$BIN_DIR/.$1.version"
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
OUT=$WORK/out # build outputs; scratch modules live in $WORK/mod-*
mkdir "$OUT"
total_start=$(now)
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

# --- Kubernetes components -------------------------------------------------------------
k8s_wanted=(kube-apiserver kube-controller-manager kube-scheduler)
if ((with_node)); then k8s_wanted+=(kubelet kube-proxy); fi
k8s_todo=()
for c in "${k8s_wanted[@]}"; do
  if [[ $c == kube-apiserver ]] && from_assets "$c"; then
    log "$c: using KUBEBUILDER_ASSETS ($KUBEBUILDER_ASSETS)"
  elif present "$c" "$K8S_VERSION"; then
    log "$c: cached"
  else
    k8s_todo+=("$c")
  fi
done

if ((${#k8s_todo[@]})); then
  # k8s.io/kubernetes is not meant to be imported: its go.mod replaces every staging module
  # (k8s.io/api, k8s.io/apiserver, ...) with ./staging/... . A scratch module that replaces
  # each of them with its published v0.<minor>.<patch> twin makes it buildable from the proxy.
  mkdir "$WORK/mod-k8s" && cd "$WORK/mod-k8s"
  go mod init shoal.local/k8sbins >/dev/null 2>&1
  t=$(now)
  gomod=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  staging=v0.${K8S_VERSION#1.}
  mapfile -t staging_mods < <(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\1#p' "$gomod")
  for m in "${staging_mods[@]}"; do
    go mod edit -replace="$m=$m@$staging"
  done
  pkgs=()
  for c in "${k8s_todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"); done
  go get "${pkgs[@]}" >"$WORK/go-get.log" 2>&1 || { cat "$WORK/go-get.log" >&2; exit 1; }
  log "resolved k8s.io/kubernetes v$K8S_VERSION ($(grep -c '=>' go.mod) staging replaces) in $(($(now) - t))s"
  minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  vpkg=k8s.io/component-base/version
  # Without these the binaries report v0.0.0-master, which breaks version/compatibility checks.
  ldflags="-s -w -X $vpkg.gitVersion=v$K8S_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor"
  ldflags+=" -X $vpkg.gitTreeState=clean -X $vpkg.buildDate=1970-01-01T00:00:00Z"
  for c in "${k8s_todo[@]}"; do
    t=$(now)
    log "$c: building v$K8S_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$OUT/$c" "k8s.io/kubernetes/cmd/$c"
    install_bin "$c" "$K8S_VERSION" "$OUT/$c"
    log "$c: built in $(($(now) - t))s"
  done
fi

# --- etcd --------------------------------------------------------------------------------
if from_assets etcd; then
  log "etcd: using KUBEBUILDER_ASSETS ($KUBEBUILDER_ASSETS)"
elif present etcd "$ETCD_VERSION"; then
  log "etcd: cached"
else
  # etcd's own server module has local replaces too; a wrapper module resolves it from the proxy.
  t=$(now)
  log "etcd: building v$ETCD_VERSION"
  mkdir "$WORK/mod-etcd" && cd "$WORK/mod-etcd"
  go mod init shoal.local/etcdbin >/dev/null 2>&1
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >"$WORK/go-get.log" 2>&1 ||
    { cat "$WORK/go-get.log" >&2; exit 1; }
  go build -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
  install_bin etcd "$ETCD_VERSION" "$OUT/etcd"
  log "etcd: built in $(($(now) - t))s"
fi

# --- ordinary Go commands ------------------------------------------------------------------
# go_install NAME VERSION PACKAGE@VERSION [EXTRA-LDFLAGS]
go_install() {
  if present "$1" "$2"; then
    log "$1: cached"
    return
  fi
  local t
  t=$(now)
  log "$1: building v$2"
  GOBIN="$OUT" go install -trimpath -ldflags "-s -w ${4:-}" "$3"
  install_bin "$1" "$2" "$OUT/$1"
  log "$1: built in $(($(now) - t))s"
}
go_install kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
if ((with_helm)); then
  # helm's own version string is only major.minor unless set at link time
  go_install helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" \
    "-X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION"
fi

log "done in $(($(now) - total_start))s: $BIN_DIR"

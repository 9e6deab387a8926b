#!/usr/bin/env bash
# KEDA (operator + external metrics adapter) next to Shoal's real-node test cluster, for the
# side-by-side scaling benchmark (bench/scaling_real.py) and its short e2e variant.
#
#   scripts/keda.sh build            build (or reuse) the pinned binaries from Go modules (≈ 7 min on
#                                    2 cores, once) into ${SHOAL_KEDA_CACHE:-~/.cache/shoal/keda}/<version>
#   scripts/keda.sh up   STATE_DIR   run them on the host against the cluster whose kubeconfig is
#                                    STATE_DIR/kubeconfig, node address NODE_IP (env); pids → STATE_DIR/keda.pids
#   scripts/keda.sh down STATE_DIR   stop what `up` started
#   scripts/keda.sh --print-dir      the binary directory
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

case ${1:-} in
  build) build ;;
  --print-dir) echo "$BIN_DIR" ;;
  *) sed -n '2,11s/^# \{0,1\}//p' "$0"; exit 2 ;;
esac

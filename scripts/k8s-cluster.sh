#!/usr/bin/env bash
# Run Shoal's Kubernetes test cluster by hand (the same harness the k8s tests use).
#   scripts/k8s-cluster.sh up [--nodes N]   # foreground; prints `export KUBECONFIG=...`; Ctrl-C stops
#   scripts/k8s-cluster.sh env              # print the export lines of the running cluster
#   scripts/k8s-cluster.sh down             # stop it (from another shell)
# The cluster directory is $SHOAL_K8S_DIR (default /tmp/shoal-k8s-$UID); logs are in its logs/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cmd=${1:?usage: $0 up|down|env [--nodes N]}
shift
exec "${PYTHON:-python3}" -m tests.harness.k8s_cli "$cmd" --dir "${SHOAL_K8S_DIR:-/tmp/shoal-k8s-$(id -u)}" "$@"

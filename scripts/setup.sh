#!/usr/bin/env bash
# Install everything Shoal's demo and tests need on a fresh Debian machine; idempotent.
#   apt: redis-server (and PostgreSQL, openssl for the test tiers); pip: shoal with the dev extra;
#   with --k8s: the pinned Kubernetes test binaries (built from Go modules, cached per version).
set -euo pipefail
cd "$(dirname "$0")/.."

with_k8s=0
for arg in "$@"; do
  case $arg in
    --k8s) with_k8s=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v openssl >/dev/null || missing+=(openssl)
if [ "$with_k8s" = 1 ]; then
  # The PostgreSQL tier of the status-store tests needs the server binaries.
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from Debian" >&2
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'

if [ "$with_k8s" = 1 ]; then
  bash scripts/k8s-binaries.sh --with-helm
fi

#!/usr/bin/env bash
# Run Shoal's end-to-end tier here: one real node (containerd + kubelet + kube-proxy), the image
# built with Docker, the Helm chart, real worker pods. See docs/e2e.md.
#
#   scripts/e2e.sh [--prepare] [PYTEST-ARGS...]
#
# 1. host packages from Debian, if missing: containerd runc containernetworking-plugins iptables
#    conntrack docker.io debootstrap gcc libc6-dev (the pause image is a static C program)
# 2. the pinned binaries with kubelet, kube-proxy and helm (scripts/k8s-binaries.sh, cached), and
#    KEDA's for the side-by-side scaling test (scripts/keda.sh build, cached; ≈ 7 min the first time)
# 3. the image $SHOAL_E2E_IMAGE (default shoal:e2e) with scripts/build-image.sh (layer cache;
#    SHOAL_E2E_SKIP_BUILD=1 uses the image Docker has)
# 4. pytest tests/e2e -m e2e; with --prepare it stops after 3 (then `make test` finds it all)
# Needs root: kubelet, containerd, a bridge and iptables rules (all removed afterwards).
set -euo pipefail
cd "$(dirname "$0")/.."

prepare_only=0
if [[ ${1:-} == --prepare ]]; then
  prepare_only=1
  shift
fi
if [[ $(id -u) != 0 ]]; then
  echo "e2e: needs root (kubelet, containerd, a bridge, iptables rules)" >&2
  exit 1
fi

declare -A package_of=([containerd]=containerd [runc]=runc [iptables]=iptables
  [conntrack]=conntrack [gcc]=gcc [dockerd]=docker.io [debootstrap]=debootstrap)
need=()
for tool in "${!package_of[@]}"; do
  command -v "$tool" >/dev/null || need+=("${package_of[$tool]}")
done
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
# gcc prints the bare name when it has no static libc to link the pause binary with
[[ $(gcc -print-file-name=libc.a 2>/dev/null) == /* ]] || need+=(libc6-dev)
if ((${#need[@]})); then
  echo "e2e: installing ${need[*]} from Debian" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

bash scripts/k8s-binaries.sh --with-node --with-helm
bash scripts/keda.sh build
if [[ ${SHOAL_E2E_SKIP_BUILD:-0} != 1 ]]; then # 1: use the image as Docker has it
  bash scripts/build-image.sh "${SHOAL_E2E_IMAGE:-shoal:e2e}" >/dev/null
fi
if ((prepare_only)); then
  exit 0
fi
export SHOAL_E2E_SKIP_BUILD=1 SHOAL_K8S_NO_BUILD=1
exec "${PYTHON:-python3}" -m pytest tests/e2e -m e2e -p no:cacheprovider "$@"

#!/usr/bin/env bash
# Build Shoal's container image (both entry points: `shoal operator`, `shoal worker APP`).
#
# Usage: scripts/build-image.sh [TAG]            (default TAG: shoal:dev)
# Env:   BASE_IMAGE   base for both stages; default: python:3.11-slim if Docker has it, else the
#                     local Debian base (scripts/make-base-image.sh, cached) where this machine can
#                     make one (root + Debian tools), else python:3.11-slim pulled from the registry
#        DOCKER       docker CLI to use (default: one that can run BuildKit builds)
#        PIP_CERT     CA bundle pip needs to reach the package index (default: pip's own setting,
#                     else the system bundle); given to the build stage as a BuildKit secret only
# Registry reachability is never probed (nothing leaves the machine just to find out): to use the
# official base on a machine that could also make the local one, set BASE_IMAGE=python:3.11-slim.
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${1:-shoal:dev}
OFFICIAL_BASE=python:3.11-slim

log() { printf '[%s] build-image: %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'build-image: %s\n' "$*" >&2; exit 1; }

# --- a docker CLI that builds with BuildKit (needed for the secret mount) -----------------------
# Docker 23+ builds through the buildx plugin; older CLIs (Debian's docker.io 20.10) have BuildKit
# built in and need DOCKER_BUILDKIT=1. A newer CLI without buildx cannot use BuildKit at all.
pick_cli() {
  local candidates=("${DOCKER:-docker}") cli major
  [[ -z ${DOCKER:-} && -x /usr/bin/docker ]] && candidates+=(/usr/bin/docker)
  for cli in "${candidates[@]}"; do
    command -v "$cli" >/dev/null || continue
    if "$cli" buildx version >/dev/null 2>&1; then echo "$cli"; return; fi
    major=$("$cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1 || true)
    if [[ $major =~ ^[0-9]+$ ]] && ((major < 23)); then echo "$cli"; return; fi
  done
  die "no docker CLI here can build with BuildKit: install the buildx plugin (docker-buildx)"
}

# --- the base image ---------------------------------------------------------------------------
can_make_local_base() {
  [[ $(uname -s) == Linux && $(id -u) == 0 ]] &&
    { command -v debootstrap >/dev/null || command -v apt-get >/dev/null; }
}

pick_base() {
  if [[ -n ${BASE_IMAGE:-} ]]; then echo "$BASE_IMAGE"; return; fi
  if docker image inspect "$OFFICIAL_BASE" >/dev/null 2>&1; then echo "$OFFICIAL_BASE"; return; fi
  local local_base
  local_base=$(bash scripts/make-base-image.sh --print-tag)
  if docker image inspect "$local_base" >/dev/null 2>&1 || can_make_local_base; then
    bash scripts/make-base-image.sh >&2 # cached: a no-op when the image exists
    echo "$local_base"
    return
  fi
  echo "$OFFICIAL_BASE"
}

# --- the CA bundle pip uses on this machine -----------------------------------------------------
pip_ca() {
  local ca=${PIP_CERT:-}
  if [[ -z $ca ]] && command -v python3 >/dev/null; then
    ca=$(python3 -m pip config get global.cert 2>/dev/null || true)
  fi
  [[ -z $ca && -f /etc/ssl/certs/ca-certificates.crt ]] && ca=/etc/ssl/certs/ca-certificates.crt
  if [[ -n $ca && -f $ca ]]; then echo "$ca"; fi
}

bash scripts/docker-daemon.sh
cli=$(pick_cli)
base=$(pick_base)
ca=$(pip_ca)
args=(build --network host --build-arg "BASE_IMAGE=$base" -t "$TAG" -f Dockerfile)
[[ -n $ca ]] && args+=(--secret "id=pip-ca,src=$ca")

log "building $TAG from $base with $cli${ca:+ (pip CA bundle: $ca)}"
start=$SECONDS
DOCKER_BUILDKIT=1 "$cli" "${args[@]}" . >&2
size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "built $TAG in $((SECONDS - start))s: $((size / 1024 / 1024)) MiB ($size bytes)"
echo "$TAG"

#!/usr/bin/env bash
# Make sure a Docker daemon answers: on a fresh Debian machine, as root, install Debian's docker.io
# and start dockerd (no other source of Docker is reachable here). Used by build-image.sh and by
# the fresh-machine test.
#
# Usage: scripts/docker-daemon.sh         Env: SHOAL_DOCKERD_ARGS (dockerd's flags)
set -euo pipefail

log() { printf '[%s] docker-daemon: %s\n' "$(date +%T)" "$*" >&2; }
die() { printf 'docker-daemon: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 && exit 0
if [[ $(id -u) == 0 ]] && ! command -v dockerd >/dev/null && command -v apt-get >/dev/null; then
  log "installing docker.io from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null
fi
if [[ $(id -u) != 0 ]] || ! command -v dockerd >/dev/null; then
  die "no Docker daemon is reachable (docker info failed); start Docker and retry"
fi
# Here (a sandbox: cgroup v1, no NAT rules allowed) dockerd runs without its bridge network;
# builds and test containers use the host network. SHOAL_DOCKERD_ARGS overrides the flags.
logf=${XDG_CACHE_HOME:-$HOME/.cache}/shoal/dockerd.log
mkdir -p "$(dirname "$logf")"
# shellcheck disable=SC2086 # word splitting of the flags is wanted
setsid dockerd ${SHOAL_DOCKERD_ARGS:---iptables=false --ip6tables=false --bridge=none} \
  >"$logf" 2>&1 </dev/null &
log "started dockerd (pid $!, log $logf)"
deadline=$((SECONDS + 60))
until docker info >/dev/null 2>&1; do
  ((SECONDS < deadline)) || die "dockerd did not come up within 60 s; see $logf"
  sleep 0.5
done

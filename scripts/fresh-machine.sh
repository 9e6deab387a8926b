#!/usr/bin/env bash
# The README's first minute on a truly fresh Debian 12, in a throwaway container: a clean clone of
# this repository's HEAD, Debian's own Python 3.11 (no venv module, no pip), `make` and `git`
# added and nothing else. As an ordinary user it runs
#   1. `make demo` without the packages it needs: must fail with a one-line error naming them;
#   2. (root installs exactly the packages that error named)
#   3. `make demo` again: must pass, no root; prints the demo's summary line;
#   4. `make demo` once more: setup is a no-op (idempotent and fast);
#   5. the unit tier with the test setup (`scripts/setup.sh --dev`).
# Each step's time is printed as `fresh-machine: STEP took N s`.
#
# Package registries reach the container as they reach this machine: the host's apt sources and
# pip configuration (and the CA bundle pip names) are mounted read-only; the host network is
# shared. Nothing else from the host goes in but the repository (read-only, cloned inside).
#
# Usage: scripts/fresh-machine.sh [--keep]       Needs root (docker, debootstrap for the base).
# Env:   SHOAL_BASE_IMAGE (the Debian 12 base, scripts/make-base-image.sh; built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

keep=0
[[ ${1:-} == --keep ]] && keep=1
log() { printf '[%s] fresh-machine: %s\n' "$(date +%T)" "$*" >&2; }

bash scripts/docker-daemon.sh
bash scripts/make-base-image.sh
base=$(bash scripts/make-base-image.sh --print-tag)

mounts=(-v "$PWD:/src:ro")
for f in /etc/apt/sources.list /etc/apt/sources.list.d /etc/apt/apt.conf.d /etc/apt/trusted.gpg.d \
  /usr/share/keyrings /etc/pip.conf; do
  [[ -e $f ]] && mounts+=(-v "$f:$f:ro")
done
# Only the host's sources: the base image's own list would name the same mirror twice.
[[ -e /etc/apt/sources.list ]] || mounts+=(-v /dev/null:/etc/apt/sources.list:ro)
# The CA bundle pip is told to use (by the environment or /etc/pip.conf), at the same path.
ca=${PIP_CERT:-$(sed -n 's/^ *cert *= *//p' /etc/pip.conf 2>/dev/null | head -1)}
[[ -n $ca && -f $ca ]] && mounts+=(-v "$ca:$ca:ro")
envs=()
for name in $(compgen -e); do
  case $name in PIP_* | http_proxy | https_proxy | HTTP_PROXY | HTTPS_PROXY | no_proxy | NO_PROXY)
    envs+=(-e "$name") ;;
  esac
done

name=shoal-fresh-$$
cleanup() { ((keep)) || docker rm -f "$name" >/dev/null 2>&1 || true; }
trap cleanup EXIT
docker run -d --name "$name" --network host "${mounts[@]}" "${envs[@]}" "$base" sleep infinity >/dev/null

# as_root CMD / as_user CMD: run a shell command in the container, timed.
run() {
  local who=$1 step=$2
  shift 2
  local start=$SECONDS
  log "$step"
  if [[ $who == root ]]; then
    docker exec "$name" bash -euo pipefail -c "$*"
  else
    docker exec -u dev -w /home/dev "$name" bash -euo pipefail -c "$*"
  fi
  log "$step took $((SECONDS - start)) s"
}

run root "add make and git; a fresh Debian has no venv module" '
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq make git >/dev/null
  apt-get purge -y -qq python3-venv "python3.*-venv" >/dev/null 2>&1 || true
  ! python3 -c "import ensurepip" 2>/dev/null
  useradd -m -s /bin/bash dev'
# The repository belongs to the host's root, not to the container's user: trust it for the clone.
run user "clone" 'git config --global --add safe.directory "*" && git clone -q /src shoal'

log "make demo without the packages it needs, no root"
set +e
out=$(docker exec -u dev -w /home/dev/shoal "$name" make demo 2>&1)
status=$?
set -e
printf '%s\n' "$out" | tail -3 >&2
if ((status == 0)); then
  log "FAIL: make demo passed without redis-server and python3-venv"
  exit 1
fi
missing=$(printf '%s\n' "$out" | sed -n 's/^setup: missing Debian packages: \([^;]*\);.*/\1/p')
[[ -n $missing ]] || { log "FAIL: no one-line error naming the missing packages"; exit 1; }
log "refused with: missing Debian packages: $missing"

run root "install what the error named: $missing" "
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null"
run user "make demo (first run, no root)" 'cd shoal && make demo'
run user "make demo (second run: setup is a no-op)" 'cd shoal && make demo'
run user "unit tier with the test setup" '
  cd shoal && bash scripts/setup.sh --dev
  # The chart tests need helm, built with Go by `make test` (scripts/k8s-binaries.sh); the
  # container has no Go, so they run on the host only.
  .venv/bin/python -m pytest tests/unit -q -p no:cacheprovider --ignore=tests/unit/charts'
log "passed"

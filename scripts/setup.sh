#!/usr/bin/env bash
# Install what Shoal's demo (and with --k8s, its tests) need; idempotent, and fast when done.
#
#   Python: a project virtual environment, $SHOAL_VENV (default .venv/), holding shoal (with
#     --dev or --k8s, also its dev extra: the test and lint tools), never the system Python
#     (Debian's refuses `pip install`: PEP 668). Re-runs skip pip unless pyproject.toml changed.
#   Debian packages, when missing: python3-venv (Debian ships venv's pip separately), redis-server;
#     with --k8s also openssl, postgresql and chromium (the test tiers; the dashboard's browser
#     tests drive Debian's chromium through Playwright, which downloads no browser). Installed with apt-get as root or
#     through sudo; without either, a one-line error names what to install.
#   With --k8s: the dev extra, and the pinned Kubernetes test binaries (built from Go modules,
#     cached per version).
#
# Usage: scripts/setup.sh [--dev] [--k8s]      Env: SHOAL_VENV, PYTHON (the interpreter to make it from)
set -euo pipefail
cd "$(dirname "$0")/.."

with_k8s=0
extra=""
for arg in "$@"; do
  case $arg in
    --dev) extra="[dev]" ;;
    --k8s) with_k8s=1 extra="[dev]" ;;
    *) echo "setup: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

VENV=${SHOAL_VENV:-.venv}
PYTHON=${PYTHON:-python3}
log() { printf 'setup: %s\n' "$*" >&2; }

command -v "$PYTHON" >/dev/null || { log "no $PYTHON: install Python 3.11+ (apt-get install python3)"; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  { log "$PYTHON is $("$PYTHON" -V 2>&1); Shoal needs Python 3.11+"; exit 1; }

# --- Debian packages ---------------------------------------------------------------------------
missing=()
# Debian's python3 lacks ensurepip until python3-venv (python3.X-venv) is installed.
if [[ ! -x $VENV/bin/python ]] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
  missing+=("python3-venv")
fi
command -v redis-server >/dev/null || command -v valkey-server >/dev/null || missing+=(redis-server)
if ((with_k8s)); then
  command -v openssl >/dev/null || missing+=(openssl)
  # The PostgreSQL tier of the status-store tests needs the server binaries.
  ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing+=(postgresql)
  command -v chromium >/dev/null || missing+=(chromium)
fi
if ((${#missing[@]})); then
  if [[ $(id -u) == 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null && { sudo -n true 2>/dev/null || [[ -t 0 ]]; }; then
    as_root=(sudo) # asks for the password at a terminal
  else
    log "missing Debian packages: ${missing[*]}; install them (sudo apt-get install ${missing[*]}) and re-run"
    exit 1
  fi
  log "installing ${missing[*]} from Debian"
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# --- the project virtual environment -----------------------------------------------------------
if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV ($("$PYTHON" -V 2>&1))"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
fi
# Re-install only when what it was installed from changed (the dependencies or the entry points).
# The stamp names the extra too: a demo's plain install does not satisfy the tests, while an
# install with the dev extra serves the demo as well.
stamp=$VENV/.shoal-installed
digest=$(sha256sum pyproject.toml | cut -d' ' -f1)
have=$(cat "$stamp" 2>/dev/null || true)
if [[ $have != "$digest $extra" && $have != "$digest [dev]" ]]; then
  log "installing shoal$extra into $VENV"
  start=$SECONDS
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$extra"
  echo "$digest $extra" >"$stamp"
  log "installed in $((SECONDS - start)) s"
fi

if ((with_k8s)); then
  PATH=$PWD/$VENV/bin:$PATH bash scripts/k8s-binaries.sh --with-helm
fi

#!/usr/bin/env bash
# Shoal's throughput benchmark in one command: installs what is missing, then runs
#   python bench/throughput.py "$@"      (e.g. bench/run.sh --quick, bench/run.sh --repeat 5)
# Installs: redis-server (apt, as root), the project (pip -e), BullMQ (npm ci into
# bench/peers/bullmq/node_modules), arq (its own venv, bench/.venv-peers). All gitignored.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-python3}"

say() { echo "bench/run.sh: $*" >&2; }

if ! command -v redis-server >/dev/null && ! command -v valkey-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing redis-server"
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    say "redis-server is missing: apt-get install redis-server"; exit 1
  fi
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  say "node and npm are missing (BullMQ needs Node >= 18): apt-get install nodejs npm"; exit 1
fi

if ! "$python" -c "import worker_runtime" 2>/dev/null; then
  say "installing the project into $("$python" -c 'import sys; print(sys.prefix)')"
  "$python" -m pip install -q -e "$root"
fi

bullmq="$here/peers/bullmq"
if [ ! -f "$bullmq/node_modules/.package-lock.json" ] \
   || [ "$bullmq/package-lock.json" -nt "$bullmq/node_modules/.package-lock.json" ]; then
  say "npm ci (BullMQ, pinned in package-lock.json)"
  (cd "$bullmq" && npm ci --no-audit --no-fund --loglevel=error)
fi

venv="$here/.venv-peers"
requirements="$here/peers/requirements-arq.txt"
stamp="$venv/.requirements-arq.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$requirements" "$stamp"; then
  say "installing arq into $venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$stamp"
fi

exec "$python" "$here/throughput.py" "$@"

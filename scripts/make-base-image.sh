#!/usr/bin/env bash
# Build a small local Python base image from Debian's packages, for machines that reach no
# container registry (the image's default base, python:3.11-slim, comes from Docker Hub).
#
#   debootstrap --variant=minbase bookworm + python3 (3.11), python3-venv, ca-certificates,
#   docs/caches/apt lists removed, then `docker import` as $SHOAL_BASE_IMAGE.
#
# Cached: does nothing if the image already exists (--force rebuilds it).
# Needs root (debootstrap), debootstrap and a running Docker daemon.
#
# Usage: scripts/make-base-image.sh [--force] [--print-tag]
# Env:   SHOAL_BASE_IMAGE (default shoal-base:bookworm-py311), DEBIAN_MIRROR (default: the mirror
#        apt uses here, else http://deb.debian.org/debian)
set -euo pipefail

TAG=${SHOAL_BASE_IMAGE:-shoal-base:bookworm-py311}
SUITE=bookworm # Debian 12: its python3 is 3.11, the version the project targets
PACKAGES=python3,python3-venv,ca-certificates

force=0
for arg in "$@"; do
  case $arg in
    --force) force=1 ;;
    --print-tag) echo "$TAG"; exit 0 ;;
    -h | --help) sed -n '2,13s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) echo "make-base-image: unknown argument: $arg" >&2; exit 2 ;;
  esac
done

log() { printf '[%s] make-base-image: %s\n' "$(date +%T)" "$*" >&2; }

if ((!force)) && docker image inspect "$TAG" >/dev/null 2>&1; then
  log "$TAG exists (cached)"
  exit 0
fi

if [[ $(id -u) != 0 ]]; then
  echo "make-base-image: debootstrap needs root; run as root or with sudo" >&2
  exit 1
fi
if ! command -v debootstrap >/dev/null; then
  log "installing debootstrap from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The mirror apt already uses here (deb822 or one-line format), so no other host is contacted.
mirror=${DEBIAN_MIRROR:-}
if [[ -z $mirror ]]; then
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    grep -v security | head -1 || true)
fi
if [[ -z $mirror ]]; then
  mirror=$(sed -n 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\) .*/\2/p' /etc/apt/sources.list 2>/dev/null |
    grep -v security | head -1 || true)
fi
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
start=$(date +%s)
log "debootstrap $SUITE ($PACKAGES) from $mirror"
if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$mirror" \
  >"$work/debootstrap.log" 2>&1; then
  tail -20 "$work/debootstrap.log" >&2
  [[ -f $root/debootstrap/debootstrap.log ]] && tail -20 "$root/debootstrap/debootstrap.log" >&2
  exit 1
fi

# Slim it: nothing at run time reads docs, man pages, translations or apt's caches.
rm -rf "${root:?}"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/usr/share/common-licenses \
  "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
  "$root"/var/log/* "$root"/tmp/* "${root:?}"/var/tmp/* "${root:?}"/dev/*
# ...and packages installed later on top of this base do not bring them back.
cat >"$root/etc/dpkg/dpkg.cfg.d/01-shoal-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
EOF
chmod 1777 "$root/tmp" "$root/var/tmp"

tar --numeric-owner -C "$root" -c . |
  docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'ENV LANG=C.UTF-8' \
    -c 'CMD ["python3"]' \
    -m "Debian $SUITE minbase + $PACKAGES (scripts/make-base-image.sh)" \
    - "$TAG" >/dev/null

size=$(docker image inspect -f '{{.Size}}' "$TAG")
log "built $TAG in $(($(date +%s) - start))s, $((size / 1024 / 1024)) MiB"

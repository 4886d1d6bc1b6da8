#!/usr/bin/env bash
# Makes a Debian bookworm base image without any registry: debootstrap
# (minbase) from Debian's mirror, cached as a tarball under ~/.cache/berth,
# then `berth import`ed. Default tags: debian:bookworm and debian:stable.
#
#   scripts/debian-image.sh                                  # debian:bookworm, debian:stable
#   scripts/debian-image.sh --include python3,python3-flask --tag server/debian
#
# Needs root, debootstrap, and a berth daemon (BERTH_HOST or the default socket).
set -euo pipefail
BERTH=${BERTH:-berth}
include=""
tags=()
while [ $# -gt 0 ]; do
  case "$1" in
    --include) include="$2"; shift 2 ;;
    --tag) tags+=("$2"); shift 2 ;;
    *) echo "usage: $0 [--include pkg,pkg] [--tag name[:tag]]..." >&2; exit 2 ;;
  esac
done
[ ${#tags[@]} -gt 0 ] || tags=(debian:bookworm debian:stable)
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }

cache="${XDG_CACHE_HOME:-$HOME/.cache}/berth"
mkdir -p "$cache"
key=$(printf '%s' "$include" | sha256sum | cut -c1-12)
tarball="$cache/debian-bookworm-$key.tar"
if [ ! -s "$tarball" ]; then
  rootfs=$(mktemp -d /tmp/berth-debootstrap.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  args=(--variant=minbase)
  [ -n "$include" ] && args+=("--include=$include")
  echo "debootstrap bookworm ${include:+(with $include) }into $rootfs" >&2
  debootstrap "${args[@]}" bookworm "$rootfs" http://deb.debian.org/debian >/dev/null
  # Leave apt's lists out: images carry none, as Debian's official ones.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  tar -C "$rootfs" --numeric-owner -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
fi
"$BERTH" import -c 'CMD ["bash"]' "$tarball" "${tags[0]}" >/dev/null
for t in "${tags[@]:1}"; do "$BERTH" tag "${tags[0]}" "$t"; done
echo "${tags[*]}"

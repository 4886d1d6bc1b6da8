#!/usr/bin/env bash
# Writes a busybox root filesystem tar to stdout, from Debian's busybox-static.
set -euo pipefail
BB=${BUSYBOX:-/bin/busybox}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"/{bin,etc,tmp,root,var,dev,proc,sys,home}
chmod 1777 "$dir/tmp"
cp "$BB" "$dir/bin/busybox"
for app in $("$BB" --list); do
  [ "$app" = busybox ] || ln -sf busybox "$dir/bin/$app"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' > "$dir/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$dir/etc/group"
tar -C "$dir" --numeric-owner -cf - .

#!/usr/bin/env bash
# The main job: the seed's Docker demo, end to end, on this machine, offline.
#
# 1. builds berth, 2. starts a private berth daemon, 3. makes base images from
# local packages (busybox from busybox-static; Debian bookworm with python3 and
# flask from debootstrap, cached under ~/.cache/berth), 4. runs the seed's Flask
# app (examples/docker_demo/server.py) in a container and asks it over HTTP which
# OS it runs on, 5. shows ps/logs/exec/stop/rm, and cleans up.
#
# Until `berth build` lands, the Flask image is made with debootstrap and
# `berth import`, and the app's source is bind-mounted into the container.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

if [ "$(id -u)" != 0 ]; then echo "run as root" >&2; exit 1; fi
need=()
for p in libseccomp-dev pkg-config busybox-static debootstrap curl tini iproute2 nftables; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

cargo build --release --locked -p berth
BERTH="$PWD/target/release/berth"
STATE=$(mktemp -d /tmp/berth-demo.XXXXXX)
RUN=/run/berth-demo-$$
SOCK="$RUN/berth.sock"
export BERTH_HOST="unix://$SOCK"

cleanup() {
  set +e
  for id in $("$BERTH" ps -aq 2>/dev/null); do "$BERTH" rm -f "$id" >/dev/null 2>&1; done
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  grep -o "$STATE[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link del bdemo0 2>/dev/null
  nft delete table ip berth_demo 2>/dev/null
  rm -rf "$STATE" "$RUN"
  for cg in /sys/fs/cgroup/*/berth-demo /sys/fs/cgroup/berth-demo; do [ -d "$cg" ] && rmdir "$cg" 2>/dev/null; done
}
trap cleanup EXIT

"$BERTH" daemon --root "$STATE/root" --exec-root "$RUN" -H "$BERTH_HOST" --cgroup-parent berth-demo \
  --bridge bdemo0 --nft-table berth_demo --default-subnet 10.199.0.0/24 2>"$STATE/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done

echo "== busybox image from Debian's busybox-static"
./scripts/busybox-rootfs.sh | "$BERTH" import -c 'CMD ["sh"]' - busybox:latest
"$BERTH" run --rm busybox echo "hello from a berth container"

echo "== Debian images from Debian's packages (debootstrap, cached)"
BERTH="$BERTH" ./scripts/debian-image.sh
BERTH="$BERTH" ./scripts/debian-image.sh --include python3,python3-flask --tag server/debian
"$BERTH" images

echo "== the seed's Flask app in a container"
"$BERTH" run -d --name web -p 8000:3000 -v "$PWD/examples/docker_demo:/app:ro" -w /app \
  server/debian python3 server.py
for _ in $(seq 100); do curl -fs http://localhost:8000 >/dev/null 2>&1 && break; sleep 0.1; done
echo -n "curl http://localhost:8000 -> "; curl -fsS http://localhost:8000
"$BERTH" ps
"$BERTH" exec web python3 -c 'import platform; print("exec:", platform.system())'
"$BERTH" logs --tail 2 web
"$BERTH" stop -t 2 web
"$BERTH" rm web
echo "demo finished"

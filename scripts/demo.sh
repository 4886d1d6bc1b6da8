#!/usr/bin/env bash
# The main job: the seed's Docker demo, end to end, on this machine, offline.
#
# 1. builds berth, 2. starts a private berth daemon, 3. makes base images from
# local packages (busybox from busybox-static; debian:stable from debootstrap,
# cached under ~/.cache/berth), 4. builds the seed's Dockerfiles
# (examples/docker_demo: deb.Dockerfile, and py.Dockerfile on a python:bookworm
# image that is itself built FROM debian), 5. runs the Flask app with
# -p 8000:3000 and asks it over HTTP which OS it runs on, 6. shows
# ps/logs/exec/history/stop/rm, and cleans up.
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

echo "== debian:stable from Debian's packages (debootstrap, cached)"
BERTH="$BERTH" ./scripts/debian-image.sh

echo "== berth build -t server/debian -f examples/docker_demo/deb.Dockerfile examples/docker_demo"
"$BERTH" build -t server/debian -f examples/docker_demo/deb.Dockerfile examples/docker_demo
echo "== the same build again: every step comes from the cache"
"$BERTH" build -t server/debian -f examples/docker_demo/deb.Dockerfile examples/docker_demo | grep -c "Using cache" | sed 's/$/ steps from the cache/'
"$BERTH" images

echo "== the seed's Flask app in a container"
"$BERTH" run -d --name web -p 8000:3000 server/debian
for _ in $(seq 100); do curl -fs http://localhost:8000 >/dev/null 2>&1 && break; sleep 0.1; done
echo -n "curl http://localhost:8000 -> "; curl -fsS http://localhost:8000

echo "== python:bookworm built FROM debian, then the seed's py.Dockerfile on it"
"$BERTH" build -q -t python:bookworm -f examples/docker_demo/python.Dockerfile examples/docker_demo
# pip fetches from PyPI over HTTPS. Where the host reaches it through a
# TLS-intercepting proxy whose CA only the host trusts, hand the host's CA bundle
# to pip inside the base image (harmless where there is no such proxy).
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  CA_CTX="$STATE/ca-context"
  mkdir -p "$CA_CTX"
  cp /etc/ssl/certs/ca-certificates.crt "$CA_CTX/host-ca.crt"
  printf 'FROM python:bookworm\nCOPY host-ca.crt /etc/ssl/certs/host-ca.crt\nENV PIP_CERT=/etc/ssl/certs/host-ca.crt\n' >"$CA_CTX/Dockerfile"
  "$BERTH" build -q -t python:bookworm "$CA_CTX" >/dev/null
fi
"$BERTH" build -t server/python -f examples/docker_demo/py.Dockerfile examples/docker_demo
"$BERTH" run -d --name web-py -p 8001:3000 server/python
for _ in $(seq 100); do curl -fs http://localhost:8001 >/dev/null 2>&1 && break; sleep 0.1; done
echo -n "curl http://localhost:8001 -> "; curl -fsS http://localhost:8001
"$BERTH" history server/python
"$BERTH" ps
"$BERTH" exec web python3 -c 'import platform; print("exec:", platform.system())'
"$BERTH" logs --tail 2 web
"$BERTH" stop -t 2 web web-py
"$BERTH" rm web web-py
echo "demo finished"

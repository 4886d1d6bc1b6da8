#!/usr/bin/env bash
# Image builds, side by side in one run: the seed's deb.Dockerfile (Debian base,
# apt-get install python3-flask, COPY, CMD) built by berth and, when dockerd is
# installed (apt docker.io), by a private dockerd with its classic builder.
# Cold = --no-cache (apt-get over the network each time); cached = unchanged
# rebuild. Both use --network host for RUN so the comparison is the builders,
# not bridge set-up. Prints medians and berth/docker ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
COLD_RUNS=${COLD_RUNS:-3}
CACHED_RUNS=${CACHED_RUNS:-20}
command -v hyperfine >/dev/null || { apt-get install -y -qq hyperfine >/dev/null; }
cargo build --release --locked -p berth >/dev/null
BERTH="$PWD/target/release/berth"
DOCKER=/usr/local/bin/docker
[ -x "$DOCKER" ] || DOCKER=$(command -v docker || true)
W=$(mktemp -d /tmp/berth-bench-build.XXXXXX)
RUN=/run/berth-bench-build-$$
export BERTH_HOST="unix://$RUN/berth.sock"
CTX=examples/docker_demo
DF=$CTX/deb.Dockerfile

cleanup() {
  set +e
  for id in $("$BERTH" ps -aq 2>/dev/null); do "$BERTH" rm -f "$id" >/dev/null 2>&1; done
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  if [ -n "${DOCKERD:-}" ]; then
    kill "$DOCKERD" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$DOCKERD" 2>/dev/null || break; sleep 0.1; done
  fi
  grep -o "$W[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link del bbuild0 2>/dev/null
  nft delete table ip berth_bbuild 2>/dev/null
  rm -rf "$W" "$RUN"
  for cg in /sys/fs/cgroup/*/berth-bbuild /sys/fs/cgroup/berth-bbuild; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
  # dockerd's own cgroups (under "docker") for its build containers.
  for cg in /sys/fs/cgroup/*/docker; do
    [ -n "${DOCKERD:-}" ] && [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}
trap cleanup EXIT

"$BERTH" daemon --root "$W/root" --exec-root "$RUN" -H "$BERTH_HOST" --cgroup-parent berth-bbuild \
  --bridge bbuild0 --nft-table berth_bbuild --default-subnet 10.197.0.0/24 2>"$W/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$RUN/berth.sock" ] && break; sleep 0.05; done
BERTH="$BERTH" ./scripts/debian-image.sh >/dev/null
# The very tarball debian-image.sh imported (no extra packages), for dockerd too.
TARBALL="${XDG_CACHE_HOME:-$HOME/.cache}/berth/debian-bookworm-$(printf '' | sha256sum | cut -c1-12).tar"

echo "== berth build (cold: --no-cache, $COLD_RUNS runs)"
"$BERTH" build -q --network host -t bench/deb -f $DF $CTX >/dev/null
hyperfine -N --runs "$COLD_RUNS" --export-json "$W/berth-cold.json" \
  "$BERTH build -q --no-cache --network host -t bench/deb -f $DF $CTX" >/dev/null
echo "== berth build (fully cached, $CACHED_RUNS runs)"
hyperfine -N --warmup 2 --runs "$CACHED_RUNS" --export-json "$W/berth-cached.json" \
  "$BERTH build -q --network host -t bench/deb -f $DF $CTX" >/dev/null

HAVE_DOCKER=""
if command -v dockerd >/dev/null && [ -n "$DOCKER" ]; then
  HAVE_DOCKER=1
  mkdir -p "$W/docker" "$W/docker-exec"
  dockerd --data-root "$W/docker" --exec-root "$W/docker-exec" -H "unix://$W/docker.sock" \
    --pidfile "$W/docker.pid" --iptables=false --ip6tables=false --bridge=none \
    --storage-driver overlay2 >"$W/dockerd.log" 2>&1 &
  DOCKERD=$!
  for _ in $(seq 200); do [ -S "$W/docker.sock" ] && break; sleep 0.05; done
  export DOCKER_HOST="unix://$W/docker.sock" DOCKER_BUILDKIT=0 DOCKER_CONFIG="$W/docker-config"
  "$DOCKER" import -c 'CMD ["bash"]' "$TARBALL" debian:stable >/dev/null
  echo "== docker build, classic builder (cold: --no-cache, $COLD_RUNS runs)"
  "$DOCKER" build -q --network host -t bench/deb -f $DF $CTX >/dev/null 2>&1
  hyperfine -N --runs "$COLD_RUNS" --export-json "$W/docker-cold.json" \
    "$DOCKER build -q --no-cache --network host -t bench/deb -f $DF $CTX" >/dev/null
  echo "== docker build, classic builder (fully cached, $CACHED_RUNS runs)"
  hyperfine -N --warmup 2 --runs "$CACHED_RUNS" --export-json "$W/docker-cached.json" \
    "$DOCKER build -q --network host -t bench/deb -f $DF $CTX" >/dev/null
  unset DOCKER_HOST
fi

python3 - "$W" "$HAVE_DOCKER" <<'PY'
import json, sys, os
w, have = sys.argv[1], sys.argv[2]
def med(name):
    p = os.path.join(w, name + ".json")
    return json.load(open(p))["results"][0]["median"] if os.path.exists(p) else None
rows = [("cold (--no-cache)", med("berth-cold"), med("docker-cold")),
        ("fully cached", med("berth-cached"), med("docker-cached"))]
print()
print(f"{'build of deb.Dockerfile':24} {'berth':>10} {'docker':>10} {'berth/docker':>13}")
for name, b, d in rows:
    ds = f"{d*1000:8.0f}ms" if d else "       n/a"
    ratio = f"{b/d:13.2f}" if d else "          n/a"
    print(f"{name:24} {b*1000:8.0f}ms {ds} {ratio}")
if not have:
    print("(dockerd not installed: apt-get install docker.io for the side-by-side figures;"
          " DESIGN.md's reference: docker 6.6 s cold, 44 ms fully cached)")
PY

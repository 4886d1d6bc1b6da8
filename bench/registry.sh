#!/usr/bin/env bash
# Push and pull of a ~200 MB image (four layers of random data on busybox)
# through a local docker-registry, berth against `skopeo copy`, in one run.
# Each round gets a fresh registry (new port, empty storage) so neither tool can
# skip or mount blobs; pulls go into empty stores (berth: after rmi; skopeo: a
# new OCI layout dir). Prints median seconds, MB/s and berth/skopeo ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
for b in docker-registry skopeo; do
  command -v $b >/dev/null || apt-get install -y -qq $b >/dev/null
done
cargo build --release --locked -p berth >/dev/null
BERTH="$PWD/target/release/berth"
W=$(mktemp -d /tmp/berth-bench-reg.XXXXXX)
RUN=/run/berth-bench-reg-$$
export BERTH_HOST="unix://$RUN/berth.sock"
REG_PID=""

cleanup() {
  set +e
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  for id in $("$BERTH" ps -aq 2>/dev/null); do "$BERTH" rm -f "$id" >/dev/null 2>&1; done
  [ -n "${DAEMON:-}" ] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  grep -o "$W[^ ]*" /proc/self/mountinfo 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null
  rm -rf "$W" "$RUN"
  for cg in /sys/fs/cgroup/*/berth-breg /sys/fs/cgroup/berth-breg; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}
trap cleanup EXIT

start_registry() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null || true
  local dir="$W/registry-$1"
  mkdir -p "$dir"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$PORT
EOF
  docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
  REG_PID=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.05; done
  REG=127.0.0.1:$PORT
}

now() { date +%s.%N; }

"$BERTH" daemon --root "$W/root" --exec-root "$RUN" -H "$BERTH_HOST" --cgroup-parent berth-breg \
  --bridge none 2>"$W/daemon.log" &
DAEMON=$!
for _ in $(seq 100); do [ -S "$RUN/berth.sock" ] && break; sleep 0.05; done
./scripts/busybox-rootfs.sh | "$BERTH" import -c 'CMD ["sh"]' - busybox:latest >/dev/null
mkdir -p "$W/ctx"
cat >"$W/ctx/Dockerfile" <<'EOF'
FROM busybox
RUN dd if=/dev/urandom of=/a bs=1M count=60 2>/dev/null
RUN dd if=/dev/urandom of=/b bs=1M count=60 2>/dev/null
RUN dd if=/dev/urandom of=/c bs=1M count=40 2>/dev/null
RUN dd if=/dev/urandom of=/d bs=1M count=40 2>/dev/null
EOF
"$BERTH" build -q --network none -t bench/big:1 "$W/ctx" >/dev/null
"$BERTH" save -o "$W/big.tar" bench/big:1
SIZE=$(stat -c %s "$W/big.tar")

for r in $(seq "$ROUNDS"); do
  start_registry "$r"
  "$BERTH" tag bench/big:1 "$REG/berth/big:1"
  t0=$(now); "$BERTH" push "$REG/berth/big:1" >/dev/null; t1=$(now)
  echo "berth-push $(awk "BEGIN{print $t1-$t0}")" >>"$W/times"
  t0=$(now)
  skopeo copy -q --dest-tls-verify=false "docker-archive:$W/big.tar" "docker://$REG/skopeo/big:1" >/dev/null
  t1=$(now)
  echo "skopeo-push $(awk "BEGIN{print $t1-$t0}")" >>"$W/times"
  # Every reference goes (rmi -f of the ID), so the layers leave the store.
  "$BERTH" rmi -f "$("$BERTH" image inspect -f '{{.Id}}' bench/big:1)" >/dev/null
  t0=$(now); "$BERTH" pull "$REG/berth/big:1" >"$W/pull-$r.log"; t1=$(now)
  [ "$r" = 1 ] && { echo "-- first berth pull:"; grep -v "^[0-9a-f]*: Pulling fs" "$W/pull-$r.log" | tail -4; } >&2
  echo "berth-pull $(awk "BEGIN{print $t1-$t0}")" >>"$W/times"
  "$BERTH" tag "$REG/berth/big:1" bench/big:1
  t0=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$REG/berth/big:1" "oci:$W/oci-$r:big" >/dev/null
  t1=$(now)
  echo "skopeo-pull $(awk "BEGIN{print $t1-$t0}")" >>"$W/times"
  rm -rf "$W/oci-$r" "$W/registry-$r/data"
done

python3 - "$W/times" "$SIZE" <<'PY'
import sys, statistics
times = {}
for line in open(sys.argv[1]):
    k, v = line.split()
    times.setdefault(k, []).append(float(v))
size_mb = int(sys.argv[2]) / 1e6
print(f"\nimage: {size_mb:.0f} MB in 5 layers; {len(times['berth-push'])} rounds, medians")
print(f"{'':6} {'berth':>16} {'skopeo':>16} {'berth/skopeo throughput':>24}")
for op in ("push", "pull"):
    b = statistics.median(times[f"berth-{op}"])
    s = statistics.median(times[f"skopeo-{op}"])
    print(f"{op:6} {b:6.2f}s {size_mb/b:6.0f}MB/s {s:6.2f}s {size_mb/s:6.0f}MB/s {s/b:24.2f}")
PY

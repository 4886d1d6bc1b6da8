#!/usr/bin/env bash
# The Kubernetes API server under load, embedded store against etcd in one run:
# 100 watchers on a namespace, 10,000 pods created by 100 concurrent clients,
# then 20 lists of the namespace. Prints create throughput and latency
# percentiles, list latency, whether every watcher saw every pod, and resident
# memory of the server (and of etcd), with embedded/etcd ratios.
# Targets (issue 6): mutating p99 < 1 s, list of 10,000 pods p99 < 1 s,
# server RSS < 150 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
PODS=${PODS:-10000}
CONC=${CONC:-100}
WATCHERS=${WATCHERS:-100}
LISTS=${LISTS:-20}
command -v etcd >/dev/null || apt-get install -y -qq etcd-server >/dev/null
cargo build --release --locked -p berth >/dev/null
BERTH="$PWD/target/release/berth"
W=$(mktemp -d /tmp/berth-bench-kube.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$W"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.05; done; return 1; }

run_one() { # name [etcd-endpoint]
  local name=$1 ep=${2:-} port
  port=$(free_port)
  local args=(server --listen "127.0.0.1:$port" --data-dir "$W/$name" --write-kubeconfig "$W/$name.kubeconfig" --log-level warn)
  [ -n "$ep" ] && args+=(--datastore-endpoint "$ep")
  "$BERTH" "${args[@]}" 2>"$W/$name.log" &
  local pid=$!
  PIDS+=("$pid")
  wait_port "$port"
  sleep 0.5
  local out
  out=$(python3 bench/kube_load.py "$W/$name.kubeconfig" "$PODS" "$CONC" "$WATCHERS" "$LISTS")
  local rss; rss=$(rss_mb "$pid")
  local etcd_rss=""
  [ -n "${ETCD_PID:-}" ] && [ -n "$ep" ] && etcd_rss=$(rss_mb "$ETCD_PID")
  echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); d['server_rss_mb']=$rss; d['etcd_rss_mb']='$etcd_rss'; print(json.dumps(d))" >"$W/$name.json"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

run_one embedded
cport=$(free_port); pport=$(free_port)
etcd --name bench --data-dir "$W/etcd" --listen-client-urls "http://127.0.0.1:$cport" \
  --advertise-client-urls "http://127.0.0.1:$cport" --listen-peer-urls "http://127.0.0.1:$pport" \
  --initial-advertise-peer-urls "http://127.0.0.1:$pport" --initial-cluster "bench=http://127.0.0.1:$pport" \
  >"$W/etcd.log" 2>&1 &
ETCD_PID=$!
PIDS+=("$ETCD_PID")
wait_port "$cport"
run_one etcd "http://127.0.0.1:$cport"

python3 - "$W/embedded.json" "$W/etcd.json" <<'PY'
import json, sys
e = json.load(open(sys.argv[1])); t = json.load(open(sys.argv[2]))
print(f"{e['pods']} pods, {e['concurrency']} concurrent creators, {e['watchers']} watchers")
print(f"{'':28}{'embedded':>12}{'etcd':>12}{'ratio':>8}")
for k, label in [("create_per_s", "creates/s"), ("create_p50_ms", "create p50 ms"), ("create_p99_ms", "create p99 ms"),
                 ("list_p50_ms", "list 10k p50 ms"), ("list_p99_ms", "list 10k p99 ms"), ("server_rss_mb", "server RSS MB")]:
    print(f"{label:28}{e[k]:>12.1f}{t[k]:>12.1f}{e[k]/t[k]:>8.2f}")
print(f"{'watch events (min/watcher)':28}{e['watch_delivered_min']:>12}{t['watch_delivered_min']:>12}")
print(f"etcd RSS MB: {t['etcd_rss_mb']}; list body {e['list_mb']:.1f} MB")
ok = all(x['create_p99_ms'] < 1000 and x['list_p99_ms'] < 1000 for x in (e, t)) and e['server_rss_mb'] < 150
print("targets (p99 < 1 s, RSS < 150 MB):", "met" if ok else "NOT met")
PY

#!/usr/bin/env python3
"""Load for bench/kube.sh: against one Kubernetes API server, start N watchers on a
namespace, create P pods with C concurrent clients, then time namespaced lists of all of
them, and print one JSON line of figures. Uses only the standard library (http.client
over TLS with the admin client certificate from the kubeconfig)."""
import base64, http.client, json, os, ssl, statistics, sys, tempfile, threading, time

def kubeconfig(path):
    text = open(path).read()
    vals = {}
    for line in text.splitlines():
        line = line.strip()
        for k in ("certificate-authority-data", "client-certificate-data", "client-key-data", "server"):
            if line.startswith(k + ":"):
                vals[k] = line.split(":", 1)[1].strip().strip('"')
    d = tempfile.mkdtemp(prefix="bench-kube-")
    files = {}
    for k in ("certificate-authority-data", "client-certificate-data", "client-key-data"):
        p = os.path.join(d, k)
        open(p, "wb").write(base64.b64decode(vals[k]))
        files[k] = p
    ctx = ssl.create_default_context(cafile=files["certificate-authority-data"])
    ctx.load_cert_chain(files["client-certificate-data"], files["client-key-data"])
    host, port = vals["server"].split("//", 1)[1].rsplit(":", 1)
    return host, int(port), ctx

def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]

def main():
    kc, pods, conc, watchers, lists = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    host, port, ctx = kubeconfig(kc)
    def conn():
        return http.client.HTTPSConnection(host, port, context=ctx, timeout=120)
    c = conn()
    c.request("POST", "/api/v1/namespaces", json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "bench"}}), {"Content-Type": "application/json"})
    c.getresponse().read()
    seen = [0] * watchers
    stop = threading.Event()
    def watch(i):
        # A raw TLS socket and bytes.count keep the client's cost per event small, so
        # the figures measure the server rather than Python's HTTP parsing.
        import socket
        raw = socket.create_connection((host, port))
        sock = ctx.wrap_socket(raw, server_hostname=host)
        sock.sendall(b"GET /api/v1/namespaces/bench/pods?watch=true&timeoutSeconds=600 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
        pat = b'{"type":"ADDED"'
        tail = b""
        while not stop.is_set():
            data = sock.recv(1 << 20)
            if not data:
                break
            buf = tail + data
            seen[i] += buf.count(pat)
            tail = buf[-(len(pat) - 1):]
    wts = [threading.Thread(target=watch, args=(i,), daemon=True) for i in range(watchers)]
    for t in wts:
        t.start()
    time.sleep(1.0)
    lat = []
    lock = threading.Lock()
    def pod(n):
        return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p-%05d" % n, "labels": {"app": "bench", "shard": str(n % 10)}},
            "spec": {"containers": [{"name": "c", "image": "server/debian:v1", "ports": [{"containerPort": 3000}],
                     "env": [{"name": "K%d" % j, "value": "v" * 40} for j in range(8)],
                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}})
    def creator(k):
        cc = conn()
        mine = []
        for n in range(k, pods, conc):
            body = pod(n)
            t0 = time.perf_counter()
            cc.request("POST", "/api/v1/namespaces/bench/pods", body, {"Content-Type": "application/json"})
            r = cc.getresponse(); r.read()
            mine.append(time.perf_counter() - t0)
            if r.status != 201:
                print("create failed", r.status, file=sys.stderr)
        with lock:
            lat.extend(mine)
    t0 = time.perf_counter()
    ts = [threading.Thread(target=creator, args=(k,)) for k in range(conc)]
    for t in ts: t.start()
    for t in ts: t.join()
    create_s = time.perf_counter() - t0
    deadline = time.time() + 120
    while time.time() < deadline and min(seen) < pods:
        time.sleep(0.1)
    delivered = min(seen)
    list_lat = []
    size = 0
    for _ in range(lists):
        lc = conn()
        t1 = time.perf_counter()
        lc.request("GET", "/api/v1/namespaces/bench/pods")
        r = lc.getresponse(); body = r.read()
        list_lat.append(time.perf_counter() - t1)
        size = len(body)
        n = len(json.loads(body)["items"])
        if n != pods:
            print("list returned", n, file=sys.stderr)
    stop.set()
    print(json.dumps({
        "pods": pods, "concurrency": conc, "watchers": watchers,
        "create_per_s": pods / create_s,
        "create_p50_ms": pct(lat, 50) * 1000, "create_p99_ms": pct(lat, 99) * 1000,
        "watch_delivered_min": delivered,
        "list_p50_ms": pct(list_lat, 50) * 1000, "list_p99_ms": pct(list_lat, 99) * 1000,
        "list_mb": size / 1e6,
    }))
    sys.stdout.flush()
    os._exit(0)

main()

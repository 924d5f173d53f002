#!/usr/bin/env python3
# Usage: dotnet build src/LfmSharp.Cli -c Release && python3 benchmarks/one-client-vs-bench.py MODEL.gguf N_GEN RUNS PORT
# Interleaved: `lfm bench` decode (tgN) vs one streamed client through `lfm serve`. Prints per-run tok/s and ratios.
import json, subprocess, sys, time, urllib.request, statistics, os, signal
model, n, runs, port = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
LFM = ["dotnet", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src/LfmSharp.Cli/bin/Release/net10.0/lfm.dll")]
srv = subprocess.Popen(LFM + ["serve", "-m", model, "--port", str(port), "--slots", "4", "-t", "2", "-c", "1024"],
                       stdout=open(os.path.join(os.environ.get("TMPDIR", "/tmp"), "lfm-one-client-serve.log"), "w"), stderr=subprocess.STDOUT)
try:
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1); break
        except Exception: time.sleep(0.5)
    def timed(m):
        body = json.dumps({"prompt": "Once upon a time there was", "max_tokens": m, "temperature": 0, "stream": True,
                           "stream_options": {"include_usage": True}}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", body, {"Content-Type": "application/json"})
        t0 = time.perf_counter(); tokens = 0
        with urllib.request.urlopen(req, timeout=600) as r:
            for line in r:
                line = line.decode().strip()
                if line.startswith("data: {"):
                    d = json.loads(line[6:])
                    if d.get("usage"): tokens = d["usage"]["completion_tokens"]
        return time.perf_counter() - t0, tokens
    def client():
        # Decode speed as a streamed client sees it, without the prefill: the difference of a long and a short run.
        ts, ns = timed(8); tl, nl = timed(n)
        return (nl - ns) / (tl - ts), nl
    def bench():
        out = subprocess.run(LFM + ["bench", "-m", model, "-p", "0", "-n", str(n), "-r", "2", "-t", "2", "--json"], capture_output=True, text=True).stdout
        for l in out.splitlines():
            if l.startswith("{") and "tg" in l: return json.loads(l)["tps_mean"]
    client()  # warm-up
    b, s = [], []
    for i in range(runs):
        b.append(bench()); v, t = client(); s.append(v)
        print(f"run {i}: bench tg{n} {b[-1]:.1f} tok/s, serve 1 client {v:.1f} tok/s ({t} tokens), ratio {v/b[-1]:.3f}", flush=True)
    print(f"median ratio serve/bench: {statistics.median([x/y for x, y in zip(s, b)]):.3f}")
finally:
    srv.send_signal(signal.SIGTERM); srv.wait(timeout=30)

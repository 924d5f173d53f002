#!/usr/bin/env bash
# Soak test (outside normal CI): N clients for D seconds against a loopback `lfm serve`, mixing plain chat (streamed
# and not), structured output (json_schema and json_object), required tool calls and clients that disconnect
# mid-stream. Every minute it prints requests, 5xx, p50/p95 time to first token and the server's resident memory
# (VmRSS); at the end it stops the server with SIGTERM and checks it exits 0.
#
#   scripts/soak.sh [-m MODEL.gguf] [-c CLIENTS] [-d SECONDS] [-p PORT] [-t THREADS] [--slots N] [--client-timeout S]
# Defaults: the small fixture model, 32 clients, 600 s. LFM=path/to/lfm overrides the CLI binary.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="$root/tests/TestData/fixtures/models/lfm2-small-q4_0.gguf"
clients=32 duration=600 port=18480 threads="" slots=4 client_timeout=300
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m) model="$2"; shift 2 ;;
    -c) clients="$2"; shift 2 ;;
    -d) duration="$2"; shift 2 ;;
    -p) port="$2"; shift 2 ;;
    -t) threads="$2"; shift 2 ;;
    --slots) slots="$2"; shift 2 ;;
    --client-timeout) client_timeout="$2"; shift 2 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
lfm="${LFM:-$root/src/LfmSharp.Cli/bin/Release/net10.0/lfm}"
if [[ ! -x "$lfm" ]]; then
  dotnet build "$root/src/LfmSharp.Cli/LfmSharp.Cli.csproj" -c Release -v q -nologo >/dev/null
fi
log="$(mktemp)"
args=(serve -m "$model" --port "$port" --slots "$slots" --queue 256 --ctx 2048)
[[ -n "$threads" ]] && args+=(-t "$threads")
"$lfm" "${args[@]}" >"$log" 2>&1 &
server=$!
trap 'kill -9 $server 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 600); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.2
done
echo "soak: $clients clients for $duration s against $(basename "$model") (server pid $server, $slots slots)"

status=0
python3 - "$port" "$clients" "$duration" "$server" "$client_timeout" <<'PY' || status=$?
import http.client, json, random, sys, threading, time
port, clients, duration, pid, client_timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
lock = threading.Lock()
stats = {"requests": 0, "5xx": 0, "4xx": 0, "disconnects": 0, "errors": 0}
ttfts = []
end = time.time() + duration

SCHEMA = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 12}, "age": {"type": "integer", "minimum": 0, "maximum": 120},
          "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}}, "required": ["name", "age"]}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather of a city",
          "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 16}}, "required": ["city"]}}}]

def body(kind, i):
    b = {"messages": [{"role": "user", "content": f"request {i}: say something about the number {random.randint(0, 10**6)}"}],
         "max_tokens": random.choice([8, 16, 32]), "temperature": 0.8, "seed": i}
    if kind == "schema":
        b["response_format"] = {"type": "json_schema", "json_schema": {"name": "p", "schema": SCHEMA}}
        b["max_tokens"] = 64
    elif kind == "json":
        b["response_format"] = {"type": "json_object"}
        b["max_tokens"] = 48
    elif kind == "tools":
        b["tools"] = TOOLS
        b["tool_choice"] = "required"
        b["max_tokens"] = 48
    elif kind in ("stream", "disconnect"):
        b["stream"] = True
    return b

def one(i):
    kind = random.choice(["chat", "stream", "schema", "json", "tools", "disconnect"])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=client_timeout)
    t0 = time.time()
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body(kind, i)), {"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status >= 500:
            with lock: stats["5xx"] += 1
        elif r.status >= 400:
            with lock: stats["4xx"] += 1
        if r.status != 200:
            r.read(); return
        if kind in ("stream", "disconnect"):
            first = None
            while True:
                line = r.readline()
                if not line: break
                if line.startswith(b"data: ") and b'"content":"' in line and b'"content":""' not in line and first is None:
                    first = time.time() - t0
                    if kind == "disconnect":
                        with lock: stats["disconnects"] += 1
                        conn.sock.close()   # the client goes away mid-stream
                        break
            if first is not None:
                with lock: ttfts.append(first)
        else:
            r.read()
            with lock: ttfts.append(time.time() - t0)   # whole answer: an upper bound on TTFT
        with lock: stats["requests"] += 1
    except Exception as e:
        with lock: stats["errors"] += 1
    finally:
        conn.close()

def worker(w):
    i = w
    while time.time() < end:
        one(i); i += clients

def rss():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0

def pct(xs, p):
    if not xs: return float("nan")
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p * len(xs)))]

threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(clients)]
for t in threads: t.start()
start = time.time(); minute = 0; rows = []
while any(t.is_alive() for t in threads):
    time.sleep(1)
    if time.time() - start >= (minute + 1) * 60 or not any(t.is_alive() for t in threads):
        minute += 1
        with lock:
            s = dict(stats); xs = list(ttfts); ttfts.clear()
        m = rss(); rows.append(m)
        print(f"minute {minute:2d}: requests {s['requests']:6d}  5xx {s['5xx']}  4xx {s['4xx']}  client errors {s['errors']}  disconnects {s['disconnects']:5d}"
              f"  TTFT p50 {pct(xs, .5):6.2f} s  p95 {pct(xs, .95):6.2f} s  VmRSS {m:7.1f} MiB", flush=True)
for t in threads: t.join()
if len(rows) >= 4:
    window = rows[2:]   # minutes 3..end
    print(f"soak: VmRSS minutes 3..{len(rows)}: min {min(window):.1f} MiB, max {max(window):.1f} MiB, spread {100 * (max(window) - min(window)) / min(window):.1f} %")
print(f"soak: total requests {stats['requests']}, 5xx {stats['5xx']}, client errors {stats['errors']}")
sys.exit(1 if stats["5xx"] else 0)
PY
kill -TERM $server
rc=0; wait $server || rc=$?
trap - EXIT; rm -f "$log"
echo "soak: server exited $rc after SIGTERM"
[[ $status -eq 0 && $rc -eq 0 ]]

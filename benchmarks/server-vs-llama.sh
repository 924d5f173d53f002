#!/usr/bin/env bash
# `lfm serve` against native `llama-server` on the same GGUF, the same slots, threads, context per slot and KV type,
# under the same streaming load, one server after the other (never both at once). For each server and workload it
# prints aggregate tok/s, TTFT p50/p95 (the first chunk carrying generated text or reasoning, not the role chunk),
# latency p50/p95, mean completion tokens and the ratios, as a markdown table; and one client's stream rate against
# `lfm bench` decode on the same file and threads.
#
#   benchmarks/server-vs-llama.sh [-m MODEL.gguf] [--slots N] [-t THREADS] [--ctx PER_SLOT] [-d SECONDS]
#       [--max-tokens N] [--clients "1 4 8 16"] [--mix-clients N] [--workloads "distinct shared-system conversation identical"]
#       [--port P] [--out DIR] [--skip-llama]
#
# Defaults: a synthetic 1.2B-shape Q4_0 (`lfm synth --shape lfm2.5-1.2b --type q4_0`, made once), 4 slots, 2 threads,
# 2048 tokens per slot, f16 KV, 60 s per run, max_tokens 64 at temperature 0. The "distinct" workload runs with each
# client count; the others with --mix-clients (default: the slot count).
# llama-server runs with its own defaults for prompt caching (--cache-prompt on, --ctx-checkpoints 32, --cache-ram
# 8192, --cache-reuse 0): the reference as users run it, not crippled. `-c` is its total context, split across slots,
# so it gets slots × per-slot context. Requests send `ignore_eos` (both servers honour it: every answer runs to max_tokens), and
# the table shows mean completion tokens next to the rates.
# LFM=path/to/lfm overrides the CLI binary; LLAMA_BIN=folder overrides the llama.cpp binaries (otherwise
# ~/.cache/llamacpp-ref/build/bin, built with ../shared/tools/build-llamacpp.sh when missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
model="" slots=4 threads=2 ctx=2048 duration=60 max_tokens=64 clients="1 4 8 16" mix_clients="" port=18590 out="" skip_llama=0
workloads="distinct shared-system conversation identical"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -m|--model) model="$2"; shift 2 ;;
    --slots) slots="$2"; shift 2 ;;
    -t|--threads) threads="$2"; shift 2 ;;
    --ctx) ctx="$2"; shift 2 ;;
    -d|--duration) duration="$2"; shift 2 ;;
    --max-tokens) max_tokens="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --mix-clients) mix_clients="$2"; shift 2 ;;
    --workloads) workloads="$2"; shift 2 ;;
    --port) port="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --skip-llama) skip_llama=1; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "server-vs-llama.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
mix_clients="${mix_clients:-$slots}"
out="${out:-$(mktemp -d)}"
mkdir -p "$out"

lfm="${LFM:-$root/src/LfmSharp.Cli/bin/Release/net10.0/lfm}"
if [[ ! -x "$lfm" ]]; then
  dotnet build "$root/src/LfmSharp.Cli/LfmSharp.Cli.csproj" -c Release -v q -nologo >/dev/null
fi
if [[ -z "$model" ]]; then
  model="$out/synth-1.2b-q4_0.gguf"
  [[ -f "${LFM_SYNTH_CACHE:-$HOME/.cache/lfmsharp-bench}/synth-1.2b-q4_0.gguf" ]] && model="${LFM_SYNTH_CACHE:-$HOME/.cache/lfmsharp-bench}/synth-1.2b-q4_0.gguf"
  if [[ ! -f "$model" ]]; then
    model="${LFM_SYNTH_CACHE:-$HOME/.cache/lfmsharp-bench}/synth-1.2b-q4_0.gguf"
    mkdir -p "$(dirname "$model")"
    echo "making $model (lfm synth --shape lfm2.5-1.2b --type q4_0)" >&2
    "$lfm" synth --shape lfm2.5-1.2b --type q4_0 -o "$model" >&2
  fi
fi
[[ -f "$model" ]] || { echo "server-vs-llama.sh: no model file $model" >&2; exit 2; }

if [[ $skip_llama -eq 0 ]]; then
  llama_bin="${LLAMA_BIN:-$HOME/.cache/llamacpp-ref/build/bin}"
  if [[ ! -x "$llama_bin/llama-server" ]]; then
    llama_bin="$(bash "$root/../shared/tools/build-llamacpp.sh" | tail -n 1)"
  fi
  [[ -x "$llama_bin/llama-server" ]] || { echo "server-vs-llama.sh: no llama-server in $llama_bin" >&2; exit 2; }
fi

server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
trap stop_server EXIT INT TERM

wait_ready() {  # $1: log file
  for _ in $(seq 1 600); do
    if curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1; then return 0; fi
    kill -0 "$server_pid" 2>/dev/null || { echo "server-vs-llama.sh: the server exited; its log:" >&2; tail -n 20 "$1" >&2; exit 1; }
    sleep 0.5
  done
  echo "server-vs-llama.sh: the server did not become ready in 300 s" >&2; exit 1
}

run_load() {  # $1: label, $2: jsonl file
  local label="$1" file="$2"
  local common=(--url "http://127.0.0.1:$port/" --max-tokens "$max_tokens" --temperature 0 --ignore-eos --label "$label" --json)
  # One short request first, so neither server's first measured request pays for lazy initialisation.
  "$lfm" loadtest "${common[@]}" --workload identical --clients 1 --duration 0.1 >/dev/null
  for w in $workloads; do
    if [[ "$w" == distinct ]]; then counts="$clients"; else counts="$mix_clients"; fi
    for c in $counts; do
      echo "  $label: $w, $c clients, ${duration} s" >&2
      "$lfm" loadtest "${common[@]}" --workload "$w" --clients "$c" --duration "$duration" >>"$file" || echo "  ($label: no request of this run completed)" >&2
    done
  done
}

echo "model $model; $slots slots, $threads threads, $ctx tokens per slot, f16 KV; ${duration} s per run; results in $out" >&2
bench_tps="$("$lfm" bench -m "$model" -p 0 -n "$max_tokens" -t "$threads" -r 3 --json | sed -n 's/.*"test":"tg[0-9]*".*"tps_mean":\([0-9.]*\).*/\1/p' | head -n 1)"
echo "lfm bench decode (tg$max_tokens, $threads threads): ${bench_tps:-?} tok/s" >&2

: >"$out/lfm.jsonl"
"$lfm" serve -m "$model" --host 127.0.0.1 --port "$port" --slots "$slots" --queue 256 --ctx "$ctx" -t "$threads" --kv f16 >"$out/lfm-serve.log" 2>&1 &
server_pid=$!
wait_ready "$out/lfm-serve.log"
run_load "lfm serve" "$out/lfm.jsonl"
stop_server

: >"$out/llama.jsonl"
if [[ $skip_llama -eq 0 ]]; then
  LD_LIBRARY_PATH="$llama_bin${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$llama_bin/llama-server" -m "$model" --host 127.0.0.1 --port "$port" \
    -np "$slots" -c $((slots * ctx)) -t "$threads" -tb "$threads" -ctk f16 -ctv f16 --no-webui >"$out/llama-server.log" 2>&1 &
  server_pid=$!
  wait_ready "$out/llama-server.log"
  run_load "llama-server" "$out/llama.jsonl"
  stop_server
fi

echo
echo "**$(basename "$model")**, $slots slots, -t $threads, $ctx tokens per slot, f16 KV, temperature 0, max_tokens $max_tokens, ${duration} s per run, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(date -u +%Y-%m-%dT%H:%MZ)"
echo
"$lfm" loadtest --compare "$out/lfm.jsonl" "$out/llama.jsonl" ${bench_tps:+--bench-tps "$bench_tps"}

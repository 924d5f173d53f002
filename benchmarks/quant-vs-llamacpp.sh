#!/usr/bin/env bash
# Side-by-side prompt (ppN) and generation (tgN) speed of LfmSharp and NATIVE llama.cpp on the same synthetic
# LFM2.5-1.2B-shaped GGUF, one file per quant type, and prints a markdown table with the ratios (ours / theirs).
# Issue 14's table: 2 threads, pp512, tg100, for Q2_K, Q3_K_M, IQ4_XS, IQ4_NL, Q5_K_M, Q6_K and one IQ2 type.
# Run it on a quiet machine: other load skews both columns, llama.cpp's spinning threads the most.
#
# Knobs (environment): TYPES, MODELS (a folder of q-<type>.gguf files: used when there, else made there and kept),
# MAKE_ONLY=1 (with MODELS: only make the missing files),
# THREADS (2), PP (512), TG (100), REPS (3), LLAMA_BIN (native build's bin folder,
# default ~/.cache/llamacpp-ref/build/bin, see ../shared/tools/build-llamacpp.sh), WORK (scratch folder for the
# ~0.5-1.3 GB model files; each is deleted after its row).
# AVX2-only leg on an AVX-512 machine: benchmarks/build-llamacpp-avx2.sh, then run this with DOTNET_EnableAVX512=0
# DOTNET_EnableAVXVNNI=0 and LLAMA_BIN set to the folder it prints.
# lfm synth writes every llama-quantize mix it knows (IQ4_NL/IQ4_XS included, byte-identical to llama-quantize without
# an imatrix). For the IQ1/IQ2/IQ3 and TQ types (llama-quantize's searches take 15+ minutes per file at 1.2B), the
# script takes llama-quantize's per-tensor TYPES from a narrow model of the same layer pattern (hidden/ffn 256, same
# heads, quantized from a Q8_0 synth file with a synthetic imatrix: a positive mean square activation per column, as
# llama-imatrix writes it, legacy .dat format), then has lfm synth write the 1.2B file with exactly those types
# (--tensor-type per tensor); lfm synth fills grid/ternary blocks with random valid codes, so both engines run the same
# valid file of llama-quantize's mix in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
TYPES=${TYPES:-"q2_k q3_k_m iq4_xs iq4_nl q5_k_m q6_k iq2_xs"}
THREADS=${THREADS:-2}
PP=${PP:-512}
TG=${TG:-100}
REPS=${REPS:-3}
LLAMA_BIN=${LLAMA_BIN:-$HOME/.cache/llamacpp-ref/build/bin}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/quant-vs-llamacpp.XXXXXX")}
SHAPE=lfm2.5-1.2b
SYNTH_TYPES=" q2_k q3_k_s q3_k_m q3_k_l q4_0 q4_1 q5_0 q5_1 q8_0 q4_k_s q4_k_m q5_k_s q5_k_m q6_k iq4_nl iq4_xs f16 bf16 f32 "

for tool in llama-bench llama-quantize; do
    [[ -x "$LLAMA_BIN/$tool" ]] || { echo "error: $LLAMA_BIN/$tool not found (build llama.cpp natively, or set LLAMA_BIN)" >&2; exit 1; }
done
command -v python3 >/dev/null || { echo "error: python3 is needed to read the JSON results" >&2; exit 1; }
mkdir -p "$WORK"
cleanup() { rm -f "$WORK"/*.gguf "$WORK"/imatrix.dat; rmdir "$WORK" 2>/dev/null || true; }
trap cleanup EXIT

dotnet build src/LfmSharp.Cli/LfmSharp.Cli.csproj -c Release -v q -nologo >&2
LFM=(dotnet src/LfmSharp.Cli/bin/Release/net10.0/lfm.dll)

# A legacy-format importance matrix for every 2-D weight of $1 (names and row lengths from lfm inspect).
write_imatrix() {
    "${LFM[@]}" inspect "$1" | python3 -c '
import re, struct, sys
rows = []
for line in sys.stdin:
    m = re.match(r"\s+(\S+\.weight)\s+\S+\s+\[(\d+), (\d+)\]", line)
    if m:
        rows.append((m.group(1), int(m.group(2))))
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<i", len(rows)))
    for name, n in rows:
        b = name.encode()
        f.write(struct.pack("<i", len(b)) + b + struct.pack("<ii", 1, n))
        f.write(struct.pack("<%df" % n, *[0.25 + (j * 37 % 101) / 50 for j in range(n)]))
    f.write(struct.pack("<i", 1))
' "$2"
}

make_model() {   # type, output file
    local t=$1 out=$2
    if [[ -n "${MODELS:-}" && -f "$MODELS/q-$t.gguf" ]]; then
        ln -sf "$MODELS/q-$t.gguf" "$out"   # made earlier
    elif [[ "$SYNTH_TYPES" == *" $t "* ]]; then
        "${LFM[@]}" synth -s "$SHAPE" -t "$t" -q -o "$out" >&2
    else
        # llama-quantize's mix for $t on a narrow model of the same pattern, then the full shape with those types.
        local narrow="$WORK/narrow-q8_0.gguf" small="$WORK/narrow-$t.gguf"
        [[ -f "$narrow" ]] || "${LFM[@]}" synth -s "$SHAPE" --hidden 256 --ffn 256 --vocab 1024 -t q8_0 -q -o "$narrow" >&2
        [[ -f "$WORK/imatrix.dat" ]] || write_imatrix "$narrow" "$WORK/imatrix.dat"
        "$LLAMA_BIN/llama-quantize" --allow-requantize --imatrix "$WORK/imatrix.dat" "$narrow" "$small" "${t^^}" "$THREADS" >/dev/null 2>&1 \
            || { echo "error: llama-quantize could not make $t" >&2; return 1; }
        local overrides=()
        while read -r name type; do overrides+=(--tensor-type "^${name//./\\.}\$=$type"); done < <(
            "${LFM[@]}" inspect "$small" | python3 -c '
import re, sys
for line in sys.stdin:
    m = re.match(r"\s+(\S+\.weight)\s+(\S+)\s+\[", line)
    if m and m.group(2).lower() not in ("f32",):
        print(m.group(1), m.group(2).lower())')
        rm -f "$small"
        "${LFM[@]}" synth -s "$SHAPE" -t q8_0 "${overrides[@]}" -q -o "$out" >&2
    fi
}

ours() {   # file → "pp tg" (tokens/s means)
    "${LFM[@]}" bench -m "$1" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" --json | python3 -c '
import json, sys
r = {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith("{") and "test" in line:
        o = json.loads(line); r[o["test"]] = o["tps_mean"]
print(r.get("pp'"$PP"'", 0), r.get("tg'"$TG"'", 0))'
}

theirs() {   # file → "pp tg"
    "$LLAMA_BIN/llama-bench" -m "$1" -p "$PP" -n "$TG" -r "$REPS" -t "$THREADS" -o json 2>/dev/null | python3 -c '
import json, sys
r = {}
for o in json.load(sys.stdin):
    key = "pp%d" % o["n_prompt"] if o["n_gen"] == 0 else "tg%d" % o["n_gen"]
    r[key] = o["avg_ts"]
print(r.get("pp'"$PP"'", 0), r.get("tg'"$TG"'", 0))'
}

ratio() { python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b > 0 else 'n/a')" "$1" "$2"; }

echo "LfmSharp vs native llama.cpp, $SHAPE shape (synthetic weights), $THREADS threads, $REPS repetitions, $(date -u +%F)"
echo
echo "| type | size | LfmSharp pp$PP | llama.cpp pp$PP | ratio | LfmSharp tg$TG | llama.cpp tg$TG | ratio |"
echo "| ---- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in $TYPES; do
    f="$WORK/q-$t.gguf"
    if [[ -n "${MODELS:-}" && ! -f "$MODELS/q-$t.gguf" ]]; then
        mkdir -p "$MODELS"
        make_model "$t" "$MODELS/q-$t.gguf.tmp" && mv "$MODELS/q-$t.gguf.tmp" "$MODELS/q-$t.gguf" || true
    fi
    [[ "${MAKE_ONLY:-}" == 1 ]] && continue
    if ! make_model "$t" "$f"; then
        echo "| ${t^^} | - | (no file) | | | | | |"
        continue
    fi
    size=$(du -mL "$f" | cut -f1)
    read -r opp otg < <(ours "$f")
    read -r tpp ttg < <(theirs "$f")
    printf '| %s | %s MiB | %.1f | %.1f | %s | %.2f | %.2f | %s |\n' "${t^^}" "$size" "$opp" "$tpp" "$(ratio "$opp" "$tpp")" "$otg" "$ttg" "$(ratio "$otg" "$ttg")"
    rm -f "$f"
done

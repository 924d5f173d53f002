#!/usr/bin/env bash
# Builds llama-bench for AVX2-only CPUs (Zen 3 and older: AVX2 + FMA + F16C + BMI2, no AVX-512, no AVX-VNNI) from the
# llama.cpp source that ../shared/tools/build-llamacpp.sh fetched, in $LLAMACPP_HOME/build-avx2, so an AVX-512 machine
# can compare both engines as an AVX2-only machine would run them (the AVX2 leg of issue 14's table):
#   bash ../shared/tools/build-llamacpp.sh && bash benchmarks/build-llamacpp-avx2.sh
#   DOTNET_EnableAVX512=0 DOTNET_EnableAVXVNNI=0 LLAMA_BIN=~/.cache/llamacpp-ref/build-avx2/bin bash benchmarks/quant-vs-llamacpp.sh
# Prints the bin folder. ~8 minutes on 2 cores (llama-bench only; llama-quantize is linked from the native build).
set -euo pipefail
home="${LLAMACPP_HOME:-$HOME/.cache/llamacpp-ref}"
bin="$home/build-avx2/bin"
if [ -x "$bin/llama-bench" ]; then echo "$bin"; exit 0; fi
[ -d "$home/src" ] && [ -x "$home/build/bin/llama-quantize" ] || { echo "error: run ../shared/tools/build-llamacpp.sh first" >&2; exit 1; }
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S "$home/src" -B "$home/build-avx2" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF \
  -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF -DBUILD_SHARED_LIBS=ON >/dev/null
cmake --build "$home/build-avx2" -j"$(nproc)" --target llama-bench >/dev/null
ln -sf "$home/build/bin/llama-quantize" "$bin/llama-quantize"
echo "$bin"

#!/usr/bin/env bash
# Runs every test: the whole suite with the machine's best SIMD paths, then the kernel and model suites again with
# AVX-512 and AVX-VNNI switched off and with all hardware intrinsics switched off (.NET 10 knobs DOTNET_EnableAVX512,
# DOTNET_EnableAVXVNNI and DOTNET_EnableHWIntrinsic; .NET 10 no longer reads DOTNET_EnableAVX512F, and a test checks
# that each leg's knobs took effect), so the narrower paths and the scalar fallbacks stay correct; then, where qemu-aarch64 is
# installed, the kernel suite on an emulated ARM64 (scripts/test-arm64.sh).
# Ends with one line: "tests: N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")/.."

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
log_dir=$(mktemp -d)
status=0

# The chat page's browser tests (ChatPage*Tests) drive Debian's Chromium through chromedriver; they skip without it.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== apt-get install chromium chromium-driver"
  sudo=$([ "$(id -u)" -ne 0 ] && command -v sudo || true)
  { $sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium chromium-driver; } \
    > "$log_dir/apt-chromium.log" 2>&1 || echo "chromium could not be installed: the browser tests will be skipped"
fi

# The chat-template corpus (llama.cpp's models/templates, not committed) that the template tests compare against.
echo "== template corpus"
bash scripts/template-corpus.sh || { echo "scripts/template-corpus.sh failed (needs npm)"; status=1; }

echo "== format (scripts/format.sh --check)"
bash scripts/format.sh --check > "$log_dir/format.log" 2>&1 \
  || { head -20 "$log_dir/format.log"; echo "not formatted: run scripts/format.sh"; status=1; }

echo "== build"
if ! dotnet build LfmSharp.slnx -c Release -nologo -v q 2>&1 | tee "$log_dir/build.log" | grep -E "error|Warn|Elapsed"; then :; fi
if grep -q " error " "$log_dir/build.log"; then
  echo "build failed"
  echo "tests: 0 passed, 1 failed"
  exit 1
fi

# The server tests drive npm clients (openai, ai, @ai-sdk/openai; each test installs its packages on first use):
# node and npm come from Debian when missing.
if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== apt-get install nodejs npm"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; } >/dev/null 2>&1 \
    || echo "could not install nodejs/npm: the node client tests will be skipped"
fi

run_leg() { # name, env..., -- projects...
  local name=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  for proj in "$@"; do
    echo "== $name: $proj"
    env "${envs[@]}" dotnet test "$proj" -c Release --no-build -nologo 2>&1 | tee -a "$log_dir/leg-$name.log" \
      | grep -E -A2 "^(Passed!|Failed!)|\[FAIL\]|Error Message" | head -80
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  done
}

all_projects=(tests/*/*.Tests.csproj)
run_leg full DOTNET_TieredPGO=1 -- "${all_projects[@]}"
isa_projects=(tests/LfmSharp.Kernels.Tests/LfmSharp.Kernels.Tests.csproj tests/LfmSharp.Tests/LfmSharp.Tests.csproj)
run_leg avx2-only DOTNET_EnableAVX512=0 DOTNET_EnableAVXVNNI=0 LFMSHARP_ISA_CEILING=avx2 -- "${isa_projects[@]}"
run_leg no-simd DOTNET_EnableHWIntrinsic=0 LFMSHARP_ISA_CEILING=none -- "${isa_projects[@]}"
# The decode kernels' CPU-tuned choice (CpuTuning.ZmmDecode) forced both ways, so the form this CPU does not pick keeps
# its bit-for-bit tests on it too (one of the two runs repeats the full leg's choice; ~2 s each).
for zmm in 0 1; do
  echo "== zmm-decode=$zmm: decode tests"
  LFMSHARP_ZMM_DECODE=$zmm dotnet test tests/LfmSharp.Kernels.Tests/LfmSharp.Kernels.Tests.csproj -c Release --no-build -nologo \
    --filter "FullyQualifiedName~InterleavedWeight|FullyQualifiedName~MatVec8|FullyQualifiedName~GroupedKernels" 2>&1 | tee -a "$log_dir/leg-zmm-decode.log" \
    | grep -E -A2 "^(Passed!|Failed!)|\[FAIL\]|Error Message" | head -40
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done

# The packages as a user installs them: a console app on the local feed running the README sample, the dotnet tool,
# the NativeAOT binary (scripts/test-packages.sh; its "Passed! - ..." line joins the sum below).
echo "== packages (scripts/test-packages.sh)"
bash scripts/test-packages.sh --no-build > "$log_dir/leg-packages.log" 2>&1 || status=1
grep -aE "^(==|ok|FAIL|skip|Passed!|Failed!)" "$log_dir/leg-packages.log" | head -40

# The kernel suite on an emulated ARM64 (sdot, AdvSimd, scalar) where qemu-aarch64 is installed; skipped otherwise.
echo "== arm64 (scripts/test-arm64.sh)"
bash scripts/test-arm64.sh > "$log_dir/arm64.log" 2>&1 || status=1
grep -E "^(== |Arm64|FAIL|arm64:)" "$log_dir/arm64.log" | head -40

# Sum the per-project summaries: "Passed!  - Failed: 0, Passed: 12, Skipped: 0, Total: 12, ..." (and the ARM64 run's
# "tests: N passed, N failed, N skipped", rewritten to that shape).
{ cat "$log_dir"/leg-*.log 2>/dev/null
  grep -E "^tests:" "$log_dir/arm64.log" | tail -1 \
    | sed -E 's/tests: ([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?/Passed! - Failed: \2, Passed: \1, Skipped: 0\3/; s/Skipped: 0, ([0-9]+) skipped/Skipped: \1/'
} | grep -aE "^(Passed!|Failed!)" \
  | sed -E 's/.*Failed: *([0-9]+), Passed: *([0-9]+), Skipped: *([0-9]+).*/\1 \2 \3/' \
  | awk -v st=$status '{f+=$1; p+=$2; s+=$3} END {
      if (st != 0 && f == 0) f = 1;
      line = sprintf("tests: %d passed, %d failed", p, f); if (s > 0) line = line sprintf(", %d skipped", s); print line }'
rm -rf "$log_dir"
exit $status

#!/usr/bin/env bash
# The kernel tests on an emulated ARM64 (qemu-aarch64 user mode): publishes tests/arm64 for linux-arm64 and runs it
# three times — with the dot-product extension (sdot), with plain AdvSimd (DOTNET_EnableArm64Dp=0), and with no
# hardware intrinsics (scalar). Needs qemu-user and the arm64 C runtime (Debian: qemu-user libc6-arm64-cross
# libstdc++6-arm64-cross libgcc-s1-arm64-cross) and the .NET linux-arm64 runtime pack (restored from NuGet).
# Prints "arm64: skipped (...)" and exits 0 when any of that is missing; otherwise ends with
# "tests: N passed, N failed[, N skipped]" summed over the three runs.
set -uo pipefail
cd "$(dirname "$0")/.."
sysroot=${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}   # where Debian's *-arm64-cross packages put the arm64 C runtime
if ! command -v qemu-aarch64 >/dev/null || [ ! -e "$sysroot/lib/ld-linux-aarch64.so.1" ]; then
  echo "arm64: skipped (needs qemu-aarch64 and $sysroot)"
  exit 0
fi
out=tests/arm64/bin/publish
publish_log=tests/arm64/bin/publish.log
mkdir -p tests/arm64/bin
if ! dotnet publish tests/arm64/LfmSharp.Kernels.Arm64.csproj -c Release -r linux-arm64 --self-contained -o "$out" -nologo -v q > "$publish_log" 2>&1; then
  echo "arm64: skipped (publish for linux-arm64 failed, see $publish_log)"
  exit 0
fi
# qemu-user does not see code the JIT writes through a second (writable) mapping: W^X off under emulation.
export QEMU_LD_PREFIX=$sysroot DOTNET_EnableWriteXorExecute=0
status=0; p=0; f=0; s=0
for knobs in "" "DOTNET_EnableArm64Dp=0" "DOTNET_EnableHWIntrinsic=0"; do
  echo "== arm64 ${knobs:-(all paths)}"
  log=$(env $knobs timeout 1200 qemu-aarch64 -cpu max "$out/LfmSharp.Kernels.Tests" 2>&1)
  [ $? -eq 0 ] || status=1
  echo "$log" | grep -E "^(Arm64|FAIL|tests:)" | head -40
  line=$(echo "$log" | grep -E "^tests:" | tail -1)
  p=$((p + $(echo "$line" | sed -nE 's/.* ([0-9]+) passed.*/\1/p' | grep . || echo 0)))
  f=$((f + $(echo "$line" | sed -nE 's/.* ([0-9]+) failed.*/\1/p' | grep . || echo 1)))
  s=$((s + $(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p' | grep . || echo 0)))
done
[ $status -eq 0 ] || [ $f -gt 0 ] || f=1
echo "tests: $p passed, $f failed, $s skipped"
exit $status

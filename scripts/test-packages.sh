#!/usr/bin/env bash
# Tests what a user installs, not the projects: packs every package into a local feed, then in a temporary folder
#   1. creates a console app referencing LfmSharp + LfmSharp.Extensions.AI from that feed and runs the README's
#      library sample verbatim (the ```csharp block under "## Library"); the model file it names is a link to the
#      tiny fixture (LFMSHARP_SAMPLE_MODEL to use another GGUF), so not one character of the sample is changed;
#   2. installs the LfmSharp.Cli dotnet tool from the feed and runs `lfm --version` and `lfm run -m <fixture> -n 4 "hi"`;
#   3. publishes `lfm` as a NativeAOT single file for linux-x64 and runs the same two commands with it.
# --no-build: pack what the Release build left (scripts/test.sh builds first). LFMSHARP_SKIP_AOT=1 skips step 3.
# Ends with a dotnet-test-style line, "Passed! - Failed: 0, Passed: N, Skipped: 0, Total: N", that scripts/test.sh sums.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
build_flag=""; [ "${1:-}" = "--no-build" ] && build_flag="--no-build"
fixture=${LFMSHARP_SAMPLE_MODEL:-$root/tests/TestData/fixtures/models/lfm2-tiny-q4_0.gguf}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lfmsharp-packages.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
passed=0; failed=0; skipped=0
check() { # name, command...: runs it, logs its output, counts it
  local name=$1; shift
  local t0=$SECONDS
  if "$@" > "$tmp/out.txt" 2>&1; then
    passed=$((passed + 1)); echo "ok   $name ($((SECONDS - t0)) s)"; tail -n 3 "$tmp/out.txt" | sed 's/^/     | /'
  else
    failed=$((failed + 1)); echo "FAIL $name ($((SECONDS - t0)) s)"; tail -n 30 "$tmp/out.txt" | sed 's/^/     | /'
  fi
}
finish() {
  local verdict="Passed!"; [ $failed -gt 0 ] && verdict="Failed!"
  echo "$verdict - Failed: $failed, Passed: $passed, Skipped: $skipped, Total: $((passed + failed + skipped)) - packages"
  [ $failed -eq 0 ]; exit $?
}

version=$(dotnet msbuild src/LfmSharp/LfmSharp.csproj -getProperty:PackageVersion -nologo 2>/dev/null | tr -d '[:space:]')
feed=$tmp/feed
echo "== packages $version -> $feed"
check "dotnet pack LfmSharp.slnx" dotnet pack LfmSharp.slnx -c Release $build_flag -o "$feed" -nologo -v q
for id in LfmSharp LfmSharp.Kernels LfmSharp.Gguf LfmSharp.Tokenizers LfmSharp.Extensions.AI LfmSharp.Server LfmSharp.Cli; do
  check "$id.$version.nupkg + .snupkg" test -s "$feed/$id.$version.nupkg" -a -s "$feed/$id.$version.snupkg"
done
# LfmSharp.Synthetic (synthetic models for synth/demo/bench) is tooling: inside the tool package, never a package.
check "the lfm tool carries LfmSharp.Synthetic.dll" python3 -c "import sys, zipfile; sys.exit(not any(n.endswith('/LfmSharp.Synthetic.dll') for n in zipfile.ZipFile('$feed/LfmSharp.Cli.$version.nupkg').namelist()))"
check "no LfmSharp.Synthetic package" sh -c "! ls '$feed' | grep -q '^LfmSharp\.Synthetic\.'"
[ $failed -eq 0 ] || finish

# Our packages go to a fresh cache (a rerun with the same version must not see a stale copy); everything else is
# read from the usual global cache as a fallback folder, so nothing is downloaded twice.
global=$(dotnet nuget locals global-packages -l | sed 's/^global-packages: //')
export NUGET_PACKAGES=$tmp/nuget
cat > "$tmp/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration>
  <packageSources>
    <clear />
    <add key="local" value="$feed" />
    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
  </packageSources>
  <fallbackPackageFolders><add key="global" value="$global" /></fallbackPackageFolders>
</configuration>
XML

echo "== README sample in a new console app"
app=$tmp/app
sample() {
  dotnet new console -o "$app" -n ReadmeSample --force > /dev/null &&
  awk '/^## Library/ {lib=1} lib && /^```csharp/ {on=1; next} on && /^```/ {exit} on {print}' README.md > "$app/Program.cs" &&
  [ -s "$app/Program.cs" ] &&
  cp "$tmp/nuget.config" "$app/" &&
  (cd "$app" && dotnet add package LfmSharp --version "$version" > /dev/null &&
     dotnet add package LfmSharp.Extensions.AI --version "$version" > /dev/null &&
     dotnet build -c Release -nologo -v q -p:TreatWarningsAsErrors=true)
}
check "README sample compiles against the packages" sample
# The sample loads "LFM2.5-1.2B-Thinking-Q4_K_M.gguf" from the working folder: here, a link to the fixture.
model_name=$(grep -oE 'LanguageModel\.Load\("[^"]+"' "$app/Program.cs" | sed -E 's/.*"(.*)"/\1/')
run_sample() { mkdir -p "$tmp/run" && ln -sf "$fixture" "$tmp/run/$model_name" && (cd "$tmp/run" && dotnet "$app/bin/Release/net10.0/ReadmeSample.dll"); }
check "README sample runs on $(basename "$fixture")" run_sample

echo "== dotnet tool install LfmSharp.Cli"
tools=$tmp/tools
check "dotnet tool install LfmSharp.Cli $version" \
  dotnet tool install LfmSharp.Cli --tool-path "$tools" --version "$version" --configfile "$tmp/nuget.config"
check "lfm --version (tool) prints $version" sh -c "'$tools/lfm' --version | tee /dev/stderr | grep -qF '$version'"
check "lfm run -n 4 (tool)" "$tools/lfm" run -m "$fixture" -n 4 "hi"

echo "== NativeAOT lfm (linux-x64)"
if [ "${LFMSHARP_SKIP_AOT:-0}" = 1 ]; then
  skipped=$((skipped + 2)); echo "skip NativeAOT (LFMSHARP_SKIP_AOT=1)"
else
  source scripts/aot-toolchain.sh
  aot=$tmp/aot
  publish() {
    ensure_aot_toolchain &&
    dotnet publish src/LfmSharp.Cli/LfmSharp.Cli.csproj -c Release -r linux-x64 -p:PublishAot=true -o "$aot" -nologo -v q \
      | tee "$tmp/publish.log" && ! grep -E "warning (IL|NETSDK)" "$tmp/publish.log" && test -x "$aot/lfm"
  }
  check "dotnet publish -r linux-x64 -p:PublishAot=true (no trim/AOT warnings)" publish
  check "lfm --version (NativeAOT) prints $version" sh -c "'$aot/lfm' --version | tee /dev/stderr | grep -qF '$version'"
  check "lfm run -n 4 (NativeAOT)" "$aot/lfm" run -m "$fixture" -n 4 "hi"
fi
finish

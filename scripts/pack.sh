#!/usr/bin/env bash
# Produces everything a user installs, into artifacts/ (ARTIFACTS=dir to change):
#   artifacts/packages/*.nupkg + *.snupkg   LfmSharp (+ .Kernels, .Gguf, .Tokenizers, same version), LfmSharp.Extensions.AI,
#                                           LfmSharp.Server, LfmSharp.Cli (the `lfm` dotnet tool, which carries
#                                           LfmSharp.Synthetic inside: that project is not a package of its own)
#   artifacts/bin/<rid>/lfm                 the NativeAOT single-file `lfm` for each RID in $LFMSHARP_AOT_RIDS
#                                           (default: linux-x64; empty: none; NativeAOT cannot cross OSes, see README)
# The version comes from Directory.Build.props (VersionPrefix / VersionSuffix).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
out=${ARTIFACTS:-artifacts}
rids=${LFMSHARP_AOT_RIDS-linux-x64}  # set but empty: packages only

echo "== pack -> $out/packages"
rm -rf "$out/packages"
dotnet pack LfmSharp.slnx -c Release -o "$out/packages" -p:ContinuousIntegrationBuild=true -nologo -v q
ls -l "$out/packages"

source scripts/aot-toolchain.sh
ensure_aot_toolchain
for rid in $rids; do
  echo "== NativeAOT lfm for $rid -> $out/bin/$rid"
  dotnet publish src/LfmSharp.Cli/LfmSharp.Cli.csproj -c Release -r "$rid" -p:PublishAot=true \
    -p:ContinuousIntegrationBuild=true -o "$out/bin/$rid" -nologo -v q
  rm -f "$out/bin/$rid"/*.dbg "$out/bin/$rid"/*.pdb "$out/bin/$rid"/*.xml  # the single file is the artifact
  ls -l "$out/bin/$rid"
done

#!/usr/bin/env bash
# Applies the style that .editorconfig declares: whitespace, code style and the analyzer code fixes at warning or above
# (dotnet format over LfmSharp.slnx). Run it after a merge; what it cannot fix, the build reports
# (EnforceCodeStyleInBuild + AnalysisLevel latest-recommended, warnings as errors).
#   scripts/format.sh           fix in place (loads and compiles every project: minutes)
#   scripts/format.sh --check   fail if a file is not formatted (what scripts/test.sh runs; seconds). Only whitespace
#                               is checked here: code style and analyzer rules are already errors in the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

if [ "${1:-}" = "--check" ]; then
  # --folder reads the files without loading the projects, so the check costs no compilation.
  exec dotnet format whitespace . --folder --verify-no-changes --exclude '**/bin/**' '**/obj/**' -v q
fi

restore=()
[ -f src/LfmSharp/obj/project.assets.json ] && restore=(--no-restore)
dotnet format LfmSharp.slnx "${restore[@]}" --severity warn -v q

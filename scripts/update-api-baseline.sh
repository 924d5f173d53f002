#!/usr/bin/env bash
# Rewrites api/<Assembly>.txt, the public-API baseline of each shipped library, from the current build
# (tests/LfmSharp.Api.Tests fails while they differ). Review and commit the diff: it is the API change.
set -euo pipefail
cd "$(dirname "$0")/.."
LFMSHARP_UPDATE_API=1 dotnet test tests/LfmSharp.Api.Tests/LfmSharp.Api.Tests.csproj -c Release -nologo -v q \
  --filter "FullyQualifiedName~PublicSurfaceMatchesBaseline"
git status --short api/

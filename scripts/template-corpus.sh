#!/usr/bin/env bash
# Extracts the chat-template corpus (llama.cpp's models/templates/*.jinja) into .cache/templates/llama.cpp/ (gitignored;
# third-party files are not committed). Source: llama.cpp as bundled in the npm package node-llama-cpp@3.22.1
# (package/llama/gitRelease.bundle, a git bundle), the same source as ../shared/tools/build-llamacpp.sh.
# Needs npm, git and tar; does nothing when the folder is already filled. Prints the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/templates/llama.cpp
if compgen -G "$dest/*.jinja" >/dev/null; then echo "$dest"; exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent node-llama-cpp@3.22.1 >/dev/null && tar xzf node-llama-cpp-3.22.1.tgz package/llama/gitRelease.bundle)
git init -q "$tmp/repo"
git -C "$tmp/repo" fetch -q "$tmp/package/llama/gitRelease.bundle" HEAD
mkdir -p "$dest.tmp"
git -C "$tmp/repo" archive FETCH_HEAD models/templates | tar x -C "$dest.tmp" --strip-components=2 --wildcards '*.jinja'
rm -rf "$dest"; mv "$dest.tmp" "$dest"
echo "$dest"

#!/usr/bin/env bash
# Sourced by scripts that publish NativeAOT: installs what the ILCompiler links with (clang, zlib1g-dev) when missing.
# Runs apt-get only where it is missing and we are root (CI); otherwise says what to install.
ensure_aot_toolchain() {
  local need=()
  command -v clang > /dev/null || need+=(clang)
  [ -e /usr/include/zlib.h ] || need+=(zlib1g-dev)
  [ ${#need[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
    echo "installing ${need[*]} (NativeAOT toolchain)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}"; } > /dev/null 2>&1 \
      || { echo "apt-get install ${need[*]} failed"; return 1; }
  else
    echo "NativeAOT needs ${need[*]}: sudo apt-get install ${need[*]}"; return 1
  fi
}

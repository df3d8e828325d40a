#!/usr/bin/env bash
# Installs the Debian packages Allot builds and runs with, if any is missing.
set -euo pipefail
packages=(libevent-dev libhiredis-dev libsqlite3-dev libhttp-parser-dev zlib1g-dev redis-server sqlite3 curl)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "allot: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The packaged redis-server may have been started by the package's init
# script; Allot starts its own on a free port, so it does not need that one.
command -v swift >/dev/null || { echo "allot: the Swift 6 toolchain is not on PATH" >&2; exit 1; }

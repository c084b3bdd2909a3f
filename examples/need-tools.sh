#!/usr/bin/env bash
# Sourced by the demo and the benchmarks: Pingora's build (zlib-ng) needs cmake and a C compiler.
# Checked before cargo starts, so that a fresh machine learns it at once, not after minutes of
# building. Installed through apt when we can (root, or sudo without a password); otherwise the
# exact command is printed and we stop.
need_build_tools() {
  local missing=()
  command -v cmake >/dev/null 2>&1 || missing+=(cmake)
  command -v cc >/dev/null 2>&1 || missing+=(build-essential)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else sudo="none"; fi
  fi
  if [ "$sudo" != "none" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Pingora's build needs: ${missing[*]}; installing with apt-get" >&2
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null && return 0
  fi
  echo "error: Pingora's build needs ${missing[*]}, which is not installed. Install it, then run this again:" >&2
  if command -v apt-get >/dev/null 2>&1; then
    echo "  sudo apt-get install -y ${missing[*]}" >&2
  else
    echo "  (Debian/Ubuntu) sudo apt-get install -y ${missing[*]}   (Fedora) sudo dnf install -y cmake gcc   (macOS) brew install cmake" >&2
  fi
  exit 1
}

#!/usr/bin/env bash
# voxgate set-up and entry point for a fresh Debian/Ubuntu machine.
#   ./dev.sh serve [voxgate serve options]   install what is missing, then start the server
#   ./dev.sh test  [pytest options]          install what is missing (plus test tools), then run every test
# Re-running is fast: system packages are checked with dpkg, Python packages are reinstalled only when
# pyproject.toml changes (a stamp file in .venv records the hash).
set -euo pipefail
cd "$(dirname "$0")"

VENV=.venv
PYTHON=${PYTHON:-python3}
# llama.cpp's default -march=native build crashes on some virtual CPUs; build a portable AVX2 one.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}"
RUNTIME_APT=(espeak-ng sox build-essential cmake ninja-build python3-venv python3-dev)
TEST_APT=(chromium)

log() { printf '\033[1;34m[voxgate]\033[0m %s\n' "$*" >&2; }

install_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
    return 0
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

install_python() {
  local extra=$1 stamp hash
  [ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
  hash=$(cat pyproject.toml | sha256sum | cut -c1-16)
  stamp="$VENV/.installed-$extra-$hash"
  [ -f "$stamp" ] && return 0
  log "installing Python packages ($extra); llama-cpp-python compiles once (about 6 minutes)"
  "$VENV/bin/pip" install -q --upgrade pip
  if [ "$extra" = dev ]; then "$VENV/bin/pip" install -q -e ".[dev]"; else "$VENV/bin/pip" install -q -e .; fi
  # The smart-turn end-of-turn model ships inside the pipecat-ai wheel; we need only its data file.
  "$VENV/bin/pip" install -q --no-deps pipecat-ai==1.14.0
  rm -f "$VENV"/.installed-"$extra"-*
  touch "$stamp"
}

cmd=${1:-}
shift || true
case "$cmd" in
  serve)
    install_apt "${RUNTIME_APT[@]}"
    install_python runtime
    exec "$VENV/bin/voxgate" serve "$@"
    ;;
  test)
    install_apt "${RUNTIME_APT[@]}" "${TEST_APT[@]}"
    install_python dev
    exec "$VENV/bin/pytest" "$@"
    ;;
  *)
    echo "usage: ./dev.sh serve|test [args]" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Installs what tests/infra runs, idempotently (a second run changes nothing and takes seconds):
#   .venv-infra            a Python venv apart from the app's .venv (checkov pins many packages),
#                          with requirements-infra.txt: checkov, pycep-parser, tree-sitter-bicep,
#                          dockerfile-parse, hadolint, PyYAML;
#   ShellCheck             the shell script linter, from the distribution's packages, when it is
#                          not on PATH;
#   .venv-infra/debs       sshd and caddy binaries unpacked (not installed: no service is set up or
#                          started) from the distribution's packages, to check docker/base/sshd_config
#                          and docker/tls/Caddyfile with the real programs.
# `apt-get update` runs only when a package cannot be found without it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${INFRA_VENV:-$root/.venv-infra}"
requirements="$root/requirements-infra.txt"
debs="$venv/debs"

log() {
  printf '[install-infra-tools] %s\n' "$*"
}

sudo_cmd=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo -n)
  fi
fi

apt_updated=0
apt_update() {
  if [[ "$apt_updated" -eq 0 ]]; then
    log "apt-get update"
    "${sudo_cmd[@]}" apt-get update -qq
    apt_updated=1
  fi
}

# apt_retry COMMAND...: run an apt command; when it fails, refresh the package lists once and retry.
apt_retry() {
  if ! "$@" >/dev/null 2>&1; then
    apt_update
    "$@" >/dev/null
  fi
}

install_venv() {
  local python="${PYTHON:-}"
  if [[ -z "$python" ]]; then
    python="$(command -v python3.11 || command -v python3)"
  fi
  if [[ -f "$venv/.installed" ]] && cmp -s "$requirements" "$venv/.installed" && [[ -x "$venv/bin/checkov" ]]; then
    log "$venv is up to date"
    return 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating $venv with $python"
    "$python" -m venv "$venv"
  fi
  log "installing requirements-infra.txt into $venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  "$venv/bin/python" -m pip check >/dev/null
  cp "$requirements" "$venv/.installed"
}

install_shellcheck() {
  if command -v shellcheck >/dev/null 2>&1; then
    log "shellcheck present ($(shellcheck --version | sed -n 's/^version: //p'))"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    log "no shellcheck and no apt-get: install shellcheck with your package manager"
    return 1
  fi
  log "installing shellcheck"
  apt_retry "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends shellcheck
}

# unpack PACKAGE...: download the packages and unpack them under $debs (no maintainer scripts run).
unpack() {
  local package work
  work="$(mktemp -d)"
  chmod 755 "$work"
  pushd "$work" >/dev/null
  for package in "$@"; do
    apt_retry apt-get download "$package"
  done
  popd >/dev/null
  mkdir -p "$debs"
  for package in "$work"/*.deb; do
    dpkg-deb -x "$package" "$debs"
  done
  rm -rf "$work"
}

install_config_checkers() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "no apt-get: skipping the sshd and caddy binaries (their tests skip, or fail under CI=true)"
    return 0
  fi
  if [[ ! -x "$debs/usr/sbin/sshd" ]]; then
    log "unpacking openssh-server"
    unpack openssh-server
    # sshd links libwrap on Debian and Ubuntu; unpack it too when the system lacks it.
    # (ldd's output is captured first: under pipefail, grep -q closing the pipe early fails it.)
    local libraries
    libraries="$(ldd "$debs/usr/sbin/sshd" 2>/dev/null || true)"
    if [[ "$libraries" == *"libwrap"*"not found"* ]]; then
      unpack libwrap0
    fi
  fi
  if [[ ! -x "$debs/usr/bin/caddy" ]]; then
    log "unpacking caddy"
    unpack caddy
  fi
  log "sshd and caddy unpacked under $debs"
}

install_venv
install_shellcheck
install_config_checkers
log "done"

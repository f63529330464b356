#!/usr/bin/env bash
# OpenSSH's server for the local compute backend, which runs one sshd per environment on a loopback
# port (shared/adapters/compute/local_ssh.py). Debian's openssh-server package is unpacked, not
# installed: no system service is set up or started, nothing listens on port 22. Into
# ${DEV8_CACHE_DIR:-~/.cache/dev8}/openssh-server, once; the client (ssh, ssh-keygen) comes from
# Debian's openssh-client. As root it also makes the unprivileged account `dev8` that SSH sessions
# run as (a root host's sshd runs in a user namespace mapping root to it: root never logs in).
# Idempotent; prints the sshd binary's path as the last line on stdout.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${DEV8_CACHE_DIR:-$HOME/.cache/dev8}"
target="$cache/openssh-server"
sshd="$target/usr/sbin/sshd"

log() { printf 'install-sshd: %s\n' "$*" >&2; }

"$here/apt-install.sh" ssh /usr/bin/ssh /usr/bin/ssh-keygen -- openssh-client >/dev/null

sudo=()
if [[ $EUID -ne 0 ]] && command -v sudo >/dev/null; then
  sudo=(sudo)
fi

# download PACKAGE...: apt-get download into the current directory; the package lists refreshed
# once when apt cannot find one without it.
download() {
  apt-get download "$@" >/dev/null 2>&1 && return 0
  log "refreshing the package lists"
  "${sudo[@]}" apt-get update -qq >/dev/null
  apt-get download "$@" >/dev/null
}

if [[ ! -x "$sshd" || ! -f "$target/.dev8-installed" ]]; then
  command -v apt-get >/dev/null || {
    log "ERROR: no apt-get here: install OpenSSH's sshd and set DEV8_SSHD_BIN to it"
    exit 1
  }
  log "unpacking openssh-server into $target"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  chmod 755 "$work"
  (cd "$work" && download openssh-server)
  rm -rf "$target.tmp"
  mkdir -p "$target.tmp"
  dpkg-deb -x "$work"/openssh-server_*.deb "$target.tmp"
  # sshd links libwrap on Debian; unpack it too when the system lacks it (ldd's output is captured
  # first: under pipefail, grep -q closing the pipe early would fail it).
  libraries="$(ldd "$target.tmp/usr/sbin/sshd" 2>/dev/null || true)"
  if [[ "$libraries" == *"libwrap"*"not found"* ]]; then
    (cd "$work" && download libwrap0)
    dpkg-deb -x "$work"/libwrap0_*.deb "$target.tmp"
  fi
  touch "$target.tmp/.dev8-installed"
  rm -rf "$target"
  mv "$target.tmp" "$target"
fi

if [[ $EUID -eq 0 ]] && ! getent passwd dev8 >/dev/null; then
  log "adding the unprivileged account dev8 (SSH sessions of a root host's workspaces)"
  # Password '*': no password can match, yet not locked ('!'), which sshd without PAM refuses.
  useradd --system --user-group --create-home --home-dir /home/dev8 --shell /bin/bash --password '*' dev8
fi
echo "$sshd"

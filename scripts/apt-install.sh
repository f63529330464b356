#!/usr/bin/env bash
# Installs Debian packages unless the programs they provide are already there.
#   scripts/apt-install.sh NAME PROGRAM... -- PACKAGE...
# Idempotent: nothing happens when every PROGRAM is executable; the package lists are refreshed
# only when apt cannot find the packages without it (`apt-get update` is the slow part). apt's
# progress goes to a log shown only when a step fails. Prints the first PROGRAM as the last line.
set -euo pipefail

name=$1
shift
programs=()
while [[ $# -gt 0 && $1 != -- ]]; do
    programs+=("$1")
    shift
done
shift # --
packages=("$@")
[[ ${#programs[@]} -gt 0 && ${#packages[@]} -gt 0 ]] || {
    echo "usage: $0 NAME PROGRAM... -- PACKAGE..." >&2
    exit 2
}

log() { printf 'install-%s: %s\n' "$name" "$*" >&2; }

present() {
    local program
    for program in "${programs[@]}"; do
        [[ -x $program ]] || return 1
    done
}

if present; then
    echo "${programs[0]}"
    exit 0
fi

command -v apt-get >/dev/null || {
    log "ERROR: ${programs[*]} missing and there is no apt-get here: install ${packages[*]} by hand"
    exit 1
}
sudo=()
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || {
        log "ERROR: installing ${packages[*]} needs root (or sudo)"
        exit 1
    }
    sudo=(sudo)
fi

log_file=$(mktemp -t "dev8-install-$name.XXXXXX")
trap 'rm -f "$log_file"' EXIT

quietly() {
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >>"$log_file" 2>&1; then
        log "failed: $* (last lines of its output):"
        tail -n 15 "$log_file" >&2
        return 1
    fi
}

install() {
    log "installing ${packages[*]}"
    quietly apt-get install -y -qq --no-install-recommends "${packages[@]}"
}

# A fresh machine may have no package lists at all (or stale ones naming superseded versions).
candidate=$(apt-cache policy "${packages[0]}" 2>/dev/null | awk '/Candidate:/ {print $2}')
if [[ -z $candidate || $candidate == "(none)" ]] || ! install; then
    log "refreshing the package lists"
    quietly apt-get update -qq
    install
fi

present || {
    log "ERROR: ${packages[*]} installed but ${programs[*]} still missing"
    exit 1
}
log "installed ${packages[*]}"
echo "${programs[0]}"

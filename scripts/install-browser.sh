#!/usr/bin/env bash
# Installs Debian's Chromium and ChromeDriver for the end-to-end tests and benchmarks (headless; no
# browser build is downloaded from anywhere else: Playwright drives /usr/bin/chromium directly).
# Idempotent: nothing happens when both are there; the package lists are refreshed only when apt
# cannot find the packages without it. Prints the browser's path as the last line on stdout.
set -euo pipefail

readonly PACKAGES=(chromium chromium-driver)
readonly BROWSER=/usr/bin/chromium
readonly DRIVER=/usr/bin/chromedriver

log() { printf 'install-browser: %s\n' "$*" >&2; }

present() { [[ -x $BROWSER && -x $DRIVER ]]; }

if present; then
    echo "$BROWSER"
    exit 0
fi

command -v apt-get >/dev/null || {
    log "ERROR: $BROWSER is missing and there is no apt-get here: install Chromium and ChromeDriver by hand"
    exit 1
}
sudo=()
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null || {
        log "ERROR: installing ${PACKAGES[*]} needs root (or sudo)"
        exit 1
    }
    sudo=(sudo)
fi

log_file=$(mktemp -t dev8-install-browser.XXXXXX)
trap 'rm -f "$log_file"' EXIT

# apt's progress goes to a log, shown only when a step fails.
quietly() {
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive "$@" >>"$log_file" 2>&1; then
        log "failed: $* (last lines of its output):"
        tail -n 15 "$log_file" >&2
        return 1
    fi
}

install() {
    log "installing ${PACKAGES[*]}"
    quietly apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
}

# A fresh machine may have no package lists at all (or stale ones naming superseded versions):
# refresh them only then, since `apt-get update` is the slow part.
candidate=$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')
if [[ -z $candidate || $candidate == "(none)" ]] || ! install; then
    log "refreshing the package lists"
    quietly apt-get update -qq
    install
fi

present || {
    log "ERROR: ${PACKAGES[*]} installed but $BROWSER or $DRIVER is still missing"
    exit 1
}
log "installed $("$BROWSER" --version 2>/dev/null || echo chromium)"
echo "$BROWSER"

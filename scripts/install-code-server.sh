#!/usr/bin/env bash
# Installs code-server once into a per-user cache shared by every clone, then prints the path of its
# binary as the last line on stdout (progress goes to stderr), so a Makefile can do
#   CODE_SERVER := $(shell scripts/install-code-server.sh)
#
# DEV8_CODE_SERVER_BIN set and executable: nothing to install, that path is printed.
# DEV8_CACHE_DIR (default ~/.cache/dev8) moves the cache; the install lives in code-server-VERSION/.
#
# The standard `npm install code-server` is tried first. Without internet its postinstall fails
# (@vscode/ripgrep downloads a binary from outside the package registries), so the fallback is an
# offline recipe that needs only the npm registry and Debian's packages: install without scripts,
# build the native modules here against Debian's -dev packages, and use Debian's ripgrep.
# A finished install leaves a marker file; a directory without it is a half-done install and is redone.
set -euo pipefail

# 4.100.3 is the last release that runs on Node 20 (the Node of these machines); newer ones need 24.
readonly VERSION=4.100.3
readonly CACHE_ROOT="${DEV8_CACHE_DIR:-$HOME/.cache/dev8}"
readonly PREFIX="$CACHE_ROOT/code-server-$VERSION"
readonly MARKER="$PREFIX/.dev8-installed"
readonly BIN="$PREFIX/node_modules/.bin/code-server"
readonly PACKAGE_DIR="$PREFIX/node_modules/code-server"
readonly LOG="$CACHE_ROOT/code-server-$VERSION.log"
readonly NPM_FLAGS=(--no-audit --no-fund --loglevel=error)
# node-pty's install script runs `npx node-gyp`; with no terminal npx must not stop to ask.
export npm_config_yes=true
# code-server's own postinstall refuses to run as root unless npm says unsafe-perm.
[[ $EUID -ne 0 ]] || export npm_config_unsafe_perm=true
# Headers the native modules of VS Code build against (kerberos, native-keymap, keytar, X11 bits).
readonly DEV_PACKAGES=(libkrb5-dev libx11-dev libxkbfile-dev libsecret-1-dev)

log() { printf 'install-code-server: %s\n' "$*" >&2; }

die() {
    log "ERROR: $*"
    exit 1
}

# Runs a command with its output appended to the log; on failure shows the log's tail and returns 1.
quietly() {
    local description=$1 started=$SECONDS
    shift
    log "$description"
    printf '\n=== %s: %s\n' "$description" "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        log "failed after $((SECONDS - started))s: $description (last lines of $LOG):"
        tail -n 15 "$LOG" >&2
        return 1
    fi
    log "  done in $((SECONDS - started))s"
}

fresh_prefix() {
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    # A package.json of its own keeps npm from treating any enclosing directory as the project.
    printf '{"name": "dev8-code-server-cache", "private": true}\n' >"$PREFIX/package.json"
}

installed() {
    [[ -f "$MARKER" && -x "$BIN" ]]
}

# Runs a command as root: directly when we are root, else through sudo when there is one.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root to run: $* (install those Debian packages by hand, then rerun)"
    fi
}

# Installs the Debian packages the offline recipe needs; `apt-get update` only when one is missing.
ensure_debian_packages() {
    local missing=() package tool
    for package in "${DEV_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    # Build tools are checked as commands: they may come from elsewhere than dpkg.
    for tool in g++:build-essential make:build-essential python3:python3 pkg-config:pkg-config rg:ripgrep; do
        if ! command -v "${tool%%:*}" >/dev/null; then
            missing+=("${tool#*:}")
        fi
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        return 0
    fi
    command -v apt-get >/dev/null || die "missing packages and no apt-get: ${missing[*]}"
    # Duplicates (build-essential twice) are harmless to apt-get.
    quietly "apt-get update (missing: ${missing[*]})" as_root apt-get update -q
    quietly "apt-get install ${missing[*]}" \
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

standard_install() {
    fresh_prefix
    quietly "standard install: npm install code-server@$VERSION" \
        npm install --prefix "$PREFIX" "${NPM_FLAGS[@]}" "code-server@$VERSION"
}

offline_install() {
    ensure_debian_packages
    fresh_prefix
    local vscode="$PACKAGE_DIR/lib/vscode" ripgrep
    quietly "offline: npm install --ignore-scripts code-server@$VERSION" \
        npm install --prefix "$PREFIX" --ignore-scripts "${NPM_FLAGS[@]}" "code-server@$VERSION"
    quietly "offline: lib/vscode npm install --ignore-scripts --omit=dev" \
        npm --prefix "$vscode" install --ignore-scripts --omit=dev "${NPM_FLAGS[@]}"
    # Debian's rg instead of the download; put in place before the rebuild, whose ripgrep
    # postinstall then finds a binary and does not try to fetch one.
    ripgrep="$vscode/node_modules/@vscode/ripgrep/bin"
    mkdir -p "$ripgrep"
    cp "$(command -v rg)" "$ripgrep/rg"
    quietly "offline: lib/vscode npm rebuild (native modules)" npm --prefix "$vscode" rebuild "${NPM_FLAGS[@]}"
    # What code-server's skipped postinstall would have done: built releases load modules from
    # node_modules.asar (shipped unpacked here), and the `code-server` command in the IDE's terminal
    # and the browser helper are per-OS scripts picked by a link.
    ln -sfn node_modules "$vscode/node_modules.asar"
    ln -sfn code-linux.sh "$vscode/bin/remote-cli/code-server"
    ln -sfn browser-linux.sh "$vscode/bin/helpers/browser.sh"
    quietly "offline: lib/vscode/extensions npm install --ignore-scripts --omit=dev" \
        npm --prefix "$vscode/extensions" install --ignore-scripts --omit=dev "${NPM_FLAGS[@]}"
    quietly "offline: npm rebuild argon2 (password hashing)" npm --prefix "$PREFIX" rebuild argon2 "${NPM_FLAGS[@]}"
}

# A usable install answers --version and has the pieces the standard postinstall may have skipped.
verify() {
    [[ -x "$BIN" ]] || return 1
    [[ -x "$PACKAGE_DIR/lib/vscode/node_modules/@vscode/ripgrep/bin/rg" ]] || return 1
    [[ -d "$PACKAGE_DIR/lib/vscode/extensions/node_modules" ]] || return 1
    # An empty config file of its own: without one code-server writes ~/.config/code-server/config.yaml.
    : >"$PREFIX/.check-config.yaml"
    quietly "check: code-server --version" "$BIN" --config "$PREFIX/.check-config.yaml" --version
}

main() {
    if [[ -n "${DEV8_CODE_SERVER_BIN:-}" ]]; then
        [[ -x "$DEV8_CODE_SERVER_BIN" ]] ||
            die "DEV8_CODE_SERVER_BIN=$DEV8_CODE_SERVER_BIN is not an executable file"
        log "using DEV8_CODE_SERVER_BIN"
        printf '%s\n' "$DEV8_CODE_SERVER_BIN"
        return 0
    fi
    command -v npm >/dev/null || die "npm is not installed (code-server $VERSION needs Node 20 and npm)"
    local node_major
    node_major=$(node -p 'process.versions.node.split(".")[0]')
    if [[ $node_major != 20 ]]; then
        log "warning: code-server $VERSION is made for Node 20; this is Node $node_major"
    fi

    mkdir -p "$CACHE_ROOT"
    # Two clones installing at once would trample each other: one installs, the other waits and reuses.
    exec 9>"$PREFIX.lock"
    flock 9
    if installed; then
        log "code-server $VERSION already installed in $PREFIX"
        printf '%s\n' "$BIN"
        return 0
    fi
    if [[ -d "$PREFIX" ]]; then
        log "found a half-done install in $PREFIX: redoing it"
    fi

    local started=$SECONDS method=standard
    : >"$LOG"
    if ! { standard_install && verify; }; then
        log "the standard install did not work (expected without internet); using the offline recipe"
        method=offline
        offline_install # any failing step stops the script here (set -e), its log tail shown
        verify || die "code-server does not run after the offline install; see $LOG"
    fi
    printf 'code-server %s installed by the %s method on %s\n' "$VERSION" "$method" "$(date -u +%FT%TZ)" >"$MARKER"
    log "installed code-server $VERSION ($method) in $((SECONDS - started))s: $BIN"
    printf '%s\n' "$BIN"
}

main "$@"

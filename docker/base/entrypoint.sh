#!/usr/bin/env bash
# Dev8 workspace entrypoint. Runs under tini as the unprivileged user dev8 in every workspace image:
# sets up SSH keys, git, GitHub access, the project and dotfiles (dev8-workspace-setup), then starts
# sshd (port 2222), the activity agent (when the image has one) and code-server (port 8080).
#
# Environment, set by the Dev8 backend on the container group (secrets as secure values):
#   HASHED_PASSWORD    argon2 hash of the IDE password; code-server reads it from its environment,
#                      never from its command line. PASSWORD (plain) is accepted for a local
#                      `docker run` only; HASHED_PASSWORD wins when both are set.
#   SSH_PUBLIC_KEY     public key(s) that may log in over SSH, one per line.
#   GITHUB_TOKEN       token for git over https (github.com, and GIT_TOKEN_HOSTS) and the GitHub CLI:
#                      held by git's in-memory credential cache, never written to a file.
#   GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL   git identity (defaults below).
#   (GIT_USER_NAME, GIT_USER_EMAIL are accepted for them, as the Dev8 frontend names them.)
#   REPOSITORY_URL     https repository cloned into the workspace when the workspace is empty.
#   DOTFILES_URL       https repository of the user's dotfiles: cloned into ~/.dotfiles and its
#                      install script run (or its dotfiles linked into HOME), as Codespaces does.
#   DEV8_ACTIVITY_URL, DEV8_AGENT_TOKEN   where and with what the activity agent reports; the
#                      token reaches the agent only, not sshd or code-server.
#   DEV8_SESSION_VARIABLES   names of the user's environment variables (never a secret), which
#                      sshd sets in every SSH session too (it starts each with a fresh environment).
#   DEV8_SNAPSHOT_REPOSITORY, DEV8_SNAPSHOT_PASSWORD   the restic repository on the share (mounted
#                      beside the working tree) and its password: the working tree on this
#                      container's disk is restored from it before anything else, then the snapshot
#                      agent keeps it saved; the password reaches that agent only. Unset (an
#                      environment made before snapshots): the share is the working tree.
# Paths, overridable for tests: HOME, WORKSPACE_DIR, SSHD_BIN, SSHD_CONFIG, ACTIVITY_AGENT_BIN,
#   SNAPSHOT_AGENT_BIN, WORKSPACE_SETUP_BIN, CODE_SERVER_BIN.
#
# The activity agent (ACTIVITY_AGENT_BIN, default /usr/local/bin/dev8-activity-agent) is optional.
# It is started in the background with CODE_SERVER_USER_DATA_DIR and the container's environment
# minus the IDE password and the GitHub token (it keeps DEV8_ACTIVITY_URL and DEV8_AGENT_TOKEN).
# code-server writes its heartbeat into its data dir, ~/.local/share/code-server/heartbeat (not the
# user-data dir): the agent finds it through the same HOME.
#
# No secret is ever printed: log lines name what was done, never a value.
set -euo pipefail

HOME="${HOME:-/home/dev8}"
WORKSPACE_DIR="${WORKSPACE_DIR:-/workspace}"
SSHD_BIN="${SSHD_BIN:-/usr/sbin/sshd}"
SSHD_CONFIG="${SSHD_CONFIG:-/etc/dev8/sshd_config}"
ACTIVITY_AGENT_BIN="${ACTIVITY_AGENT_BIN:-/usr/local/bin/dev8-activity-agent}"
SNAPSHOT_AGENT_BIN="${SNAPSHOT_AGENT_BIN:-/usr/local/bin/dev8-snapshot-agent}"
WORKSPACE_SETUP_BIN="${WORKSPACE_SETUP_BIN:-/usr/local/bin/dev8-workspace-setup}"
CODE_SERVER_BIN="${CODE_SERVER_BIN:-code-server}"
export HOME WORKSPACE_DIR

readonly IDE_PORT=8080
# Persisted on the workspace share: IDE settings and state, SSH host keys (with snapshots the share
# is the repository's parent directory, beside the working tree).
STATE_DIR="$WORKSPACE_DIR/.dev8"
if [[ -n "${DEV8_SNAPSHOT_REPOSITORY:-}" ]]; then
  STATE_DIR="${DEV8_SNAPSHOT_REPOSITORY%/*}/.dev8"
fi
readonly STATE_DIR
readonly USER_DATA_DIR="$STATE_DIR/code-server"
# In the container only (lost on restart): runtime copies and secrets.
readonly RUNTIME_DIR="$HOME/.dev8"
readonly SETUP_REPORT="$RUNTIME_DIR/setup-report"

log() {
  printf '[dev8] %s\n' "$*" >&2
}

# Environment for helper processes: everything but the IDE password, the GitHub token and the
# snapshot repository's password.
without_secrets() {
  env -u HASHED_PASSWORD -u PASSWORD -u GITHUB_TOKEN -u GH_TOKEN -u DEV8_SNAPSHOT_PASSWORD "$@"
}

snapshots_on() {
  [[ -n "${DEV8_SNAPSHOT_REPOSITORY:-}" && -n "${DEV8_SNAPSHOT_PASSWORD:-}" ]]
}

# The snapshot agent, with the repository's password and the agent token it reports snapshots
# with as the only secrets it is given.
snapshot_agent() {
  env -u HASHED_PASSWORD -u PASSWORD -u GITHUB_TOKEN -u GH_TOKEN \
    DEV8_WORKSPACE_DIR="$WORKSPACE_DIR" "$SNAPSHOT_AGENT_BIN" "$@" >/dev/null
}

# Before anything reads or writes the working tree: the latest snapshot (first boot: nothing). A
# restore that fails stops the container (ACI starts it again) rather than let an empty tree be
# saved as the newest snapshot.
restore_workspace() {
  snapshots_on || return 0
  local status=0
  snapshot_agent restore || status=$?
  case $status in
    0) log "snapshots: workspace restored" ;;
    3) log "snapshots: the working tree is already here (this container restarted); kept" ;;
    *)
      log "snapshots: could not restore the workspace; not starting (nothing is saved over it)"
      exit 75
      ;;
  esac
}

start_snapshot_agent() {
  snapshots_on || return 0
  snapshot_agent run &
  log "snapshots: agent started (pid $!)"
}


# git identity, GitHub access, the project and the user's dotfiles: the same script the local
# backend runs (docker/base/dev8-workspace-setup). Its failures go to SETUP_REPORT, which the
# activity agent passes to the Dev8 API; nothing in it stops the IDE from starting.
run_workspace_setup() {
  install -d -m 700 "$RUNTIME_DIR"
  DEV8_STATE_DIR="$STATE_DIR" DEV8_RUNTIME_DIR="$RUNTIME_DIR" DEV8_SETUP_REPORT="$SETUP_REPORT" \
    env -u HASHED_PASSWORD -u PASSWORD -u DEV8_SNAPSHOT_PASSWORD "$WORKSPACE_SETUP_BIN" ||
    log "setup: the workspace setup failed; the IDE starts anyway"
  if [[ -n "${GITHUB_TOKEN:-}" ]]; then
    # The GitHub CLI reads GH_TOKEN; code-server terminals inherit it.
    export GH_TOKEN="$GITHUB_TOKEN"
  fi
}

# Per-environment host keys, kept on the workspace share so clients see the same host key after a
# stop/start; sshd reads 0600 copies from the container's own disk (the share ignores modes).
prepare_host_keys() {
  local runtime="$RUNTIME_DIR/ssh" persisted="$STATE_DIR/ssh-host-keys" type key
  install -d -m 700 "$RUNTIME_DIR" "$runtime" || return 1
  mkdir -p "$persisted" 2>/dev/null || true
  for type in ed25519 rsa; do
    key="ssh_host_${type}_key"
    rm -f "${runtime:?}/$key" "${runtime:?}/$key.pub"
    if [[ -s "$persisted/$key" && -s "$persisted/$key.pub" ]]; then
      (umask 077 && cp "$persisted/$key" "$runtime/$key") || return 1
      cp "$persisted/$key.pub" "$runtime/$key.pub" || return 1
    else
      local bits=()
      if [[ "$type" == rsa ]]; then
        bits=(-b 3072)
      fi
      ssh-keygen -q -t "$type" "${bits[@]}" -N '' -C "dev8-host" -f "$runtime/$key" </dev/null || return 1
      cp "$runtime/$key" "$runtime/$key.pub" "$persisted/" 2>/dev/null ||
        log "SSH: could not keep host keys on the workspace share; they change on restart"
    fi
    chmod 600 "$runtime/$key" || return 1
  done
}

# sshd starts each session with a fresh environment: the image's config plus a SetEnv of the
# user's environment variables (DEV8_SESSION_VARIABLES names them; never a secret), as the IDE's
# terminals have them. Each value double-quoted, its backslashes and double quotes escaped, as
# sshd splits a config line (shared/adapters/compute/local_ssh.py writes the same words); a value
# with a line break cannot be written in a config line and is left out, with a log line.
session_config() {
  local config="$RUNTIME_DIR/ssh/sshd_config" name value names=() words=()
  (umask 077 && cp "$SSHD_CONFIG" "$config") || return 1
  read -ra names <<<"${DEV8_SESSION_VARIABLES:-}"
  for name in "${names[@]}"; do
    [[ "$name" =~ ^[A-Za-z_][A-Za-z0-9_]*$ && -v "$name" ]] || continue
    case $name in # the list names the user's variables; whatever it says, never these
      DEV8_* | PASSWORD | HASHED_PASSWORD | GITHUB_TOKEN | GH_TOKEN) continue ;;
    esac
    value="${!name}"
    if [[ "$value" == *$'\n'* || "$value" == *$'\r'* ]]; then
      log "SSH: not in SSH sessions (a line break in the value): $name"
      continue
    fi
    value="${value//\\/\\\\}"
    words+=("\"$name=${value//\"/\\\"}\"")
  done
  if ((${#words[@]})); then
    printf 'SetEnv %s\n' "${words[*]}" >>"$config" || return 1
  fi
  printf '%s\n' "$config"
}

start_sshd() {
  local config
  if [[ ! -x "$SSHD_BIN" ]]; then
    log "SSH: $SSHD_BIN not found; SSH is off"
    return 0
  fi
  if ! prepare_host_keys || ! config=$(session_config); then
    log "SSH: could not prepare host keys or its configuration; SSH is off"
    return 0
  fi
  without_secrets env -u DEV8_AGENT_TOKEN "$SSHD_BIN" -D -e -f "$config" \
    -h "$RUNTIME_DIR/ssh/ssh_host_ed25519_key" -h "$RUNTIME_DIR/ssh/ssh_host_rsa_key" &
  log "SSH: sshd started on port 2222 (pid $!)"
}

start_activity_agent() {
  if [[ ! -x "$ACTIVITY_AGENT_BIN" ]]; then
    log "activity agent: none in this image"
    return 0
  fi
  CODE_SERVER_USER_DATA_DIR="$USER_DATA_DIR" DEV8_AGENT_WORKSPACE="$WORKSPACE_DIR" \
    DEV8_AGENT_SETUP_REPORT="$SETUP_REPORT" without_secrets "$ACTIVITY_AGENT_BIN" &
  log "activity agent: started (pid $!)"
}

# The agents' credentials are theirs alone: not in code-server's environment, so not in the IDE's
# terminals and extensions either (sshd is started without them).
forget_agent_token() {
  unset DEV8_AGENT_TOKEN DEV8_SNAPSHOT_PASSWORD
}

require_password() {
  if [[ -n "${HASHED_PASSWORD:-}" ]]; then
    unset PASSWORD
  elif [[ -z "${PASSWORD:-}" ]]; then
    log "IDE: HASHED_PASSWORD is not set; refusing to start code-server without a password"
    exit 64
  fi
}

start_code_server() {
  mkdir -p "$USER_DATA_DIR"
  log "IDE: starting code-server on port $IDE_PORT for $WORKSPACE_DIR"
  exec "$CODE_SERVER_BIN" \
    --bind-addr "0.0.0.0:$IDE_PORT" \
    --auth password \
    --user-data-dir "$USER_DATA_DIR" \
    --disable-telemetry \
    --disable-update-check \
    "$WORKSPACE_DIR"
}

main() {
  umask 022
  require_password
  mkdir -p "$WORKSPACE_DIR"
  restore_workspace
  mkdir -p "$STATE_DIR"
  run_workspace_setup
  start_sshd
  start_snapshot_agent
  start_activity_agent
  forget_agent_token
  start_code_server
}

main "$@"

#!/usr/bin/env bash
# Dev8 workspace entrypoint. Runs under tini as the unprivileged user dev8 in every workspace image:
# sets up SSH keys, git and GitHub access, clones the project into an empty workspace, then starts
# sshd (port 2222), the activity agent (when the image has one) and code-server (port 8080).
#
# Environment, set by the Dev8 backend on the container group (secrets as secure values):
#   HASHED_PASSWORD    argon2 hash of the IDE password; code-server reads it from its environment,
#                      never from its command line. PASSWORD (plain) is accepted for a local
#                      `docker run` only; HASHED_PASSWORD wins when both are set.
#   SSH_PUBLIC_KEY     public key(s) that may log in over SSH, one per line.
#   GITHUB_TOKEN       token for git over https (github.com) and the GitHub CLI.
#   GIT_AUTHOR_NAME, GIT_AUTHOR_EMAIL   git identity (defaults below).
#   (GIT_USER_NAME, GIT_USER_EMAIL are accepted for them, as the Dev8 frontend names them.)
#   REPOSITORY_URL     https repository cloned into the workspace when the workspace is empty.
#   DOTFILES_URL       https repository of the user's dotfiles: cloned into ~/.dotfiles and its
#                      install script run (or its dotfiles linked into HOME), as Codespaces does.
#   DEV8_ACTIVITY_URL, DEV8_AGENT_TOKEN   where and with what the activity agent reports; the
#                      token reaches the agent only, not sshd or code-server.
#   DEV8_SNAPSHOT_REPOSITORY, DEV8_SNAPSHOT_PASSWORD   the restic repository on the share (mounted
#                      beside the working tree) and its password: the working tree on this
#                      container's disk is restored from it before anything else, then the snapshot
#                      agent keeps it saved; the password reaches that agent only. Unset (an
#                      environment made before snapshots): the share is the working tree.
# Paths, overridable for tests: HOME, WORKSPACE_DIR, SSHD_BIN, SSHD_CONFIG, ACTIVITY_AGENT_BIN,
#   SNAPSHOT_AGENT_BIN, GIT_CREDENTIAL_HELPER, CODE_SERVER_BIN.
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
GIT_CREDENTIAL_HELPER="${GIT_CREDENTIAL_HELPER:-/usr/local/bin/git-credential-dev8}"
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
readonly SECRETS_DIR="$HOME/.config/dev8"
readonly TOKEN_FILE="$SECRETS_DIR/github-token"
# Key types OpenSSH accepts in authorized_keys, without options (a key line may not carry
# command=, environment= or other options that would change what a login may do).
readonly KEY_LINE='^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+={0,3}( .*)?$'

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

install_ssh_public_keys() {
  install -d -m 700 "$HOME/.ssh"
  chmod 700 "$HOME/.ssh"
  local keys="$HOME/.ssh/authorized_keys"
  if [[ -z "${SSH_PUBLIC_KEY:-}" ]]; then
    log "SSH: no SSH_PUBLIC_KEY given; SSH logins are impossible until one is set"
    rm -f "$keys"
    return 0
  fi
  local line accepted=0 ignored=0
  (umask 077 && : >"$keys.tmp")
  while IFS= read -r line || [[ -n "$line" ]]; do
    line="${line%$'\r'}"
    [[ -z "${line//[[:space:]]/}" ]] && continue
    if [[ "$line" =~ $KEY_LINE ]]; then
      printf '%s\n' "$line" >>"$keys.tmp"
      accepted=$((accepted + 1))
    else
      ignored=$((ignored + 1))
    fi
  done <<<"$SSH_PUBLIC_KEY"
  chmod 600 "$keys.tmp"
  mv -f "$keys.tmp" "$keys"
  log "SSH: $accepted authorized key(s) installed"
  if ((ignored > 0)); then
    log "SSH: $ignored line(s) of SSH_PUBLIC_KEY ignored (not a plain public key)"
  fi
}

configure_git() {
  # GIT_USER_NAME / GIT_USER_EMAIL: the names the Dev8 frontend sends, accepted as aliases.
  git config --global user.name "${GIT_AUTHOR_NAME:-${GIT_USER_NAME:-Dev8 Developer}}"
  git config --global user.email "${GIT_AUTHOR_EMAIL:-${GIT_USER_EMAIL:-developer@dev8.local}}"
  git config --global init.defaultBranch main
  # Files on the Azure Files share appear owned by root; the container has a single user.
  git config --global --replace-all safe.directory '*'
  log "git: identity set"
}

configure_github() {
  if [[ -z "${GITHUB_TOKEN:-}" ]]; then
    return 0
  fi
  # A 0600 copy for SSH sessions, which do not inherit the container's environment; read by the
  # git credential helper and /etc/profile.d/dev8.sh. printf is a builtin: no argv exposure.
  install -d -m 700 "$HOME/.config" "$SECRETS_DIR"
  chmod 700 "$SECRETS_DIR"
  (umask 077 && printf '%s' "$GITHUB_TOKEN" >"$TOKEN_FILE")
  chmod 600 "$TOKEN_FILE"
  git config --global --replace-all credential.https://github.com.helper "$GIT_CREDENTIAL_HELPER"
  # The GitHub CLI reads GH_TOKEN; code-server terminals inherit it.
  export GH_TOKEN="$GITHUB_TOKEN"
  log "GitHub: token configured for git and gh"
}

redact() {
  local text="$1"
  if [[ -n "${GITHUB_TOKEN:-}" ]]; then
    text="${text//"$GITHUB_TOKEN"/***}"
  fi
  # user:password@ in URLs
  sed -E 's#(https?://)[^/@[:space:]]*@#\1***@#g' <<<"$text"
}

workspace_is_empty() {
  local entry
  for entry in "$WORKSPACE_DIR"/* "$WORKSPACE_DIR"/.[!.]* "$WORKSPACE_DIR"/..?*; do
    [[ -e "$entry" || -L "$entry" ]] || continue
    case "${entry##*/}" in
      .dev8 | lost+found) ;;
      *) return 1 ;;
    esac
  done
  return 0
}

clone_repository() {
  if [[ -z "${REPOSITORY_URL:-}" ]]; then
    return 0
  fi
  if [[ "$REPOSITORY_URL" != https://* ]]; then
    log "clone: REPOSITORY_URL is not an https URL; not cloning"
    return 0
  fi
  if ! workspace_is_empty; then
    log "clone: the workspace already has files; not cloning"
    return 0
  fi
  local name="${REPOSITORY_URL%%[?#]*}"
  name="${name%/}"
  name="${name##*/}"
  name="${name%.git}"
  name="${name//[^A-Za-z0-9._-]/-}"
  if [[ -z "$name" || "$name" == .* ]]; then
    name="project"
  fi
  local errors
  errors="$(mktemp)"
  log "clone: cloning into $WORKSPACE_DIR/$name"
  if GIT_TERMINAL_PROMPT=0 git clone --quiet -- "$REPOSITORY_URL" "$WORKSPACE_DIR/$name" 2>"$errors"; then
    log "clone: done"
  else
    log "clone: failed; the workspace starts without the repository"
    redact "$(tail -n 3 "$errors")" | sed 's/^/[dev8]   /' >&2
  fi
  rm -f "$errors"
}

# The user's dotfiles, as Codespaces installs them: DOTFILES_URL (https) cloned into ~/.dotfiles,
# then its first install script of install.sh, install, bootstrap.sh, bootstrap, script/bootstrap,
# setup.sh, setup, script/setup run there (without the platform's secrets); without one, its
# dotfiles (.name) are linked into HOME. HOME is on the container's own disk: every start installs
# them afresh. A failure is logged (credentials taken out) and the IDE starts anyway.
install_dotfiles() {
  local url="${DOTFILES_URL:-}" target="$HOME/.dotfiles" errors script name
  if [[ -z "$url" ]]; then
    return 0
  fi
  if [[ "$url" != https://* ]]; then
    log "dotfiles: DOTFILES_URL is not an https URL; not installing"
    return 0
  fi
  errors="$(mktemp)"
  if [[ ! -d "$target/.git" ]] && ! GIT_TERMINAL_PROMPT=0 git clone --quiet --depth 1 -- "$url" "$target" 2>"$errors"; then
    log "dotfiles: clone failed; the workspace starts without them"
    redact "$(tail -n 3 "$errors")" | sed 's/^/[dev8]   /' >&2
    rm -f "$errors"
    return 0
  fi
  rm -f "$errors"
  for script in install.sh install bootstrap.sh bootstrap script/bootstrap setup.sh setup script/setup; do
    if [[ -f "$target/$script" ]]; then
      log "dotfiles: running $script"
      if (cd "$target" && without_secrets bash "./$script" >"$STATE_DIR/dotfiles.log" 2>&1); then
        log "dotfiles: installed"
      else
        log "dotfiles: $script failed (see $STATE_DIR/dotfiles.log); the workspace starts anyway"
      fi
      return 0
    fi
  done
  for name in "$target"/.[!.]*; do
    [[ -e "$name" && "$(basename "$name")" != .git ]] || continue
    ln -sfn "$name" "$HOME/$(basename "$name")"
  done
  log "dotfiles: linked into HOME"
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

start_sshd() {
  if [[ ! -x "$SSHD_BIN" ]]; then
    log "SSH: $SSHD_BIN not found; SSH is off"
    return 0
  fi
  if ! prepare_host_keys; then
    log "SSH: could not prepare host keys; SSH is off"
    return 0
  fi
  without_secrets env -u DEV8_AGENT_TOKEN "$SSHD_BIN" -D -e -f "$SSHD_CONFIG" \
    -h "$RUNTIME_DIR/ssh/ssh_host_ed25519_key" -h "$RUNTIME_DIR/ssh/ssh_host_rsa_key" &
  log "SSH: sshd started on port 2222 (pid $!)"
}

start_activity_agent() {
  if [[ ! -x "$ACTIVITY_AGENT_BIN" ]]; then
    log "activity agent: none in this image"
    return 0
  fi
  CODE_SERVER_USER_DATA_DIR="$USER_DATA_DIR" DEV8_AGENT_WORKSPACE="$WORKSPACE_DIR" \
    without_secrets "$ACTIVITY_AGENT_BIN" &
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
  install_ssh_public_keys
  configure_git
  configure_github
  clone_repository
  mkdir -p "$STATE_DIR"
  install_dotfiles
  start_sshd
  start_snapshot_agent
  start_activity_agent
  forget_agent_token
  start_code_server
}

main "$@"

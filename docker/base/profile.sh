# shellcheck shell=sh
# Installed as /etc/profile.d/dev8.sh, read by login shells (SSH sessions) of a Dev8 workspace.
# SSH sessions do not inherit the container's environment: the GitHub CLI gets the token from git's
# credential cache (where dev8-workspace-setup put it; no file holds it), and an interactive
# session starts in the workspace.
if [ -z "${GH_TOKEN:-}" ] && command -v git >/dev/null 2>&1; then
  GH_TOKEN="$(printf 'protocol=https\nhost=github.com\n\n' |
    GIT_TERMINAL_PROMPT=0 git credential fill 2>/dev/null | sed -n 's/^password=//p')"
  if [ -n "$GH_TOKEN" ]; then
    export GH_TOKEN
  else
    unset GH_TOKEN
  fi
fi
if [ -z "${WORKSPACE_DIR:-}" ]; then
  WORKSPACE_DIR=/workspace
  export WORKSPACE_DIR
fi
case "$-" in
  *i*)
    if [ "$PWD" = "$HOME" ] && [ -d "$WORKSPACE_DIR" ]; then
      cd "$WORKSPACE_DIR" || true
    fi
    ;;
esac

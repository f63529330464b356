# shellcheck shell=sh
# Installed as /etc/profile.d/dev8.sh, read by login shells (SSH sessions) of a Dev8 workspace.
# SSH sessions do not inherit the container's environment: give the GitHub CLI the token the
# entrypoint kept in a 0600 file, and start in the workspace.
if [ -z "${GH_TOKEN:-}" ] && [ -r "$HOME/.config/dev8/github-token" ]; then
  GH_TOKEN="$(cat "$HOME/.config/dev8/github-token")"
  export GH_TOKEN
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

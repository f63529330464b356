#!/usr/bin/env bash
# Installs the AI coding tools every workspace offers: GitHub Copilot CLI (`copilot`), Claude Code
# (`claude`), Gemini CLI (`gemini`) and Codex CLI (`codex`), from npm at pinned versions, on a
# Node.js runtime of their own in /opt/dev8-ai (install-node.sh, checksum-verified), so a
# template's own Node (or none) never decides whether they run. /usr/local/bin gets one launcher
# per tool (base/dev8-ai-cli). Keys are the user's secrets, read from the environment by each tool
# itself; nothing here stores or prints one. Runs as root during an image build; versions come
# from the Dockerfile's build arguments.
set -euo pipefail

: "${NODE_VERSION:?NODE_VERSION is required}"
: "${COPILOT_CLI_VERSION:?COPILOT_CLI_VERSION is required}"
: "${CLAUDE_CODE_VERSION:?CLAUDE_CODE_VERSION is required}"
: "${GEMINI_CLI_VERSION:?GEMINI_CLI_VERSION is required}"
: "${CODEX_CLI_VERSION:?CODEX_CLI_VERSION is required}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly prefix=/opt/dev8-ai

NODE_PREFIX="$prefix" NODE_TOOLS=0 bash "$here/install-node.sh"
PATH="$prefix/bin:$PATH" "$prefix/bin/npm" install --global --prefix "$prefix" --no-fund --no-audit \
  "@github/copilot@${COPILOT_CLI_VERSION}" \
  "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}" \
  "@google/gemini-cli@${GEMINI_CLI_VERSION}" \
  "@openai/codex@${CODEX_CLI_VERSION}"
PATH="$prefix/bin:$PATH" "$prefix/bin/npm" cache clean --force
chmod -R a+rX "$prefix"

for tool in copilot claude gemini codex; do
  [[ -e "$prefix/bin/$tool" ]] || { echo "install-ai-clis: $tool was not installed" >&2; exit 1; }
  ln -sf /usr/local/bin/dev8-ai-cli "/usr/local/bin/$tool"
  "/usr/local/bin/$tool" --version
done

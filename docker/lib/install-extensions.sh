#!/usr/bin/env bash
# Installs code-server extensions for the current user (run as dev8 during an image build).
# Usage: install-extensions.sh EXTENSION_ID...
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: install-extensions.sh EXTENSION_ID..." >&2
  exit 2
fi
for extension in "$@"; do
  code-server --install-extension "$extension"
done
code-server --list-extensions --show-versions

#!/usr/bin/env bash
# Installs restic, the workspace snapshot tool, from Debian's packages (the workspace images take it
# from their distribution's packages the same way). Prints its path as the last line on stdout.
set -euo pipefail
exec "$(dirname "$0")/apt-install.sh" restic /usr/bin/restic -- restic

#!/usr/bin/env bash
# Installs Node.js (an official build, checked against the release's SHA-256 list) into
# NODE_PREFIX (/usr/local), then pnpm, yarn and TypeScript unless NODE_TOOLS=0 (the AI coding
# tools' private runtime: install-ai-clis.sh). Runs as root during an image build; versions come
# from the Dockerfile's build arguments.
set -euo pipefail

: "${NODE_VERSION:?NODE_VERSION is required}"
prefix="${NODE_PREFIX:-/usr/local}"
tools="${NODE_TOOLS:-1}"
if [[ "$tools" != 0 ]]; then
  : "${PNPM_VERSION:?PNPM_VERSION is required}"
  : "${YARN_VERSION:?YARN_VERSION is required}"
  : "${TYPESCRIPT_VERSION:?TYPESCRIPT_VERSION is required}"
fi

case "$(dpkg --print-architecture)" in
  amd64) arch=x64 ;;
  arm64) arch=arm64 ;;
  *)
    echo "install-node: unsupported architecture $(dpkg --print-architecture)" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

release="https://nodejs.org/dist/v${NODE_VERSION}"
tarball="node-v${NODE_VERSION}-linux-${arch}.tar.xz"
curl -fsSL --retry 3 -o "$work/$tarball" "$release/$tarball"
curl -fsSL --retry 3 -o "$work/SHASUMS256.txt" "$release/SHASUMS256.txt"
(cd "$work" && grep -E "  ${tarball//./\\.}\$" SHASUMS256.txt | sha256sum --check --strict -)

mkdir -p "$prefix"
tar -xJf "$work/$tarball" -C "$prefix" --strip-components=1 --no-same-owner \
  --exclude='*.md' --exclude='LICENSE'
"$prefix/bin/node" --version
if [[ "$tools" == 0 ]]; then
  exit 0
fi

npm install --global --no-fund --no-audit \
  "pnpm@${PNPM_VERSION}" "yarn@${YARN_VERSION}" "typescript@${TYPESCRIPT_VERSION}"
npm cache clean --force

npm --version
pnpm --version
yarn --version
tsc --version

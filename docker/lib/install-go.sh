#!/usr/bin/env bash
# Installs the Go toolchain (an official build, checked against the SHA-256 the release index
# publishes) into /usr/local/go, then gopls, delve and golangci-lint on /usr/local/bin.
# Runs as root during an image build; versions come from the Dockerfile's build arguments.
set -euo pipefail

: "${GO_VERSION:?GO_VERSION is required}"
: "${GOPLS_VERSION:?GOPLS_VERSION is required}"
: "${DELVE_VERSION:?DELVE_VERSION is required}"
: "${GOLANGCI_LINT_VERSION:?GOLANGCI_LINT_VERSION is required}"

arch="$(dpkg --print-architecture)"
case "$arch" in
  amd64 | arm64) ;;
  *)
    echo "install-go: unsupported architecture $arch" >&2
    exit 1
    ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

tarball="go${GO_VERSION}.linux-${arch}.tar.gz"
curl -fsSL --retry 3 -o "$work/index.json" "https://go.dev/dl/?mode=json&include=all"
sha256="$(jq -r --arg file "$tarball" '.[].files[] | select(.filename == $file) | .sha256' "$work/index.json")"
if [[ ! "$sha256" =~ ^[0-9a-f]{64}$ ]]; then
  echo "install-go: no checksum published for $tarball" >&2
  exit 1
fi
curl -fsSL --retry 3 -o "$work/$tarball" "https://go.dev/dl/$tarball"
printf '%s  %s\n' "$sha256" "$work/$tarball" | sha256sum --check --strict -

rm -rf /usr/local/go
tar -xzf "$work/$tarball" -C /usr/local --no-same-owner
ln -sf /usr/local/go/bin/go /usr/local/bin/go
ln -sf /usr/local/go/bin/gofmt /usr/local/bin/gofmt

export GOPATH="$work/gopath" GOCACHE="$work/gocache" GOBIN=/usr/local/bin
go install "golang.org/x/tools/gopls@v${GOPLS_VERSION}"
go install "github.com/go-delve/delve/cmd/dlv@v${DELVE_VERSION}"
go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v${GOLANGCI_LINT_VERSION}"

go version
gopls version
dlv version
golangci-lint --version

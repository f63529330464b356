#!/usr/bin/env bash
# Installs a C toolchain, then rustup (the official rustup-init, checked against the SHA-256
# published beside it) and
# through it one pinned Rust toolchain with rustfmt, clippy and rust-analyzer, for every user:
# RUSTUP_HOME and CARGO_HOME under /usr/local, the tools on /usr/local/bin. Runs as root during an
# image build; versions come from the Dockerfile's build arguments.
set -euo pipefail

: "${RUSTUP_VERSION:?RUSTUP_VERSION is required}"
: "${RUST_VERSION:?RUST_VERSION is required}"

case "$(dpkg --print-architecture)" in
  amd64) target=x86_64-unknown-linux-gnu ;;
  arm64) target=aarch64-unknown-linux-gnu ;;
  *)
    echo "install-rust: unsupported architecture $(dpkg --print-architecture)" >&2
    exit 1
    ;;
esac

# A linker and the headers crates most often build against (the distribution's, signed by apt).
apt-get update
apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev
rm -rf /var/lib/apt/lists/*

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

base="https://static.rust-lang.org/rustup/archive/${RUSTUP_VERSION}/${target}"
curl -fsSL --retry 3 -o "$work/rustup-init" "$base/rustup-init"
curl -fsSL --retry 3 -o "$work/rustup-init.sha256" "$base/rustup-init.sha256"
sha256="$(cut -d ' ' -f 1 "$work/rustup-init.sha256")"
if [[ ! "$sha256" =~ ^[0-9a-f]{64}$ ]]; then
  echo "install-rust: no checksum published for rustup-init $RUSTUP_VERSION" >&2
  exit 1
fi
printf '%s  %s\n' "$sha256" "$work/rustup-init" | sha256sum --check --strict -
chmod +x "$work/rustup-init"

export RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo
"$work/rustup-init" -y --no-modify-path --profile minimal --default-toolchain "$RUST_VERSION" \
  --component rustfmt,clippy,rust-analyzer
for tool in cargo rustc rustup rustfmt cargo-clippy clippy-driver rust-analyzer; do
  ln -sf "$CARGO_HOME/bin/$tool" "/usr/local/bin/$tool"
done
chmod -R a+rX "$RUSTUP_HOME" "$CARGO_HOME"

rustc --version
cargo --version
cargo clippy --version
rust-analyzer --version

#!/usr/bin/env bash
# Installs Python 3 (Ubuntu's) with venv, pip and headers, and the Python tools every user gets
# (uv, poetry, ruff, black, mypy, JupyterLab) as isolated pipx applications on /usr/local/bin.
# Runs as root during an image build; versions come from the Dockerfile's build arguments.
set -euo pipefail

: "${UV_VERSION:?UV_VERSION is required}"
: "${POETRY_VERSION:?POETRY_VERSION is required}"
: "${RUFF_VERSION:?RUFF_VERSION is required}"
: "${BLACK_VERSION:?BLACK_VERSION is required}"
: "${MYPY_VERSION:?MYPY_VERSION is required}"
: "${JUPYTERLAB_VERSION:?JUPYTERLAB_VERSION is required}"

apt-get update
apt-get install -y --no-install-recommends python3 python3-dev python3-pip python3-venv pipx
rm -rf /var/lib/apt/lists/*

export PIPX_HOME=/opt/pipx
export PIPX_BIN_DIR=/usr/local/bin
export PIPX_MAN_DIR=/usr/local/share/man
export PIP_NO_CACHE_DIR=1

pipx install "uv==${UV_VERSION}"
pipx install "poetry==${POETRY_VERSION}"
pipx install "ruff==${RUFF_VERSION}"
pipx install "black==${BLACK_VERSION}"
pipx install "mypy==${MYPY_VERSION}"
# --include-deps: also expose `jupyter` (from jupyter_core), not only `jupyter-lab`.
pipx install --include-deps "jupyterlab==${JUPYTERLAB_VERSION}"
chmod -R a+rX /opt/pipx

python3 --version
uv --version
poetry --version
ruff --version
jupyter lab --version

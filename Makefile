# Dev8 backend. `make dev` runs the product on this machine; `make test` runs every check.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: dev test lint unit bench bench-api bench-e2e setup clean code-server infra-tools browser restic sshd

setup: $(STAMP) node_modules/.installed clients/typescript/node_modules/.installed

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .  # the `dev8` command line: .venv/bin/dev8
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	scripts/docs-assets.sh >/dev/null
	touch $@

# The TypeScript client's own pinned tools (openapi-typescript, openapi-fetch, tsc).
clients/typescript/node_modules/.installed: clients/typescript/package.json clients/typescript/package-lock.json
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Regenerates the TypeScript client's generated files from the app's route table:
# the OpenAPI document and its types (tests/clients/test_typescript.py fails when they are stale).
.PHONY: client
client: setup
	$(PY) -c 'import api.openapi; api.openapi.main()' > clients/typescript/openapi.json
	cd clients/typescript && npm run --silent generate

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy shared api orchestrators timers devhost cli function_app.py

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

# code-server for the local compute backend and its tests: built once into ~/.cache/dev8 (DEV8_CACHE_DIR),
# reused by every clone; DEV8_CODE_SERVER_BIN skips it. The script prints the binary's path last.
code-server:
	@scripts/install-code-server.sh >/dev/null

# Bicep parsers, checkov, hadolint, shellcheck... in their own venv (.venv-infra): their pins clash with the app's.
infra-tools:
	@bash scripts/install-infra-tools.sh

# Debian's Chromium and ChromeDriver for the browser end-to-end tests (Playwright drives /usr/bin/chromium).
browser:
	@scripts/install-browser.sh >/dev/null

# sshd for the local backend's SSH (Debian's openssh-server unpacked into the cache; as root, the account dev8).
sshd:
	@scripts/install-sshd.sh >/dev/null

# restic, the workspace snapshot tool (docker/base/dev8-snapshot-agent), from Debian's packages.
restic:
	@scripts/install-restic.sh >/dev/null

test: setup lint code-server infra-tools browser restic sshd
	$(PY) -m pytest -q

# The local compute backend (the default in local.settings) needs code-server, restic and sshd; simulated does not.
dev: setup
	@if [ "$${DEV8_COMPUTE_BACKEND:-local}" = local ]; then \
		scripts/install-code-server.sh >/dev/null && scripts/install-restic.sh >/dev/null \
		&& scripts/install-sshd.sh >/dev/null; fi
	$(PY) -m devhost

bench: setup
	$(PY) tests/benchmarks/cold_start.py
	@$(MAKE) --no-print-directory bench-api bench-e2e bench-snapshots

# GET/list latency beside a raw Azurite read at 50 clients; 200 concurrent creates (simulated backend).
bench-api: setup
	$(PY) tests/benchmarks/api_latency.py
	$(PY) tests/benchmarks/concurrent_creates.py

# create -> VS Code workbench visible in headless Chromium on the local backend, median of 5.
bench-e2e: setup code-server browser
	$(PY) tests/benchmarks/workbench_ready.py

# Workspace snapshots of a 20,000-file node project (restic through the snapshot agent), median of 3.
.PHONY: bench-snapshots
bench-snapshots: setup restic
	$(PY) tests/benchmarks/snapshots.py

# Idle sweep and retention over 100,000 records on Azurite (BENCH_SWEEPS_ARGS=--reconcile adds a reconcile pass).
.PHONY: bench-sweeps
bench-sweeps: setup
	$(PY) tests/benchmarks/sweep_scale.py $(BENCH_SWEEPS_ARGS)

clean:
	rm -rf $(VENV) .venv-infra node_modules .dev8 .pytest_cache .mypy_cache .ruff_cache

# Two commands run Encore on a fresh machine: `make demo` and `make test`.
# Each creates .venv (once, again when pyproject.toml changes) and installs the project into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

TS := clients/ts
TS_STAMP := $(TS)/node_modules/.package-lock.json

.PHONY: setup demo up test lint unit integration browser ts-client clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The whole local stack (embedded Kafka broker, Redis, flow, API) with a real catalog and
# simulated listeners. Ctrl-C stops it all.
demo: setup
	$(BIN)/encore up --demo

up: setup
	$(BIN)/encore up

# Lint, then every test: unit tests of pure logic, integration tests on a real broker and Redis, and
# the /ops page in a real headless Chromium.
test: setup browser ts-client
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules schemas online_models encore/catalog_csv.py encore/client.py encore/bytewax_api.py encore/flow_cluster.py encore/healthcheck.py serving/lag.py serving/ops_stats.py tests

unit: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit

integration: setup
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/integration

# Debian's Chromium for the /ops browser test (tests/browser): installed with apt-get when missing
# and we are root; otherwise the script says why not and the browser test skips itself.
browser:
	scripts/install-chromium.sh

# The TypeScript client for web players: Node.js (installed with apt-get when missing and we are root)
# and its dev dependency (typescript) from package-lock.json, again when the lock changes.
# tests/integration/test_ts_client.py runs its suite against the live stack.
$(TS_STAMP): $(TS)/package-lock.json $(TS)/package.json
	scripts/install-node.sh
	cd $(TS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ts-client: $(TS_STAMP)

clean:
	rm -rf $(VENV) .encore .pytest_cache .ruff_cache *.egg-info $(TS)/node_modules $(TS)/dist

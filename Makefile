# Two commands run Encore on a fresh machine: `make demo` and `make test`.
# Each creates .venv and installs the locked dependencies into it (requirements-dev.lock, with
# hashes: pip alone, no other tool), then the project itself; again whenever pyproject.toml or the
# lock changes. A dependency added to pyproject.toml but not locked stops here, saying so: run
# `make lock` (README, "Reproducible installs").

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements-dev.lock
PIP_INSTALL := $(BIN)/pip install --quiet --disable-pip-version-check

TS := clients/ts
TS_STAMP := $(TS)/node_modules/.package-lock.json

.PHONY: setup demo up test lint unit integration browser ts-client lock lock-upgrade check-lock clean

$(STAMP): pyproject.toml $(LOCK) requirements.lock
	$(PYTHON) scripts/check_lock.py
	$(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) --require-hashes -r $(LOCK)
	$(PIP_INSTALL) --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

# Refresh requirements-dev.lock and requirements.lock from pyproject.toml (pip-tools, against PyPI,
# keeping the existing pins where they still fit); lock-upgrade moves everything to the newest
# allowed versions. Commit both files. See scripts/lock.sh.
lock:
	scripts/lock.sh

lock-upgrade:
	LOCK_UPGRADE=1 scripts/lock.sh

check-lock:
	$(PYTHON) scripts/check_lock.py

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
	$(BIN)/python -m pytest -q -p no:cacheprovider --doctest-modules schemas online_models ranking encore/catalog_csv.py encore/client.py encore/bytewax_api.py encore/flow_cluster.py encore/healthcheck.py encore/logs.py serving/lag.py serving/request_log.py serving/ops_stats.py tests

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
	rm -rf $(VENV) .encore .pytest_cache .ruff_cache *.egg-info .lock-tools $(TS)/node_modules $(TS)/dist

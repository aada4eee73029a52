# Two commands: `make run` (the pool end to end on a regtest chain) and `make test` (every test).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# `make run` needs only the runtime dependencies; the test stamp implies it (the test extras include them)
RUN_STAMP := $(VENV)/.installed-run

.PHONY: run test venv build lint typecheck daemons litecoind bcoin chromium bench clean
.PHONY: install promtool

run: $(RUN_STAMP) daemons
	$(PY) -m stratum_pool.devnet.run $(RUN_ARGS)

test: venv daemons chromium promtool
	$(PY) -m ruff check stratum_pool tests bench
	$(PY) -m mypy stratum_pool
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q -ra $(PYTEST_ARGS)

venv: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard native/*.pyx native/*.pxi native/*.c native/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)
	touch $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml setup.py $(wildcard native/*.pyx native/*.pxi native/*.c native/*.h)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

# Production: the package and its runtime dependencies only (no test tools), not editable; the systemd units
# run $(VENV)/bin/stratum-pool. `make install VENV=/some/where` puts it elsewhere.
install:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q .
	rm -f $(STAMP) $(RUN_STAMP)

build: venv
	$(PY) setup.py build_ext --inplace -q

daemons: litecoind bcoin

# Debian's Litecoin Core (the scrypt regtest daemon); installed when missing and we may.
litecoind:
	@command -v litecoind >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq litecoind; \
	  else echo "litecoind is missing: sudo apt-get install litecoind" >&2; exit 1; fi; }

# Headless Chromium for the dashboard test (Debian's package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "chromium is missing: sudo apt-get install chromium" >&2; exit 1; fi; }

# HAProxy in front of the pool for the PROXY protocol test (Debian's package).
.PHONY: haproxy
test: haproxy
haproxy:
	@command -v haproxy >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; \
	  else echo "haproxy is missing: sudo apt-get install haproxy" >&2; exit 1; fi; }

# promtool (Debian's prometheus package) checks and unit-tests monitoring/'s alert rules.
promtool:
	@command -v promtool >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus; \
	  else echo "promtool is missing: sudo apt-get install prometheus" >&2; exit 1; fi; }

# bcoin (Bitcoin regtest, sha256d) from the npm registry into a project-local folder.
bcoin:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; \
	  else echo "node and npm are missing: sudo apt-get install nodejs npm" >&2; exit 1; fi; }
	$(PY) -m stratum_pool.devnet.bcoin install

# bcash (Bitcoin Cash regtest, the bcoin team's node) from the npm registry into a project-local folder,
# its native add-ons built and its fixes applied (stratum_pool/devnet/bcash.py); node and npm as for bcoin.
.PHONY: bcash
daemons: bcash
bcash: bcoin
	$(PY) -m stratum_pool.devnet.bcash install

bench: venv
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info stratum_pool/_native*.so native/_native.c

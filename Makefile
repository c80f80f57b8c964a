# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean browser balancer

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The gateway API on :8000, a worker, and every mock on :8001 (SQLite + on-disk kombu transport).
run: $(STAMP)
	$(PY) -m gateway run-all

# Debian's headless Chromium and its driver, for the ops console's browser test (needs apt as root; without
# them that one test is skipped, or fails under CI's GATEWAY_TEST_REQUIRE_SERVICES=1).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  (apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1)) || \
	  echo "chromium not installed: the console's browser test will not run"

# Debian's HAProxy, the balancer of the multi-host test (tests/test_hosts.py, bench/hosts.py); without it (or
# without root and network namespaces) that test is skipped, saying why.
balancer:
	@command -v haproxy >/dev/null || \
	  (apt-get install -y --no-install-recommends haproxy >/dev/null 2>&1 || \
	   (apt-get update >/dev/null 2>&1 && apt-get install -y --no-install-recommends haproxy >/dev/null 2>&1)) || \
	  echo "haproxy not installed: the multi-host test will be skipped"

# Lint, then the whole suite: on the embedded stack, and on PostgreSQL + RabbitMQ when reachable. The tests run
# in TEST_PROCESSES processes side by side (most of a test's time is waiting on a worker or a mock), each
# with stacks of its own; a file's tests stay in one process (the longest split by stack, the fuzz runs one by
# one), the longest first (tests/conftest.py).
# A test that stops a server brings a server of its own (the broker restart runs its own RabbitMQ node).
TEST_PROCESSES ?= 5
test: $(STAMP) browser balancer
	$(VENV)/bin/ruff check gateway mocks tests bench
	$(PY) -m pytest -p no:cacheprovider -n $(TEST_PROCESSES) --dist loadgroup --no-loadscope-reorder

lint: $(STAMP)
	$(VENV)/bin/ruff check gateway mocks tests bench

# The bench extra (py-spy for --profile, matplotlib for load.py's PNG) only where benchmarks run.
$(VENV)/.bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[bench]"
	touch $@

bench: $(VENV)/.bench
	$(PY) bench/e2e.py

clean:
	rm -rf $(VENV) var

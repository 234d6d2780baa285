# The two commands of the README rest on `install`, which does nothing when .venv is
# up to date with pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks]'
	touch $(STAMP)

# The service, its VTN and the embedded chain, with a simulated fleet of 200 VENs
# (a tenth of their events refused) polling every 5 s and reporting every 10 s.
run: export VTN_POLL_INTERVAL_S ?= 5
run: export VTN_REPORT_INTERVAL_S ?= 10
run: export DISPATCH_ANSWER_WITHIN_S ?= 20
run: export MEASURE_AFTER_S ?= 30
run: install
	$(BIN)/vpp db upgrade
	$(BIN)/vpp demo-fleet --devices 500 --feeders 8 --seed 1 --if-empty
	$(BIN)/vpp keys dev
	$(BIN)/vpp guide
	$(BIN)/vpp simulate-fleet --devices 200 --opt-out 0.1 --report-interval-s 10 --wait-s 60 & \
	sim=$$!; trap 'kill $$sim 2>/dev/null' EXIT; \
	$(BIN)/vpp serve --host 127.0.0.1 --port 8000

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest

bench: install
	$(BIN)/python benchmarks/registry_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

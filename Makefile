# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYBAMM_DISABLE_TELEMETRY := true
export MPLBACKEND := Agg

.PHONY: demo test lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/releaf demo --out demo-output

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts

# pytest exits 5 when it collects no tests; that must fail, so it is not masked.
test: $(STAMP) lint
	$(BIN)/pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) demo-output .pytest_cache

# The README's two commands: `make demo` (set up + run the whole pipeline on the generated demo library)
# and `make test`. Both create .venv first if needed (scripts/setup.sh).
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup demo test lint ui bench

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/tagsmith demo

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -p no:logging -W ignore::UserWarning --durations=15

ui: setup
	mkdir -p var/dagster_home && cp -n dagster.yaml var/dagster_home/ || true
	DAGSTER_HOME=$(CURDIR)/var/dagster_home $(VENV)/bin/dagster dev -w workspace.yaml

bench: setup
	$(PY) -m benchmarks.throughput
	$(PY) -m benchmarks.accuracy

# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO   ?= examples/ecommerce-workorders

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/routecard demo $(DEMO)

# pytest exits 5 when it collected no tests: that is a failure here, like any other non-zero code.
test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) bench/compile_workspace.py
	$(PY) bench/add_field_migration.py
	$(PY) bench/api_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache build dist *.egg-info

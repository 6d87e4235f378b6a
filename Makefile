# The two commands of the README:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_ADMIN_EMAIL ?= admin@vilaserena.example
DEMO_ADMIN_PASSWORD ?= demo-password-2026
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests run in two processes (pytest-xdist); each has its own PostgreSQL cluster and servers.
PYTEST_WORKERS ?= -n 2 --dist loadscope

.PHONY: setup demo test lint format clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

## Set up ./var with demo content and serve it on http://127.0.0.1:8000
demo: setup
	$(BIN)/suite init --admin-email $(DEMO_ADMIN_EMAIL) --admin-password $(DEMO_ADMIN_PASSWORD)
	$(BIN)/suite demo load
	$(BIN)/suite serve --host $(HOST) --port $(PORT)

## Lint and run every test (PostgreSQL and browser tests run when the machine has them)
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest $(PYTEST_WORKERS) $(PYTEST_ARGS)

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache

# Two commands matter: `make run` (the whole platform with demo data) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: install run test lint format compose-check bench clean

$(BIN)/kube: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

install: $(BIN)/kube

run: install  ## start every service, worker, relay and scheduler locally; Ctrl-C stops them
	$(BIN)/kube run

test: install  ## the whole suite against real PostgreSQL, Redis and Celery workers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compose-check:  ## validate docker-compose.yml (no Docker engine needed)
	docker-compose config -q

bench: install
	$(BIN)/python bench/registry.py

clean:
	rm -rf .local/logs .pytest_cache .ruff_cache

# Two commands matter: `make run` (the whole platform with demo data) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.kube-installed
PYTEST_ARGS ?=
LOCK_ARGS ?=

.PHONY: install lock run test lint format compose-check bench clean

# The venv is rebuilt from scratch whenever the lock or pyproject.toml changes, so it
# holds exactly the locked tree and nothing left over from an older one.
$(STAMP): $(LOCK) pyproject.toml
	@if [ -e "$(VENV)" ] && [ ! -f "$(VENV)/pyvenv.cfg" ]; then echo "$(VENV) is not a virtualenv; not replacing it" >&2; exit 1; fi
	rm -rf "$(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(STAMP)

# The whole tree (runtime, [local], [dev]) in one lock for every supported Python and
# platform. `make lock LOCK_ARGS=--upgrade` moves the unpinned transitive ones too.
# The file is replaced only when it changes, so an unchanged lock does not rebuild the venv.
lock: install
	cp $(LOCK) $(LOCK).new
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal \
		--python-version 3.11 --custom-compile-command "make lock" \
		--quiet $(LOCK_ARGS) -o $(LOCK).new
	@if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; echo "== $(LOCK) unchanged"; \
	else mv $(LOCK).new $(LOCK); echo "== $(LOCK) updated"; fi

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

# Two commands matter: `make run` (the whole platform with demo data) and `make test`.
#
# Python: the newest of 3.13, 3.12, 3.11 that runs here, or the one named by PYTHON
# (`make test PYTHON=python3.11`). A name python3.X is looked for on PATH, then among
# pyenv's installed versions (a pyenv shim runs only the versions pyenv has selected).
# VENV is where the virtualenv lives; CI keeps one per Python (`VENV=.venv-3.11`).
# The venv is rebuilt from requirements.lock when the lock or pyproject.toml changes, or
# when it was built with another interpreter.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11
OLDEST_PYTHON := 3.11
VENV ?= .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
STAMP := $(VENV)/.kube-installed
PYTEST_ARGS ?=
LOCK_ARGS ?=

comma := ,

# Each candidate must run, be CPython 3.11-3.13 with the GIL, and be able to make a venv.
PY_OK := import ensurepip, sys, sysconfig; \
	sys.exit(not ((3, 11) <= sys.version_info[:2] <= (3, 13) and not sysconfig.get_config_var("Py_GIL_DISABLED")))
define FIND_PYTHON
for name in $(or $(PYTHON),$(SUPPORTED_PYTHONS)); do
  case "$$name" in
    */*) on_path="$$name";;
    *) on_path=$$(IFS=:; for d in $$PATH; do [ -x "$${d:-.}/$$name" ] && echo "$${d:-.}/$$name"; done);;
  esac;
  minor=$$(expr "$$name" : '.*python\(3\.[0-9][0-9]*\)$$');
  in_pyenv=$$([ -n "$$minor" ] && ls -d "$${PYENV_ROOT:-$$HOME/.pyenv}"/versions/$$minor.*/bin/python$$minor 2>/dev/null | grep -E "/versions/$$minor\.[0-9]+/" | sort -rV);
  for c in $$on_path $$in_pyenv; do
    "$$c" -c '$(PY_OK)' >/dev/null 2>&1 && { echo "$$c"; exit 0; };
  done;
done
endef
PY := $(shell $(FIND_PYTHON))
PY_ID := $(if $(PY),$(shell $(PY) -c 'import os, sys; print(os.path.realpath(sys.executable), sys.version.split()[0])'))
PY_VERSION := $(lastword $(PY_ID))
VENV_ID := $(shell cat $(VENV)/.kube-python 2>/dev/null)

# Stops make (when a recipe that needs Python runs) with what to install.
require-python = $(if $(PY),,$(error $(if $(PYTHON),PYTHON=$(PYTHON) is not a CPython 3.11-3.13 \
	that runs here with its venv module,No Python 3.13$(comma) 3.12 or 3.11 found (tried \
	$(SUPPORTED_PYTHONS) on PATH and in pyenv)). Install one with its venv module (e.g. \
	`apt-get install python3.11 python3.11-venv`$(comma) or `pyenv install 3.13`)$(comma) or \
	name it: make PYTHON=/path/to/python3.X))

.PHONY: install lock which-python run test test-unit test-integration test-e2e lint format openapi events-doc compose-check bench clean FORCE

# The dashboard's Chart.js, from the npm package pinned by apps/dashboard/package-lock.json,
# copied into the app's static folder so browsers load it from the app (never a CDN).
DASHBOARD := apps/dashboard
CHART_JS := $(DASHBOARD)/kube_dashboard/static/vendor/chart.umd.min.js
$(CHART_JS): $(DASHBOARD)/package.json $(DASHBOARD)/package-lock.json
	@command -v npm >/dev/null || { echo "npm is needed for the dashboard's charts (apt-get install npm)" >&2; exit 1; }
	cd $(DASHBOARD) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(@D)
	cp $(DASHBOARD)/node_modules/chart.js/dist/chart.umd.min.js $(DASHBOARD)/node_modules/chart.js/LICENSE.md $(@D)/

# A venv built with another interpreter (or by an older Makefile) is rebuilt, never reused.
ifneq ($(PY_ID),$(VENV_ID))
$(STAMP): FORCE
endif
$(STAMP): $(LOCK) pyproject.toml clients/python/pyproject.toml apps/dashboard/pyproject.toml
	@$(require-python)
	@if [ -e "$(VENV)" ] && [ ! -f "$(VENV)/pyvenv.cfg" ]; then echo "$(VENV) is not a virtualenv; not replacing it" >&2; exit 1; fi
	@echo "== building $(VENV) with Python $(PY_VERSION) ($(PY))$(if $(VENV_ID),$(if $(filter-out $(PY_ID),$(VENV_ID)), replacing one built with $(VENV_ID)))"
	rm -rf "$(VENV)"
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	$(BIN)/python -m pip install --quiet --no-deps -e clients/python
	$(BIN)/python -m pip install --quiet --no-deps -e apps/dashboard
	echo '$(PY_ID)' > $(VENV)/.kube-python
	touch $@

install: $(STAMP) $(CHART_JS)
	@echo "== Python $(PY_VERSION) ($(PY)) in $(VENV)"

which-python:  ## print the interpreter make would use (PYTHON= to ask about one)
	@$(require-python)echo "$(PY) ($(PY_VERSION))"

# The whole tree (runtime, [local], [dev]) in one lock for every supported Python and
# platform. `make lock LOCK_ARGS=--upgrade` moves the unpinned transitive ones too.
# The file is replaced only when it changes, so an unchanged lock does not rebuild the venv.
lock: install
	cp $(LOCK) $(LOCK).new
	$(BIN)/uv pip compile pyproject.toml --all-extras --universal \
		--python-version $(OLDEST_PYTHON) --custom-compile-command "make lock" \
		--quiet $(LOCK_ARGS) -o $(LOCK).new
	@if cmp -s $(LOCK).new $(LOCK); then rm $(LOCK).new; echo "== $(LOCK) unchanged"; \
	else mv $(LOCK).new $(LOCK); echo "== $(LOCK) updated"; fi

run: install  ## start every service, worker, relay and scheduler locally; Ctrl-C stops them
	$(BIN)/kube run

test: install  ## the whole suite against real PostgreSQL, Redis and Celery workers
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-unit: install
	$(BIN)/python -m pytest -m unit $(PYTEST_ARGS)

test-integration: install
	$(BIN)/python -m pytest -m integration $(PYTEST_ARGS)

test-e2e: install
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

openapi: install  ## rewrite docs/openapi/<service>.json, the committed API contracts, from the code
	$(BIN)/kube openapi

events-doc: install  ## rewrite docs/event-catalogue.md and docs/asyncapi.json from the event contracts in code
	$(BIN)/kube events-doc

COMPOSE_SECRETS := KUBE_JWT_SECRET KUBE_DATA_KEYS KUBE_LOOKUP_KEY REDIS_PASSWORD POSTGRES_PASSWORD REGISTRY_DB_PASSWORD GRANTS_DB_PASSWORD NOTIFICATIONS_DB_PASSWORD DASHBOARD_SECRET_KEY
compose-check:  ## validate docker-compose.yml (no Docker engine needed)
	$(foreach v,$(COMPOSE_SECRETS),$(v)=check$$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')) docker-compose config -q
	@# ... and it must refuse to start without any one of its secrets.
	@for missing in $(COMPOSE_SECRETS); do \
	  env $(foreach v,$(COMPOSE_SECRETS),$(v)=x) -u $$missing docker-compose config -q 2>/dev/null \
	    && { echo "docker-compose.yml starts without $$missing" >&2; exit 1; }; \
	done; true

# Every benchmark, then one table of all figures beside their baselines (bench/all.py).
bench: install
	$(BIN)/python bench/all.py

clean:
	rm -rf .local/logs .pytest_cache .ruff_cache

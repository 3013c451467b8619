# The two commands of the README: `make run` (the engine on its embedded defaults) and `make test`.
# Each sets itself up on a fresh machine: a virtualenv in .venv with the pinned dependencies.
VENV ?= .venv
PY ?= python3
# Debian's PostgreSQL keeps initdb/pg_ctl here; the tests start a throwaway cluster with them.
export PATH := $(abspath $(VENV))/bin:$(wildcard /usr/lib/postgresql/15/bin):$(PATH)

.PHONY: run test test-all bench schemas

$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[server,test]"
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/casework run

test: $(VENV)/.installed
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -q

# The long load and fault runs too (opt-in).
test-all: $(VENV)/.installed
	scripts/ensure-postgres.sh
	scripts/ensure-chromium.sh
	$(VENV)/bin/pytest -q -m "slow or not slow"

schemas: $(VENV)/.installed
	$(VENV)/bin/python -m casework.schemas
	$(VENV)/bin/python -m casework.web.openapi

# Codex: everyday commands. `make run` and `make test` do all set-up on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000
# Printed and e-mailed links use the port the server listens on.
export CODEX_PUBLIC_PORT ?= $(PORT)

# Python 3.12+ (Django 6.1 requires it): PYTHON=..., else python3.13 / python3.12 / pyenv's, else python3.
PYTHON ?= $(shell for p in python3.13 python3.12 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3 $$(pyenv root 2>/dev/null)/versions/3.12*/bin/python3 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then command -v $$p; break; fi; done)

.PHONY: frontend frontend-client checks migrations-check imports types bandit pip-audit fuzz run test install migrate seed stop worker beat lint format bench bench-pages bench-webhooks clean-db restore-drill help chromium

help:
	@echo "make run     set up everything; serve on http://localhost:$(PORT) with the live stream, a Celery worker and beat"
	@echo "make test    install what tests need, lint, migration check and the whole test suite"
	@echo "make stop    stop what make run started: web, live, worker, beat, PostgreSQL, Redis"

$(STAMP): requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "Python 3.12+ not found: install it or pass PYTHON=/path/to/python3.12"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --disable-pip-version-check -q --upgrade pip && \
	  $(PIP) install --disable-pip-version-check -q -r requirements-dev.txt || \
	  { echo "make install did not finish (see above): fix the cause and run it again; nothing was removed"; exit 1; }
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# Test-only JavaScript (axe-core for the accessibility check), from the npm registry at install time.
NODE_STAMP := node_modules/.installed-$(shell sha1sum package-lock.json 2>/dev/null | cut -c1-12)
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --loglevel=error && touch $(NODE_STAMP); \
	else echo "npm not found: the accessibility check (tests/web) will report it"; fi

install: $(STAMP) $(NODE_STAMP)

# The client portal (frontend/, docs/portal.md): npm ci + Vite build into frontend/dist, skipped when
# neither the sources nor the lock file changed (the stamp is a hash of them).
FRONTEND_SRC := $(shell find frontend/src frontend/index.html frontend/vite.config.ts frontend/tsconfig.json frontend/package-lock.json -type f 2>/dev/null | sort)
FRONTEND_STAMP := frontend/dist/.built-$(shell cat $(FRONTEND_SRC) 2>/dev/null | sha1sum | cut -c1-12)
$(FRONTEND_STAMP): $(FRONTEND_SRC)
	@if command -v npm >/dev/null 2>&1; then \
	  cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build && touch ../$(FRONTEND_STAMP); \
	else echo "npm not found: the client portal (/portal/) shows its not-built page"; fi
frontend: $(FRONTEND_STAMP)

# Regenerate the portal's OpenAPI slice and the typed client from it (commit both).
frontend-client: install
	$(PY) manage.py portal_schema --file frontend/src/api/openapi.json
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && npx openapi-typescript src/api/openapi.json -o src/api/schema.d.ts

migrate: install
	$(PY) manage.py migrate_all --verbosity 0

seed: migrate
	$(PY) manage.py seed_demo

# Web (runserver), the live stream (uvicorn, port PORT+1), Celery worker and beat; Ctrl-C stops the four, `make stop` the databases too.
run: install frontend
	@$(PY) -m codex.devstack preflight --host $(HOST) --port $(PORT)
	@$(MAKE) --no-print-directory seed
	@echo "Serving on http://localhost:$(PORT) (PostgreSQL and Redis: embedded under .data/ unless DATABASE_URL/REDIS_URL)"
	@$(PY) -m codex.devstack run --host $(HOST) --port $(PORT)

# Browser tests drive Debian's chromium: installed here when missing and root, else one line and exit 1.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
chromium:
	@if [ ! -x "$(CHROMIUM)" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi
	@test -x "$(CHROMIUM)" || { echo "$(CHROMIUM) is missing: install Debian's chromium (sudo apt-get install chromium) or pass CHROMIUM=/path/to/chromium"; exit 1; }

# pytest-xdist workers for the suite (docs/decisions/1070): each has its own test database and its
# own Redis databases. PYTEST_WORKERS=0 runs it in this one process. Files are handed out whole, in
# the order tests/conftest.py sets (longest first, docs/decisions/1270), and every run prints its 25
# slowest tests. ruff fails fast (seconds); the slower static checks run beside pytest (they read
# no test database) and print their output after it: `make test` fails if either part failed.
PYTEST_WORKERS ?= 2
CHECKS_LOG := .data/run/checks.log
test: install chromium frontend
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	@mkdir -p $(dir $(CHECKS_LOG))
	@echo "makemigrations --check, lint-imports, mypy, bandit, pip-audit: beside pytest (output after it)"
	@$(MAKE) --no-print-directory -k checks > $(CHECKS_LOG) 2>&1 & checks=$$!; \
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25 $(PYTEST_ARGS); tests=$$?; \
	wait $$checks; checked=$$?; \
	echo "---- static checks (run beside pytest) ----"; cat $(CHECKS_LOG); \
	if [ $$checked -ne 0 ]; then echo "static checks FAILED (see above)"; fi; \
	if [ $$tests -ne 0 ]; then echo "pytest FAILED (exit $$tests)"; fi; \
	[ $$tests -eq 0 ] && [ $$checked -eq 0 ]

# The static checks of `make test` other than ruff; `make -k checks` runs all and fails if one did.
checks: migrations-check imports types bandit pip-audit

migrations-check: install
	$(PY) manage.py makemigrations --check --dry-run

# API fuzzing. First in-process with Schemathesis' coverage phase too (every boundary and invalid
# value; 1 to 4 min per host), then over HTTP as a client sees it: Schemathesis' CLI against a live
# gunicorn on a free port, on the firm host and on the API host, with an owner's write key, all
# checks and CODEX_FUZZ_LIVE_EXAMPLES examples per operation (default 10). The development database
# gets a firm "fuzz" (tests/security/fuzz_live.py; figures in docs/security.md).
fuzz: migrate
	CODEX_FUZZ_COVERAGE=1 $(PY) -m pytest tests/security/test_api_fuzz.py -q
	$(PY) tests/security/fuzz_live.py $(FUZZ_ARGS)

# The layers and directions of docs/architecture.md (contracts in pyproject.toml): fails on a new
# cycle or an import against the direction.
imports: install
	$(VENV)/bin/lint-imports

# Types (mypy with django-stubs and djangorestframework-stubs; settings in pyproject.toml).
types: install
	$(VENV)/bin/mypy

# Static security analysis: fails on any high-severity finding (config in pyproject.toml).
bandit: install
	$(VENV)/bin/bandit -c pyproject.toml -r codex tenants billing portfolios crm webhooks fees portal -q --severity-level high --confidence-level medium

# Known vulnerabilities in our pinned runtime dependencies. pip-audit needs PyPI's JSON API or OSV;
# where neither is reachable it says so plainly and does not pass silently (docs/decisions/0502).
# CODEX_REQUIRE_PIP_AUDIT=1 turns "could not run" into a failure (set it where the network allows).
pip-audit: install
	@out=$$($(VENV)/bin/pip-audit -r requirements.txt --vulnerability-service pypi --no-deps --strict --progress-spinner off 2>&1); rc=$$?; \
	if [ $$rc -eq 0 ]; then echo "pip-audit: no known vulnerabilities in requirements.txt"; \
	elif echo "$$out" | grep -qi "known vulnerabilit"; then echo "$$out"; exit 1; \
	elif echo "$$out" | grep -q "could not be audited"; then \
	  echo "pip-audit: NOT RUN - the vulnerability database (PyPI JSON API) is unreachable from this machine;"; \
	  echo "           $$(echo "$$out" | grep 'could not be audited' | head -n 1)"; \
	  echo "           Nothing was audited. Run 'make pip-audit' where the database is reachable."; \
	  if [ -n "$$CODEX_REQUIRE_PIP_AUDIT" ]; then exit 1; fi; \
	else echo "$$out"; exit 1; fi

lint: install
	$(VENV)/bin/ruff format --check . && $(VENV)/bin/ruff check .

format: install
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

stop:
	@if [ -x $(PY) ]; then $(PY) -m codex.devstack stop; else echo "nothing to stop (no $(VENV): make run never ran here)"; fi

# A worker or beat alone (make run starts both), on REDIS_URL or the embedded Redis.
worker: install
	$(VENV)/bin/celery -A codex worker --loglevel INFO

beat: install
	@mkdir -p .data/run
	$(VENV)/bin/celery -A codex beat --loglevel INFO --schedule .data/run/celerybeat-schedule

bench: install
	$(PY) bench/run_all.py $(BENCH_ARGS)

bench-pages: install
	$(PY) bench/pages.py $(BENCH_PAGES_ARGS)

# Webhooks under load: WEBHOOK_EVENTS events (default 10,000) through the outbox and a real Celery
# worker to a loopback receiver failing 30 %; exit 1 if one is lost (docs/benchmarks.md).
# `make bench-webhooks WEBHOOK_EVENTS=1000` is the quick check (a few minutes on a quiet machine).
WEBHOOK_EVENTS ?= 10000
bench-webhooks: install
	$(PY) bench/webhooks_delivery.py --events $(WEBHOOK_EVENTS) $(BENCH_WEBHOOKS_ARGS)

# Back up the whole database, restore it into a scratch database, compare every table (docs/operations.md).
restore-drill: install
	$(PY) manage.py restore_drill --backup-first

# Deletes the development database (asks first).
clean-db: stop
	@read -p "Delete .data/pg (every firm of the development database)? [y/N] " answer; \
	if [ "$$answer" = y ]; then rm -rf .data/pg && echo "deleted .data/pg"; else echo "kept .data/pg"; fi

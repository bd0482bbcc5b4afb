# Parrain developer commands (GNU make). Every target works from a fresh clone.
#
#   make install   .venv with the pinned dependencies of requirements.lock (instant when up to date)
#   make run       embedded default: SQLite file, eager tasks, periodic tasks in a thread, demo data,
#                  http://127.0.0.1:$(PORT)/
#   make manage    ARGS="create_api_key book-launch --scopes track": a manage.py command with run's settings
#   make test      pytest against the local PostgreSQL and Redis when they answer (see .ci/services.sh)
#   make lint      ruff check, ruff format --check, mypy on the service and selector layers, lint-imports
#   make bench     bench/run.sh
#   make clean     remove .venv, the SQLite database and collected static files

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

PORT ?= 8000
ARGS ?=
# The embedded default's settings, shared by `make run` and `make manage` so that both see one database.
EMBEDDED_ENV := DEBUG=true CELERY_TASK_ALWAYS_EAGER=true
PYTEST_ARGS ?=

# Typed layers: core (policies included), every app's services (module or package) and selectors, the
# console's read models. A new app's services.py or selectors.py is checked without editing this line.
MYPY_FILES := $(sort $(wildcard core console config/db.py $(filter-out console/%,$(wildcard */services.py */services */selectors.py))))

.PHONY: help install run manage test lint bench clean

help:
	@echo "make install | run [PORT=8000] | manage ARGS=... | test [PYTEST_ARGS=...] | lint | bench | clean"

install: $(STAMP)

$(STAMP): requirements.lock
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

run: install
	@export $(EMBEDDED_ENV); \
	$(PY) manage.py migrate --noinput; \
	$(PY) manage.py seed_demo; \
	echo; \
	echo "=================================================================="; \
	echo "  Parrain is starting: the embedded default (SQLite, no Redis);"; \
	echo "  tasks run in this process, periodic ones by a thread on beat's schedule"; \
	echo; \
	echo "      http://127.0.0.1:$(PORT)/"; \
	echo; \
	echo "  API quick start (README): PARRAIN=http://127.0.0.1:$(PORT)"; \
	echo "  Demo logins are printed above by seed_demo. Ctrl-C stops it."; \
	echo "=================================================================="; \
	echo; \
	exec $(PY) manage.py runembedded 127.0.0.1:$(PORT) --noreload

# Prints only the command's own output, so that `KEY=$$(make -s manage ARGS="create_api_key ...")` works.
manage: install
	@test -n "$(strip $(ARGS))" || { echo 'usage: make manage ARGS="create_api_key book-launch --scopes track"' >&2; exit 2; }
	@export $(EMBEDDED_ENV); exec $(PY) manage.py $(ARGS)

test: install
	@source .ci/services.sh; \
	parrain_prepare_test_env || { echo "make test: required services are missing (see above)" >&2; exit 1; }; \
	exec $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
ifneq ($(strip $(MYPY_FILES)),)
	$(VENV)/bin/mypy $(MYPY_FILES)
else
	@echo "mypy: no service or selector modules yet, nothing to type-check"
endif

bench: install
	@if [ -f bench/run.sh ]; then exec bash bench/run.sh; else echo "bench: bench/run.sh does not exist yet"; fi

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm db.sqlite3-journal staticfiles

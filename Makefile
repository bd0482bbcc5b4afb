# Parrain developer commands (GNU make). Every target works from a fresh clone.
#
#   make install   .venv with the pinned dependencies of requirements.lock (instant when up to date)
#   make run       embedded default: SQLite file, eager tasks, demo data, http://127.0.0.1:$(PORT)/
#   make test      pytest against the local PostgreSQL and Redis when they answer (see .ci/services.sh)
#   make lint      ruff check, ruff format --check, mypy on the service and selector layers
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
PYTEST_ARGS ?=

MYPY_FILES := $(wildcard \
	ambassadors/services.py ambassadors/selectors.py \
	referrals/services.py referrals/selectors.py \
	rewards/services.py rewards/selectors.py \
	config/db.py)

.PHONY: help install run test lint bench clean

help:
	@echo "make install | run [PORT=8000] | test [PYTEST_ARGS=...] | lint | bench | clean"

install: $(STAMP)

$(STAMP): requirements.lock
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	@touch $@

run: install
	@export DEBUG=true CELERY_TASK_ALWAYS_EAGER=true; \
	$(PY) manage.py migrate --noinput; \
	$(PY) manage.py seed_demo; \
	echo; \
	echo "=================================================================="; \
	echo "  Parrain is starting (SQLite file db.sqlite3, Celery tasks eager)"; \
	echo; \
	echo "      http://127.0.0.1:$(PORT)/"; \
	echo; \
	echo "  Demo logins are printed above by seed_demo. Ctrl-C stops it."; \
	echo "=================================================================="; \
	echo; \
	exec $(PY) manage.py runserver 127.0.0.1:$(PORT) --noreload

test: install
	@source .ci/services.sh; \
	parrain_prepare_test_env || { echo "make test: required services are missing (see above)" >&2; exit 1; }; \
	exec $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
ifneq ($(strip $(MYPY_FILES)),)
	$(VENV)/bin/mypy $(MYPY_FILES)
else
	@echo "mypy: no service or selector modules yet, nothing to type-check"
endif

bench: install
	@if [ -f bench/run.sh ]; then exec bash bench/run.sh; else echo "bench: bench/run.sh does not exist yet"; fi

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm db.sqlite3-journal staticfiles

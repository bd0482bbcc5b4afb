# Parrain developer commands (GNU make). Every target works from a fresh clone.
#
#   make install   .venv with the pinned dependencies of requirements/dev.lock (instant when up to date)
#   make run       embedded default: SQLite file, eager tasks, periodic tasks in a thread, demo data,
#                  http://127.0.0.1:$(PORT)/
#   make manage    ARGS="create_api_key book-launch --scopes track": a manage.py command with run's settings
#   make test      pytest against the local PostgreSQL and Redis when they answer (see .ci/services.sh),
#                  in TEST_PROCESSES=2 processes
#   make lint      ruff check, ruff format --check, mypy on the service and selector layers, lint-imports
#   make bench     bench/run.sh
#   make vendor    copy htmx and Chart.js from node_modules (npm ci) into static/vendor/ (committed: run needs no npm)
#   make messages  makemessages for French (after changing a user-facing string), then compilemessages
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
# `make test` runs the suite in this many processes (pytest-xdist; one file stays in one process). Each
# has its own test database (pytest-django) and Redis database (config/settings_test.py). 1: one process.
TEST_PROCESSES ?= 2

# Typed layers: core (policies included), every app's services (module or package) and selectors, the
# console's read models. A new app's services.py or selectors.py is checked without editing this line.
MYPY_FILES := $(sort $(wildcard core console config/db.py $(filter-out console/%,$(wildcard */services.py */services */selectors.py))))

.PHONY: help install run manage test lint bench clean vendor messages axe

help:
	@echo "make install | run [PORT=8000] | manage ARGS=... | test [PYTEST_ARGS=...] | lint | bench | vendor | messages | clean"

install: $(STAMP)

# Translations: locale/fr/LC_MESSAGES/django.po and its compiled django.mo are both committed, so that
# `make run`, the Docker image and a bare pytest need no gettext; tests/pages/test_i18n.py fails when the
# .mo does not say what the .po says. After changing a user-facing string: `make messages` (needs
# gettext's msgfmt: apt-get install gettext), translate the new entries, `make messages` again.
messages: install
	@command -v msgfmt >/dev/null || { echo "make messages: msgfmt missing (apt-get install gettext)" >&2; exit 1; }
	@export $(EMBEDDED_ENV); \
	$(PY) manage.py makemessages --locale fr --no-location --no-obsolete \
		--ignore node_modules --ignore .venv --ignore staticfiles --ignore static; \
	$(PY) manage.py compilemessages --locale fr --ignore node_modules --ignore .venv --verbosity 0

# Front-end files: versions pinned by package.json and package-lock.json (no registry URL in either).
HTMX_VERSION = $(shell node -p 'require("./node_modules/htmx.org/package.json").version')
CHARTJS_VERSION = $(shell node -p 'require("./node_modules/chart.js/package.json").version')

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

vendor: node_modules/.package-lock.json
	rm -rf static/vendor/htmx-* static/vendor/chart.js-*
	mkdir -p static/vendor/htmx-$(HTMX_VERSION) static/vendor/chart.js-$(CHARTJS_VERSION)
	cp node_modules/htmx.org/dist/htmx.min.js node_modules/htmx.org/LICENSE static/vendor/htmx-$(HTMX_VERSION)/
	cp node_modules/chart.js/dist/chart.umd.min.js node_modules/chart.js/dist/chart.umd.min.js.map \
		node_modules/chart.js/LICENSE.md static/vendor/chart.js-$(CHARTJS_VERSION)/

# axe-core for the accessibility tests (tests/pages/axe.py reads node_modules/axe-core/axe.min.js).
# `make test` always installs it: without npm it stops here rather than letting the browser tests skip it.
axe: node_modules/.package-lock.json

$(STAMP): requirements/runtime.lock requirements/dev.lock
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/dev.lock
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

test: install axe
	@source .ci/services.sh; \
	parrain_prepare_test_env || { echo "make test: required services are missing (see above)" >&2; exit 1; }; \
	if [ "$(TEST_PROCESSES)" -gt 1 ]; then workers=(-n "$(TEST_PROCESSES)" --dist loadfile); else workers=(); fi; \
	exec $(PY) -m pytest "$${workers[@]}" $(PYTEST_ARGS)

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
	rm -rf $(VENV) db.sqlite3 db.sqlite3-wal db.sqlite3-shm db.sqlite3-journal staticfiles node_modules

# Muxly for Apache Airflow: the two commands of the README, plus lint and the UI bundle.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

# The mysql extra's provider builds mysqlclient from source: included where its headers are installed
# (Debian: libmariadb-dev, pkg-config; .ci/run installs them), otherwise its conn_id tests are skipped.
HAVE_MYSQL_HEADERS := $(shell (pkg-config --exists libmariadb || pkg-config --exists mysqlclient) 2>/dev/null && echo yes)
comma := ,
EXTRAS := postgres,dev$(if $(HAVE_MYSQL_HEADERS),$(comma)mysql)

.PHONY: install demo test lint ui ui-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[$(EXTRAS)]'
	touch $@

## demo: set up everything and run the sample job end to end on SQLite
demo: install
	$(PY) examples/demo.py

## test: install what is needed and run the suite (SQLite and PostgreSQL on 127.0.0.1:5432)
test: install
	$(VENV)/bin/pytest $(PYTEST_ARGS)

## lint: ruff (lint + format check) and mypy strict
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## ui: rebuild the UI bundle muxly_provider/ui/static/muxly-ui.js from ui/ (Node >= 20.19, npm)
ui:
	cd ui && npm ci --no-audit --no-fund && npm run build

## ui-check: rebuild the bundle and fail when the shipped one does not match its sources
ui-check: ui
	git diff --exit-code --stat -- muxly_provider/ui/static
	test -z "$$(git status --porcelain --untracked-files=all -- muxly_provider/ui/static)"

clean:
	rm -rf .demo build dist *.egg-info

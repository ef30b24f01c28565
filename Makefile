# Muxly for Apache Airflow: the two commands of the README, plus lint.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install demo test lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[postgres,dev]'
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

clean:
	rm -rf .demo build dist *.egg-info

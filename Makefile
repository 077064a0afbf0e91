# Two set-up commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?= -n 2

.PHONY: demo test lint bench install clean docs

$(VENV)/.installed: pyproject.toml setup.py src/ecsguard/logs/receivers/firelens_native.cpp \
		src/ecsguard/detect/json_native.cpp src/ecsguard/core/arrow_strings.h
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install  ## seed the emulated account and run the main job on it, then exit
	$(VENV)/bin/ecsguard demo --once

test: install  ## the whole suite
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/inventory.py
	$(PY) bench/logs.py
	$(PY) bench/console_search.py
	$(PY) bench/metrics.py
	$(PY) bench/detect_patterns.py
	$(PY) bench/detect_templates.py
	$(PY) bench/detect.py
	$(PY) bench/store_s3.py

docs: install  ## regenerate generated references
	$(VENV)/bin/ecsguard iam auditor-policy > docs/iam-policy.json
	$(VENV)/bin/ecsguard audit checks --output markdown > docs/checks.md
	$(VENV)/bin/ecsguard audit checks --output markdown --lang ja > docs/checks.ja.md
	$(PY) -m ecsguard.detect.reference > docs/rules.md
	$(PY) -m ecsguard.detect.sigma.coverage > docs/sigma-coverage.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

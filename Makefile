# `make run` and `make test` each work on a fresh clone: they make .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test lint screenshots clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## run: import data/samples if the catalog is empty, build the index if needed, serve
run: $(VENV)/.installed-run
	$(BIN)/searchapp import data/samples --if-empty
	$(BIN)/searchapp reindex --if-needed
	$(BIN)/searchapp serve --host $(HOST) --port $(PORT)

# axe-core for the accessibility checks in the browser tests, from the npm registry
# (tests/package-lock.json pins it).
tests/node_modules/axe-core/axe.min.js: tests/package.json tests/package-lock.json
	npm ci --prefix tests --no-audit --no-fund
	touch $@

## test: the whole suite, in TEST_WORKERS processes (pytest-xdist), each test file whole
## in one of them (its module fixtures, such as the browser tests' gunicorn and
## Chromium, start once); TEST_WORKERS=0 runs it in this process alone
TEST_WORKERS ?= 2
test: $(VENV)/.installed-test tests/node_modules/axe-core/axe.min.js
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

## screenshots: refresh docs/screenshot*.png (the README's pictures) from the browser tests
screenshots: $(VENV)/.installed-test tests/node_modules/axe-core/axe.min.js
	SEARCHAPP_SCREENSHOTS=$(CURDIR)/docs $(BIN)/python -m pytest -q tests/test_browser.py -k screenshots

$(VENV)/.installed-lint: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,lint]'
	touch $@

## lint: ruff and mypy, at the versions pyproject.toml's lint extra pins
lint: $(VENV)/.installed-lint
	$(BIN)/ruff check searchapp tests bench
	$(BIN)/mypy searchapp

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# Two entry points for a fresh machine: `make run` and `make test`. Both install first.
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# AWS SAM CLI pins boto3/pydantic versions that conflict with the project's, so it lives in its own
# tool venv (gitignored); tests/aws call it from there (sam validate/build, samtranslator).
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
PORT   ?= 8787
DATA   ?= .airdock

.PHONY: install run test test-fast bench lint clean

install: $(VENV)/.installed $(SAM_VENV)/.installed

# uv comes from PyPI into the project's own venv, so nothing is installed system-wide.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip install --quiet -p $(PY) -e ".[dev]"
	touch $@

$(SAM_VENV)/.installed: $(VENV)/.installed Makefile
	test -x $(SAM_VENV)/bin/python || $(UV) venv --quiet -p python3.11 $(SAM_VENV)
	$(UV) pip install --quiet -p $(SAM_VENV)/bin/python aws-sam-cli==$(SAM_CLI_VERSION)
	touch $@

run: install
	$(VENV)/bin/airdock serve --port $(PORT) --data-dir $(DATA) --sample

test: install
	$(VENV)/bin/pytest -q -p no:cacheprovider

test-fast: install
	$(VENV)/bin/pytest -q -m "not airflow"

bench: install
	$(PY) bench/api_latency.py

clean:
	rm -rf $(VENV) $(SAM_VENV) $(DATA) .pytest_cache .aws-sam

# Two entry points for a fresh machine: `make run` and `make test`. Both install first.
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
# AWS SAM CLI pins boto3/pydantic versions that conflict with the project's, so it lives in its own
# tool venv (gitignored); tests/aws call it from there (sam validate/build, samtranslator).
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
# The Lambda functions' runtime (template.yaml's Globals and CoreLayer): `sam build` without a
# container needs this very Python on PATH (with pip), and tests/aws import each built function
# in it. pyenv's copy where the machine has one, else whatever python3.13 is on PATH.
LAMBDA_PYTHON_VERSION := 3.13
LAMBDA_PYTHON := $(firstword $(wildcard /root/.pyenv/versions/$(LAMBDA_PYTHON_VERSION).*/bin/python$(LAMBDA_PYTHON_VERSION)) $(shell command -v python$(LAMBDA_PYTHON_VERSION)))
# What the Lambda runtime itself provides besides the standard library: boto3 (and its
# dependencies). tests/aws/test_built_artifacts.py imports every built handler with only this,
# the function's build folder and its layers on the path, as Lambda does.
LAMBDA_VENV := .venv-lambda
BOTO3_VERSION := $(shell sed -n 's/^ *"boto3==\([^"]*\)".*/\1/p' pyproject.toml)
PORT   ?= 8787
DATA   ?= .airdock

.PHONY: install test-tools browser run test test-fast bench bench-reliability lint clean locks

# What `make run` needs; `make test` adds the test-only tools (SAM CLI, Chromium) on top.
install: $(VENV)/.installed

test-tools: install $(SAM_VENV)/.installed $(LAMBDA_VENV)/.installed browser

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

# python/python3 for `sam build` (PATH=.venv-sam/lambda-bin:$$PATH; the SAM builder looks for those
# names and takes the first whose version is the runtime's): the runtime's interpreter with its own
# pip (small scripts, not links: a link inside .venv-sam would make it that venv's Python). And a
# venv of that Python holding boto3 only.
$(LAMBDA_VENV)/.installed: $(VENV)/.installed Makefile pyproject.toml
	@test -n "$(LAMBDA_PYTHON)" || { echo "python$(LAMBDA_PYTHON_VERSION) (the Lambda runtime) is missing: install it (pyenv install $(LAMBDA_PYTHON_VERSION))"; exit 1; }
	mkdir -p $(SAM_VENV)/lambda-bin
	for name in python python3 python$(LAMBDA_PYTHON_VERSION); do \
	  printf '#!/bin/sh\nexec %s "$$@"\n' "$(LAMBDA_PYTHON)" > $(SAM_VENV)/lambda-bin/$$name; chmod +x $(SAM_VENV)/lambda-bin/$$name; done
	test -x $(LAMBDA_VENV)/bin/python || $(UV) venv --quiet -p $(LAMBDA_PYTHON) $(LAMBDA_VENV)
	$(UV) pip install --quiet -p $(LAMBDA_VENV)/bin/python boto3==$(BOTO3_VERSION) botocore==$(BOTO3_VERSION)
	touch $@

# Debian's Chromium for the web-login (SSO) tests, driven by the Playwright package; Playwright's
# own browser download is never used. Idempotent, and skipped when chromium is already there.
browser:
	command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium; } \
	  || echo "warning: chromium is missing and installing it needs root (apt-get install chromium); the web-login tests need it"

run: install
	$(VENV)/bin/airdock serve --port $(PORT) --data-dir $(DATA) --sample

# Two workers, one test file each at a time: Airflow environments spend most of their time
# waiting, so the suite runs in about half the time without sharing module fixtures.
test: test-tools
	$(VENV)/bin/pytest -q -p no:cacheprovider -n 2 --dist loadfile

test-fast: test-tools
	$(VENV)/bin/pytest -q -m "not airflow"

bench: install
	$(PY) bench/api_latency.py

# Reliability and security figures (issue 10): ≥ 10 000 fuzzed requests, a 1-minute soak at 50
# clients, ≥ 20 server crashes during real creates/updates/deletes (the last one takes ~30 min).
bench-reliability: install
	$(PY) bench/fuzz.py
	$(PY) bench/soak.py
	$(PY) bench/crash.py

# Re-resolve the Airflow runtime locks (layers/core/airdock_runtime/locks/*.in -> *.txt), keeping
# every pin an unchanged .in allows. VERSIONS="3.3.2" limits it; UPGRADE=1 takes the newest releases;
# SEED=official (or a URL/path template with {version} and {python}) resolves against Airflow's own
# constraints, as MWAA builds its images.
locks: install
	$(PY) scripts/lock_runtimes.py $(VERSIONS) $(if $(UPGRADE),--upgrade) $(if $(SEED),--seed $(SEED))

clean:
	rm -rf $(VENV) $(SAM_VENV) $(LAMBDA_VENV) $(DATA) .pytest_cache .aws-sam

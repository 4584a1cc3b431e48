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

.PHONY: install test-tools browser run test test-fast bench bench-reliability lint clean locks

# What `make run` needs; `make test` adds the test-only tools (SAM CLI, Chromium) on top.
install: $(VENV)/.installed

test-tools: install $(SAM_VENV)/.installed browser

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
	rm -rf $(VENV) $(SAM_VENV) $(DATA) .pytest_cache .aws-sam

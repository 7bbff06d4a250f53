# Elbia Lambda: `make run` starts the whole service on embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
# Packages are installed with uv (pinned here, bootstrapped by pip): about ten times faster than pip.
UV_VERSION := 0.13.8
UV := $(BIN)/uv
# Two install stamps: `make run` needs the runtime requirements (and the CLI) only; `make test` and `make lint`
# add the development ones (pytest, schemathesis, playwright, ruff, ...).
RUNTIME := $(VENV)/.installed-runtime
INSTALLED := $(VENV)/.installed

# The suite runs against PostgreSQL and Redis (override either to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/elbia
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run migrate seed test lint format bench bench-aws bench-invocations clean

# The virtualenv gets no pip of its own (ensurepip alone takes seconds): the system's pip puts uv into it,
# or, where Python has no pip, the venv's ensurepip does.
$(UV):
	test -x $(BIN)/python || python3 -m venv --without-pip $(VENV)
	python3 -m pip --python $(BIN)/python install --quiet --disable-pip-version-check uv==$(UV_VERSION) 2>/dev/null \
	    || { $(BIN)/python -m ensurepip --default-pip >/dev/null \
	         && $(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }

# The runtime: the service's requirements and the command-line client (cli/), which the README uses.
$(RUNTIME): requirements.txt cli/pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.txt -e ./cli
	touch $(RUNTIME)

$(INSTALLED): requirements.txt requirements-dev.txt cli/pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements-dev.txt
	touch $(RUNTIME) $(INSTALLED)

install: $(INSTALLED)

# Local settings for `make run` and the commands the README shows: DEBUG=1 and a generated SECRET_KEY.
# Written once when missing, never overwritten; git-ignored; elbia/settings.py reads it.
.env:
	printf '# Local development settings, written by make (git-ignored). Production sets its own environment.\nDEBUG=1\nSECRET_KEY=%s\n' \
	    "$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@

migrate: $(RUNTIME) .env
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	$(BIN)/python manage.py seed_demo --base-url http://127.0.0.1:$(PORT)

# Migrate, then web (gunicorn) + worker (celery) + beat (celery beat) + runtime (runs functions) under honcho
# on SQLite and an SQLite-file broker; seeds the demo account meanwhile and prints a token once /healthz
# answers. Ctrl-C stops all four.
run: $(RUNTIME) .env
	$(BIN)/python manage.py run_local --port $(PORT)

test: $(INSTALLED)
	ELBIA_TESTING=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(INSTALLED)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Invocations through the API and the runner: cold and warm latency against a bare interpreter, and one web
# worker's invocations per second (bench/invocations.py, figures in bench/INVOCATIONS.md).
bench-invocations: $(INSTALLED)
	$(BIN)/python bench/invocations.py $(BENCH_ARGS)

# The AWS provider against moto_server: POST-to-active latency and one worker's throughput (bench/aws.py).
bench-aws: install
	$(BIN)/python bench/aws.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .hypothesis

# Elbia Lambda: `make run` starts the whole service on embedded defaults; `make test` runs the suite.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
PORT ?= 8000

# The suite runs against PostgreSQL and Redis (override either to point elsewhere).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/elbia
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run migrate seed test lint format bench clean

$(INSTALLED): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(INSTALLED)

install: $(INSTALLED)

migrate: install
	DEBUG=1 $(BIN)/python manage.py migrate --noinput

seed: migrate
	DEBUG=1 $(BIN)/python manage.py seed_demo --base-url http://127.0.0.1:$(PORT)

# Web (gunicorn) + worker (celery) + beat (celery beat) + runtime (runs functions) on SQLite and an SQLite-file
# broker. Ctrl-C stops all four.
run: seed
	DEBUG=1 PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --port $(PORT) web worker beat runtime

test: install
	ELBIA_TESTING=1 DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .hypothesis

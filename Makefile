# FinAegis: `make run` for a demo on embedded defaults, `make test` for the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Development machines run with DEBUG on, which also allows the development secrets.
export DEBUG ?= 1

.PHONY: install run test lint format bench clean

$(BIN)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit("FinAegis needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	test -f .env || printf '# Development settings (not for production; see README)\nDEBUG=1\n' > .env
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py setup_periodic_tasks
	$(BIN)/python manage.py setup_demo --url http://$(HOST):$(PORT)
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py makemigrations --check --dry-run

# The benchmarks (PostgreSQL on 127.0.0.1:5432 and Redis on 6379; ~20 minutes; see
# docs/PERFORMANCE.md). They create and drop databases of their own, never the app's.
bench: install
	$(BIN)/python -m bench.ledger
	$(BIN)/python -m bench.http
	$(BIN)/python -m bench.replay

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var/*.sqlite3* .pytest_cache .ruff_cache .hypothesis

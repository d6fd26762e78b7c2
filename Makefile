# Two commands for a newcomer: `make run` and `make test`. Nothing here asks questions.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
# Use uv from PATH; otherwise install it once into .tools/ (no root needed).
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_COMPILE_BYTECODE := 1
export UV_LINK_MODE := copy

.PHONY: help install run test lint format bench proof clean

help:
	@echo "make run    install if needed, migrate, seed demo data, start every service (workspace included)"
	@echo "make test   lint, type-check and run the whole test suite"
	@echo "make lint   ruff and mypy only;  make bench   quick benchmarks"

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

$(VENV)/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --all-groups
	@touch $@

# Byte-compile our own modules: with PYTHONDONTWRITEBYTECODE set, Python would recompile them in
# every process (about 0.7 s of CPU each); compileall skips what is up to date.
install: $(VENV)/.installed
	@$(BIN)/python -m compileall -q shared services

run: install
	$(BIN)/refex up --migrate --seed-demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared services clients/python/src
	$(BIN)/deptry .

# Files run in parallel (each file's tests on one worker, so module fixtures are built once);
# most tests wait on databases and service processes, so 3 workers pay off on 2 cores.
TEST_WORKERS ?= 3

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@for script in bench/*.py; do \
		[ "$$(basename $$script)" = "_common.py" ] && continue; \
		echo "== $$script"; $(BIN)/python $$script --quick || exit 1; \
	done

proof: install
	$(BIN)/python -m proof.run

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

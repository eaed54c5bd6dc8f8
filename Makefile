# Every target does its own set-up (idempotent: a second `make setup` does nothing and takes about a second).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .venv-tools/bin
PYTEST_ARGS ?=
# Test files run on this many xdist workers, a file per worker (module fixtures such as the workflow story's emulator
# stay in one process), the long Terraform files first (tests/conftest.py). Three on a 2-core machine: a worker
# often waits (Terraform's provider polls an updating endpoint every 30 s, timeouts run out on purpose), and with
# local mode's shared AWS provider (smgitops.tfprovider) Terraform takes half the CPU it did; the third worker fills
# those waits (measured: 10 min 10 s with two, 8 min 56 s with three, CPU about 93 % busy).
TEST_JOBS ?= 3

.PHONY: help setup test test-fast demo lint bench clean

help:
	@echo "make demo    the whole story on the local emulator with real Terraform (does its own set-up)"
	@echo "make test    the test suite (does its own set-up)"
	@echo "make test-fast  the tests that run neither Terraform nor checkov (about a minute)"
	@echo "make lint    ruff, mypy --strict, import contracts, terraform fmt, zizmor, actionlint (with shellcheck)"
	@echo "make bench   benchmarks (print numbers)"
	@echo "make setup   virtual environments, Terraform provider mirror, emulator certificate"

setup:
	@scripts/setup.sh

test: setup
	$(BIN)/pytest -n $(TEST_JOBS) --dist loadfile $(PYTEST_ARGS)

# A test that runs Terraform without its marker fails here (tests/conftest.py puts a refusing terraform on PATH).
test-fast: setup
	$(BIN)/pytest -n $(TEST_JOBS) -m "not terraform and not checkov" $(PYTEST_ARGS)

demo: setup
	$(BIN)/smgitops demo --report out/demo-report.json

lint: setup
	$(BIN)/ruff check scripts tests bench
	$(BIN)/ruff format --check scripts tests bench
	$(BIN)/mypy
	PYTHONPATH=scripts $(TOOLS)/lint-imports --no-cache --config .importlinter
	terraform fmt -check -recursive bootstrap terraform
	$(TOOLS)/zizmor --offline --persona=auditor .github/workflows
	$(TOOLS)/actionlint -shellcheck=$(TOOLS)/shellcheck

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python "$$b" || exit 1; done

clean:
	rm -rf .venv .venv-tools .cache out tests/iam/node_modules

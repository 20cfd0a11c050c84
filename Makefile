# The developer's and CI's commands. `make demo` and `make test` set everything up first.
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup demo stack-demo test lint bench clean

setup:
	@bash scripts/setup

# The whole tool in about three minutes: stack, compressed Double 11, faults, report.
demo: setup
	$(BIN)/loadkit demo

# Ten seconds: the stack, one real transfer (and its idempotent retry), the ledger check.
stack-demo: setup
	@bash scripts/demo

# The one test command: lint, types, then the whole suite against real services.
test: setup lint
	$(BIN)/pytest -q

lint:
	$(BIN)/ruff check loadkit tests bench
	$(BIN)/ruff format --check loadkit tests bench
	$(BIN)/mypy

# Benchmarks print ratios measured side by side; they are not part of the tests' pass/fail.
# They want quiet CPUs: run nothing else meanwhile. Setup adds wrk (as root, from Debian).
bench:
	@bash scripts/setup --bench
	$(BIN)/python bench/wallet_vs_pgbench.py --rounds 3
	$(BIN)/python bench/generator_vs_fasthttp.py

clean:
	-$(BIN)/loadkit stack down
	rm -rf .loadkit .pytest_cache .mypy_cache .ruff_cache

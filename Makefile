# gridpulse task runner: `make` (or `make help`) lists the targets.
# The local stack (Kafka, Redis, PostgreSQL under .run/) is scripts/stack.sh; ports can be moved
# with GRIDPULSE_KAFKA_PORT / GRIDPULSE_REDIS_PORT / GRIDPULSE_PG_PORT, and the gridpulse
# settings then follow (exported below unless set explicitly).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
# setup -> up -> topics -> pytest must happen in this order even under `make -j`
.NOTPARALLEL:
# Every target that runs something from .venv depends on `setup` (scripts/bootstrap.sh:
# idempotent, silent when there is nothing to do), so each one works on a fresh clone; the
# stack's own targets (down, status, kill-kafka, wipe, clean) need nothing installed.

VENV := .venv/bin
STACK := scripts/stack.sh

ifdef GRIDPULSE_KAFKA_PORT
export GRIDPULSE_KAFKA_BOOTSTRAP ?= 127.0.0.1:$(GRIDPULSE_KAFKA_PORT)
endif
ifdef GRIDPULSE_REDIS_PORT
export GRIDPULSE_REDIS_URL ?= redis://127.0.0.1:$(GRIDPULSE_REDIS_PORT)/0
endif
ifdef GRIDPULSE_PG_PORT
export GRIDPULSE_PG_DSN ?= postgresql://gridpulse@127.0.0.1:$(GRIDPULSE_PG_PORT)/gridpulse
endif

.PHONY: help setup up down status kill-kafka wipe topics test test-unit test-integration test-clocks faults \
	test-kafka4 demo lint format bench clean distclean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-17s %s\n", $$1, $$2}' \
		$(MAKEFILE_LIST)

setup: ## install what is missing: apt redis/postgres/chromium/CJK fonts, Kafka jars (Maven), .venv, npm ci (dashboard)
	@scripts/bootstrap.sh

up: setup ## start Kafka, Redis and PostgreSQL under .run/ (no-op when running)
	@$(STACK) up

down: ## stop the local stack
	@$(STACK) down

status: ## one line per stack component: running / answering
	@$(STACK) status

kill-kafka: ## SIGKILL the local broker (fault tests)
	@$(STACK) kill kafka

wipe: ## stop the stack and delete its data (.run/)
	@$(STACK) wipe

topics: setup up ## create the contract topics on the local broker (started if need be)
	$(VENV)/gridpulse topics create

test: setup lint up topics ## everything: lint, stack up, topics, then the whole pytest suite
	$(VENV)/pytest -q --durations=25  # the 25 slowest: where CI's 25 minutes go

test-unit: setup ## unit tests only; needs no stack
	$(VENV)/pytest -q tests/unit

test-integration: setup up topics ## integration tests only, against the local stack
	$(VENV)/pytest -q tests/integration

# `make test-clocks`: the suites under fixed wall clocks (local times in the settings' zone):
# a month's first minutes, a month's last minutes, New Year, 29 February. Future dates: records
# stamped in the past would fall to the broker's retention. Override e.g. CLOCK_TESTS=tests/unit.
CLOCKS ?= 2027-03-01T00:05 2027-04-30T23:55 2027-01-01T00:05 2028-02-29T12:00
CLOCK_TESTS ?= tests/unit tests/integration

test-clocks: setup up topics ## unit + integration suites under four fixed clocks in turn (scripts/at_clock.sh)
	@mkdir -p .run/clocks; results=(); failed=0; \
	for clock in $(CLOCKS); do \
		log=.run/clocks/$${clock//:/}.log; \
		printf '\n===== clock %s (log: %s)\n' "$$clock" "$$log"; \
		if scripts/at_clock.sh "$$clock" $(VENV)/pytest -q $(CLOCK_TESTS) 2>&1 | tee "$$log"; then \
			verdict=ok; else verdict=FAILED; failed=1; fi; \
		results+=("$$(printf '%-17s %-6s %s' "$$clock" "$$verdict" "$$(tail -n 1 "$$log")")"); \
	done; \
	printf '\n===== test-clocks: %s\n' "$(CLOCK_TESTS)"; printf '%s\n' "$${results[@]}"; \
	exit $$failed

# `make test-kafka4` (not part of `make test`): the check against Kafka 4.x (issue 15; docs/operations.md,
# "Kafka 4.x") on a stack of its own: KAFKA4_VERSION's jars (Maven, infra/kafka/libs-<v>), run dir
# KAFKA4_RUN_DIR (wiped first: a fresh 4.x format each time; stopped after), ports from KAFKA4_PORT_BASE
# (+92 Kafka, +93 controller, +79 Redis, +32 PostgreSQL; worker web +66/+67, alerts ops +68, dashboard
# +80). Runs topics create, KAFKA4_TESTS, KAFKA4_FAULTS and a short demo.
KAFKA4_VERSION ?= 4.4.0
KAFKA4_RUN_DIR ?= .run/kafka4
KAFKA4_PORT_BASE ?= 19000
KAFKA4_TESTS ?= tests/integration/test_ingestion.py tests/integration/test_statistics.py \
	tests/integration/test_alerts_consumer.py tests/integration/test_scoring_stream.py \
	tests/integration/test_outages.py tests/integration/test_credit_alerts.py tests/integration/test_blocks.py
KAFKA4_FAULTS ?= tests/faults/test_faults_worker.py -k sigkilled_mid_stream

test-kafka4: setup ## integration tests, a SIGKILL scenario and the demo against Kafka 4.x (KAFKA4_VERSION, 4.4.0) on a stack of its own
	@b=$(KAFKA4_PORT_BASE); \
	export GRIDPULSE_RUN_DIR=$(abspath $(KAFKA4_RUN_DIR)) GRIDPULSE_KAFKA_VERSION=$(KAFKA4_VERSION) \
		GRIDPULSE_KAFKA_PORT=$$((b + 92)) GRIDPULSE_KAFKA_CONTROLLER_PORT=$$((b + 93)) \
		GRIDPULSE_REDIS_PORT=$$((b + 79)) GRIDPULSE_PG_PORT=$$((b + 32)); \
	export GRIDPULSE_KAFKA_BOOTSTRAP=127.0.0.1:$$GRIDPULSE_KAFKA_PORT \
		GRIDPULSE_REDIS_URL=redis://127.0.0.1:$$GRIDPULSE_REDIS_PORT/0 \
		GRIDPULSE_PG_DSN=postgresql://gridpulse@127.0.0.1:$$GRIDPULSE_PG_PORT/gridpulse \
		GRIDPULSE_WEB_PORT=$$((b + 66)) GRIDPULSE_ALERTS_OPS_PORT=$$((b + 68)) GRIDPULSE_DASHBOARD_PORT=$$((b + 80)); \
	trap '$(STACK) down' EXIT; \
	$(STACK) wipe >/dev/null; \
	$(STACK) up; \
	$(VENV)/gridpulse topics create >/dev/null; \
	$(VENV)/pytest -q --durations=10 $(KAFKA4_TESTS); \
	$(VENV)/pytest -q $(KAFKA4_FAULTS); \
	GRIDPULSE_DEMO_EXIT=1 $(VENV)/gridpulse demo; \
	printf '\ntest-kafka4: all passed on Kafka %s\n' "$(KAFKA4_VERSION)"

faults: setup up topics ## fault scenarios at full size (CI runs them small inside `make test`)
	GRIDPULSE_FAULTS_SCALE=full $(VENV)/pytest -q tests/faults

demo: setup up topics ## run the end-to-end demo on the local stack
	$(VENV)/gridpulse demo

lint: setup ## ruff (lint + format check) and mypy
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .
	$(VENV)/mypy

format: setup ## apply ruff's formatting and safe fixes
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .

# `make bench BENCH_ARGS="--customers 1000000 --day-meters 1000000"`: both scenarios at 100,000
# customers and a utility's day of 1,000,000 meters by default (bench/RESULTS.md says how long)
bench: setup up topics ## single readings and daily-curve blocks vs raw consumer, naive Faust, Quix (+ our core); a utility's day; the inspection stage's cost and theft-to-alert; latency, recovery, memory, scaling; scoring 1M; the dashboard (matrix render, SSE delay)
	$(VENV)/python -m bench.run --with quixcore,blocks,day,areas $(BENCH_ARGS)
	$(VENV)/python -m bench.scoring_bench | tee bench/scoring_results.json
	$(VENV)/python -m bench.dashboard_bench

clean: ## stop the stack, delete .run/ and the tool caches
	@$(STACK) wipe
	rm -rf .pytest_cache .ruff_cache .mypy_cache .hypothesis build dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean ## clean, and also drop .venv and the Kafka jars (next `make setup` redoes them)
	rm -rf .venv infra/kafka/libs infra/kafka/target

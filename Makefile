# StreamGuard batch layer. `make demo` runs the main job, `make test` the tests; both set everything up first.
PYTHON      ?= python3
VENV        ?= .venv
PY          := $(VENV)/bin/python
SG          := $(VENV)/bin/streamguard
PYTEST      := $(VENV)/bin/pytest
STAMP       := $(VENV)/.installed
JARS_STAMP  := $(VENV)/.jars
BENCH_EVENTS ?= 100000,1000000

.PHONY: help setup system-deps demo test unit e2e bench bench-gate serve lint clean kafka-stop

help:
	@echo "make demo        start Kafka, seed events, run the bounded pipeline, ask the assistant"
	@echo "make test        unit + end-to-end tests (starts and stops its own Kafka broker)"
	@echo "make unit | e2e  one tier of the tests"
	@echo "make bench       benchmarks (bounded vs full scan), history record and chart"
	@echo "make bench-gate  the CI regression gate on the bounded/full-scan speedup"
	@echo "make serve       the API on the demo output (http://127.0.0.1:8081)"
	@echo "make system-deps Debian packages some tests need: prometheus (promtool), chromium, chromium-driver"
	@echo "make lint | clean"

# The virtualenv is rebuilt only when pyproject.toml changes; a second run downloads nothing.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# JVM jars (Kafka broker, Spark's Kafka source) from Maven Central into ~/.cache/streamguard/jars; cached.
$(JARS_STAMP): $(STAMP) streamguard/jars/broker.pom.xml streamguard/jars/spark.pom.xml
	$(PY) -m streamguard.jars
	@touch $@

setup: $(JARS_STAMP)

# Debian packages the monitoring and browser tests run: prometheus (prometheus, promtool), chromium and its driver.
# Does nothing when the commands are already there; otherwise apt-get (as root, or through sudo).
SYSTEM_COMMANDS := promtool prometheus chromium chromedriver
SYSTEM_PACKAGES := prometheus chromium chromium-driver
system-deps:
	@missing=""; for cmd in $(SYSTEM_COMMANDS); do command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$cmd"; done; \
	if [ -z "$$missing" ]; then echo "system-deps: $(SYSTEM_COMMANDS) already installed"; exit 0; fi; \
	command -v apt-get >/dev/null 2>&1 || { echo "system-deps: missing$$missing and no apt-get; install $(SYSTEM_PACKAGES) by hand" >&2; exit 1; }; \
	sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	echo "system-deps: missing$$missing; installing $(SYSTEM_PACKAGES)"; \
	$$sudo apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES)

demo: setup
	$(SG) demo

test: unit e2e

unit: setup
	$(PYTEST) tests -q

e2e: setup
	$(PYTEST) e2e -q

bench: setup
	$(PY) -m bench.run --events $(BENCH_EVENTS)

bench-gate: setup
	$(PY) -m bench.gate

serve: setup
	$(SG) serve --data out/demo

lint: setup
	$(VENV)/bin/ruff check streamguard tests e2e bench

kafka-stop:
	-@test -x $(SG) && $(SG) kafka stop

clean: kafka-stop
	rm -rf out .streamguard .pytest_cache .ruff_cache .hypothesis .benchmarks spark-warehouse
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

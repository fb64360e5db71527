# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   ?= demo

.PHONY: install demo test test-fast bench bench-month bench-scan airflow-test check-java clean

$(VENV)/.installed: setup.py constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "citycredit needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed

check-java:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
	  echo "Java 17 is required by Spark and was not found."; \
	  echo "Install it: apt-get install openjdk-17-jre-headless (Debian/Ubuntu) or brew install openjdk@17 (macOS)."; \
	  exit 1; }

## Generate a small synthetic city and run one month end to end; prints where it wrote data.
demo: install check-java
	$(VENV)/bin/citycredit demo --dir $(DEMO)

## The test suite: real Spark (local), real Delta tables, real GX, real Airflow DAG runs.
test: install check-java
	$(PY) -m pytest -q

## The fast lane while working: tests/unit (no Spark, no Airflow), under 2 minutes
test-fast: install
	$(PY) -m pytest -q tests/unit

## Benchmarks (large data; prints figures): scoring, Spark vs the DuckDB reference; the generator
ADULTS   ?= 2250000
FINDINGS ?= 15000000
MONTHS   ?= 36
bench: install check-java
	$(PY) -m bench.bench_score --adults $(ADULTS) --findings $(FINDINGS)
	$(PY) -m bench.bench_generate --adults $(ADULTS) --months $(MONTHS)

## A full-scale month end to end with `citycredit run` (generates the city first if it is missing)
CITY ?= /tmp/cc-city-full
bench-month: install check-java
	[ -d $(CITY)/population ] || $(PY) -m bench.bench_generate --adults $(ADULTS) --months $(MONTHS) --out $(CITY)
	$(PY) -m bench.bench_month --landing $(CITY) --months 2023-01,2023-02

## The privacy scan over a gold/score_lines-shaped warehouse (prints files, GB, rows/s)
SCAN_ROWS ?= 20000000
bench-scan: install
	$(PY) -m bench.bench_privacy_scan --rows $(SCAN_ROWS) --files 10

## One DAG run of citycredit_monthly on embedded Airflow (SQLite in airflow_home/), against the
## demo city: `make demo` first. MONTH is the score month.
MONTH ?= 2026-10
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/airflow_home AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
              AIRFLOW__CORE__LOAD_EXAMPLES=False GX_ANALYTICS_ENABLED=false \
              CITYCREDIT_LANDING=$(CURDIR)/$(DEMO)/landing CITYCREDIT_WAREHOUSE=$(CURDIR)/$(DEMO)/warehouse
airflow-test: install check-java
	$(AIRFLOW_ENV) $(VENV)/bin/airflow db migrate
	$(AIRFLOW_ENV) $(VENV)/bin/airflow dags test citycredit_monthly -c '{"month": "$(MONTH)"}'

clean:
	rm -rf $(VENV) $(DEMO) airflow_home .pytest_cache

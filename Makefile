# The two commands of the README: `make demo` and `make test`. Both build .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO   ?= demo

.PHONY: install jars demo notebooks test test-fast bench bench-month bench-lookup bench-simulate bench-silver bench-erasure bench-months-resident \
        bench-generate bench-land bench-scan cluster-test check-wrk airflow-test check-java cjk-font postgresql \
        system-deps clean

$(VENV)/.installed: setup.py constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "citycredit needs Python 3.11, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed jars

## The delta-spark jars every Spark session loads (io/spark.py), pinned in jars/pom.xml, fetched
## once from Maven Central into jars/lib/ (git-ignored); nothing is fetched at run time.
JARS := jars/lib/.fetched
MVN  ?= mvn
jars: $(JARS)
$(JARS): jars/pom.xml
	@command -v $(firstword $(MVN)) >/dev/null 2>&1 || { \
	  echo "Maven (mvn) is required to fetch the delta-spark jars (jars/pom.xml)."; \
	  echo "Install it: apt-get install maven (Debian/Ubuntu) or brew install maven (macOS)."; exit 1; }
	@rm -rf jars/lib
	@$(MVN) -B -q -f jars/pom.xml org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies >jars/mvn.log 2>&1 || { \
	  grep -m3 ERROR jars/mvn.log; echo; \
	  if grep -qiE "could not (transfer|resolve)|unknown ?host|timed out|refused|unreachable|no route" jars/mvn.log; then \
	    echo "Maven Central is unreachable from here (or a version pinned in"; \
	    echo "jars/pom.xml is not on it): the delta-spark jars could not be fetched. Allow it, or name a"; \
	    echo "mirror in ~/.m2/settings.xml, or copy the jars docs/cluster.md lists into jars/lib/ and"; \
	    echo "'touch $(JARS)'. (A site without them runs with spark.delta: off, docs/cluster.md.)"; \
	  else echo "fetching the delta-spark jars failed (jars/mvn.log above)"; fi; exit 1; }
	@ls jars/lib/delta-spark_*.jar >/dev/null && touch $@ && echo "delta-spark jars in jars/lib: $$(ls jars/lib | tr '\n' ' ')"

check-java:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
	  echo "Java 17 is required by Spark and was not found."; \
	  echo "Install it: apt-get install openjdk-17-jre-headless (Debian/Ubuntu) or brew install openjdk@17 (macOS)."; \
	  exit 1; }

## A CJK font for the Chinese labels in the plots of the policy reports (simulate / evaluate).
## Debian/Ubuntu: installs fonts-noto-cjk (as root, or through sudo); elsewhere it says what to
## install. Without one the reports are still written, with a warning.
cjk-font:
	@if fc-list 2>/dev/null | grep -qi "CJK"; then echo "CJK font present"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && apt-get install -y -q --no-install-recommends fonts-noto-cjk; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update -q && sudo apt-get install -y -q --no-install-recommends fonts-noto-cjk; \
	else echo "no CJK font: install one (Debian/Ubuntu fonts-noto-cjk, macOS has PingFang) for Chinese plot labels"; fi

## PostgreSQL 15 binaries for the lookup tests on production's store (the test starts a private
## cluster from them; without them those tests are skipped)
postgresql:
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  apt-get update -q && apt-get install -y -q postgresql-15; \
	elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then \
	  sudo apt-get update -q && sudo apt-get install -y -q postgresql-15; \
	else echo "no PostgreSQL: the lookup tests on PostgreSQL will be skipped (apt-get install postgresql-15)"; fi

## What the tests and reports need from the system (Debian packages, installed when missing)
system-deps: cjk-font postgresql

## The demo city: 36 months generated, 34 bulk-loaded into bronze and silver, the last two run
## end to end; prints the report and where it wrote data.
demo: install check-java cjk-font
	$(VENV)/bin/citycredit demo --dir $(DEMO)

## The analyst notebooks (notebooks/*.py) executed against the demo warehouse with papermill,
## rendered to HTML in $(DEMO)/notebooks/ (`make demo` first).
notebooks: install check-java cjk-font
	$(VENV)/bin/citycredit notebooks --warehouse $(DEMO)/warehouse --out $(DEMO)/notebooks

## The test suite: real Spark (local), real Delta tables, real GX, real Airflow DAG runs.
test: install check-java system-deps
	$(PY) -m pytest -q

## The fast lane while working: tests/unit (no Spark, no Airflow), under 2 minutes
test-fast: install
	$(PY) -m pytest -q tests/unit

## Benchmarks (large data; print figures). `make bench`: every scheme scored by the Spark job vs
## by the DuckDB reference on the same synthesised silver, each its own process (wall, peak RSS),
## the Spark side also on a city 0.5× and 2× the size (seconds per million findings); last line: the ratio.
ADULTS   ?= 2250000
FINDINGS ?= 15000000
SCALING  ?= 0.5,2
MONTHS   ?= 36
bench: install check-java
	$(PY) -m bench.bench_score --adults $(ADULTS) --findings $(FINDINGS) --scaling $(SCALING)

## The synthetic city generator at full scale
bench-generate: install
	$(PY) -m bench.bench_generate --adults $(ADULTS) --months $(MONTHS)

## Landing + validation of one large delivery (population parquet + court csv of LAND_ADULTS):
## rows, wall, rows/s and peak RSS per source, each landed in its own process
LAND_ADULTS ?= 1000000
bench-land: install
	$(PY) -m bench.bench_land --adults $(LAND_ADULTS)

## A month in steady state end to end (`citycredit run`): the last month of a 36-month city, the
## 35 before it bulk-loaded into bronze and silver and the 35th published (bench/history.py);
## wall per stage and peak RSS. Generates the city first if it is missing.
CITY ?= /tmp/cc-city-steady
END  ?= 2026-12
bench-month: install check-java
	[ -d $(CITY)/population ] || $(PY) -m bench.bench_generate --adults $(ADULTS) --months $(MONTHS) --end $(END) --out $(CITY)
	$(PY) -m bench.bench_month --landing $(CITY) --steady

## Erasure on its own on the warehouse bench-month left (run that first): 6 new opt-outs of
## persons with findings recorded, then the erase step's function; wall, peak RSS, per part.
bench-erasure: install
	$(PY) -m bench.bench_erasure

## The silver step per month on a 3- and a 36-month history (1.5 M finding versions), and the
## delta-rs MERGE it was measured against; the last line is long / short history.
bench-silver: install
	$(PY) -m bench.bench_silver

## What months_resident (白鹭分's subject rules) costs the scored subjects over 36 population
## snapshots (bench.profile_scoring's warehouse has one), at ADULTS (full scale by default).
bench-months-resident: install check-java
	$(PY) -m bench.bench_months_resident --adults $(ADULTS)

## The month's scoring submitted to a Spark standalone cluster (master + worker on 127.0.0.1,
## started from pyspark's own spark-class, stopped at the end); gold must equal the embedded run's.
cluster-test: install check-java
	$(PY) -m pytest -q -m cluster tests/e2e/test_cluster.py

## The lookup service under load: wrk against `citycredit serve` on 127.0.0.1 for LOOKUP_SECONDS,
## on a synthetic publication of LOOKUP_ADULTS adults × 4 schemes (kept in /tmp/cc-lookup-bench-N)
LOOKUP_ADULTS  ?= 2250000
LOOKUP_SECONDS ?= 30
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
check-wrk:
	@command -v wrk >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && $(SUDO) apt-get install -y -qq wrk; } \
	  || { echo "wrk (HTTP load generator) is required: apt-get install wrk (Debian/Ubuntu) or brew install wrk"; exit 1; }
bench-lookup: install check-wrk
	$(PY) -m bench.bench_lookup --adults $(LOOKUP_ADULTS) --seconds $(LOOKUP_SECONDS)
## `citycredit simulate` against scoring one scheme, on the bench-month warehouse
bench-simulate: install check-java
	$(PY) -m bench.bench_simulate --month $(END)

## The privacy scan over a gold/score_lines-shaped warehouse (prints files, GB, rows/s)
SCAN_ROWS ?= 20000000
bench-scan: install
	$(PY) -m bench.bench_privacy_scan --rows $(SCAN_ROWS) --files 10

## One DAG run of citycredit_monthly on embedded Airflow (SQLite in airflow_home/), against the
## demo city: `make demo` first. MONTH is the score month.
MONTH ?= 2026-10
export MONTH       # the airflow-test check reads it from the environment, not the command text
AIRFLOW_ENV = AIRFLOW_HOME=$(CURDIR)/airflow_home AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
              AIRFLOW__CORE__LOAD_EXAMPLES=False GX_ANALYTICS_ENABLED=false \
              CITYCREDIT_LANDING=$(CURDIR)/$(DEMO)/landing CITYCREDIT_WAREHOUSE=$(CURDIR)/$(DEMO)/warehouse
airflow-test: install check-java
	@$(PY) -c 'import os, sys; from citycredit.months import is_month; m = os.environ["MONTH"]; sys.exit(None if is_month(m) else "MONTH %r is not a month: use YYYY-MM, e.g. make airflow-test MONTH=2026-10" % m)'
	$(AIRFLOW_ENV) $(VENV)/bin/airflow db migrate
	$(AIRFLOW_ENV) $(VENV)/bin/airflow dags test citycredit_monthly -c '{"month": "$(MONTH)"}'

clean:
	rm -rf $(VENV) $(DEMO) airflow_home .pytest_cache jars/lib jars/mvn.log

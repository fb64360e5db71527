"""citycredit: the monthly scoring warehouse for Chinese city personal credit scores."""
from setuptools import find_packages, setup

# the analyst notebooks (notebooks/, `make notebooks`): jupytext pairs the py:percent files,
# papermill runs them on nbclient + ipykernel, nbconvert renders HTML; jupyterlab to open them
NOTEBOOKS = ["jupytext==1.19.6", "papermill==2.7.0", "nbclient==0.11.0", "ipykernel==7.4.0",
             "nbconvert==7.17.2", "nbformat==5.11.1", "jupyter_client==8.10.0",
             "jupyterlab==4.6.6"]

setup(
    name="citycredit",
    version="0.1.0",
    description="Monthly scoring warehouse for city personal credit scores (Spark + Delta + GX + Airflow)",
    python_requires=">=3.11,<3.12",
    packages=find_packages(include=["citycredit", "citycredit.*"]),
    install_requires=[
        # pyspark 4.2.0, not 4.3: delta-spark 4.4 requires pyspark<=4.2.0, and its jars are built
        # for one Spark line. Both pins must agree with jars/pom.xml (the jars `make install`
        # fetches); tests/unit/test_delta_jars.py fails when they drift (ARCHITECTURE §2).
        "pyspark==4.2.0",
        # 4.4.0, not 4.4.1: Maven Central has no delta-spark/delta-storage 4.4.1 jars (checked
        # 2026-12-05); the Python API is identical, only its version string differs
        "delta-spark==4.4.0",
        "deltalake>=1.6,<2",
        "apache-airflow>=3.3,<4",
        # the DAG's score step on a cluster (spark.submit.conn_id): SparkSubmitOperator. 5.6, not
        # 6.x: 6.x requires pyspark-client, a second distribution owning 366 of pyspark's files
        # (identical at 4.2.0, but uninstalling or upgrading either breaks the other)
        "apache-airflow-providers-apache-spark==5.6.0",
        "great-expectations>=1.24,<2",
        "pyarrow>=19",
        "pandas>=2.2,<3",          # PySpark 4.2 does not support pandas 3 yet
        "python-stdnum>=2.0",      # GB 11643 identity numbers (stdnum.cn.ric)
        "holidays>=0.100",         # Chinese statutory holidays and make-up workdays (调休)
        "click>=8.1",              # the CLI
        "rich>=13",                # progress and report tables on the terminal
        "pyyaml>=6",
        "psutil>=5.9",             # peak-memory figures in reports and benchmarks
        # the lookup service (citycredit serve): HTTP framework and server; its index and audit
        # log through SQLAlchemy (SQLite embedded, PostgreSQL by URL)
        "fastapi>=0.136,<1",
        "uvicorn[standard]>=0.54,<1",
        "sqlalchemy>=2.1,<3",
        "scikit-learn>=1.5",       # policy tools: AUC / ROC (KS) of a scheme's scores
        "matplotlib>=3.8",         # policy tools: the plots of the HTML reports
        # the privacy scan: many persons' numbers and keys in one pass over a column's bytes
        "ahocorasick-rs==1.0.3",
    ],
    extras_require={
        "dev": [
            "pytest>=8",
            # an independent Delta reader for tests and the reference scorer
            "duckdb==1.4.4",
            "duckdb-ext-delta==1.4.4.20260205",
            "polars>=1.0",
            "httpx>=0.28",             # the lookup service's tests: a real HTTP client
            "psycopg[binary]==3.3.9",  # the lookup tests on PostgreSQL
            *NOTEBOOKS,                # tests/e2e/test_notebooks.py executes every notebook
        ],
        "notebooks": NOTEBOOKS,
        # production lookups on PostgreSQL (lookup.index_url / lookup.audit_url)
        "postgres": ["psycopg[binary]==3.3.9"],
        # kept for old install lines: delta-spark and the Spark provider are normal requirements
        "cluster": [],
    },
    entry_points={"console_scripts": ["citycredit=citycredit.cli:main"]},
)

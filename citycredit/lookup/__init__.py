"""Authorised lookups (issue "Lookups"; SPEC §6–7): consents, grantees, the serving index, the
hash-chained audit log, the HTTP service and grade recognition.

* consents: when a consent (silver/consents) lets a grantee look a person up;
* authorise: grantees of conf/grantees.yaml and their API keys (sha256 only);
* index: the serving index built per published version (SQLite / PostgreSQL via SQLAlchemy);
* audit: the tamper-evident audit log (hash chain), verify and show;
* lookups: the checks and answers, shared by the service and `citycredit lookup`;
* service: the FastAPI application and `citycredit serve`;
* recognition: 互认 tables at run time, and `citycredit recognition propose`;
* store: the databases' URLs and engines.
"""

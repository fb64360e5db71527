"""`citycredit serve`: the lookup service over HTTP — FastAPI on uvicorn (issue "Lookups" item 3).

    POST /v1/scores/{scheme}        {"id_number": …, "purpose": …}            → score and grade
    POST /v1/reports/{scheme}       {"id_number": …, "purpose": "self"}       → the person's report
    POST /v1/recognition/{scheme}   {"id_number": …, "purpose": …, "as": …}   → grade, recognised
    GET  /v1/health                 → the generation served (months, Delta versions); no personal data

with `Authorization: Bearer <API key>`. Statuses and checks: lookups.py. Each answer leaves only
after its audit entry is committed (audit.AuditWriter); when that fails the answer is 503 and
nothing else. The audit entry is written in the request path, not in a middleware or background
task (those skip refusals raised by the endpoint, or run after the answer).

Freshness: a thread looks every `lookup.refresh_seconds` at the Delta versions of
gold/published_scores, gold/score_lines and silver/consents; when one moved it builds the next
index generation in a child process (`python -m citycredit.lookup.index`, so the service's own
memory stays small) and the service serves it as soon as it is committed — no restart.

Logging: uvicorn's access log is off (it prints request paths); the service logs one line per
request itself — grantee, kind, scheme, status, outcome, milliseconds — and never a body, a path
or an identity number.
"""
from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from ..config import Settings, load_settings
from .audit import AuditUnavailable, AuditWriter, audit_log
from .index import source_versions
from .lookups import Lookups
from .store import shown

log = logging.getLogger("citycredit.lookup")


def create_app(lookups: Lookups, writer: AuditWriter) -> FastAPI:
    """The FastAPI application: three lookup endpoints and a health endpoint."""
    app = FastAPI(title="citycredit lookups", version="1",
                  description="Consent-checked score and grade lookups; every request audited.",
                  docs_url=None, redoc_url=None, openapi_url=None)
    unavailable = {"detail": "the audit log cannot be written, so no lookup is answered"}

    async def handle(kind: str, scheme: str, request: Request):
        started = time.perf_counter()
        body = await request.body()
        grantee, failure = lookups.grantees.authenticate(request.headers.get("authorization"))
        try:
            answer = (lookups.refuse_unauthenticated(kind, scheme, failure) if grantee is None
                      else lookups.answer(kind, grantee, scheme, body))
        except Exception as exc:            # log the kind of failure only: no value, no body
            log.error("lookup failed: %s (grantee=%s kind=%s)", type(exc).__name__,
                      grantee.id if grantee else "-", kind)
            answer = lookups.make_answer(500, {"detail": "internal error"}, "http",
                                         grantee.id if grantee else None, None, None, kind,
                                         None, "error")
        try:
            await asyncio.wrap_future(writer.submit(answer.entry))
        except AuditUnavailable:
            log.error("grantee=%s kind=%s status=503 outcome=audit_unavailable",
                      answer.entry.grantee or "-", kind)
            return JSONResponse(unavailable, status_code=503)
        log.info("grantee=%s kind=%s scheme=%s status=%d outcome=%s ms=%.1f",
                 answer.entry.grantee or "-", kind, answer.entry.scheme or "-", answer.status,
                 answer.entry.outcome, (time.perf_counter() - started) * 1000)
        return JSONResponse(answer.body, status_code=answer.status)

    @app.post("/v1/scores/{scheme}")
    async def score(scheme: str, request: Request):
        return await handle("score", scheme, request)

    @app.post("/v1/reports/{scheme}")
    async def report(scheme: str, request: Request):
        return await handle("report", scheme, request)

    @app.post("/v1/recognition/{scheme}")
    async def recognition(scheme: str, request: Request):
        return await handle("recognition", scheme, request)

    @app.get("/v1/health")
    async def health():
        generation = lookups.index.generation()
        if generation is None:
            return JSONResponse({"status": "no index"}, status_code=503)
        return {"status": "ok", "generation": generation.id, "months": generation.months,
                "versions": generation.versions, "built_at": generation.built_at}

    return app


class Refresher:
    """Builds the next index generation when a source table moved (in a child process)."""

    def __init__(self, settings: Settings, lookups: Lookups):
        self.settings, self.lookups = settings, lookups
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-refresher", daemon=True)

    def build_now(self) -> None:
        """Build (or confirm) the index in a child process and wait for it."""
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "citycredit.lookup.index"],
                              env={**os.environ, **_settings_environment(self.settings)},
                              cwd=os.getcwd(), capture_output=True, text=True)
        if done.returncode != 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["?"]
            raise RuntimeError(f"building the serving index failed: {tail[0][:300]}")
        generation = self.lookups.index.generation(fresh=True)
        log.info("serving index generation %s (months %s) ready after %.1f s", generation.id,
                 generation.months, time.perf_counter() - started)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        interval = self.settings.lookup["refresh_seconds"]
        while not self._stop.wait(interval):
            try:
                generation = self.lookups.index.generation(fresh=True)
                if generation is None or generation.versions != source_versions(self.settings):
                    self.build_now()
            except Exception as exc:   # keep serving the current generation
                log.error("index refresh: %s: %s", type(exc).__name__, str(exc)[:300])

    def stop(self) -> None:
        self._stop.set()


def _settings_environment(settings: Settings) -> dict[str, str]:
    """The variables that make a child process load these same settings."""
    env = {"CITYCREDIT_CONF": str(settings.conf_dir), "CITYCREDIT_ENV": settings.env,
           "CITYCREDIT_WAREHOUSE": str(settings.warehouse), "CITYCREDIT_RULES": str(settings.rules),
           "CITYCREDIT_SUBJECT_KEY": settings.subject_key}
    for var, key in (("CITYCREDIT_LOOKUP_INDEX_URL", "index_url"),
                     ("CITYCREDIT_LOOKUP_AUDIT_URL", "audit_url")):
        if settings.lookup.get(key):
            env[var] = settings.lookup[key]
    return env


class PortInUse(OSError):
    """Another process listens on the service's host and port."""


def check_port_free(host: str, port: int) -> None:
    """PortInUse when `host:port` cannot be bound (another service listens there): said before
    the index is built and the audit log opened, not after. Bound as uvicorn binds it
    (SO_REUSEADDR: a port left in TIME_WAIT is free), then released."""
    import socket

    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise PortInUse(exc.errno, f"{host}:{port} is in use (another service listens "
                                       "there?): nothing was started") from None


def serve(host: str = "127.0.0.1", port: int = 8080, settings: Settings | None = None) -> None:
    """Run the service until interrupted: check the configuration, build (or confirm) the index,
    open the audit log, then serve."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = settings or load_settings()
    check_port_free(host, port)       # before the index is built for a service that cannot start
    audit = audit_log(settings)       # keyed; ConfigError without CITYCREDIT_AUDIT_KEY
    lookups = Lookups(settings)
    refresher = Refresher(settings, lookups)
    refresher.build_now()
    audit.ensure()
    writer = AuditWriter(audit)
    log.info("audit log: %s; index: %s", shown(audit.url), shown(lookups.index.url))
    refresher.start()
    try:
        uvicorn.run(create_app(lookups, writer), host=host, port=port, access_log=False,
                    log_level="info", server_header=False)
    finally:
        refresher.stop()
        writer.close()
        audit.dispose()
        lookups.index.dispose()

"""Load benchmark of the lookup service (`make bench-lookup`): a real HTTP client against
`citycredit serve` on 127.0.0.1 for a bounded time.

    python -m bench.bench_lookup                                  # full scale: 2.25 M adults × 4 schemes
    python -m bench.bench_lookup --adults 50000 --seconds 20      # a small warehouse while developing

The warehouse (default /tmp/cc-lookup-bench-<adults>) gets a synthetic publication written straight
through the table seam (citycredit.synth.publication): every adult scored in every scheme for one
month, and consents (BANK01, purpose loan) for a sample of them; it is kept and reused. The
service builds its index at start (timed), then the HTTP load generator wrk (Debian package `wrk`,
C, ~50 µs of CPU a request, so the client does not eat the service's core; `make bench-lookup`
installs it) sends `POST /v1/scores/haibei` over `--connections` keep-alive connections for
`--seconds`, each body naming a random person of the sample — a share `--refused` of them
without a consent (403). Every request is audited, as in production (SQLite, synchronous=FULL).

Prints requests/s, latency p50/p90/p99/max as wrk saw it, statuses, the service's CPU per request
and peak RSS, the index build time and the audit entries written (and the chain verified).
Target on this machine (2 cores): ≥ 500 requests/s, p99 ≤ 20 ms, service memory ≤ 1 GiB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil

PROJECT = Path(__file__).resolve().parents[1]
SCHEMES = ("haibei", "bailu", "dazixiang", "huzhou")
MONTH = "2026-10"
KEY = "dev-bank01-key-not-for-production"


def prepare(warehouse: Path, adults: int, sample: int) -> list[tuple[str, bool]]:
    """Publish `adults` people in every scheme (once) and consent a sample; (id number, has
    consent) pairs to ask for."""
    from citycredit import catalog
    from citycredit.config import load_settings
    from citycredit.io import tables
    from citycredit.lookup.consents import today
    from citycredit.rules import load_schemes
    from citycredit.synth.publication import people, publish_scores, subject_keys, write_consents

    settings = load_settings(environ={**os.environ, "CITYCREDIT_WAREHOUSE": str(warehouse)})
    marker = warehouse / "bench-ready.json"
    ids = people(adults, seed=1)
    rng = random.Random(1)
    chosen = rng.sample(range(adults), min(sample, adults))
    if not marker.exists():
        started = time.perf_counter()
        keys = subject_keys(ids, settings.subject_key)
        schemes = load_schemes(settings.rules, list(SCHEMES))
        for i, name in enumerate(SCHEMES):
            publish_scores(warehouse, keys, schemes[name], MONTH, seed=i)
        t = today(settings.lookup["timezone"])
        consenting = chosen[: len(chosen) * 9 // 10]
        write_consents(warehouse, [
            {"consent_id": f"B{n}", "id_number": ids[n], "grantee": "BANK01", "purpose": "loan",
             "granted_on": t - dt.timedelta(days=30), "expires_on": t + dt.timedelta(days=335)}
            for n in consenting], settings.subject_key)
        rows = tables.read_arrow(catalog.PUBLISHED_SCORES.at(warehouse), columns=["scheme"]).num_rows
        marker.write_text(json.dumps({"adults": adults, "published_rows": rows,
                                      "consents": len(consenting)}))
        print(f"published {rows} rows ({adults} adults × {len(SCHEMES)} schemes) and "
              f"{len(consenting)} consents in {time.perf_counter() - started:.1f} s")
    consenting = set(chosen[: len(chosen) * 9 // 10])
    return [(ids[n], n in consenting) for n in chosen]


def start_service(warehouse: Path) -> tuple[subprocess.Popen, str, float, Path]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = warehouse.parent / f"{warehouse.name}-service.log"
    env = {**os.environ, "CITYCREDIT_WAREHOUSE": str(warehouse),
           "PYTHONPATH": str(PROJECT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "citycredit.cli", "serve", "--host",
                                    "127.0.0.1", "--port", str(port)], stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=warehouse.parent)
    base = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(base + "/v1/health", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if process.poll() is not None:
            raise SystemExit("the service stopped:\n" + log.read_text()[-3000:])
        time.sleep(0.5)
    return process, base, time.perf_counter() - started, log


WRK_SCRIPT = r"""
local ids, threads = {}, {}
counts = {}   -- a global: done() reads each thread's through thread:get
function setup(thread) table.insert(threads, thread) end
function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  math.randomseed(tonumber(args[2]))
end
function request()
  local body = '{"id_number":"' .. ids[math.random(#ids)] .. '","purpose":"loan"}'
  return wrk.format("POST", "/v1/scores/haibei", nil, body)
end
function response(status, headers, body) counts[status] = (counts[status] or 0) + 1 end
function done(summary, latency, requests)
  local statuses = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do statuses[status] = (statuses[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(statuses) do parts[#parts + 1] = '"' .. status .. '":' .. n end
  io.write(string.format('RESULT {"requests":%d,"seconds":%f,"errors":%d,"p50":%f,"p90":%f,' ..
    '"p99":%f,"max":%f,"mean":%f,"statuses":{%s}}\n', summary.requests, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3, table.concat(parts, ",")))
end
"""


def load(base: str, people: list[tuple[str, bool]], refused: float, seconds: float,
         connections: int, folder: Path) -> dict:
    """wrk against the service: `connections` keep-alive connections on 2 threads for `seconds`;
    the bodies draw from a sample of whom a share `refused` has no consent."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is needed (apt-get install wrk; `make bench-lookup` installs it)")
    rng = random.Random(2)
    granted = [p for p, ok in people if ok]
    without = [p for p, ok in people if not ok] or granted
    mix = [rng.choice(without if rng.random() < refused else granted) for _ in range(50_000)]
    ids, script = folder / "bench-ids.txt", folder / "bench-lookup.lua"
    ids.write_text("\n".join(mix) + "\n")
    script.write_text(WRK_SCRIPT)
    done = subprocess.run(
        ["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds:.0f}s", "--timeout", "10s",
         "-H", f"Authorization: Bearer {KEY}", "-H", "Content-Type: application/json",
         "-s", str(script), base, "--", str(ids), "7"], capture_output=True, text=True)
    line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def sample_rss(pid: int, peaks: dict, stop: threading.Event) -> None:
    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peaks["rss"] = max(peaks.get("rss", 0), process.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        stop.wait(0.2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adults", type=int, default=2_250_000)
    parser.add_argument("--sample", type=int, default=20_000, help="people asked for")
    parser.add_argument("--refused", type=float, default=0.1, help="share asked without consent")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warehouse", type=Path, default=None)
    args = parser.parse_args(argv)

    warehouse = (args.warehouse or Path(f"/tmp/cc-lookup-bench-{args.adults}")).resolve()
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    people = prepare(warehouse, args.adults, args.sample)
    process, base, start_seconds, log = start_service(warehouse)
    peaks: dict = {}
    stop = threading.Event()
    sampler = threading.Thread(target=sample_rss, args=(process.pid, peaks, stop), daemon=True)
    sampler.start()
    service = psutil.Process(process.pid)
    try:
        health = httpx.get(base + "/v1/health").json()
        load(base, people, args.refused, args.warmup, args.connections, warehouse.parent)
        cpu_before = service.cpu_times()
        result = load(base, people, args.refused, args.seconds, args.connections, warehouse.parent)
        cpu_after = service.cpu_times()
    finally:
        stop.set()
        process.terminate()
        process.wait(timeout=30)
    from citycredit.lookup.audit import AuditLog

    audit = AuditLog(f"sqlite:///{warehouse / 'lookup' / 'audit.sqlite'}")
    started = time.perf_counter()
    verified = audit.verify()
    verify_seconds = time.perf_counter() - started
    index = json.loads((warehouse / "bench-ready.json").read_text())
    statuses = {int(k): v for k, v in sorted(result["statuses"].items())}
    service_cpu = (cpu_after.user + cpu_after.system - cpu_before.user - cpu_before.system)
    print(f"lookup benchmark — {index['published_rows']} published rows "
          f"({args.adults} adults × {len(SCHEMES)} schemes), {index['consents']} consents; "
          f"client: wrk, {args.connections} connections, {result['seconds']:.0f} s after "
          f"{args.warmup:.0f} s warm-up, 127.0.0.1")
    print(f"  service start incl. index build: {start_seconds:.1f} s "
          f"(index generation {health['generation']}, months {health['months']})")
    print(f"  requests/s: {result['requests'] / result['seconds']:.0f}   ({result['requests']} "
          f"requests, statuses {statuses}, socket errors {result['errors']})")
    print(f"  latency ms: p50 {result['p50']:.2f}  p90 {result['p90']:.2f}  "
          f"p99 {result['p99']:.2f}  max {result['max']:.2f}  mean {result['mean']:.2f}")
    print(f"  service CPU per request: {service_cpu / max(result['requests'], 1) * 1000:.2f} ms; "
          f"load average after the run {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  service peak RSS: {peaks.get('rss', 0) / 2**20:.0f} MiB")
    print(f"  audit log: {verified.entries} entries, chain "
          f"{'intact' if verified.ok else 'BROKEN'} (verified in {verify_seconds:.1f} s)")
    print(f"  service log: {log}")
    for line in rebuilds(warehouse, args.adults):
        print(f"  {line}")
    return 0 if verified.ok and statuses.get(200) else 1


def rebuilds(warehouse: Path, adults: int) -> list[str]:
    """Index rebuilds as the service runs them (a child process): a full one (--force), then
    after 1 % new consents (incremental: the scores' tables are kept)."""
    from citycredit.config import load_settings
    from citycredit.lookup.consents import today
    from citycredit.synth.publication import people, write_consents

    settings = load_settings(environ={**os.environ, "CITYCREDIT_WAREHOUSE": str(warehouse)})
    env = {**os.environ, "CITYCREDIT_WAREHOUSE": str(warehouse)}

    def build(*flags) -> tuple[float, dict]:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "citycredit.lookup.index", *flags], env=env,
                              check=True, capture_output=True, text=True)
        return time.perf_counter() - started, json.loads(done.stdout.strip().splitlines()[-1])

    full, built = build("--force")
    t = today(settings.lookup["timezone"])
    new = people(max(1, adults // 100), seed=99)
    write_consents(warehouse, [{"consent_id": f"R{n}-{int(time.time())}", "id_number": number,
                                "grantee": "BANK01", "purpose": "loan", "granted_on": t,
                                "expires_on": None} for n, number in enumerate(new)],
                   settings.subject_key, mode="append")
    incremental, after = build()
    return [f"index rebuild, full (--force): {full:.1f} s ({built['rows']})",
            f"index rebuild after {len(new)} new consents: {incremental:.1f} s "
            f"(parts kept: {', '.join(after.get('reused', [])) or 'none'})"]


if __name__ == "__main__":
    raise SystemExit(main())

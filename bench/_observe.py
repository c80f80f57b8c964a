"""Watching the jobs drain (ops API, national-portal mock) and checking what the mock ended up holding."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import requests

from gateway.domain.status_machine import CHANGES_DOSSIER_RECORD

OPS_KEY = "dev-ops-key"
UNFINISHED = ("pending", "in_flight")


def expected_jobs(accepted: dict[str, list[tuple[int, str]]]) -> int:
    """Jobs the events cause: one progress job per step, plus a dossier sync for record-changing steps."""
    return sum(1 + (status in CHANGES_DOSSIER_RECORD) for steps in accepted.values() for status, _ in steps)


def job_counts(api_url: str, *, unfinished_only: bool = False) -> Counter[str]:
    """Jobs by state. `unfinished_only`: pending, in flight and dead alone, which costs the gateway a read of its
    backlog instead of its whole jobs table (a poller's choice; done is then 0)."""
    reply = requests.get(f"{api_url}/ops/jobs", headers={"Authorization": f"Bearer {OPS_KEY}"}, timeout=10,
                         params={"counts": "unfinished"} if unfinished_only else None)
    reply.raise_for_status()
    counts: Counter[str] = Counter()
    for row in reply.json()["counts"]:
        counts[row["state"]] += row["count"]
    return counts


def backlog(api_url: str) -> int:
    """Jobs pending or in flight."""
    counts = job_counts(api_url, unfinished_only=True)
    return sum(counts[s] for s in UNFINISHED)


def mock_total(portal_url: str) -> int:
    """Requests the national-portal mock has received (a `since` past the end keeps the answer small)."""
    reply = requests.get(f"{portal_url}/_mock/requests", params={"since": 10**12}, timeout=60)
    reply.raise_for_status()
    return reply.json()["total"]


def mock_last_request_at(portal_url: str, total: int) -> float | None:
    """Wall time (epoch seconds) at which the mock logged its last request."""
    if total == 0:
        return None
    reply = requests.get(f"{portal_url}/_mock/requests", params={"since": total - 1}, timeout=10)
    reply.raise_for_status()
    records = reply.json()["requests"]
    return datetime.fromisoformat(records[-1]["at"]).timestamp() if records else None


@dataclass
class Drain:
    done: bool
    seconds: float  # from the start of waiting
    counts: Counter[str]
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (seconds since start, jobs done)


def wait_drained(api_url: str, target_done: int, time_limit: float, interval: float = 0.2,
                 check: Callable[[], None] | None = None) -> Drain:
    """Poll until nothing is pending or in flight and `target_done` jobs are done or dead."""
    started = time.monotonic()
    timeline: list[tuple[float, int]] = []
    counts: Counter[str] = Counter()
    while time.monotonic() - started < time_limit:
        if check is not None:
            check()
        counts = job_counts(api_url)
        elapsed = time.monotonic() - started
        timeline.append((elapsed, counts["done"]))
        if not any(counts[s] for s in UNFINISHED) and counts["done"] + counts["dead"] >= target_done:
            return Drain(True, elapsed, counts, timeline)
        time.sleep(interval)
    return Drain(False, time.monotonic() - started, counts, timeline)


def dead_letters(api_url: str, limit: int = 5) -> list[str]:
    reply = requests.get(f"{api_url}/ops/jobs", params={"state": "dead"},
                         headers={"Authorization": f"Bearer {OPS_KEY}"}, timeout=10)
    reply.raise_for_status()
    return [f"job {j.get('id')} {j.get('kind')}: {j.get('last_error')}" for j in reply.json()["items"][:limit]]


def portal_state(portal_url: str) -> dict[str, dict[str, Any]]:
    reply = requests.get(f"{portal_url}/_mock/state", timeout=120)
    reply.raise_for_status()
    return reply.json()["dossiers"]


def verify(portal_url: str, filed: list[str], accepted: dict[str, list[tuple[int, str]]],
           held: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Discrepancies between the mock's state and what the API accepted; empty means all is well."""
    if held is None:
        held = portal_state(portal_url)
    ours = set(filed)
    problems = [f"{code}: not at the national portal" for code in filed if code not in held]
    problems += [f"{code}: at the national portal but never filed" for code in held if code not in ours]
    for code in filed:
        if code in held:
            problems += _check_dossier(code, held[code], accepted.get(code, []))
    return problems


def _check_dossier(code: str, record: dict[str, Any], steps: list[tuple[int, str]]) -> list[str]:
    problems = []
    if record.get("creates") != 1:
        problems.append(f"{code}: created {record.get('creates')} times")
    got = [(p.get("TrangThai"), p.get("NoiDungXuLy")) for p in record.get("progress", [])]
    if got != steps:
        problems.append(f"{code}: progress {_describe(got, steps)}")
    if steps and record.get("TrangThaiHoSo") != steps[-1][0]:
        problems.append(f"{code}: status {record.get('TrangThaiHoSo')} at the portal, {steps[-1][0]} posted")
    return problems


def _describe(got: list[tuple[Any, Any]], want: list[tuple[int, str]]) -> str:
    if len(set(got)) < len(got):
        return f"has duplicates: {got}"
    if sorted(got, key=str) == sorted(want, key=str):
        return f"out of order: {[n for _, n in got]}"
    missing = [n for s in want if s not in got for n in [s[1]]]
    extra = [n for s in got if s not in want for n in [s[1]]]
    return f"missing {missing}, unexpected {extra}"


DB_COUNTERS = ("xact_commit", "xact_rollback", "tup_returned", "tup_fetched", "tup_inserted", "tup_updated")
TABLE_COUNTERS = ("seq_scan", "seq_tup_read", "idx_scan", "idx_tup_fetch", "n_tup_ins", "n_tup_upd")


Counters = dict[str, dict[str, int]]


def _read_counters(db_url: str) -> Counters:
    import sqlalchemy as sa

    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            db = conn.execute(sa.text(f"SELECT {', '.join(DB_COUNTERS)} FROM pg_stat_database "
                                      "WHERE datname = current_database()")).mappings().one()
            tables = conn.execute(sa.text(f"SELECT relname, {', '.join(TABLE_COUNTERS)} FROM pg_stat_user_tables "
                                          "WHERE relname <> 'alembic_version'")).mappings().all()
            # Per index: which one a scan that returns many entries walks (idx_tup_read).
            indexes = conn.execute(sa.text("SELECT indexrelname, idx_scan, idx_tup_read FROM pg_stat_user_indexes"
                                           )).mappings().all()
    finally:
        engine.dispose()
    out = {"database": {k: int(db[k]) for k in DB_COUNTERS}}
    out.update({t["relname"]: {k: int(t[k] or 0) for k in TABLE_COUNTERS} for t in tables})
    out.update({f"index {i['indexrelname']}": {"idx_scan": int(i["idx_scan"] or 0),
                                               "idx_tup_read": int(i["idx_tup_read"] or 0)} for i in indexes})
    return out


def db_counters(db_url: str, rows: dict[tuple[str, str], int], timeout: float = 15.0) -> Counters:
    """PostgreSQL's cumulative counters (pg_stat_database, pg_stat_user_tables), once they show known work.

    Backends publish their counts lazily (an idle one up to ~10 s later), so this polls until each
    (table, counter) in `rows` has reached the given value, e.g. every filed dossier's feed item.
    """
    deadline = time.monotonic() + timeout
    while True:
        counters = _read_counters(db_url)
        flushed = all(counters.get(t, {}).get(c, 0) >= n for (t, c), n in rows.items())
        if flushed or time.monotonic() > deadline:
            return counters
        time.sleep(0.5)


def db_delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], per: int) -> dict[str, Any]:
    """Counter increase per `per` (e.g. per accepted event), by database and table."""
    return {name: {k: round((v - before.get(name, {}).get(k, 0)) / max(per, 1), 2) for k, v in counters.items()}
            for name, counters in after.items()}


def analyze(db_url: str) -> None:
    """Give the planner statistics (a fresh database has none until autovacuum's first ANALYZE)."""
    import sqlalchemy as sa

    engine = sa.create_engine(db_url, poolclass=sa.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


# The gateway's own counters (gateway/store/db_metrics.py, gateway/jobs/job_metrics.py) ------------------------

GATEWAY_COUNTERS = {"gateway_db_statements_total": "statements", "gateway_db_commits_total": "commits",
                    "gateway_db_rollbacks_total": "rollbacks", "gateway_periodic_cpu_seconds_total": "periodic_cpu",
                    "gateway_periodic_runs_total": "periodic_runs",
                    "gateway_periodic_skipped_total": "periodic_skipped"}
BENCH_ORIGINS = ("api GET /ops/jobs", "api GET /metrics")  # the bench's own polling and these readings


def gateway_counters(api_url: str, worker_urls: list[str]) -> dict[str, dict[str, float]]:
    """{counter: {origin or task: value}} summed over the API (its /metrics answers for every gunicorn process)
    and each worker's --metrics-port. A worker that is gone counts nothing."""
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, dict[str, float]] = {name: {} for name in GATEWAY_COUNTERS.values()}
    for url, headers in [(f"{api_url}/metrics", {"Authorization": f"Bearer {OPS_KEY}"}),
                         *((u, {}) for u in worker_urls)]:
        try:
            reply = requests.get(url, headers=headers, timeout=10)
            reply.raise_for_status()
        except requests.RequestException:
            continue
        for family in text_string_to_metric_families(reply.text):
            for sample in family.samples:
                if (name := GATEWAY_COUNTERS.get(sample.name)) is not None:
                    label = sample.labels.get("origin") or sample.labels.get("task") or ""
                    out[name][label] = out[name].get(label, 0.0) + sample.value
    return out


def counters_delta(before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
                   ) -> dict[str, dict[str, float]]:
    return {name: {k: v - before.get(name, {}).get(k, 0.0) for k, v in values.items()
                   if v - before.get(name, {}).get(k, 0.0)} for name, values in after.items()}


def origin_group(origin: str) -> str:
    """api, jobs, periodic, bench (the bench's own polling) or other."""
    if origin in BENCH_ORIGINS:
        return "bench"
    return {"api": "api", "job": "jobs", "periodic": "periodic"}.get(origin.split(" ", 1)[0], "other")

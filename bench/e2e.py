"""End-to-end benchmark of the gateway on PostgreSQL + RabbitMQ: API throughput and latency, job delivery to
the national-portal mock, the raw broker ceiling for comparison, CPU per process, and a correctness check.

    python bench/e2e.py [--dossiers N] [--events-per-dossier M] [--concurrency C] [--api-workers W]
                        [--gateway-workers K] [--worker-threads T] [--profile]

See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _observe as observe  # noqa: E402 - the bench's own modules, beside this file
import _profile as profile  # noqa: E402
from _cpu import CpuMeter, Reading, ms_per_unit, usage  # noqa: E402
from _load import (  # noqa: E402
    ONE_STOP_KEY,
    PORTAL_KEY,
    PhaseResult,
    dossier_code,
    file_one,
    journey,
    run_phase,
    walk_group,
    walk_one,
)
from _raw_broker import RawResult, measure  # noqa: E402
from _report import latency_ms, render, write_json  # noqa: E402
from _stack import AMQP_URL, ROOT, Stack, StackOptions, reachable  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dossiers", type=int, default=300, help="dossiers to file (default 300)")
    p.add_argument("--events-per-dossier", type=int, default=6, help="steps per journey, >= 3 (default 6)")
    p.add_argument("--concurrency", type=int, default=16, help="client threads (default 16)")
    p.add_argument("--batch", type=int, default=1,
                   help="steps per request: >1 posts step n of that many dossiers at once through "
                        "POST /api/v1/one-stop/events (default 1: one request per step)")
    p.add_argument("--api-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    p.add_argument("--api-threads", type=int, default=8, help="threads per gunicorn worker (default 8)")
    p.add_argument("--gateway-workers", type=int, default=1, help="`gateway worker` processes (default 1)")
    p.add_argument("--worker-threads", type=int, default=4, help="consumer threads per worker (default 4)")
    p.add_argument("--raw-messages", type=int, default=20_000, help="messages for the raw broker run (default 20000)")
    p.add_argument("--raw-prefetch", type=int, default=2, help="raw consumer prefetch (default 2, as the worker)")
    p.add_argument("--log-level", default="info", help="gateway log level (default info)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra environment for the gateway processes, e.g. GATEWAY_DATABASE__POOL_SIZE=20")
    p.add_argument("--phase-time-limit", type=float, default=300, help="seconds per API phase (default 300)")
    p.add_argument("--drain-timeout", type=float, default=180, help="seconds to wait for jobs (default 180)")
    p.add_argument("--analyze", action="store_true",
                   help="run ANALYZE on the bench database after filing (planner statistics, as an older database "
                        "would have them; a fresh one has none until autovacuum gets to it)")
    p.add_argument("--profile", action="store_true", help="py-spy the API and workers during the events")
    p.add_argument("--json", type=Path, default=None, help="where to write the figures (default: in the log dir)")
    args = p.parse_args(argv)
    if args.events_per_dossier < 3 or min(args.dossiers, args.concurrency, args.api_workers, args.api_threads,
                                          args.gateway_workers, args.worker_threads, args.raw_messages) < 1:
        p.error("counts must be positive and --events-per-dossier at least 3")
    if args.dossiers > 1_000_000:
        p.error("at most 1,000,000 dossiers (the codes run out)")
    return args


def extra_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.startswith("GATEWAY_"):
            raise SystemExit(f"--env wants GATEWAY_...=VALUE, got {pair!r}")
        env[key] = value
    return env


def settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "dossiers": args.dossiers, "events_per_dossier": args.events_per_dossier,
        "journey": ",".join(map(str, journey(args.events_per_dossier))), "concurrency": args.concurrency,
        "api_workers": args.api_workers, "api_threads": args.api_threads, "gateway_workers": args.gateway_workers,
        "worker_threads": args.worker_threads, "raw_messages": args.raw_messages, "raw_prefetch": args.raw_prefetch,
        "log_level": args.log_level, "extra_env": extra_env(args.env), "cores": os.cpu_count(),
        "analyze_after_filing": args.analyze, "batch": args.batch,
        "python": platform.python_version(), "code": code_version(),
    }


def code_version() -> str:
    """The commit under test, with '+changes' when gateway/ or mocks/ differ from it (read-only git calls)."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+changes" if git("status", "--porcelain", "--", "gateway", "mocks", "config") else "")


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def profiling(enabled: bool, stack: Stack, out_dir: Path, results: list[dict[str, Any]]) -> Iterator[None]:
    """py-spy the API (master and its workers) and each gateway worker while the block runs."""
    recordings = []
    if enabled:
        if profile.py_spy() is None:
            print("--profile: py-spy not found (pip install py-spy); running without profiles", flush=True)
        roots = stack.root_pids()
        recordings.append(profile.start("api", roots["api"][0], out_dir, subprocesses=True))
        recordings += [profile.start(f"worker-{n}", pid, out_dir) for n, pid in enumerate(roots["workers"])]
        recordings.append(profile.start("mock-national-portal", roots["mocks"][0], out_dir))  # the first group
    try:
        yield
    finally:
        for rec in filter(None, recordings):
            profile.stop(rec)
        results += [profile.summarize(rec) for rec in recordings if rec is not None]


@dataclass
class Filing:
    result: PhaseResult
    drain: observe.Drain
    last_at: float | None  # wall time of the mock's last request once the filing jobs were drained


@dataclass
class Events:
    result: PhaseResult
    drain: observe.Drain
    backlog: int  # jobs pending or in flight when the last event was answered
    done_before: int  # jobs done before the first event
    jobs_target: int  # jobs the accepted events cause
    portal_requests: int
    last_at: float | None
    db: dict[str, dict[str, float]]

    @property
    def jobs(self) -> int:
        return self.drain.counts["done"] - self.done_before


class Run:
    """One benchmark run against one running stack; each step stores what the report needs."""

    def __init__(self, args: argparse.Namespace, stack: Stack) -> None:
        self.args = args
        self.stack = stack
        self.meter = CpuMeter(stack.root_pids, stack.tag)
        self.codes = [dossier_code(i) for i in range(args.dossiers)]
        self.steps = journey(args.events_per_dossier)
        self.readings: dict[str, Reading] = {}
        self.errors: list[str] = []

    def _drain(self, what: str, target: int) -> observe.Drain:
        drain = observe.wait_drained(self.stack.api_url, target, self.args.drain_timeout,
                                     check=self.stack.check_alive)
        if not drain.done:
            self.errors.append(f"{what} jobs not drained within {self.args.drain_timeout:.0f}s: {dict(drain.counts)}")
        return drain

    def file_all(self) -> Filing:
        self.readings["filing_start"] = self.meter.read()
        result = run_phase(self.stack.api_url, PORTAL_KEY, self.codes, self.steps, file_one,
                           self.args.concurrency, self.args.phase_time_limit)
        self.readings["filing_end"] = self.meter.read()
        drain = self._drain("filing", result.ok("filing"))
        last = observe.mock_last_request_at(self.stack.portal_url, observe.mock_total(self.stack.portal_url))
        return Filing(result, drain, last)

    def walk_all(self, filed: list[str], profiles: list[dict[str, Any]]) -> Events:
        total_before = observe.mock_total(self.stack.portal_url)
        done_before = observe.job_counts(self.stack.api_url)["done"]
        # Known work so far: a feed item per dossier, two updates (claim, outcome) per job done.
        db_before = observe.db_counters(self.stack.db_url, {("feed_items", "n_tup_ins"): len(filed),
                                                            ("jobs", "n_tup_upd"): 2 * done_before})
        with profiling(self.args.profile, self.stack, self.stack.log_dir, profiles):
            self.readings["events_start"] = self.meter.read()
            if self.args.batch > 1:  # groups of dossiers through POST /api/v1/one-stop/events
                groups = [filed[i:i + self.args.batch] for i in range(0, len(filed), self.args.batch)]
                result = run_phase(self.stack.api_url, ONE_STOP_KEY, groups, self.steps, walk_group,
                                   self.args.concurrency, self.args.phase_time_limit)
            else:
                result = run_phase(self.stack.api_url, ONE_STOP_KEY, filed, self.steps, walk_one,
                                   self.args.concurrency, self.args.phase_time_limit)
            self.readings["events_end"] = self.meter.read()
            backlog = observe.job_counts(self.stack.api_url)
            jobs_target = observe.expected_jobs(result.accepted)
            drain = self._drain("event", done_before + jobs_target)
            self.readings["drained"] = self.meter.read()
        total_after = observe.mock_total(self.stack.portal_url)
        updates_before = db_before.get("jobs", {}).get("n_tup_upd", 0)
        db_after = observe.db_counters(self.stack.db_url, {
            ("dossier_events", "n_tup_ins"): result.ok("events"),
            ("jobs", "n_tup_upd"): updates_before + 2 * (drain.counts["done"] - done_before),
        })
        return Events(result, drain, backlog["pending"] + backlog["in_flight"], done_before, jobs_target,
                      total_after - total_before, observe.mock_last_request_at(self.stack.portal_url, total_after),
                      observe.db_delta(db_before, db_after, result.ok("events")))

    def cpu(self, events: int) -> dict[str, dict[str, float]]:
        r = self.readings
        spans = {"filing_api": ("filing_start", "filing_end"), "events_api": ("events_start", "events_end"),
                 "events_drain": ("events_end", "drained"), "events_e2e": ("events_start", "drained")}
        out = {name: {k: round(v, 1) for k, v in usage(r[a], r[b]).items()} for name, (a, b) in spans.items()
               if a in r and b in r}
        if "events_start" in r and "drained" in r:
            per_event = ms_per_unit(r["events_start"], r["drained"], events)
            out["ms_per_event"] = {k: round(v, 2) for k, v in per_event.items()}
        return out


def _rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds and seconds > 0 else None


def _drain_marks(ev: Events) -> dict[str, float | None]:
    """When 50/99/100% of the event jobs were done (as polled), in seconds after the first event was sent."""
    offset = ev.result.seconds  # the drain wait starts when the last event is answered
    marks = {}
    for q in (50, 99, 100):
        t = next((t for t, done in ev.drain.timeline if done - ev.done_before >= q / 100 * ev.jobs_target), None)
        marks[f"t{q}"] = None if t is None else round(t + offset, 2)
    return marks


def _phase_figures(result: PhaseResult, route: str) -> dict[str, Any]:
    return {"requests": len(result.samples), "ok": result.ok(route), "failed": result.failed(route),
            "seconds": round(result.seconds, 3), "per_s": _rate(result.ok(route), result.seconds),
            "latency_ms": latency_ms([s.seconds for s in result.samples])}


def _e2e_figures(ev: Events) -> dict[str, Any]:
    seconds = ev.last_at - ev.result.started if ev.last_at and ev.drain.done else None
    return {
        "definition": "events accepted by the API / (time the national-portal mock logged its last request - "
                      "time the first event request was sent); the filing jobs were drained before",
        "seconds": None if seconds is None else round(seconds, 3),
        "events_per_s": _rate(ev.result.ok("events"), seconds),
        "jobs": ev.jobs, "jobs_per_s": _rate(ev.jobs, seconds),
        "portal_requests": ev.portal_requests, "portal_requests_per_s": _rate(ev.portal_requests, seconds),
        "drain_after_api_seconds": round(ev.last_at - ev.result.finished, 3) if seconds else None,
        "final_counts": dict(ev.drain.counts), **_drain_marks(ev),
    }


def figures(run: Run, raw: RawResult, filing: Filing, ev: Events, problems: list[str],
            profiles: list[dict[str, Any]]) -> dict[str, Any]:
    filing_e2e = filing.last_at - filing.result.started if filing.last_at and filing.drain.done else None
    e2e = _e2e_figures(ev)
    ratio = {k: round(e2e[f"{k}_per_s"] / raw.rate, 4) if e2e[f"{k}_per_s"] else None for k in ("events", "jobs")}
    return {
        "settings": settings(run.args),
        "raw_broker": {"messages": raw.messages, "prefetch": raw.prefetch,
                       "publish_per_s": round(raw.publish_rate, 1), "consume_per_s": round(raw.consume_rate, 1),
                       "publish_consume_per_s": round(raw.rate, 1)},
        "filing": {**_phase_figures(filing.result, "filing"), "e2e_seconds": filing_e2e,
                   "e2e_per_s": _rate(filing.result.ok("filing"), filing_e2e)},
        "events": {**_phase_figures(ev.result, "events"), "backlog_at_api_end": ev.backlog},
        "e2e": e2e,
        "db_per_event": ev.db,
        "ratio_e2e_events_to_raw": ratio["events"],
        "ratio_e2e_jobs_to_raw": ratio["jobs"],
        "cpu": run.cpu(ev.result.ok("events")),
        "verification": {"ok": not problems, "problem_count": len(problems), "problems": problems[:20],
                         "dossiers": len(filing.result.accepted), "steps": sum(map(len, ev.result.accepted.values()))},
        "errors": run.errors + filing.result.errors + ev.result.errors,
        "profiles": profiles,
        "logs": str(run.stack.log_dir),
    }


def benchmark(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    print(f"raw broker: {args.raw_messages:,} messages ...", flush=True)
    raw = measure(AMQP_URL, f"gwbench_raw_{os.getpid()}", args.raw_messages, args.raw_prefetch)
    options = StackOptions(args.api_workers, args.api_threads, args.gateway_workers, args.worker_threads,
                           args.log_level, extra_env(args.env))
    with Stack(options, log_dir) as stack:
        print(f"starting the stack (database and queue prefix {stack.tag}) ...", flush=True)
        stack.start()
        run = Run(args, stack)
        print(f"filing {args.dossiers} dossiers ...", flush=True)
        filing = run.file_all()
        filed = [c for c in run.codes if c in filing.result.accepted]  # refused filings count as failures
        if args.analyze:
            observe.analyze(stack.db_url)
        print(f"posting {args.events_per_dossier} events per dossier and waiting for delivery ...", flush=True)
        profiles: list[dict[str, Any]] = []
        events = run.walk_all(filed, profiles)
        print("verifying at the national-portal mock ...", flush=True)
        problems = observe.verify(stack.portal_url, filed, events.result.accepted)
        if events.drain.counts["dead"]:
            run.errors += observe.dead_letters(stack.api_url)
        return figures(run, raw, filing, events, problems, profiles)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for host, port, what in (("127.0.0.1", 5432, "PostgreSQL"), ("127.0.0.1", 5672, "RabbitMQ")):
        if not reachable(host, port):
            print(f"{what} is not reachable on {host}:{port}", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell may start background jobs ignoring it
    log_dir = Path(tempfile.mkdtemp(prefix="gwbench-"))
    print(f"logs of the gateway processes: {log_dir}", flush=True)
    started = time.monotonic()
    try:
        result = benchmark(args, log_dir)
    except KeyboardInterrupt:
        print("interrupted; everything was torn down", file=sys.stderr)
        return 130
    json_path = args.json or log_dir / "results.json"
    result["wall_seconds"] = round(time.monotonic() - started, 1)
    write_json(result, json_path)
    print()
    print(render(result))
    print(f"\nfigures as JSON: {json_path}\nlogs: {log_dir}\nwhole run: {result['wall_seconds']} s")
    failed = result["filing"]["failed"] or result["events"]["failed"] or not result["verification"]["ok"]
    return 1 if failed or result["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

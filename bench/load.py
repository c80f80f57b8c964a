"""Mixed load at rising rates until the gateway saturates, on its production stack (gunicorn API, gateway
workers, PostgreSQL, RabbitMQ, every partner a mock), then a full reconciliation with every mock.

    python bench/load.py [--rates 100,250,500,...] [--seconds 20] [--gateway-workers K] [--batch B]

For each rate of status events per second: filings, steps (in batches through the one-stop endpoint),
payments paid through the payment mock's signed callbacks, VNPost bookings, and the SMS and emails they
cause, offered open loop for `--seconds`; then the backlog is let drain. It prints per level: what was
offered and accepted, events/s end to end (accepted steps / first request of the level -> the national
portal's last request for them), latency per route, the job backlog over time and the CPU; the raw
broker ceiling measured in the same run; and the reconciliation. See bench/README.md.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _observe as observe  # noqa: E402 - the bench's own modules, beside this file
import _profile as profile  # noqa: E402
from _cpu import CpuMeter, cpu_seconds, ms_per_unit, usage  # noqa: E402
from _feed_reader import FeedReader  # noqa: E402
from _load import journey  # noqa: E402
from _mixed import Mix, MixedLoad  # noqa: E402
from _plot import plot  # noqa: E402
from _raw_broker import measure as raw_broker  # noqa: E402
from _reconcile import reconcile  # noqa: E402
from _report import latency_ms  # noqa: E402
from _stack import AMQP_URL, MOCK_GROUPS, Stack, StackOptions, reachable  # noqa: E402

ROUTES = ("filing", "events (batch)", "payments", "pay + callback", "deliveries")
# The gateway's settings for these runs: payments the callbacks missed are queried soon, not after 5 min.
MIXED_ENV = {"GATEWAY_NOTIFICATIONS__ENABLED": "true", "GATEWAY_PAYMENT__RECONCILE_AFTER_SECONDS": "15",
             "GATEWAY_PAYMENT__SCAN_INTERVAL_SECONDS": "2"}


def stack_options(gateway_workers: int, extra: dict[str, str] | None = None, api_workers: int = 2,
                  notifications: bool = True, archive: bool = True) -> StackOptions:
    env = {**MIXED_ENV, "GATEWAY_NOTIFICATIONS__ENABLED": str(notifications).lower(),
           "GATEWAY_ARCHIVE__ENABLED": str(archive).lower(), **(extra or {})}
    return StackOptions(api_workers=api_workers, api_threads=8, gateway_workers=gateway_workers, worker_threads=4,
                        log_level="warning", extra_env=env)


class DepthSampler:
    """The job backlog (pending + in flight, per queue) once a second, from GET /ops/jobs."""

    def __init__(self, api_url: str, every: float = 1.0) -> None:
        self.api_url = api_url
        self.every = every
        self.points: list[tuple[float, dict[str, int]]] = []  # (time.time(), queue -> backlog)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="depth", daemon=True)

    def __enter__(self) -> DepthSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _loop(self) -> None:
        import requests

        while not self._stop.wait(self.every):
            try:
                rows = requests.get(f"{self.api_url}/ops/jobs", timeout=5, params={"counts": "unfinished"},
                                    headers={"Authorization": f"Bearer {observe.OPS_KEY}"}).json()["counts"]
            except Exception:  # noqa: BLE001 - the API is down (a chaos run): a gap in the series
                continue
            depth: dict[str, int] = {}
            for row in rows:
                if row["state"] in observe.UNFINISHED:
                    depth[row["queue"]] = depth.get(row["queue"], 0) + row["count"]
            self.points.append((time.time(), depth))

    def between(self, start: float, end: float) -> list[tuple[float, int]]:
        return [(round(t - start, 1), sum(d.values())) for t, d in self.points if start <= t <= end]


def wait_drained(stack: Stack, load: MixedLoad, limit: float, check: Callable[[], None] | None = None) -> float | None:
    """Seconds until the client has its answers and no job is pending or in flight; None past `limit`."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        (check or stack.check_alive)()
        try:
            idle = load.idle() and observe.backlog(stack.api_url) == 0
        except Exception:  # noqa: BLE001 - the API may be restarting under chaos
            idle = False
        if idle:
            return time.monotonic() - started
        time.sleep(1.0)  # each look costs the gateway a count of its backlog: as often as the backlog sampler
    return None


@dataclass
class Level:
    rate: float
    figures: dict[str, Any]

    @property
    def saturated(self) -> bool:
        return bool(self.figures["saturated"])


def run_level(stack: Stack, load: MixedLoad, depth: DepthSampler, meter: CpuMeter, rate: float, seconds: float,
              drain_limit: float) -> Level:
    portal = stack.portal_url
    portal_before = observe.mock_total(portal)
    events_before = load.ledger.events
    samples_before = len(load.samples)
    db_before = observe.db_counters(stack.db_url, {})
    own_before = observe.gateway_counters(stack.api_url, stack.worker_metrics)
    cpu_start, mocks_start = meter.read(), cpu_seconds(stack.mock_pids())
    started = time.time()
    offered = load.run(rate, seconds)
    ended = time.time()
    cpu_end = meter.read()
    accepted_in_time = load.ledger.events - events_before
    drain = wait_drained(stack, load, drain_limit)
    cpu_drained, mocks_drained = meter.read(), cpu_seconds(stack.mock_pids())
    events = load.ledger.events - events_before
    db = observe.db_delta(db_before, observe.db_counters(stack.db_url, {}), events)
    own = observe.counters_delta(own_before, observe.gateway_counters(stack.api_url, stack.worker_metrics))
    portal_total = observe.mock_total(portal)
    last_at = observe.mock_last_request_at(portal, portal_total) if portal_total > portal_before else None
    e2e_seconds = (last_at - started) if last_at and drain is not None else None
    samples = [s for s in load.samples[samples_before:] if s.sent < ended]
    routes = {}
    for route in ROUTES:
        mine = [s for s in samples if s.route == route]
        ok = [s.seconds for s in mine if 200 <= s.status < 300]
        why = collections.Counter(s.status or "no answer" for s in mine if not 200 <= s.status < 300)
        routes[route] = {"requests": len(mine), "ok": len(ok), "per_s": round(len(mine) / seconds, 1),
                         "failed": len(mine) - len(ok), "failures": dict(why), **latency_ms(ok)}
    backlog = depth.between(started, ended + (drain or drain_limit))
    api_rate = accepted_in_time / seconds
    figures = {
        "offered_events_per_s": rate, "started_at": round(started, 1), "offered": offered, "events_accepted": events,
        "events_per_s_api": round(api_rate, 1),
        "events_per_s_e2e": round(events / e2e_seconds, 1) if e2e_seconds else None,
        "drain_seconds_after_level": None if drain is None else round(drain, 1),
        "backlog_max": max((n for _, n in backlog), default=0), "backlog_over_time": backlog,
        "routes": routes,
        "cpu_percent": {k: round(v, 0) for k, v in usage(cpu_start, cpu_end).items()},
        # Over the level and its drain, so that every job the level's events caused is paid for.
        "cpu_ms_per_event": {k: round(v, 2) for k, v in ms_per_unit(cpu_start, cpu_drained, events).items()},
        # The `mocks` role split by partner (MOCK_GROUPS), over the same window.
        "mock_cpu_ms_per_event": {g: round(1000 * (mocks_drained[g] - mocks_start.get(g, 0.0)) / max(events, 1), 2)
                                  for g in mocks_drained},
    }
    # PostgreSQL's work per event (its statistics reach the counters up to a second late: approximate per level).
    figures["postgres_per_event"] = {"database": db.pop("database"),
                                     "tables": {t: c for t, c in sorted(db.items()) if any(c.values())}}
    walked = sorted(((c["idx_tup_read"], t) for t, c in db.items() if t.startswith("index ")), reverse=True)
    figures["postgres_per_event"]["most_index_entries_read"] = [(t.removeprefix("index "), n) for n, t in walked[:5]]
    figures["database_work"] = database_work(own, routes, events, figures["cpu_ms_per_event"].get("workers", 0),
                                             window=(cpu_drained.wall - cpu_start.wall))
    gateway = ("api", "workers", "postgres", "rabbitmq")
    figures["gateway_cpu_ms_per_event"] = round(sum(figures["cpu_ms_per_event"].get(k, 0) for k in gateway), 2)
    # For a change that sends the partners the same requests, the mocks' work per event stays the same: this ratio
    # then cancels the machine's own drift between two runs (docs/performance.md, issue 24's eighth round).
    mocks = figures["cpu_ms_per_event"].get("mocks", 0)
    figures["gateway_per_mock_cpu"] = round(figures["gateway_cpu_ms_per_event"] / mocks, 2) if mocks else None
    figures["saturated"] = (api_rate < 0.9 * rate or drain is None or drain > seconds
                            or offered["client_backlog"] > 50 or offered["starved"] > 0.05 * rate * seconds)
    return Level(rate, figures)


# The requests whose statements are counted per request: (their origin in the gateway's counters, bench route).
PER_REQUEST = {"step request": ("api POST /api/v1/one-stop/events", "events (batch)"),
               "filing": ("api POST /api/v1/dossiers", "filing")}


def database_work(own: dict[str, dict[str, float]], routes: dict[str, Any], events: int, workers_ms: float,
                  window: float) -> dict[str, Any]:
    """What the gateway counted itself over the level and its drain: statements, commits and rollbacks per status
    event by origin group, per step request and filing, and the periodic tasks' share (CPU of the sweeper thread)."""
    per = max(events, 1)
    out: dict[str, Any] = {}
    for kind in ("statements", "commits", "rollbacks"):
        groups: dict[str, float] = {}
        for origin, n in own.get(kind, {}).items():
            group = observe.origin_group(origin)
            groups[group] = groups.get(group, 0.0) + n
        gateway = sum(n for g, n in groups.items() if g != "bench")
        out[kind] = {"per_event": round(gateway / per, 2), **{g: round(n / per, 2) for g, n in sorted(groups.items())}}
    for name, (origin, route) in PER_REQUEST.items():
        answered = routes.get(route, {}).get("ok", 0)
        if answered:
            out[name] = {kind: round(own.get(kind, {}).get(origin, 0.0) / answered, 2)
                         for kind in ("statements", "commits")} | {"requests": answered}
    out["by_origin"] = {origin: {kind: round(own.get(kind, {}).get(origin, 0.0) / per, 3)
                                 for kind in ("statements", "commits", "rollbacks")}
                        for origin, _ in sorted(own.get("statements", {}).items(), key=lambda kv: -kv[1])}
    cpu = own.get("periodic_cpu", {})
    total = sum(cpu.values())
    out["periodic"] = {
        "cpu_ms_per_event": round(1000 * total / per, 3),
        "share_of_workers_cpu": round(100 * (1000 * total / per) / workers_ms, 1) if workers_ms else None,
        "runs_per_s": round(sum(own.get("periodic_runs", {}).values()) / window, 1) if window else None,
        "statements_per_s": round(sum(n for o, n in own.get("statements", {}).items()
                                      if o.startswith("periodic")) / window, 1) if window else None,
        "commits_per_s": round(sum(n for o, n in own.get("commits", {}).items()
                                   if o.startswith("periodic")) / window, 1) if window else None,
        "by_task_ms_per_event": {t: round(1000 * v / per, 3) for t, v in sorted(cpu.items(), key=lambda kv: -kv[1])},
    }
    return out


def print_level(level: Level) -> None:
    f = level.figures
    e2e = f["events_per_s_e2e"]
    print(f"\n== {level.rate:,.0f} status events/s offered: {f['events_per_s_api']:,.1f}/s accepted by the API, "
          f"{'-' if e2e is None else f'{e2e:,.1f}'}/s end to end; backlog max {f['backlog_max']:,} jobs, drained "
          f"{f['drain_seconds_after_level']} s after the level; CPU {f['cpu_percent'].get('machine', 0):.0f}% of the "
          f"machine{'  << SATURATED' if level.saturated else ''}", flush=True)
    print(f"   {'route':<16} {'req/s':>7} {'ok':>7} {'failed':>6} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}")
    for route, r in f["routes"].items():
        if r["requests"]:
            why = ", ".join(f"{k} x{v}" for k, v in r["failures"].items())
            print(f"   {route:<16} {r['per_s']:>7.1f} {r['ok']:>7,} {r['failed']:>6} {r['p50'] or 0:>7.1f} "
                  f"{r['p99'] or 0:>7.1f} {r['max'] or 0:>7.1f}" + (f"  (failed: {why}; sent again)" if why else ""))
    series = f["backlog_over_time"]
    step = max(1, len(series) // 16)
    print("   backlog (s: jobs) " + "  ".join(f"{t:g}:{n}" for t, n in series[::step]))
    cpu = f["cpu_percent"]
    print("   CPU % of a core: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items() if k != "machine"))
    ms = f["cpu_ms_per_event"]
    print(f"   CPU ms per status event (level + drain): gateway {f['gateway_cpu_ms_per_event']:.2f} "
          "(api + workers + postgres + rabbitmq); " + ", ".join(f"{k} {v:.2f}" for k, v in ms.items()))
    print("   mocks' CPU ms per status event, by partner: " + ", ".join(
        f"{k} {v:.2f}" for k, v in f["mock_cpu_ms_per_event"].items())
        + f"; gateway CPU / mocks' CPU {f['gateway_per_mock_cpu']}")
    pg = f["postgres_per_event"]["database"]
    print("   PostgreSQL per status event: " + ", ".join(f"{k} {v:g}" for k, v in pg.items()))
    work = f["database_work"]
    print(f"   per status event: commits {pg.get('xact_commit', 0):g} (PostgreSQL's count); counted by the gateway: "
          + "; ".join(f"{kind} {work[kind]['per_event']:g} ("
                      + ", ".join(f"{g} {v:g}" for g, v in work[kind].items() if g != "per_event") + ")"
                      for kind in ("statements", "commits", "rollbacks")))
    print("   per request: " + "; ".join(f"{name} {r['statements']:g} statements, {r['commits']:g} commits "
                                         f"({r['requests']:,} requests)"
                                         for name in PER_REQUEST if (r := work.get(name))))
    print("   most statements per status event (statements/commits): " + ", ".join(
        f"{origin} {c['statements']:g}/{c['commits']:g}" for origin, c in list(work["by_origin"].items())[:8]))
    p = work["periodic"]
    print(f"   periodic tasks: {p['cpu_ms_per_event']:.3f} ms CPU per status event ({p['share_of_workers_cpu']}% of "
          f"the workers'), {p['runs_per_s']} runs/s, {p['statements_per_s']} statements/s, {p['commits_per_s']} "
          "commits/s; " + ", ".join(f"{t} {v:.3f}" for t, v in list(p["by_task_ms_per_event"].items())[:6]))
    print("   index entries read per status event: " + ", ".join(
        f"{name} {n:g}" for name, n in f["postgres_per_event"]["most_index_entries_read"]))


def parse_rates(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def make_mix(args: argparse.Namespace) -> Mix:
    if args.mix == "events":  # steps of dossiers filed beforehand: the one-stop software's stream alone
        return Mix(steps=tuple(journey(args.journey or 12)), batch=args.batch, pay_every=0, post_every=0,
                   filings=False)
    return Mix(steps=tuple(journey(args.journey or 6)), batch=args.batch)


def benchmark(args: argparse.Namespace, log_dir: Path, gateway_workers: int | None = None) -> dict[str, Any]:
    workers = gateway_workers or args.gateway_workers
    mix = make_mix(args)
    notifications = not args.no_notifications
    options = stack_options(workers, api_workers=args.api_workers, notifications=notifications,
                            archive=not args.no_archive)
    with Stack(options, log_dir) as stack:
        print(f"starting the stack: {args.api_workers} API processes x 8 threads, {workers} worker(s) x 4 threads "
              f"(database and queue prefix {stack.tag}) ...", flush=True)
        stack.start()
        load = MixedLoad(stack.api_url, stack.mock, mix, threads=args.client_threads)
        meter = CpuMeter(stack.root_pids, stack.tag)
        levels: list[Level] = []
        profiles: list[dict[str, Any]] = []
        try:
            with DepthSampler(stack.api_url) as depth, FeedReader(stack.api_url) as feed:
                if not mix.filings:
                    needed = int(1.05 * sum(parse_rates(args.rates)) * args.seconds / len(mix.steps)) + 50
                    print(f"filing {needed:,} dossiers beforehand ...", flush=True)
                    load.prefile(needed)
                load.run(50, 3)  # warm up: connections, first dossiers in every state
                wait_drained(stack, load, args.drain_limit)
                with profile.recording(args.profile, stack.root_pids(), log_dir, profiles, list(MOCK_GROUPS)):
                    for rate in parse_rates(args.rates):
                        level = run_level(stack, load, depth, meter, rate, args.seconds, args.drain_limit)
                        levels.append(level)
                        print_level(level)
                        if level.saturated and not args.all_rates:
                            break
                print("\nfinishing every journey, draining, reconciling with the mocks ...", flush=True)
                load.finish()
                drained = wait_drained(stack, load, args.drain_limit)
            rec = reconcile(stack.mock, stack.db_url, load.ledger, notifications, feed.read_to_tail())
        finally:
            load.close()
    sustained = [lv for lv in levels if not lv.saturated]
    best = max((lv.figures["events_per_s_e2e"] or 0 for lv in sustained), default=0)
    return {"gateway_workers": workers, "mix_name": args.mix, "notifications": notifications,
            "mix": mix.__dict__ | {"steps": list(mix.steps)},
            "requests_per_event": round(mix.requests_per_event, 3),
            "levels": [{"rate": lv.rate, **lv.figures} for lv in levels],
            "best_sustained_e2e_events_per_s": best, "final_drain_seconds": drained,
            "client_retries": dict(load.retries), "profiles": profiles,
            "reconciliation": {"ok": rec.ok, "figures": rec.figures, "problems": rec.problems[:50]},
            "reconciliation_lines": rec.lines()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="100,250,500,750,1000,1250,1500,2000",
                   help="status events/s per level, rising (default 100,...,2000)")
    p.add_argument("--seconds", type=float, default=20, help="seconds per level (default 20)")
    p.add_argument("--mix", choices=("mixed", "events"), default="mixed",
                   help="mixed: filings, steps, payments, deliveries and their messages; events: steps only, "
                        "of dossiers filed beforehand (default mixed)")
    p.add_argument("--no-notifications", action="store_true", help="citizens are told nothing (SMS, email off)")
    p.add_argument("--no-archive", action="store_true",
                   help="finished dossiers are not sealed (the steps path alone; the archive is on by default)")
    p.add_argument("--journey", type=int, default=0, help="steps per dossier (default 6 mixed, 12 events)")
    p.add_argument("--batch", type=int, default=10, help="steps per one-stop request (default 10)")
    p.add_argument("--api-workers", type=int, default=2, help="gunicorn processes (default 2)")
    p.add_argument("--gateway-workers", type=int, default=1, help="worker processes (default 1: best on 2 cores)")
    p.add_argument("--client-threads", type=int, default=48, help="load client threads (default 48)")
    p.add_argument("--drain-limit", type=float, default=180, help="seconds a backlog may take to drain (default 180)")
    p.add_argument("--all-rates", action="store_true", help="go on past the first saturated level")
    p.add_argument("--raw-messages", type=int, default=20_000, help="messages for the raw broker ceiling")
    p.add_argument("--json", type=Path, default=None, help="where to write the figures (default: the log dir)")
    p.add_argument("--png", type=Path, default=None, help="where to draw them (default: beside the JSON)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the API, the workers and the mocks during the levels (flame graphs in the log dir)")
    return p.parse_args(argv)


def services_reachable() -> bool:
    for host, port, what in (("127.0.0.1", 5432, "PostgreSQL"), ("127.0.0.1", 5672, "RabbitMQ")):
        if not reachable(host, port):
            print(f"{what} is not reachable on {host}:{port}", file=sys.stderr)
            return False
    return True


def interruptible() -> None:
    def as_interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, as_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not services_reachable():
        return 2
    interruptible()
    log_dir = Path(tempfile.mkdtemp(prefix="gwload-"))
    print(f"logs: {log_dir}", flush=True)
    print(f"raw broker ceiling: {args.raw_messages:,} messages ...", flush=True)
    raw = raw_broker(AMQP_URL, f"gwbench_raw_{os.getpid()}", args.raw_messages, 2)
    print(f"raw broker: publish {raw.publish_rate:,.0f}/s, consume+ack {raw.consume_rate:,.0f}/s, "
          f"publish+consume {raw.rate:,.0f} msgs/s (one thread, confirms, prefetch 2)", flush=True)
    try:
        result = benchmark(args, log_dir)
    except KeyboardInterrupt:
        print("interrupted; everything was torn down", file=sys.stderr)
        return 130
    result["raw_broker"] = {"publish_per_s": round(raw.publish_rate), "consume_per_s": round(raw.consume_rate),
                            "publish_consume_per_s": round(raw.rate)}
    print(f"\nbest sustained: {result['best_sustained_e2e_events_per_s']:,.1f} status events/s end to end "
          f"(= {result['best_sustained_e2e_events_per_s'] / raw.rate:.2f} x the raw broker's {raw.rate:,.0f} msgs/s); "
          f"{result['requests_per_event']} API requests per status event in this mix")
    print(f"client retries (no answer or 5xx, sent again): {result['client_retries'] or 'none'}")
    print("reconciliation:", "OK" if result["reconciliation"]["ok"] else "FAILED")
    print("\n".join(result.pop("reconciliation_lines")))
    profile.print_summary(result["profiles"])
    path = args.json or log_dir / "load.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"figures as JSON: {path}")
    picture = plot(result, args.png or path.with_suffix(".png"))
    print(f"figures drawn: {picture}" if picture else
          "figures not drawn: matplotlib missing (pip install -e '.[bench]')")
    return 0 if result["reconciliation"]["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

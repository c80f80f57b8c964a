"""Chaos while the mixed load runs, each scenario ending with a full reconciliation against every mock.

    python bench/chaos.py [--scenario all|kill-worker|restart-rabbitmq|restart-postgres|portal-down|
                           callback-storm] [--rate 60] [--outage-seconds 300]

  kill-worker       SIGKILL a worker every `--kill-every` seconds (a new one is started at once)
  restart-rabbitmq  stop the RabbitMQ node for `--broker-down` seconds and start it again
  restart-postgres  stop PostgreSQL for `--database-down` seconds and start it again
  portal-down       the national-portal mock answers 500 to everything for `--outage-seconds`, then recovers
  callback-storm    every payment callback sent again `--replays` times, plus a forged and a tampered copy

This restarts the machine's own RabbitMQ and PostgreSQL: run it alone, not beside the tests. Each scenario
gets a fresh stack (database, queues, mocks). Required of each: nothing the gateway accepted is missing
at its partner, nothing applied twice, no forged callback accepted, no 500 answer, the backlog drained.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _mixed import Mix, MixedLoad  # noqa: E402 - the bench's own modules, beside this file
from _observe import OPS_KEY, UNFINISHED  # noqa: E402
from _reconcile import reconcile  # noqa: E402
from _stack import Stack, reachable, wait_until  # noqa: E402
from load import DepthSampler, interruptible, services_reachable, stack_options, wait_drained  # noqa: E402

PG_VERSION = next(iter(sorted(p.name for p in Path("/etc/postgresql").iterdir())), "15") \
    if Path("/etc/postgresql").is_dir() else "15"


@dataclass
class Outcome:
    scenario: str
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    drain_seconds: float | None = None


def run(*argv: str, timeout: float = 180) -> None:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()[:300]}")


def rabbitmq_restart(down: float) -> str:
    run("rabbitmqctl", "shutdown")
    time.sleep(down)  # the outage itself
    run("rabbitmq-server", "-detached")
    # await_startup needs the Erlang node up: it fails at once while the node is still starting.
    wait_until(lambda: reachable("127.0.0.1", 5672), 180, "RabbitMQ to listen again", interval=0.5)
    run("rabbitmqctl", "await_startup", timeout=300)
    return f"RabbitMQ node shut down for {down:.0f} s and started again"


def postgres_restart(down: float) -> str:
    run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", "stop", "-m", "fast")
    time.sleep(down)  # the outage itself
    run("pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", "start")
    wait_until(lambda: reachable("127.0.0.1", 5432), 60, "PostgreSQL to listen again")
    return f"PostgreSQL stopped (fast) for {down:.0f} s and started again"


class Scenario:
    """Starts the load in the background, breaks something, lets the load go on, then reconciles."""

    def __init__(self, name: str, args: argparse.Namespace, log_root: Path) -> None:
        self.name = name
        self.args = args
        self.log_dir = log_root / name
        self.log_dir.mkdir()
        self.outcome = Outcome(name)

    def execute(self, fault: Callable[[Stack, MixedLoad], Any]) -> Outcome:
        a = self.args
        print(f"\n=== {self.name}: mixed load at {a.rate:g} status events/s (logs {self.log_dir}) ===", flush=True)
        with Stack(stack_options(a.gateway_workers), self.log_dir) as stack:
            stack.start()
            load = MixedLoad(stack.api_url, stack.mock, Mix(), threads=32)
            try:
                with DepthSampler(stack.api_url) as depth:
                    self._under_load(stack, load, fault, depth)
                rec = reconcile(stack.mock, stack.db_url, load.ledger)
            finally:
                load.close()
            self.outcome.problems += rec.problems
            statuses = collections.Counter(s.status for s in load.samples)
            if statuses[500]:
                self.outcome.problems.append(f"{statuses[500]} answers were 500")
            self.outcome.notes.append("answers: " + ", ".join(f"{k or 'none'} x{v:,}" for k, v in
                                                              sorted(statuses.items())))
            self.outcome.notes.append(f"client retries: {dict(load.retries) or 'none'}")
            self.outcome.notes += rec.lines()
            largest = max((sum(d.values()) for _, d in depth.points), default=0)
            self.outcome.notes.append(f"largest backlog: {largest:,} jobs")
        return self.outcome

    def _under_load(self, stack: Stack, load: MixedLoad, fault: Callable[[Stack, MixedLoad], Any],
                    depth: DepthSampler) -> None:
        a = self.args
        driver = threading.Thread(target=load.run, args=(a.rate, 10**9), name="conductor", daemon=True)
        driver.start()
        time.sleep(a.warmup)
        started = time.monotonic()
        self.outcome.notes.append(str(fault(stack, load)))
        recovered = time.monotonic()
        time.sleep(a.after)  # the load goes on over the recovered stack
        load.stop()
        driver.join(60)
        load.finish()
        drain = wait_drained(stack, load, a.drain_limit, check=lambda: None)
        if drain is None:
            self.outcome.problems.append(f"backlog not drained within {a.drain_limit:.0f} s")
        else:
            self.outcome.drain_seconds = round(time.monotonic() - recovered, 1)
            self.outcome.notes.append(f"fault lasted {recovered - started:.1f} s; backlog drained "
                                      f"{self.outcome.drain_seconds} s after recovery "
                                      f"({drain:.1f} s after the load stopped)")


def kill_workers(args: argparse.Namespace) -> Callable[[Stack, MixedLoad], str]:
    def fault(stack: Stack, load: MixedLoad) -> str:
        kills = []
        deadline = time.monotonic() + args.kill_for
        while time.monotonic() < deadline:
            time.sleep(args.kill_every)
            kills.append(stack.kill_worker(len(kills)))
            stack.start_worker()
        return f"SIGKILLed {len(kills)} workers, {args.kill_every:g} s apart (a new one started each time)"
    return fault


def portal_down(args: argparse.Namespace) -> Callable[[Stack, MixedLoad], str]:
    def fault(stack: Stack, load: MixedLoad) -> str:
        portal = f"{stack.portal_url}/_mock/faults"
        requests.post(portal, json={"mode": "http_500", "count": 10**9}, timeout=5).raise_for_status()
        try:
            time.sleep(args.outage_seconds)
            counts = requests.get(f"{stack.api_url}/ops/jobs", timeout=30,
                                  headers={"Authorization": f"Bearer {OPS_KEY}"}).json()["counts"]
            backlog = sum(r["count"] for r in counts if r["queue"] == "national_portal" and r["state"] in UNFINISHED)
            dead = sum(r["count"] for r in counts if r["state"] == "dead")
        finally:
            requests.delete(portal, timeout=5).raise_for_status()
        return (f"national-portal mock answered 500 to every call for {args.outage_seconds:g} s; backlog for it "
                f"then {backlog:,} jobs, dead letters {dead}")
    return fault


def callback_storm(args: argparse.Namespace) -> Callable[[Stack, MixedLoad], str]:
    def fault(stack: Stack, load: MixedLoad) -> str:
        time.sleep(args.storm_after)
        sent = load.callbacks_sent()
        storm: list[tuple[str, dict[str, Any]]] = []
        for body in sent.values():
            storm += [("replay", body)] * args.replays
            storm.append(("forged", {**body, "MaXacThuc": "0" * 64}))
            storm.append(("tampered", {**body, "SoTien": body["SoTien"] + 1000}))
        url = f"{stack.api_url}/api/v1/callbacks/payments/national_platform"
        http = requests.Session()

        def send(item: tuple[str, dict[str, Any]]) -> tuple[str, str]:
            kind, body = item
            try:
                return kind, http.post(url, json=body, timeout=30).json().get("MaLoi", "?")
            except (requests.RequestException, ValueError):
                return kind, "no answer"

        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(send, storm))
        seconds = time.monotonic() - started
        by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for kind, code in answers:
            by_kind[kind][code] += 1
        forged_taken = by_kind["forged"]["00"] + by_kind["tampered"]["00"]
        if forged_taken:
            raise AssertionError(f"{forged_taken} forged or tampered callbacks accepted")
        return (f"storm of {len(storm):,} callbacks for {len(sent)} payments in {seconds:.1f} s "
                f"({len(storm) / seconds:,.0f}/s): " + "; ".join(f"{k} {dict(v)}" for k, v in by_kind.items())
                + "; forged or tampered accepted: 0")
    return fault


SCENARIOS: dict[str, Callable[[argparse.Namespace], Callable[[Stack, MixedLoad], str]]] = {
    "kill-worker": kill_workers,
    "restart-rabbitmq": lambda a: lambda stack, load: rabbitmq_restart(a.broker_down),
    "restart-postgres": lambda a: lambda stack, load: postgres_restart(a.database_down),
    "portal-down": portal_down,
    "callback-storm": callback_storm,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", choices=("all", *SCENARIOS), default="all")
    p.add_argument("--rate", type=float, default=60, help="status events/s of the mixed load (default 60)")
    p.add_argument("--gateway-workers", type=int, default=2)
    p.add_argument("--warmup", type=float, default=10, help="seconds of load before the fault (default 10)")
    p.add_argument("--after", type=float, default=15, help="seconds of load after recovery (default 15)")
    p.add_argument("--kill-every", type=float, default=6, help="seconds between two SIGKILLs (default 6)")
    p.add_argument("--kill-for", type=float, default=45, help="seconds of killing (default 45)")
    p.add_argument("--broker-down", type=float, default=15, help="seconds RabbitMQ stays down (default 15)")
    p.add_argument("--database-down", type=float, default=10, help="seconds PostgreSQL stays down (default 10)")
    p.add_argument("--outage-seconds", type=float, default=300, help="national-portal outage (default 300)")
    p.add_argument("--storm-after", type=float, default=20, help="seconds of payments before the storm")
    p.add_argument("--replays", type=int, default=3, help="copies of each callback in the storm (default 3)")
    p.add_argument("--drain-limit", type=float, default=600, help="seconds the backlog may take (default 600)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not services_reachable():
        return 2
    interruptible()
    log_root = Path(tempfile.mkdtemp(prefix="gwchaos-"))
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    outcomes = []
    for name in names:
        try:
            outcome = Scenario(name, args, log_root).execute(SCENARIOS[name](args))
        except KeyboardInterrupt:
            print("interrupted; everything was torn down", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - report it as this scenario's failure and go on
            outcome = Outcome(name, problems=[f"{type(exc).__name__}: {exc}"])
        finally:  # whatever happened, leave the machine's services running
            if not reachable("127.0.0.1", 5672):
                subprocess.run(["rabbitmq-server", "-detached"], check=False)
            if not reachable("127.0.0.1", 5432):
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", PG_VERSION, "main", "start"],
                               check=False)
        outcomes.append(outcome)
        print(f"--- {name}: {'OK' if not outcome.problems else 'FAILED'}", flush=True)
        for line in outcome.notes:
            print("  " + line)
        for line in outcome.problems[:20]:
            print("  PROBLEM " + line)
    print("\nsummary: " + ", ".join(f"{o.scenario} {'OK' if not o.problems else 'FAILED'}"
                                    f"{'' if o.drain_seconds is None else f' (drained {o.drain_seconds} s)'}"
                                    for o in outcomes))
    return 0 if all(not o.problems for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What a gateway costs when nothing happens: the fixed price of its periodic work (sweeps, sealing, scans).

    python bench/idle.py [--warm-seconds 10] [--seconds 60]

The production stack of load.py (gunicorn API, one worker, PostgreSQL, RabbitMQ, the mocks) takes the mixed
load at 20 status events/s for --warm-seconds (so that every table holds something, payments wait, the chain
is sealed), lets everything drain, waits 10 s more, then measures --seconds of quiet: CPU per role (% of a
core), PostgreSQL's commits per second, and what the gateway counted itself: statements, commits and
rollbacks per second by origin, and the sweeper's tasks (runs, skipped for want of work, CPU).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _observe as observe  # noqa: E402 - the bench's own modules, beside this file
from _cpu import CpuMeter, usage  # noqa: E402
from _mixed import MixedLoad  # noqa: E402
from _stack import Stack  # noqa: E402
from load import make_mix, services_reachable, stack_options, wait_drained  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--warm-seconds", type=float, default=10, help="mixed load at 20 events/s first (default 10)")
    p.add_argument("--seconds", type=float, default=60, help="quiet seconds measured (default 60)")
    args = p.parse_args(argv)
    if not services_reachable():
        return 2
    log_dir = Path(tempfile.mkdtemp(prefix="gwidle-"))
    print(f"logs: {log_dir}", flush=True)
    mix = make_mix(argparse.Namespace(mix="mixed", journey=0, batch=10))
    with Stack(stack_options(1), log_dir) as stack:
        stack.start()
        load = MixedLoad(stack.api_url, stack.mock, mix, threads=16)
        try:
            load.run(20, args.warm_seconds)
            load.finish()
            wait_drained(stack, load, 180)
        finally:
            load.close()
        time.sleep(10)  # the last scans of the work just done
        meter = CpuMeter(stack.root_pids, stack.tag)
        own_before = observe.gateway_counters(stack.api_url, stack.worker_metrics)
        db_before = observe.db_counters(stack.db_url, {})
        start = meter.read()
        time.sleep(args.seconds)
        end = meter.read()
        db = observe.db_delta(db_before, observe.db_counters(stack.db_url, {}), 1)["database"]
        own = observe.counters_delta(own_before, observe.gateway_counters(stack.api_url, stack.worker_metrics))
    wall = end.wall - start.wall
    cpu = usage(start, end)
    print(f"\nquiet for {wall:.0f} s: CPU % of a core: " + ", ".join(
        f"{role} {cpu[role]:.2f}" for role in ("api", "workers", "postgres", "rabbitmq", "mocks")))
    print(f"  PostgreSQL: {db['xact_commit'] / wall:.2f} commits/s, {db['xact_rollback'] / wall:.2f} rollbacks/s "
          "(the readings themselves included)")
    for kind in ("statements", "commits", "rollbacks"):
        mine = {o: n for o, n in own.get(kind, {}).items() if observe.origin_group(o) != "bench"}
        print(f"  gateway {kind}/s: {sum(mine.values()) / wall:.2f} (" + ", ".join(
            f"{o} {n / wall:.2f}" for o, n in sorted(mine.items(), key=lambda kv: -kv[1])) + ")")
    runs, skipped = own.get("periodic_runs", {}), own.get("periodic_skipped", {})
    cpu_by_task = sorted(own.get("periodic_cpu", {}).items(), key=lambda kv: -kv[1])
    print(f"  periodic tasks: {1000 * sum(v for _, v in cpu_by_task) / wall:.2f} ms CPU/s ("
          + ", ".join(f"{t} {1000 * v / wall:.2f}" for t, v in cpu_by_task) + "); runs/s "
          + ", ".join(f"{t} {n / wall:.2f}" for t, n in sorted(runs.items(), key=lambda kv: -kv[1]))
          + ("; skipped/s " + ", ".join(f"{t} {n / wall:.2f}" for t, n in sorted(skipped.items(),
                                                                             key=lambda kv: -kv[1]))
             if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What one API request costs, in one process: CPU of the request's own code (Flask, pydantic, the service,
SQLAlchemy, psycopg), CPU of the PostgreSQL backends serving it, statements and commits, for a filing and for
a step request of the mixed workload (a batch of --batch dossiers' next step, citizens told, archive on).

    python bench/request_cost.py [--dossiers 300] [--batch 2] [--rounds 3]

Through the Flask app's test client on a fresh PostgreSQL database: no gunicorn, no HTTP, no broker
(publishing after commit is a no-op), no workers (the jobs stay queued), so the figures are the request's
database path and nothing else, and two commits compare side by side (run each from its own snapshot, at
the same time: `git archive COMMIT | tar -x -C DIR`, then `python bench/request_cost.py` from DIR).
Medians over the rounds with all rounds in brackets.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the gateway of this checkout, not an installed one
sys.path.insert(1, str(ROOT / "bench"))

from _cpu import CpuMeter  # noqa: E402
from _stack import PG_ADMIN_URL, _admin_sql  # noqa: E402

JOURNEY = (2, 4, 4, 4, 9, 10)
PORTAL = {"Authorization": "Bearer dev-portal-key"}
ONE_STOP = {"Authorization": "Bearer dev-one-stop-key"}


class Sent:
    """Statements and commits the engine sent since the last take()."""

    def __init__(self, engine: Any) -> None:
        from sqlalchemy import event

        self.statements = self.commits = 0
        event.listen(engine, "before_cursor_execute", lambda *_: self._statement())
        event.listen(engine, "commit", lambda *_: self._commit())

    def _statement(self) -> None:
        self.statements += 1

    def _commit(self) -> None:
        self.commits += 1

    def take(self) -> tuple[int, int]:
        taken = (self.statements, self.commits)
        self.statements = self.commits = 0
        return taken


def measure(client: Any, meter: CpuMeter, sent: Sent, requests: list[tuple[str, dict[str, Any], dict]]) -> dict:
    sent.take()
    before, cpu = meter.read(), time.process_time()
    for path, body, headers in requests:
        reply = client.post(path, json=body, headers=headers)
        assert reply.status_code in (200, 201), reply.get_json()
        if "events" in body:
            assert reply.get_json()["accepted"] == len(body["events"]), reply.get_json()
    cpu = time.process_time() - cpu
    after = meter.read()
    statements, commits = sent.take()
    n = len(requests)
    return {"api_ms": 1000 * cpu / n, "postgres_ms": 1000 * (after.roles["postgres"] - before.roles["postgres"]) / n,
            "statements": statements / n, "commits": commits / n}


def one_round(client: Any, meter: CpuMeter, sent: Sent, dossiers: int, batch: int, number: int) -> dict[str, dict]:
    from mocks.provincial_portal import sample_dossier

    codes = [f"000.00.{number:02d}.H31-240725-{n:04d}" for n in range(dossiers)]  # a fresh database: unique
    filing = measure(client, meter, sent, [("/api/v1/dossiers", sample_dossier(code), PORTAL) for code in codes])
    steps = []
    for n, status in enumerate(JOURNEY):
        for i in range(0, dossiers, batch):
            steps.append(("/api/v1/one-stop/events", {"events": [
                {"code": code, "status": status, "event_id": f"{n}-{code}", "note": f"step {n} of {code}"}
                for code in codes[i:i + batch]]}, ONE_STOP))
    return {"filing": filing, "step request": measure(client, meter, sent, steps)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dossiers", type=int, default=300, help="dossiers filed and taken through the journey per round")
    p.add_argument("--batch", type=int, default=2, help="dossiers' steps per step request (the mixed bench: ~2)")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    tag = f"gwcost_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{tag}"
    scratch = Path(f"/tmp/{tag}")
    env = {"GATEWAY_DATABASE__URL": url, "GATEWAY_BROKER__URL": "memory://", "GATEWAY_NOTIFICATIONS__ENABLED": "true",
           "GATEWAY_ARCHIVE__ENABLED": "true", "GATEWAY_ARCHIVE__FOLDER": str(scratch / "archive"),
           "GATEWAY_SIGNATURE__TRUST_DIR": str(scratch / "trust"), "GATEWAY_LOG_LEVEL": "warning"}
    (scratch / "trust").mkdir(parents=True, exist_ok=True)
    _admin_sql(f'CREATE DATABASE "{tag}"')
    try:
        with mock.patch.dict(os.environ, env):
            from gateway.config import load_settings

            settings = load_settings()
        from gateway.app import create_app
        from gateway.bootstrap import bootstrap
        from gateway.store.database import migrate

        migrate(url)
        gateway = bootstrap(settings)
        gateway.context.publish = lambda jobs: []  # no broker: the request's database path only
        client = create_app(gateway).test_client()
        meter, sent = CpuMeter(lambda: {}, tag), Sent(gateway.engine)
        one_round(client, meter, sent, 50, args.batch, 0)  # warm: statements prepared, caches filled
        rounds = []
        for n in range(args.rounds):
            with gateway.engine.begin() as conn:  # fresh planner statistics, as the worker keeps them
                conn.exec_driver_sql("ANALYZE")
            rounds.append(one_round(client, meter, sent, args.dossiers, args.batch, n + 1))
        gateway.close()
    finally:
        _admin_sql(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
    import gateway as package

    print(f"gateway from {Path(package.__file__).parent}; {args.dossiers} dossiers x {len(JOURNEY)} steps, "
          f"{args.batch} per step request; median [each round]")
    for kind in ("filing", "step request"):
        print(f"  {kind}: " + ", ".join(
            f"{figure} {statistics.median(r[kind][figure] for r in rounds):.2f} "
            f"[{', '.join(f'{r[kind][figure]:.2f}' for r in rounds)}]"
            for figure in ("api_ms", "postgres_ms", "statements", "commits")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Drift with the national portal under the mixed load, on the production stack: the portal mock drops a share of
the records it answers "done" to and alters others; then the reconciler reads every dossier back.

    python bench/drift.py [--rate 30] [--seconds 30] [--drop 0.05] [--alter 0.01] [--budget 20] [--check-rate 1000]

1. **load, drifting**: the mixed load (load.py's) at `--rate` status events/s for `--seconds`, the portal mock
   dropping `--drop` of its DongBoHoSoMC and CapNhatTienDoHoSoMC records and altering `--alter` of its DongBoHoSoMC
   records; every journey finished, the faults disarmed, the backlog through. The dossiers whose portal record then
   differs from what the gateway stored are counted by this script's own reading (mock state against the database).
2. **load + reconciliation**: the same load three times more (new dossiers, no faults, each run finished and
   drained): alone; while every dossier of phase 1 is made due and read back within a budget of `--budget`
   look-ups a second (national_portal.reconcile.rate_per_second); alone again once they are all settled. The p99
   per route of the middle run against the two around it, taken back to back in the same run.
3. **reconciliation alone**: the worker restarted with a budget of `--check-rate`, every dossier made due again on
   the idle stack: dossiers read back per second and CPU ms per dossier read back, by role (`gateway` = workers +
   API + PostgreSQL + RabbitMQ; the portal mock apart).
4. **check**: every dossier drifted in phase 1 has a finding, each repaired once (no finding repaired twice, none
   left to an operator), none found where nothing drifted, no dead letter left, and the mock's state then matches
   the gateway's for every dossier. Exit 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from _cpu import CpuMeter, ms_per_unit, usage  # noqa: E402
from _load import journey  # noqa: E402
from _mixed import Mix, MixedLoad  # noqa: E402
from _reconcile import PAYMENT_NOTE  # noqa: E402
from _report import latency_ms  # noqa: E402
from _stack import Stack, _stop, wait_until  # noqa: E402
from load import ROUTES, interruptible, services_reachable, stack_options  # noqa: E402

from gateway.adapters.national_portal.mapping import FEE_COLLECTION, dvcqg_time  # noqa: E402

GATEWAY_ROLES = ("api", "workers", "postgres", "rabbitmq")
UNIT = "000.00.00.H56"  # the gateway's unit code (config/default.toml)
RATE = "GATEWAY_NATIONAL_PORTAL__RECONCILE__RATE_PER_SECOND"


def reconcile_env(budget: float) -> dict[str, str]:
    """Reading back only when this script makes dossiers due; then at `budget`, a repair looked at soon."""
    prefix = "GATEWAY_NATIONAL_PORTAL__RECONCILE__"
    return {f"{prefix}FIRST_CHECK_AFTER_SECONDS": "86400", f"{prefix}SCAN_INTERVAL_SECONDS": "0.5",
            RATE: str(budget), f"{prefix}PAGE_SIZE": "1000",
            f"{prefix}RECHECK_AFTER_SECONDS": "2", f"{prefix}BUSY_RECHECK_SECONDS": "2"}


def new_budget(stack: Stack, rate: float) -> None:
    """The worker replaced by one reading back at `rate` a second (a setting is read at start)."""
    old = list(stack.procs["workers"])
    stack.env[RATE] = str(rate)
    stack.start_worker()
    for proc in old:
        _stop(proc)
        stack.procs["workers"].remove(proc)
    stack.wait_ready()


class Db:
    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.NullPool)

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params).mappings())

    def run(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def moving(self) -> int:
        """Jobs on their way: in flight, or pending at the head of their key (not those behind a dead letter)."""
        return self.rows("SELECT count(*) AS n FROM jobs WHERE state = 'in_flight' OR (state = 'pending' AND ready)"
                         )[0]["n"]

    def make_due(self, codes: list[str] | None = None) -> datetime:
        now = datetime.now(UTC)
        if codes is None:
            self.run("UPDATE portal_checks SET next_check_at = :now WHERE next_check_at IS NOT NULL", now=now)
        else:
            self.run("UPDATE portal_checks SET next_check_at = :now WHERE dossier_code = ANY(:codes)", now=now,
                     codes=codes)
        return now

    def looked_at(self) -> int:
        return self.rows("SELECT coalesce(sum(checks), 0) AS n FROM portal_checks")[0]["n"]

    def settled(self, codes: list[str], since: datetime) -> bool:
        """Each dossier read back since `since` with a verdict, no repair waiting to be looked at, nothing moving."""
        left = self.rows("SELECT count(*) AS n FROM portal_checks WHERE dossier_code = ANY(:codes) AND "
                         "(checked_at IS NULL OR checked_at < :since OR outcome NOT IN ('clean', 'ahead', 'foreign'))",
                         codes=codes, since=since)[0]["n"]
        repairing = self.rows("SELECT count(*) AS n FROM portal_findings WHERE state = 'repairing'")[0]["n"]
        return left == 0 and repairing == 0 and self.moving() == 0


def drain(db: Db, load: MixedLoad, limit: float) -> float:
    started = time.monotonic()
    wait_until(lambda: load.idle() and db.moving() == 0, limit, "the backlog through", interval=1.0)
    return time.monotonic() - started


def portal_problems(stack: Stack, db: Db, load: MixedLoad) -> dict[str, list[str]]:
    """This script's own reading of drift: for every dossier the load filed, what the portal mock holds against
    what the gateway stored (steps as the load posted them, in any order; payments; the record's fields)."""
    held = requests.get(f"{stack.portal_url}/_mock/state", timeout=120).json()["dossiers"]
    stored = {r["code"]: r for r in db.rows(
        "SELECT code, status, applicant_name, id_number, received_at, due_at, fees_paid_online_at, data "
        "FROM dossiers")}
    returned = {r["code"]: r["at"] for r in db.rows(
        "SELECT d.code, e.at FROM dossier_events e JOIN dossiers d ON d.id = e.dossier_id WHERE e.status = 10")}
    paid = collections.Counter(r["dossier_code"] for r in db.rows(
        "SELECT dossier_code FROM payments WHERE state = 'paid'"))
    problems: dict[str, list[str]] = {}
    for code in sorted(load.ledger.filed):
        mine, theirs, why = stored.get(code), held.get(code), []
        if mine is None:
            continue
        if theirs is None:
            problems[code] = ["missing at the portal"]
            continue
        if theirs.get("MaDonVi") != UNIT:
            why.append(f"unit {theirs.get('MaDonVi')}")
        progress = [(p.get("TrangThai"), p.get("NoiDungXuLy")) for p in theirs.get("progress", [])]
        payments = [p for p in progress if str(p[1]).startswith(PAYMENT_NOTE)]
        if collections.Counter(p for p in progress if p not in payments) != collections.Counter(
                load.ledger.steps.get(code, [])):
            why.append("progress records differ")
        if len(payments) != paid[code]:
            why.append(f"{len(payments)} payment records, {paid[code]} paid")
        if theirs.get("TrangThaiHoSo") != mine["status"]:
            why.append(f"status {theirs.get('TrangThaiHoSo')} at the portal, {mine['status']} at the gateway")
        ids = theirs.get("DinhDanhCHS") or [{}]
        fees = [(f.get("MaPhiLePhi"), str(f.get("Gia")), f.get("HinhThucThu")) for f in theirs.get("DanhSachLePhi", [])]
        online = FEE_COLLECTION[mine["fees_paid_online_at"] is not None]
        expected = {"ChuHoSo": mine["applicant_name"], "SoDinhDanh": mine["id_number"],
                    "NgayTiepNhan": dvcqg_time(mine["received_at"]), "NgayHenTra": dvcqg_time(mine["due_at"]),
                    "NgayTra": dvcqg_time(returned.get(code)),
                    "fees": [(f["code"], str(f["amount"]), online) for f in mine["data"].get("fees", [])]}
        actual = {"ChuHoSo": theirs.get("ChuHoSo"), "SoDinhDanh": ids[0].get("SoDinhDanh"),
                  "NgayTiepNhan": theirs.get("NgayTiepNhan"), "NgayHenTra": theirs.get("NgayHenTra"),
                  "NgayTra": theirs.get("NgayTra"), "fees": fees}
        why += [f"{k} {actual[k]!r} at the portal, {v!r} at the gateway" for k, v in expected.items() if actual[k] != v]
        if why:
            problems[code] = why
    return problems


def routes_p99(load: MixedLoad, start: int, end: int) -> dict[str, dict[str, Any]]:
    samples = load.samples[start:end]
    out = {}
    for route in ROUTES:
        ok = [s.seconds for s in samples if s.route == route and 200 <= s.status < 300]
        if ok:
            out[route] = {"requests": len(ok), **latency_ms(ok)}
    return out


def benchmark(args: argparse.Namespace, log_dir: Path) -> dict[str, Any]:
    options = stack_options(args.gateway_workers, extra=reconcile_env(args.budget))
    result: dict[str, Any] = {"rate": args.rate, "seconds": args.seconds, "drop": args.drop, "alter": args.alter,
                              "budget": args.budget, "check_rate": args.check_rate}
    problems: list[str] = []
    with Stack(options, log_dir) as stack:
        print(f"starting the stack ({stack.tag}) ...", flush=True)
        stack.start()
        db = Db(stack.db_url)
        load = MixedLoad(stack.api_url, stack.mock, Mix(steps=tuple(journey(6)), batch=args.batch),
                         threads=args.client_threads)
        meter = CpuMeter(stack.root_pids, stack.tag)
        portal = stack.portal_url
        try:
            load.run(20, 3)  # warm up: connections, the first dossiers
            load.finish()
            drain(db, load, args.drain_limit)

            print(f"phase 1: the mixed load at {args.rate:g} events/s for {args.seconds:g} s, the portal dropping "
                  f"{args.drop:.0%} of its records and altering {args.alter:.0%} ...", flush=True)
            for mode, share, services in (("silent_drop", args.drop, ["DongBoHoSoMC", "CapNhatTienDoHoSoMC"]),
                                          ("alter", args.alter, ["DongBoHoSoMC"])):
                requests.post(f"{portal}/_mock/faults", timeout=5, json={
                    "mode": mode, "count": 10**9, "share": share, "services": services}).raise_for_status()
            first = len(load.samples)
            load.run(args.rate, args.seconds)
            drifting = routes_p99(load, first, len(load.samples))
            load.finish()
            requests.delete(f"{portal}/_mock/faults", timeout=5).raise_for_status()
            drain(db, load, args.drain_limit)
            journal = requests.get(f"{portal}/_mock/drift", timeout=30).json()["drift"]
            drifted = portal_problems(stack, db, load)
            phase1 = sorted(load.ledger.filed)
            writes = sum(1 for r in requests.get(f"{portal}/_mock/requests", timeout=120).json()["requests"]
                         if r["service"] in ("DongBoHoSoMC", "CapNhatTienDoHoSoMC"))
            dead = db.rows("SELECT count(*) AS n FROM jobs WHERE state = 'dead'")[0]["n"]
            result["phase1"] = {"dossiers": len(phase1), "portal_write_calls": writes,
                                "records_dropped": sum(d["mode"] == "silent_drop" for d in journal),
                                "records_altered": sum(d["mode"] == "alter" for d in journal),
                                "dossiers_drifted": len(drifted), "dead_letters": dead, "p99": drifting}
            print(f"  {len(phase1)} dossiers, {result['phase1']['records_dropped']} records dropped and "
                  f"{result['phase1']['records_altered']} altered by the portal: {len(drifted)} dossiers drifted, "
                  f"{dead} dead letters (writes after a dropped create: 'not found')", flush=True)

            print(f"phase 2: the same load three times more (no faults): alone, while every dossier of phase 1 is "
                  f"read back ({args.budget:g} a second at most), alone again ...", flush=True)

            def loaded() -> dict[str, dict[str, Any]]:
                first = len(load.samples)
                load.run(args.rate, args.seconds)
                p99 = routes_p99(load, first, len(load.samples))
                load.finish()
                drain(db, load, args.drain_limit)
                return p99

            before = loaded()
            looked = db.looked_at()
            since = db.make_due(phase1)
            started = time.monotonic()
            beside = loaded()
            wait_until(lambda: db.settled(phase1, since), args.drain_limit, "phase 1's dossiers read back",
                       interval=1.0)
            settle = round(time.monotonic() - started, 1)
            looks = db.looked_at() - looked
            after = loaded()
            result["phase2"] = {"seconds_to_settle": settle, "look_ups": looks,
                                "p99": {"alone_before": before, "beside_read_back": beside, "alone_after": after}}
            print(f"  {looks} look-ups; phase 1's dossiers settled {settle} s after they were made due")
            print("  p99 ms per route: alone | beside the read-back | alone again  (beside / mean of the two alone)")
            for route in ROUTES:
                if route in before and route in beside and route in after:
                    a, b, c = before[route]["p99"], beside[route]["p99"], after[route]["p99"]
                    print(f"    {route:<16} {a:>8.1f} | {b:>8.1f} | {c:>8.1f}  (x{2 * b / (a + c):.2f})", flush=True)

            findings = db.rows("SELECT dossier_code, kind, state, repairs FROM portal_findings")
            by_code = {f["dossier_code"]: f for f in findings}
            problems += [f"{code}: drifted ({'; '.join(why)}), no finding" for code, why in drifted.items()
                         if code not in by_code]
            problems += [f"{code}: a finding ({by_code[code]['kind']}) but no drift seen" for code in by_code
                         if code not in drifted]
            problems += [f"{f['dossier_code']}: {f['kind']} {f['state']} after {f['repairs']} repairs"
                         for f in findings if (f["state"], f["repairs"]) != ("repaired", 1)]
            if len(findings) != len(by_code):
                problems.append(f"{len(findings) - len(by_code)} dossiers found drifted twice")

            print(f"phase 3: every dossier read back again on the idle stack, {args.check_rate:g} a second at "
                  "most ...", flush=True)
            new_budget(stack, args.check_rate)
            everyone = sorted(load.ledger.filed)
            looked = db.looked_at()
            cpu_start = meter.read()
            started = time.monotonic()
            since = db.make_due()
            wait_until(lambda: db.settled(everyone, since), args.drain_limit, "every dossier read back",
                       interval=0.5)
            seconds = time.monotonic() - started
            cpu_end = meter.read()
            looks = db.looked_at() - looked
            per_look = ms_per_unit(cpu_start, cpu_end, looks)
            result["phase3"] = {"look_ups": looks, "seconds": round(seconds, 1),
                                "dossiers_per_second": round(looks / seconds, 1),
                                "cpu_ms_per_dossier": {k: round(v, 2) for k, v in per_look.items()},
                                "gateway_cpu_ms_per_dossier": round(sum(per_look.get(k, 0) for k in GATEWAY_ROLES),
                                                                    2),
                                "cpu_percent": {k: round(v) for k, v in usage(cpu_start, cpu_end).items()}}
            print(f"  {looks:,} dossiers read back in {seconds:.1f} s: {looks / seconds:,.1f} /s; CPU ms per dossier: "
                  f"gateway {result['phase3']['gateway_cpu_ms_per_dossier']:.2f} (" + ", ".join(
                      f"{k} {v:.2f}" for k, v in per_look.items()) + ")", flush=True)
            new = db.rows("SELECT count(*) AS n FROM portal_findings")[0]["n"] - len(findings)
            if new:
                problems.append(f"{new} findings where everything had been repaired")
            left = portal_problems(stack, db, load)
            problems += [f"{code}: still differs: {'; '.join(why)}" for code, why in list(left.items())[:20]]
            dead = db.rows("SELECT count(*) AS n FROM jobs WHERE state = 'dead'")[0]["n"]
            if dead:
                problems.append(f"{dead} dead letters left")
            result["check"] = {"findings": len(findings), "kinds": dict(collections.Counter(
                f["kind"] for f in findings)), "repaired_once": sum((f["state"], f["repairs"]) == ("repaired", 1)
                                                                    for f in findings),
                "still_differing": len(left), "problems": problems[:50]}
        finally:
            load.close()
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=30, help="status events/s of the mixed load (default 30)")
    p.add_argument("--seconds", type=float, default=30, help="seconds of load in phases 1 and 2 (default 30)")
    p.add_argument("--drop", type=float, default=0.05, help="share of portal records dropped (default 0.05)")
    p.add_argument("--alter", type=float, default=0.01, help="share of DongBoHoSoMC records altered (default 0.01)")
    p.add_argument("--budget", type=float, default=20,
                   help="look-ups a second beside the load in phase 2 (national_portal.reconcile.rate_per_second)")
    p.add_argument("--check-rate", type=float, default=1000,
                   help="look-ups a second in phase 3, alone (default 1000: as fast as it goes)")
    p.add_argument("--batch", type=int, default=10, help="steps per one-stop request (default 10)")
    p.add_argument("--gateway-workers", type=int, default=1)
    p.add_argument("--client-threads", type=int, default=48)
    p.add_argument("--drain-limit", type=float, default=300)
    p.add_argument("--json", type=Path, default=None, help="where to write the figures (default: the log dir)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not services_reachable():
        return 2
    interruptible()
    log_dir = Path(tempfile.mkdtemp(prefix="gwdrift-"))
    print(f"logs: {log_dir}", flush=True)
    try:
        result = benchmark(args, log_dir)
    except KeyboardInterrupt:
        print("interrupted; everything was torn down", file=sys.stderr)
        return 130
    check = result["check"]
    print(f"\ncheck: {check['findings']} findings {check['kinds']}, {check['repaired_once']} repaired once; "
          f"{check['still_differing']} dossiers still differ: " + ("OK" if not check["problems"] else "FAILED"))
    for problem in check["problems"]:
        print(f"  PROBLEM {problem}")
    path = args.json or log_dir / "drift.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    print(f"figures as JSON: {path}")
    return 0 if not check["problems"] else 1


if __name__ == "__main__":
    sys.exit(main())

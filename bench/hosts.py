"""The gateway across hosts: faults that real hosts have, under the mixed load, each followed by a full
reconciliation against every mock. Run as root, alone on the machine (it takes many processes).

    sudo .venv/bin/python bench/hosts.py [--fault all|partition|freeze-api|clock-skew|slow-db-link] [--rate 30]
    sudo .venv/bin/python bench/hosts.py --cleanup      # remove what an interrupted run left (gwh-* namespaces)

Seven hosts and a load client, each a network namespace joined by a bridge, addresses from 198.18.0.0/24
(see _netns.py and _hosts_stack.py for the layout); the client reaches the API through HAProxy. In order:

  partition     worker-1's link taken down for --partition seconds (longer than the job lease and the broker
                heartbeat), its processes left running, and on until the jobs that were in flight at the cut
                were taken over (done by the other worker; at most --partition-limit seconds); then up again.
                Prints how long the takeover took, and when worker-1 was consuming again. An archive batch's
                claim (archive.batch_lease_seconds, 300 s) outlasts the cut: worker-1 finishes or hands it on
                once back, and the drain checks that. --cut-sealing makes the cut fall while worker-1 seals a
                batch.
  freeze-api    every process of api-2 SIGSTOPped for --freeze seconds behind HAProxy, then SIGCONTed. Prints
                how long until HAProxy took it out (its "takeover"), checks the healthy api-1 stayed in and
                api-2 came back.
  clock-skew    api-2 and worker-2 restarted with their wall clocks +90 s (bench/_skewed.py: faketime hangs
                Python's threads on this machine), for --skew-for seconds; then restarted on the true clock.
  slow-db-link  api-2's and worker-2's database link given 20 ms more latency and 1 % segment loss for
                --slow-for seconds (a user-space relay: this kernel has no netem, see _slow_link.py).

After each: the load stops, every journey is posted to its end, the backlog drains and the reconciliation
(bench/_reconcile.py: nothing lost, nothing twice at any partner, every dossier's steps in order, every
accepted request stored) runs over everything since the start. Exit 0 when every fault's outcome is clean,
1 otherwise, 2 when the machine cannot run it (the reason is printed), 130 on Ctrl-C; whatever happens,
every namespace, link and process the run made is removed.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import sqlalchemy as sa  # noqa: E402
from _hosts_stack import ADDRESS, HOSTS, HostStack, missing_tools  # noqa: E402
from _mixed import Mix, MixedLoad  # noqa: E402
from _netns import Network, NetworkRefused, cleanup_leftovers, why_unavailable  # noqa: E402
from _observe import backlog  # noqa: E402
from _reconcile import reconcile  # noqa: E402
from _report import percentile  # noqa: E402
from _stack import wait_until  # noqa: E402

from gateway.config import Settings  # noqa: E402

# The gateway's settings on every host: short enough that a partition longer than both fits a short run.
# They must match across hosts (docs/operations.md, "More than one host").
HOST_ENV = {
    "GATEWAY_JOBS__LEASE_SECONDS": "15",
    "GATEWAY_JOBS__REPUBLISH_AFTER_SECONDS": "15",
    "GATEWAY_BROKER__HEARTBEAT_SECONDS": "10",
    "GATEWAY_PAYMENT__RECONCILE_AFTER_SECONDS": "15",
    "GATEWAY_PAYMENT__SCAN_INTERVAL_SECONDS": "2",
    "GATEWAY_NOTIFICATIONS__ENABLED": "true",
    "GATEWAY_JOBS__WORKER_THREADS": "2",
}
FAULTS = ("partition", "freeze-api", "clock-skew", "slow-db-link")


@dataclass
class Outcome:
    fault: str
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    takeover: float | None = None
    p99_ms: float | None = None
    ended: float | None = None  # time.time() the fault ended, when the action goes on to watch the recovery

    @property
    def ok(self) -> bool:
        return not self.problems


class Run:
    def __init__(self, stack: HostStack, net: Network, args: argparse.Namespace) -> None:
        self.stack = stack
        self.net = net
        self.args = args
        self.load = MixedLoad(stack.api_url, stack.mock, Mix(), threads=24)
        self.engine = sa.create_engine(stack.db_url, poolclass=sa.NullPool, connect_args={"connect_timeout": 5})

    def close(self) -> None:
        self.load.close()
        self.engine.dispose()

    def sql(self, statement: str, **params: object) -> list[sa.Row]:
        with self.engine.connect() as conn:
            return list(conn.execute(sa.text(statement), params))

    def fault(self, name: str, action: Callable[[Outcome], None]) -> Outcome:
        a = self.args
        outcome = Outcome(name)
        print(f"\n=== {name}: mixed load at {a.rate:g} status events/s ===", flush=True)
        driver = threading.Thread(target=self.load.run, args=(a.rate, 10**9), name="conductor", daemon=True)
        samples_before = len(self.load.samples)
        driver.start()
        time.sleep(a.warmup)
        started = time.time()
        action(outcome)
        ended = outcome.ended or time.time()
        time.sleep(a.after)
        self.load.stop()
        driver.join(60)
        self.load.finish(timeout=a.drain_limit)
        drained = self._drain(a.drain_limit)
        if drained is None:
            outcome.problems.append(f"backlog not drained within {a.drain_limit:.0f} s")
        else:
            outcome.notes.append(f"backlog drained {drained:.1f} s after the load stopped")
        during = [s for s in self.load.samples[samples_before:] if started <= s.sent <= ended]
        statuses = collections.Counter(s.status for s in self.load.samples[samples_before:])
        outcome.p99_ms = _ms(percentile([s.seconds for s in during], 99))
        outcome.notes.append(f"fault {ended - started:.1f} s; {len(during):,} requests sent during it, p50 "
                             f"{_ms(percentile([s.seconds for s in during], 50))} ms, p99 {outcome.p99_ms} ms")
        outcome.notes.append("answers: " + ", ".join(f"{k or 'no answer'} x{v:,}" for k, v in sorted(statuses.items())))
        if statuses[500]:
            outcome.problems.append(f"{statuses[500]} answers were 500")
        rec = reconcile(self.stack.mock, self.stack.db_url, self.load.ledger)
        outcome.notes += rec.lines()
        outcome.problems += rec.problems
        return outcome

    def _drain(self, limit: float) -> float | None:
        started = time.monotonic()
        while time.monotonic() - started < limit:
            self.stack.check_alive()
            try:
                if self.load.idle() and backlog(self.stack.api_url) == 0:
                    return time.monotonic() - started
            except Exception:  # noqa: BLE001 - the balancer may have no host for a moment
                pass
            time.sleep(1.0)
        return None

    # The faults ----------------------------------------------------------------------------------

    def partition(self, outcome: Outcome) -> None:
        """worker-1 cut off; the jobs in flight at the cut must be finished by worker-2 after their lease.

        Each cut waits for a job in flight first, and is made again (after a moment) until it catches worker-1
        holding jobs: a cut between two batches would prove nothing about leases. Worker-1's are the jobs in flight
        at the cut that are still in flight a moment later: worker-2's are done by then, and so are those an API
        host claimed to run inside its request (a payment ask, a booking). With --late-worker-2, worker-2 starts
        only after that moment. With --cut-sealing, each cut waits for an archive batch in flight (its claim
        outlasts the cut: worker-1 must hand it on once back, which the drain checks)."""
        sealing: list[int] = []
        for _ in range(15):
            if self.args.cut_sealing:
                sealing = self._soon_in_flight("archive", limit=60)
            else:  # with wake-ups gathered (jobs.gather_seconds), a worker is between batches most of the time
                self._soon_in_flight(None, limit=10)
            self.net.cut("worker-1")
            cut = time.monotonic()
            held, longer = self._in_flight()
            sealing = [job_id for job_id in sealing if job_id in longer]  # not finished before the cut fell
            if held:
                time.sleep(2.0)
                held = [r.id for r in self.sql("SELECT id FROM jobs WHERE id = ANY(:ids) AND state = 'in_flight'",
                                               ids=held)]
            if held:
                break
            self.net.mend("worker-1")
            time.sleep(0.3)
        if self.args.late_worker_2:
            self.stack.start_worker("worker-2")
        taken_over = worker_2_up = None
        # The cut lasts --partition seconds, and on until worker-1's jobs are taken over (up to --partition-limit):
        # the lease bounds when a takeover may begin; how soon a loaded machine (CI runs this beside four other
        # test processes) starts worker-2 and runs the jobs is not what the run proves.
        while (elapsed := time.monotonic() - cut) < self.args.partition or (
                held and taken_over is None and elapsed < self.args.partition_limit):
            if self.args.late_worker_2 and worker_2_up is None and self._jobs_run("worker-2") is not None:
                worker_2_up = time.monotonic() - cut  # its start is part of the takeover on a late worker-2
            if taken_over is None and held:
                still = self.sql("SELECT count(*) FROM jobs WHERE id = ANY(:ids) AND state NOT IN ('done', 'dead')",
                                 ids=held)
                if still[0][0] == 0:
                    taken_over = time.monotonic() - cut
            time.sleep(0.5)
        if held and taken_over is None:  # say what the database is waiting for, and where the jobs stand
            outcome.problems += self._waits() + self._standing(held)
        self.net.mend("worker-1")
        mended = time.monotonic()
        outcome.ended = time.time()
        outcome.notes.append(f"worker-1 cut off for {mended - cut:.1f} s; it held {len(held)} jobs in flight")
        if self.args.late_worker_2:
            outcome.notes.append("worker-2, started after the cut, " + (
                "never served its metrics during it" if worker_2_up is None else
                f"served its metrics {worker_2_up:.1f} s after the cut"))
        if longer:
            # An archive batch's claim outlasts the cut (archive.batch_lease_seconds): nobody may take it over
            # during it. Once back, worker-1 seals it or writes what it could not and hands it on (runner.record_late)
            # within its lease; the drain and the reconciliation check that.
            outcome.notes.append(f"and {len(longer)} under a lease that outlasts the cut (an archive batch's), "
                                 "left to it")
        if self.args.cut_sealing and not sealing:
            outcome.problems.append("no archive batch was in flight at the cut (--cut-sealing)")
        elif sealing:
            outcome.notes.append(f"the cut came while an archive batch of {len(sealing)} was in flight")
        if not held:
            outcome.problems.append("no cut caught worker-1 holding jobs (15 tries)")
        elif taken_over is None:
            outcome.problems.append(f"worker-1's jobs were not taken over within the partition "
                                    f"({mended - cut:.0f} s)")
        elif held:
            outcome.takeover = round(taken_over, 1)
            outcome.notes.append(f"worker-1's jobs taken over (all done by another worker) {taken_over:.1f} s "
                                 "after the cut")
        back = self._consuming_again("worker-1", limit=90)
        if back is None:
            outcome.problems.append("worker-1 did not consume again within 90 s of the link coming back")
        else:
            outcome.notes.append(f"worker-1 consuming again {back:.1f} s after its link came back")

    def _soon_in_flight(self, queue: str | None, limit: float) -> list[int]:
        """The jobs in flight (of `queue`, or any), once some are (waiting up to `limit` seconds); [] if none came."""
        started = time.monotonic()
        with self.engine.connect() as conn:
            while time.monotonic() - started < limit:
                if ids := list(conn.execute(sa.text(
                        "SELECT id FROM jobs WHERE state = 'in_flight' AND (queue = CAST(:queue AS text) "
                        "OR CAST(:queue AS text) IS NULL)"), {"queue": queue}).scalars()):
                    return ids
                conn.rollback()  # no transaction left open between looks
                time.sleep(0.02)  # a batch takes tens of milliseconds: the cut must fall inside one
        return []

    def _in_flight(self) -> tuple[list[int], list[int]]:
        """The jobs in flight now: those whose claim ends within a job lease, and those under a longer one."""
        rows = self.sql("SELECT id, locked_until <= now() + make_interval(secs => :lease) AS within FROM jobs "
                        "WHERE state = 'in_flight'", lease=self.args.lease + 1)
        return [r.id for r in rows if r.within], [r.id for r in rows if not r.within]

    def _standing(self, ids: list[int]) -> list[str]:
        """Where the jobs not finished yet stand: queue, state, attempts, when due or claimed until, last error."""
        rows = self.sql("SELECT id, queue, state, attempts, extract(epoch FROM next_attempt_at - now()) AS due, "
                        "extract(epoch FROM locked_until - now()) AS lease, published_at IS NOT NULL AS published, "
                        "ready, last_error FROM jobs WHERE id = ANY(:ids) AND state NOT IN ('done', 'dead') "
                        "ORDER BY id", ids=ids)
        return [f"job {r.id} ({r.queue}) {r.state}, attempt {r.attempts}, ready {r.ready}, "
                f"published {r.published}, due in {r.due:.1f} s, lease {'-' if r.lease is None else f'{r.lease:.1f} s'}"
                f": {(r.last_error or '')[:120]}" for r in rows]

    def _waits(self) -> list[str]:
        """The database's sessions that are not idle, and what each waits for."""
        sessions = self.sql(
            "SELECT client_addr, state, coalesce(wait_event_type || ':' || wait_event, '-'), "
            "extract(epoch FROM now() - state_change), query FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state <> 'idle'")
        return [f"session from {r[0]}: {r[1]}, waiting {r[2]}, for {r[3]:.0f} s: {r[4][:160]}" for r in sessions]

    @staticmethod
    def _jobs_run(host: str) -> float | None:
        """The worker's count of jobs run, from the /metrics it serves on its address; None if it does not answer."""
        import requests

        try:
            text = requests.get(f"http://{ADDRESS[host]}:9100/metrics", timeout=2).text
        except requests.RequestException:
            return None
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("gateway_jobs_processed_total{"))

    def _consuming_again(self, host: str, limit: float) -> float | None:
        """Seconds until the worker's job counter grows again."""
        started = time.monotonic()
        first = None
        while time.monotonic() - started < limit:
            value = self._jobs_run(host)
            if value is not None and first is None:
                first = value
            elif value is not None and value > first:
                return time.monotonic() - started
            time.sleep(0.5)
        return None

    def freeze_api(self, outcome: Outcome) -> None:
        """api-2 frozen: HAProxy must take it out (and only it), and put it back once it answers again."""
        self.stack.signal_host("api-2", 19)  # SIGSTOP
        frozen = time.monotonic()
        out_after = None
        healthy_out = 0
        try:
            while time.monotonic() - frozen < self.args.freeze:
                view = self.stack.balancer_view()
                if out_after is None and not view.get("api-2", "").startswith("UP"):
                    out_after = time.monotonic() - frozen
                if not view.get("api-1", "").startswith("UP") and not healthy_out:
                    outcome.problems += self._waits()  # what the healthy host was waiting for
                healthy_out += not view.get("api-1", "").startswith("UP")
                time.sleep(0.25)
        finally:
            self.stack.signal_host("api-2", 18)  # SIGCONT
        resumed = time.monotonic()
        outcome.ended = time.time()
        outcome.notes.append(f"api-2 frozen (SIGSTOP) for {resumed - frozen:.1f} s, then resumed")
        if out_after is None:
            outcome.problems.append("HAProxy kept sending to the frozen api-2 for the whole freeze")
        else:
            outcome.takeover = round(out_after, 1)
            outcome.notes.append(f"HAProxy took api-2 out {out_after:.1f} s after it froze")
        if healthy_out:
            outcome.problems.append("HAProxy took the healthy api-1 out too (its health check timed out)")
        try:
            wait_until(lambda: self.stack.balancer_view().get("api-2", "").startswith("UP"), 30, "api-2 back")
            outcome.notes.append(f"api-2 back in rotation {time.monotonic() - resumed:.1f} s after it resumed")
        except TimeoutError:
            outcome.problems.append("api-2 not back in rotation within 30 s of resuming")

    def clock_skew(self, outcome: Outcome) -> None:
        for host in ("api-2", "worker-2"):
            self.stack.stop(host)
        self.stack.start_api("api-2", skew=self.args.skew)
        self.stack.start_worker("worker-2", skew=self.args.skew)
        wait_until(lambda: self.stack.check_alive() is None and _http_ok(f"http://{ADDRESS['api-2']}:8000/healthz"),
                   60, "api-2 with its clock ahead")
        started = time.monotonic()
        time.sleep(self.args.skew_for)
        outcome.notes.append(f"api-2 and worker-2 ran {time.monotonic() - started:.0f} s with clocks "
                             f"+{self.args.skew:g} s")
        far = self.sql("SELECT count(*) FROM jobs WHERE state = 'pending' AND next_attempt_at > now() + "
                       "interval '30 seconds' AND attempts = 0")[0][0]
        if far:
            outcome.problems.append(f"{far} new jobs scheduled more than 30 s ahead of the database's clock")
        for host in ("api-2", "worker-2"):
            self.stack.stop(host)
        self.stack.start_api("api-2")
        self.stack.start_worker("worker-2")
        wait_until(lambda: self.stack.check_alive() is None and _http_ok(f"http://{ADDRESS['api-2']}:8000/healthz"),
                   60, "api-2 back on the true clock")

    def slow_db_link(self, outcome: Outcome) -> None:
        self.stack.slow_db_link(True)
        try:
            time.sleep(self.args.slow_for)
        finally:
            self.stack.slow_db_link(False)
        outcome.notes.append(f"api-2's and worker-2's database link +20 ms, 1 % loss for {self.args.slow_for:g} s")


def _http_ok(url: str) -> bool:
    import requests

    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fault", choices=("all", *FAULTS), default="all")
    p.add_argument("--rate", type=float, default=30, help="status events/s of the mixed load (default 30)")
    p.add_argument("--warmup", type=float, default=8, help="seconds of load before each fault (default 8)")
    p.add_argument("--after", type=float, default=8, help="seconds of load after each fault (default 8)")
    p.add_argument("--partition", type=float, default=30, help="seconds worker-1 is cut off (default 30)")
    p.add_argument("--partition-limit", type=float, default=60,
                   help="seconds the cut may last while worker-1's jobs wait for their takeover (default 60)")
    p.add_argument("--freeze", type=float, default=20, help="seconds api-2 is frozen (default 20)")
    p.add_argument("--skew", type=float, default=90, help="seconds the skewed clocks are ahead (default 90)")
    p.add_argument("--skew-for", type=float, default=25, help="seconds of load with the skew (default 25)")
    p.add_argument("--slow-for", type=float, default=25, help="seconds of the slow link (default 25)")
    p.add_argument("--drain-limit", type=float, default=120, help="seconds a backlog may take (default 120)")
    p.add_argument("--lease", type=float, default=15, help="jobs.lease_seconds on every host (default 15)")
    p.add_argument("--heartbeat", type=float, default=10, help="broker.heartbeat_seconds on every host (default 10)")
    p.add_argument("--late-worker-2", action="store_true",
                   help="start worker-2 only once the partition's cut caught worker-1 holding jobs (2 s after it)")
    p.add_argument("--cut-sealing", action="store_true",
                   help="partition: cut worker-1 while it seals an archive batch (whose claim outlasts the cut)")
    p.add_argument("--short", action="store_true",
                   help="the test's version: the partition only, lease 5 s, heartbeat 4 s, cut 12 s, worker-2 late")
    p.add_argument("--keep-logs", action="store_true", help="keep the run's temp dir (printed) afterwards")
    p.add_argument("--cleanup", action="store_true", help="only remove what an interrupted run left, then exit")
    args = p.parse_args(argv)
    if args.short:
        args.fault, args.lease, args.heartbeat, args.partition, args.late_worker_2 = "partition", 5, 4, 12, True
        args.partition_limit = 40
        args.warmup, args.after, args.rate, args.drain_limit = 4, 3, 20, 60
    return args


def run(args: argparse.Namespace, log_dir: Path) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with Network(HOSTS) as net:
        # This process is the load client: from here on it has the client host's address and nothing else.
        net.enter("client")
        env = {**HOST_ENV, "GATEWAY_JOBS__LEASE_SECONDS": f"{args.lease:g}",
               "GATEWAY_JOBS__REPUBLISH_AFTER_SECONDS": f"{args.lease:g}",
               "GATEWAY_BROKER__HEARTBEAT_SECONDS": f"{args.heartbeat:g}",
               # A drain must end within two heartbeats (config.py checks it).
               "GATEWAY_JOBS__DRAIN_SECONDS": f"{args.heartbeat:g}",
               # The takeover is bounded by the longer of the lease and this (docs/operations.md).
               "GATEWAY_DATABASE__IDLE_IN_TRANSACTION_TIMEOUT_SECONDS": f"{min(10, args.lease):g}",
               # A cut can leave a session that the idle-in-transaction timeout does not end (seen once in four
               # --short runs: "idle in transaction" for the whole 12 s cut, holding worker-1's rows; our guess: a
               # client message cut in half, which the server goes on reading). The server's keepalives end it
               # whatever it waits on: within the lease too, not after their default 19 s.
               "GATEWAY_DATABASE__KEEPALIVE_SECONDS": f"{min(10, args.lease * 0.6):g}",
               "GATEWAY_DATABASE__TCP_USER_TIMEOUT_SECONDS": f"{min(20, args.lease * 1.2):g}",
               # A worker's call must be dead before its lease ends (config.py refuses a lease not longer than a
               # partner's timeout): a request written into the cut then cannot land at the partner after
               # worker-2's newer ones. Under half the lease: the connect may take a timeout before the write.
               **{f"GATEWAY_{name.upper().replace('.', '__')}__TIMEOUT_SECONDS": f"{min(8, args.lease * 0.4):g}"
                  for name in Settings().partner_timeouts()}}
        stack = HostStack(net, log_dir, env)
        try:
            started = time.monotonic()
            stack.start(late=("worker-2",) if args.late_worker_2 else ())
            print(f"7 hosts and HAProxy up in {time.monotonic() - started:.0f} s (logs {log_dir})", flush=True)
            r = Run(stack, net, args)
            try:
                names = FAULTS if args.fault == "all" else (args.fault,)
                for name in names:
                    outcome = r.fault(name, getattr(r, name.replace("-", "_")))
                    outcomes.append(outcome)
                    report(outcome)
            finally:
                r.close()
        finally:
            stack.close()
    return outcomes


def report(o: Outcome) -> None:
    print(f"--- {o.fault}: {'OK' if o.ok else 'FAILED'} (takeover "
          f"{'n/a' if o.takeover is None else f'{o.takeover} s'}, p99 during the fault {o.p99_ms} ms)", flush=True)
    for line in o.notes:
        print("  " + line)
    for line in o.problems[:20]:
        print("  PROBLEM " + line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if reason := why_unavailable():
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if args.cleanup:
        print(f"removed: {', '.join(cleanup_leftovers()) or 'nothing'}")
        return 0
    if missing := missing_tools():
        print("cannot run, missing: " + "; ".join(missing), file=sys.stderr)
        return 2
    from load import interruptible

    interruptible()
    log_dir = Path(tempfile.mkdtemp(prefix="gwhosts-"))
    log_dir.chmod(0o755)  # PostgreSQL runs as its own user in a sub-directory
    started = time.monotonic()
    try:
        outcomes = run(args, log_dir)
    except NetworkRefused as exc:
        print(f"cannot run: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a start or a step failed: say so; the run was torn down
        args.keep_logs = True
        print(f"run failed: {type(exc).__name__}: {exc}\n(everything torn down; logs kept in {log_dir})",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; every namespace, link and process of the run was removed", file=sys.stderr)
        return 130
    finally:
        if not args.keep_logs:
            shutil.rmtree(log_dir, ignore_errors=True)
    print(f"\nsummary ({time.monotonic() - started:.0f} s): " + ", ".join(
        f"{o.fault} {'OK' if o.ok else 'FAILED'} (takeover {o.takeover if o.takeover is not None else 'n/a'}"
        f"{'' if o.takeover is None else ' s'}, p99 {o.p99_ms} ms)" for o in outcomes))
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What one citizen message costs the worker that sends it: CPU of the worker's own code (the job runner, the
notification service, the SMS/SMTP adapters, SQLAlchemy, psycopg), CPU of the PostgreSQL backends serving it,
statements and commits, per message sent (an SMS or an email; every bench applicant has both).

    python bench/message_cost.py [--messages 400] [--rounds 3] [--sms-only] [--batch-size 50] [--providers viettel,vnpt]

In one process on a fresh PostgreSQL database: notifications are stored as a step stores them (Notifier.store,
a `received` SMS and email per dossier), then the worker's JobRunner drains the `notifications` queue in this
thread against the SMS and SMTP mocks (one `python -m mocks --only /sms --only /email` process); no broker, no
API. Only the drain is measured; then, apart, `viettel_adapter_ms`: the Viettel adapter's own CPU per SMS
(envelope, HTTP, answer) over 200 sends to the same mock, and `smtp_adapter_ms`: the SMTP adapter's per email
(the message and the SMTP exchange) over 200 sends. Two commits compare side by side: run each from its own
snapshot at the same time (`git archive COMMIT | tar -x -C DIR`, copy this file into DIR/bench if it is not
there, then `python bench/message_cost.py` from DIR). Medians over the rounds with all rounds in brackets.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the gateway of this checkout, not an installed one
sys.path.insert(1, str(ROOT / "bench"))

from _cpu import CpuMeter  # noqa: E402
from _stack import PG_ADMIN_URL, _admin_sql, free_port, http_ok, wait_until  # noqa: E402
from request_cost import Sent  # noqa: E402


def store_messages(gateway: Any, dossiers: int, number: int, email: bool) -> None:
    """A `received` SMS (and email) for each of `dossiers` new dossiers, stored as a filing stores them."""
    from mocks.provincial_portal import sample_dossier

    notifier, now = gateway.context.notifier, datetime.now(UTC)
    with gateway.engine.begin() as conn:
        for n in range(dossiers):
            code = f"000.00.{number:02d}.H31-240725-{n:04d}"
            data = sample_dossier(code)
            data["applicant"]["phone"] = f"8491{number:01d}{n:06d}"  # as a filing normalises it
            if not email:
                data["applicant"]["email"] = None
            outgoing = notifier.for_applicant({"code": code, "data": data, "status": 1}, "received",
                                              cause=f"{code}:1", origin="filing", now=now)
            notifier.store(conn, outgoing, max_attempts=gateway.context.jobs.max_attempts, now=now)


def one_round(gateway: Any, meter: CpuMeter, sent: Sent, messages: int, number: int, email: bool) -> dict[str, float]:
    store_messages(gateway, messages // 2 if email else messages, number, email)
    sent.take()
    before, cpu, done = meter.read(), time.process_time(), 0
    while True:  # drain until nothing is left (a drain stops at its time slice)
        drained = gateway.runner.drain("notifications")
        done += sum(o.state == "done" for o in drained.outcomes)
        if not drained.outcomes:
            break
    cpu = time.process_time() - cpu
    after = meter.read()
    statements, commits = sent.take()
    assert done == messages, f"{done} of {messages} messages sent"
    return {"worker_ms": 1000 * cpu / done,
            "postgres_ms": 1000 * (after.roles["postgres"] - before.roles["postgres"]) / done,
            "mocks_ms": 1000 * (after.roles["mocks"] - before.roles["mocks"]) / done,
            "statements": statements / done, "commits": commits / done}


def viettel_adapter_ms(settings: Any, calls: int, number: int) -> float:
    """CPU ms per SMS of the Viettel adapter alone (envelope, HTTP, answer), sending `calls` SMS to the mock."""
    from gateway.adapters.sms_email.base import Sms
    from gateway.adapters.sms_email.viettel import ViettelSms

    provider = ViettelSms(settings.notifications.sms.viettel)
    provider.send(Sms(f"TBwarm{number}", f"849{number}0000000", f"warm {number}", unicode=False))
    cpu = time.process_time()
    for n in range(calls):
        provider.send(Sms(f"TB{number}-{n}", f"8492{number:01d}{n:06d}",
                          f"Ho so 000.00.{number:02d}.H31-240725-{n:04d} da duoc tiep nhan.", unicode=False))
    return 1000 * (time.process_time() - cpu) / calls


def smtp_adapter_ms(settings: Any, calls: int, number: int) -> float:
    """CPU ms per email of the SMTP adapter alone (the message and the SMTP exchange), sending `calls` emails."""
    from gateway.adapters.sms_email.smtp_email import Email, SmtpEmail

    adapter = SmtpEmail(settings.notifications.email)
    text = ("Kính gửi ông/bà Nguyễn Văn An,\nHồ sơ của ông/bà đã có kết quả giải quyết. Vui lòng đến nhận tại "
            "Bộ phận Một cửa hoặc qua bưu chính công ích.\nTrân trọng.\n")
    adapter.send(Email(f"TBwarm{number}", "an.nguyen@example.vn", "warm", text))
    cpu = time.process_time()
    for n in range(calls):
        adapter.send(Email(f"TB{number}{n:012d}", "an.nguyen@example.vn",
                           f"Hồ sơ 000.00.{number:02d}.H31-240725-{n:04d} đã có kết quả giải quyết", text))
    return 1000 * (time.process_time() - cpu) / calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=400, help="messages sent per round (half SMS, half email)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=None, help="jobs.batch_size (default: the settings', 50)")
    p.add_argument("--sms-only", action="store_true", help="applicants without an email address: SMS only")
    p.add_argument("--providers", default="viettel,vnpt", help="SMS providers by priority (default viettel,vnpt)")
    args = p.parse_args(argv)
    tag = f"gwmsg_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{tag}"
    port, smtp_port = free_port(), free_port()
    mocks = subprocess.Popen([sys.executable, "-m", "mocks", "--port", str(port), "--smtp-port", str(smtp_port),
                              "--only", "/sms", "--only", "/email"], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = {"GATEWAY_DATABASE__URL": url, "GATEWAY_BROKER__URL": "memory://", "GATEWAY_NOTIFICATIONS__ENABLED": "true",
           "GATEWAY_NOTIFICATIONS__SMS__PROVIDERS": json.dumps(args.providers.split(",")),
           "GATEWAY_NOTIFICATIONS__SMS__VIETTEL__WSDL_URL": f"http://127.0.0.1:{port}/sms/viettel/bulkapi?wsdl",
           "GATEWAY_NOTIFICATIONS__SMS__VNPT__URL": f"http://127.0.0.1:{port}/sms/vnpt/api/send_sms_list",
           "GATEWAY_NOTIFICATIONS__EMAIL__PORT": str(smtp_port), "GATEWAY_LOG_LEVEL": "warning",
           **({"GATEWAY_JOBS__BATCH_SIZE": str(args.batch_size)} if args.batch_size else {})}
    _admin_sql(f'CREATE DATABASE "{tag}"')
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "the mocks")
        with mock.patch.dict(os.environ, env):
            from gateway.config import load_settings

            settings = load_settings()
        from gateway.bootstrap import bootstrap
        from gateway.store.database import migrate

        migrate(url)
        gateway = bootstrap(settings)
        gateway.context.publish = lambda jobs: []  # no broker: the runner drains the queue itself
        meter = CpuMeter(lambda: {"mocks": [mocks.pid]}, tag)
        sent = Sent(gateway.engine)
        one_round(gateway, meter, sent, 100, 0, not args.sms_only)  # warm: the WSDL read, connections, statements
        rounds = []
        for n in range(args.rounds):
            with gateway.engine.begin() as conn:  # fresh planner statistics, as the worker keeps them
                conn.exec_driver_sql("ANALYZE")
            rounds.append(one_round(gateway, meter, sent, args.messages, n + 1, not args.sms_only))
            rounds[-1]["viettel_adapter_ms"] = viettel_adapter_ms(settings, 200, n + 1)
            rounds[-1]["smtp_adapter_ms"] = smtp_adapter_ms(settings, 200, n + 1)
        gateway.close()
    finally:
        mocks.terminate()
        mocks.wait(10)
        _admin_sql(f'DROP DATABASE IF EXISTS "{tag}" WITH (FORCE)')
    import gateway as package

    channels = "SMS only" if args.sms_only else "half SMS, half email over SMTP"
    print(f"gateway from {Path(package.__file__).parent}; {args.messages} messages per round ({channels}; SMS "
          f"through {args.providers.split(',')[0]}), jobs.batch_size {settings.jobs.batch_size}; "
          f"per message sent, median [each round]")
    print("  " + ", ".join(f"{figure} {statistics.median(r[figure] for r in rounds):.2f} "
                           f"[{', '.join(f'{r[figure]:.2f}' for r in rounds)}]"
                           for figure in ("worker_ms", "postgres_ms", "mocks_ms", "statements", "commits",
                                          "viettel_adapter_ms", "smtp_adapter_ms")))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Payments on the production stack (PostgreSQL + RabbitMQ, gunicorn, workers, the payment mock):

1. ask for N payments (each request runs the INIT at the national platform mock before it answers);
2. the citizens pay: the mock sends each signed callback to the gateway, C at a time;
3. a storm: every callback replayed R times at once, plus as many forged ones (wrong checksum, changed amount);
4. the check: every payment paid exactly once (one `payment.paid` feed item each), no forged one applied,
   every receipt fetched by the workers.

    python bench/payments.py [--payments N] [--concurrency C] [--replays R]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _load import ONE_STOP_KEY, PORTAL_KEY, dossier_body, dossier_code  # noqa: E402
from _stack import Stack, StackOptions, wait_until  # noqa: E402

FEES = [{"code": "LPKS", "name": "Lệ phí đăng ký khai sinh", "amount": 8000},
        {"code": "PHI-BC", "name": "Phí gửi kết quả qua bưu chính", "amount": 25000}]


def ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--payments", type=int, default=300)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--replays", type=int, default=3, help="copies of each callback in the storm")
    args = p.parse_args(argv)
    log_dir = Path(tempfile.mkdtemp(prefix="gw-bench-payments-"))
    options = StackOptions(api_workers=2, api_threads=8, gateway_workers=1, worker_threads=4, log_level="warning",
                           extra_env={})
    with Stack(options, log_dir) as stack:
        mock = stack.mock("/payment")
        stack.env.update({"GATEWAY_PAYMENT__NATIONAL_PLATFORM__BASE_URL": f"{mock}/platform",
                          "GATEWAY_PAYMENT__VNPAY__BASE_URL": f"{mock}/vnpay"})
        stack.start()
        callbacks = f"{stack.api_url}/api/v1/callbacks/payments"
        requests.post(f"{mock}/_mock/config", json={"platform_callback_url": f"{callbacks}/national_platform"},
                      timeout=5).raise_for_status()
        http = requests.Session()
        codes = [dossier_code(500_000 + n) for n in range(args.payments)]

        def file_and_ask(code: str) -> tuple[float, str]:
            r = http.post(f"{stack.api_url}/api/v1/dossiers", json=dossier_body(code), timeout=30,
                          headers={"Authorization": f"Bearer {PORTAL_KEY}"})
            r.raise_for_status()
            seconds, answer = timed(lambda: http.post(
                f"{stack.api_url}/api/v1/dossiers/{code}/payments", json={"items": FEES}, timeout=30,
                headers={"Authorization": f"Bearer {ONE_STOP_KEY}", "Idempotency-Key": f"bench-{code}"}))
            assert answer.status_code == 201, answer.text
            return seconds, answer.json()["id"]

        with ThreadPoolExecutor(args.concurrency) as pool:
            started = time.perf_counter()
            asked = list(pool.map(file_and_ask, codes))
            ask_wall = time.perf_counter() - started
        refs = [ref for _, ref in asked]

        def pay(ref: str) -> tuple[float, dict[str, Any]]:
            seconds, r = timed(lambda: http.post(f"{mock}/_mock/pay/national_platform/{ref}",
                                                 json={"outcome": "paid"}, timeout=60))
            return seconds, r.json()

        with ThreadPoolExecutor(args.concurrency) as pool:
            started = time.perf_counter()
            paid = list(pool.map(pay, refs))
            pay_wall = time.perf_counter() - started
        first_answers = [p["callbacks"][0]["answer"]["MaLoi"] for _, p in paid]

        # The storm: the same callbacks again, and forged ones, all at once.
        storm: list[tuple[str, dict[str, Any]]] = []
        for _, p in paid:
            body = p["callbacks"][0]["body"]
            storm += [("replay", body)] * args.replays
            storm.append(("forged", {**body, "MaXacThuc": "0" * 64}))
            storm.append(("tampered", {**body, "SoTien": body["SoTien"] + 1000}))

        def send(item: tuple[str, dict[str, Any]]) -> tuple[str, float, str]:
            kind, body = item
            seconds, r = timed(lambda: http.post(f"{callbacks}/national_platform", json=body, timeout=30))
            return kind, seconds, r.json()["MaLoi"]

        with ThreadPoolExecutor(args.concurrency * 2) as pool:
            started = time.perf_counter()
            storm_results = list(pool.map(send, storm))
            storm_wall = time.perf_counter() - started

        def feed_counts() -> dict[str, int]:
            counts: dict[str, int] = {}
            after = "0"
            while True:
                page = http.get(f"{stack.api_url}/api/v1/one-stop/feed", params={"after": after, "limit": 500},
                                headers={"Authorization": f"Bearer {ONE_STOP_KEY}"}, timeout=30).json()
                for item in page["items"]:
                    if item["type"] == "payment.paid":
                        counts[item["code"]] = counts.get(item["code"], 0) + 1
                if not page["items"]:
                    return counts
                after = page["next_cursor"]

        def receipts_done() -> bool:
            r = http.get(f"{stack.api_url}/ops/jobs", headers={"Authorization": "Bearer dev-ops-key"}, timeout=30)
            counts = {(c["queue"], c["state"]): c["count"] for c in r.json()["counts"]}
            return counts.get(("payment", "done"), 0) >= 2 * len(refs) and not any(
                state in ("pending", "in_flight") for (_, state) in counts)

        wait_until(receipts_done, 300, "the workers to fetch every receipt and mirror every payment")
        paid_items = feed_counts()

    ask_s = [s for s, _ in asked]
    pay_s = [s for s, _ in paid]
    print(f"payments: {args.payments}, client threads: {args.concurrency}, logs in {log_dir}")
    print(f"1. ask (POST .../payments, INIT at the mock inside): {args.payments / ask_wall:.0f} payments/s "
          f"(with filing), p50 {ms(ask_s, .5):.1f} ms, p99 {ms(ask_s, .99):.1f} ms, median "
          f"{1000 * statistics.median(ask_s):.1f} ms")
    print(f"2. pay (mock settles + signed callback to the gateway, answered): {args.payments / pay_wall:.0f}/s, "
          f"p50 {ms(pay_s, .5):.1f} ms, p99 {ms(pay_s, .99):.1f} ms; first answers: "
          f"{ {c: first_answers.count(c) for c in set(first_answers)} }")
    by_kind: dict[str, list[str]] = {}
    for kind, _, code in storm_results:
        by_kind.setdefault(kind, []).append(code)
    storm_s = [s for _, s, _ in storm_results]
    print(f"3. storm: {len(storm)} callbacks in {storm_wall:.1f} s ({len(storm) / storm_wall:.0f}/s, p50 "
          f"{ms(storm_s, .5):.1f} ms, p99 {ms(storm_s, .99):.1f} ms); answers: "
          + ", ".join(f"{k} {sorted({c: v.count(c) for c in set(v)}.items())}" for k, v in by_kind.items()))
    once = sum(1 for c in codes if paid_items.get(c) == 1)
    print(f"4. check: {once}/{len(codes)} dossiers with exactly one payment.paid, "
          f"{sum(paid_items.values()) - once} extra; forged/tampered accepted: "
          f"{sum(1 for k, _, c in storm_results if k != 'replay' and c == '00')}")
    ok = once == len(codes) and sum(paid_items.values()) == len(codes) and all(
        c != "00" for k, _, c in storm_results if k != "replay")
    print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

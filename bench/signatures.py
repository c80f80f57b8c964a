"""PDF signature verifications per second through the real service: `gateway serve` (gunicorn) answering
POST /api/v1/signatures/verify, each file verified in the sandbox's worker processes (memory cap, time
limit) against a trust folder of test roots. Two documents: a signed one-page PDF and a signed 5 MB one.

Also measured in the same run: pyHanko alone, in this process, on the same files (the ceiling of one core),
so the cost of HTTP and isolation shows as a ratio.

    python bench/signatures.py [--seconds S] [--rounds R] [--concurrency C] [--sandbox-processes P]
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _stack import free_port, http_ok, wait_until  # noqa: E402

from gateway.signature.pdf_verifier import PdfVerifier, VerifierPolicy  # noqa: E402
from gateway.signature.trust_store import TrustStore  # noqa: E402
from mocks.pki import TestPki, one_page_pdf, sign  # noqa: E402

KEY = "dev-one-stop-key"


def in_process_rate(verifier: PdfVerifier, pdf: bytes, seconds: float) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        assert verifier.verify(pdf)["indication"] == "TOTAL_PASSED"
        done += 1
    return done / (time.perf_counter() - start)


def load(port: int, pdf: bytes, seconds: float, concurrency: int) -> tuple[float, list[float], int]:
    """C clients on keep-alive connections for `seconds`: (verifications/s, latencies, failures)."""
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/pdf"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            conn.request("POST", "/api/v1/signatures/verify", body=pdf, headers=headers)
            response = conn.getresponse()
            body = response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200 or json.loads(body)["indication"] != "TOTAL_PASSED":
                bad += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            failures[0] += bad

    started = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - started), latencies, failures[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=10.0, help="length of one measured round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--api-workers", type=int, default=1)
    p.add_argument("--sandbox-processes", type=int, default=2, help="verifier processes per API worker")
    args = p.parse_args(argv)
    logging.disable(logging.WARNING)  # pyHanko's warnings about test certificates are not the point here

    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-signatures-"))
    pki = TestPki()
    trust_dir = pki.write_trust_dir(tmp / "trust")
    documents = {"one page": sign(one_page_pdf(), pki.signer),
                 "5 MB": sign(one_page_pdf(padding=5 * 1024 * 1024), pki.signer)}
    verifier = PdfVerifier(TrustStore.load(trust_dir), VerifierPolicy())
    print(f"machine: {os.cpu_count()} cores; documents: "
          + ", ".join(f"{name} {len(pdf) / 1024:.0f} KiB" for name, pdf in documents.items()))
    ceiling = {name: in_process_rate(verifier, pdf, 3.0) for name, pdf in documents.items()}
    for name, rate in ceiling.items():
        print(f"pyHanko in-process, one core, {name}: {rate:.1f} verifications/s ({1000 / rate:.1f} ms each)")

    port = free_port()
    env = {**os.environ, "GATEWAY_SIGNATURE__TRUST_DIR": str(trust_dir),
           "GATEWAY_SIGNATURE__SANDBOX_PROCESSES": str(args.sandbox_processes),
           "GATEWAY_DATABASE__URL": f"sqlite:///{tmp / 'gateway.db'}", "GATEWAY_BROKER__DATA_FOLDER": str(tmp / "mq")}
    log = open(tmp / "api.log", "w")  # noqa: SIM115 - closed below
    api = subprocess.Popen([sys.executable, "-m", "gateway", "--log-level", "warning", "serve", "--port", str(port),
                            "--workers", str(args.api_workers), "--threads", str(args.concurrency)],
                           env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/healthz"), 60, "the API")
        load(port, documents["one page"], 3.0, args.concurrency)  # warm-up: the sandboxes start
        print(f"service: gunicorn {args.api_workers} worker(s) x {args.concurrency} threads, "
              f"{args.sandbox_processes} sandbox process(es) each, {args.concurrency} clients, "
              f"{args.rounds} rounds of {args.seconds:g} s")
        for name, pdf in documents.items():
            rates, all_latencies, failed = [], [], 0
            for _ in range(args.rounds):
                rate, latencies, failures = load(port, pdf, args.seconds, args.concurrency)
                rates.append(rate)
                all_latencies += latencies
                failed += failures
            median = statistics.median(rates)
            print(f"{name}: {' / '.join(f'{r:.1f}' for r in rates)} verifications/s (median {median:.1f}, "
                  f"{median / ceiling[name]:.2f}x one in-process core); p50 {pct(all_latencies, 0.5):.0f} ms, "
                  f"p99 {pct(all_latencies, 0.99):.0f} ms; {failed} failed")
        return 0
    finally:
        api.terminate()
        api.wait(15)
        log.close()


if __name__ == "__main__":
    sys.exit(main())

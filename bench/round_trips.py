"""What a transaction's round trips and a partner call's HTTP client cost the calling process, measured alone:
the client CPU (time.process_time) per operation, each way of doing it side by side in the same run.

    python bench/round_trips.py [--n 2000] [--rounds 3]

- a read of one row: `engine.connect()` (psycopg sends BEGIN before it and ROLLBACK after) against
  `database.reading` (no transaction around it);
- a one-statement write: `engine.begin()` (BEGIN, the statement, COMMIT) against `database.one_statement`;
- a partner's POST of an 800-byte body to a local HTTP server (a process of its own): `requests.Session.post`
  (what the adapters used), `PerThreadHttp().session().post` (the environment's proxy settings read once) and
  `PerThreadHttp().post` (straight to the session's transport, as the Viettel adapter does);
- a partner's JSON POST (the national portal's steps, the payment platform's, VNPost's calls):
  `PerThreadHttp().session().post(json=...)` (what they used) against `PerThreadHttp().request` (the short way);
- a read of a row of eight timestamps: in a session whose zone is the server's (Asia/Ho_Chi_Minh, as a Vietnamese
  server may be set; psycopg returns ZoneInfo values that UtcDateTime converts) against the gateway's UTC session.

On PostgreSQL (PG_ADMIN_URL's server), in a scratch table it drops afterwards. Medians over the rounds with all
rounds in brackets (docs/performance.md, "Issue 24, third round").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
from sqlalchemy import Engine, create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the gateway of this checkout, not an installed one
sys.path.insert(1, str(ROOT / "bench"))

from _stack import PG_ADMIN_URL  # noqa: E402

from gateway.adapters.base import PerThreadHttp  # noqa: E402
from gateway.adapters.national_portal.mapping import event_to_progress  # noqa: E402
from gateway.store.database import make_engine, one_statement, reading  # noqa: E402
from gateway.store.tables import UtcDateTime  # noqa: E402

SERVER = r"""
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        # One write: headers and body apart would wait on the client's delayed ACK (Nagle), 40 ms a call.
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n<ok/>")
    def log_message(self, *args): pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def cpu_us(operation: Callable[[], object], n: int) -> float:
    for _ in range(min(50, n)):
        operation()
    started = time.process_time()
    for _ in range(n):
        operation()
    return (time.process_time() - started) / n * 1e6


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="operations per measure")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()

    engine = make_engine(PG_ADMIN_URL, pool_size=2)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS bench_round_trips (id int PRIMARY KEY, n int)"))
        conn.execute(text("INSERT INTO bench_round_trips VALUES (1, 0) ON CONFLICT DO NOTHING"))
    read, write = text("SELECT n FROM bench_round_trips WHERE id = 1"), text(
        "UPDATE bench_round_trips SET n = n + 1 WHERE id = 1")
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    if not (port := server.stdout.readline().strip()):
        raise SystemExit("the HTTP server did not start")
    url = f"http://127.0.0.1:{port}/ws"
    body, headers = b"x" * 800, {"Content-Type": "text/xml; charset=utf-8"}
    plain, partner = requests.Session(), PerThreadHttp(abandon_after=10)
    step = {"service": "CapNhatTienDoHoSoMC", "data": [event_to_progress("000.00.01.H01-261207-0001", {
        "status": 2, "at": "2026-12-07T10:00:00+07:00", "officer": "Nguyễn Văn A", "note": "Đã tiếp nhận hồ sơ"})]}
    hanoi = create_engine(PG_ADMIN_URL, pool_size=2, connect_args={"options": "-c TimeZone=Asia/Ho_Chi_Minh"})
    stamps = text("SELECT " + ", ".join(f"now() - interval '{i} s' AS t{i}" for i in range(8))).columns(
        **{f"t{i}": UtcDateTime() for i in range(8)})

    def stamps_read(on: Engine) -> Callable[[], object]:
        def read_stamps() -> None:
            with reading(on) as conn:
                conn.execute(stamps).all()
        return read_stamps

    def connect_read() -> None:
        with engine.connect() as conn:
            conn.execute(read).all()

    def reading_read() -> None:
        with reading(engine) as conn:
            conn.execute(read).all()

    def begin_write() -> None:
        with engine.begin() as conn:
            conn.execute(write)

    def one_statement_write() -> None:
        with one_statement(engine) as conn:
            conn.execute(write)

    measures: dict[str, Callable[[], object]] = {
        "read, engine.connect()": connect_read,
        "read, database.reading": reading_read,
        "write, engine.begin()": begin_write,
        "write, database.one_statement": one_statement_write,
        "POST, requests.Session.post": lambda: plain.post(url, data=body, headers=headers, timeout=5).content,
        "POST, PerThreadHttp().session().post": lambda: partner.session().post(
            url, data=body, headers=headers, timeout=5).content,
        "POST, PerThreadHttp().post": lambda: partner.post(url, body, headers, timeout=5).content,
        "JSON POST, PerThreadHttp().session().post": lambda: partner.session().post(
            url, json=step, timeout=5).content,
        "JSON POST, PerThreadHttp().request": lambda: partner.request("POST", url, json=step, timeout=5).content,
        "8 timestamps, session in Hà Nội time": stamps_read(hanoi),
        "8 timestamps, session in UTC (the gateway's)": stamps_read(engine),
    }
    try:
        results: dict[str, list[float]] = {name: [] for name in measures}
        for _ in range(args.rounds):
            for name, operation in measures.items():
                results[name].append(cpu_us(operation, args.n))
    finally:
        server.terminate()
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS bench_round_trips"))
        engine.dispose()
        hanoi.dispose()
    print(f"client CPU per operation, µs: median [each round] ({args.n} operations a round)")
    for name, values in results.items():
        print(f"  {name:46s} {statistics.median(values):7.0f} [{', '.join(f'{v:.0f}' for v in values)}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

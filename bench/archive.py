"""Archive packages on the production stack (PostgreSQL + RabbitMQ, gunicorn, one worker, the mocks as the
TSA, the OCSP responder and the CRL server), the figures issue 15 asks for:

- packages sealed per second: a burst of N dossiers taken to a final status at once (withdrawn, 7), then
  N / (the last package sealed - the first final status);
- seconds from final status to sealed: the median over the burst (queueing behind it included), and for one
  dossier alone on an idle stack;
- package size against the dossier's own size (what the gateway holds: the filed JSON and every body);
- `archive verify` time per package, in this process (what `gateway archive verify` spends after its start):
  every file, the timestamp chain and the signed PDF's long-term signature, offline;
- CPU milliseconds per package by role over the burst.

Each dossier carries a signed PDF (`--pdf-kib` of incompressible image data, as a scan), which sealing extends
to PAdES B-LTA (CRL and OCSP answers fetched from the mocks, a document timestamp), and a 20 KB PNG; with
`--attachments none`, nothing but its JSON records, as the dossiers of bench/load.py. Medians over `--runs` with
the spread (min - max); each run is a fresh burst on the same stack.

`--batch-sizes 1,10,50` seals the bursts in batches of each size in turn (archive.batch_size, the worker restarted
between them; every run does each size once, so the sizes share the machine's moods), packages waiting
`--batch-wait` seconds for their batch. Without it the stack's settings stand, which is how a commit from before
batches is measured beside this one (bench/README.md: side by side).

    python bench/archive.py [--dossiers N] [--runs R] [--pdf-kib K] [--attachments signed-pdf|none]
                            [--batch-sizes 1,10,50] [--batch-wait S] [--concurrency C] [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
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

from _cpu import CpuMeter, ms_per_unit  # noqa: E402
from _load import ONE_STOP_KEY, PORTAL_KEY, dossier_body, dossier_code, event_body  # noqa: E402
from _observe import backlog  # noqa: E402
from _report import write_json  # noqa: E402
from _stack import Stack, StackOptions, reachable, wait_until  # noqa: E402

from mocks.pki import TestPki, one_page_pdf, sign  # noqa: E402

ROLES = ("workers", "api", "mocks", "postgres", "rabbitmq", "machine")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dossiers", type=int, default=20, help="packages per burst (default 20)")
    p.add_argument("--runs", type=int, default=3, help="bursts, each also timing one dossier alone (default 3)")
    p.add_argument("--pdf-kib", type=int, default=200, help="image data in the signed PDF, KiB (default 200)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads filing and stepping (default 8)")
    p.add_argument("--worker-threads", type=int, default=4, help="consumer threads of the worker (default 4)")
    p.add_argument("--seal-timeout", type=float, default=600, help="seconds a burst may take to seal (default 600)")
    p.add_argument("--attachments", choices=("signed-pdf", "none"), default="signed-pdf",
                   help="a signed PDF and a PNG per dossier (default), or none (as bench/load.py's dossiers)")
    p.add_argument("--batch-sizes", default="", help="seal in batches of these sizes in turn, e.g. 1,10,50 "
                                                      "(default: the stack's settings)")
    p.add_argument("--batch-wait", type=float, default=2.0,
                   help="with --batch-sizes: seconds a package waits for its batch (default 2)")
    p.add_argument("--json", type=Path, default=None, help="where to write the figures (default: the log dir)")
    args = p.parse_args(argv)
    if min(args.dossiers, args.runs, args.concurrency, args.worker_threads) < 1 or args.dossiers > 999:
        p.error("counts must be positive, and at most 999 dossiers a burst")
    try:
        args.sizes = [int(v) for v in args.batch_sizes.split(",") if v.strip()]
    except ValueError:
        p.error("--batch-sizes takes numbers separated by commas")
    if any(not 1 <= n <= 500 for n in args.sizes):
        p.error("a batch size is between 1 and 500")
    return args


class Bench:
    def __init__(self, stack: Stack, folder: Path, trust: Path, attachments: list[dict[str, Any]],
                 concurrency: int) -> None:
        import sqlalchemy as sa

        self.stack = stack
        self.folder = folder  # the archive folder the worker writes packages to
        self.trust = trust
        self.attachments = attachments
        self.pool = ThreadPoolExecutor(concurrency)
        self.engine = sa.create_engine(stack.db_url)

    def close(self) -> None:
        self.pool.shutdown()
        self.engine.dispose()

    # Driving the API ---------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], key: str) -> None:
        r = requests.post(f"{self.stack.api_url}{path}", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {key}"})
        if r.status_code not in (200, 201):
            raise RuntimeError(f"POST {path}: {r.status_code} {r.text[:300]}")

    def file_and_accept(self, codes: list[str]) -> None:
        def one(code: str) -> None:
            self._post("/api/v1/dossiers", {**dossier_body(code), "attachments": self.attachments}, PORTAL_KEY)
            self._post(f"/api/v1/dossiers/{code}/events", event_body(code, 1, 2), ONE_STOP_KEY)

        list(self.pool.map(one, codes))

    def finish(self, codes: list[str]) -> None:
        list(self.pool.map(lambda c: self._post(f"/api/v1/dossiers/{c}/events", event_body(c, 2, 7), ONE_STOP_KEY),
                           codes))

    def wait_idle(self, timeout: float = 300) -> None:
        """The filing's own jobs (signature checks, portal syncs) done, so a burst measures sealing alone."""
        wait_until(lambda: backlog(self.stack.api_url) == 0, timeout,
                   "an empty job backlog", interval=0.3)

    # Reading the outcome -----------------------------------------------------------------------

    def packages(self, codes: list[str]) -> list[dict[str, Any]]:
        from sqlalchemy import select

        from gateway.store.tables import archive_packages

        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(select(archive_packages).where(
                archive_packages.c.dossier_code.in_(codes))).mappings()]

    def wait_sealed(self, codes: list[str], timeout: float) -> list[dict[str, Any]]:
        def sealed() -> list[dict[str, Any]] | None:
            self.stack.check_alive()
            rows = self.packages(codes)
            return rows if len(rows) == len(codes) and all(r["state"] == "sealed" for r in rows) else None

        return wait_until(sealed, timeout, f"{len(codes)} packages sealed", interval=0.2)

    def verify_seconds(self, rows: list[dict[str, Any]]) -> list[float]:
        from gateway.services.archive.offline import verify_path

        out = []
        for row in rows:
            path = self.folder / row["path"]
            start = time.perf_counter()
            report = verify_path(path, self.trust)
            out.append(time.perf_counter() - start)
            if not report.ok:
                raise RuntimeError(f"{path} does not verify:\n{report.text()}")
        return out

    # One run -----------------------------------------------------------------------------------

    def run(self, n: int, burst: int, meter: CpuMeter, timeout: float) -> dict[str, Any]:
        """Burst number `n` (its codes are its own: n * 1000 + ...)."""
        started = time.time()  # wall clock: runs of two benches side by side are paired by it
        alone = [dossier_code(n * 1000)]
        codes = [dossier_code(n * 1000 + 1 + i) for i in range(burst)]
        self.file_and_accept(alone + codes)
        self.wait_idle()
        self.finish(alone)
        [single] = self.wait_sealed(alone, timeout)
        self.wait_idle()
        cpu_start = meter.read()
        self.finish(codes)
        rows = self.wait_sealed(codes, timeout)
        self.wait_idle()
        cpu = ms_per_unit(cpu_start, meter.read(), len(codes))
        to_seal = [(r["sealed_at"] - r["final_at"]).total_seconds() for r in rows]
        window = (max(r["sealed_at"] for r in rows) - min(r["final_at"] for r in rows)).total_seconds()
        verify = self.verify_seconds(rows)
        return {
            "started_at": round(started, 1), "packages": len(rows), "window_seconds": round(window, 2),
            "packages_per_second": round(len(rows) / window, 3) if window > 0 else None,
            "seconds_to_seal_median": round(statistics.median(to_seal), 2),
            "seconds_to_seal_max": round(max(to_seal), 2),
            "seconds_to_seal_alone": round((single["sealed_at"] - single["final_at"]).total_seconds(), 2),
            "package_bytes_median": statistics.median(r["size"] for r in rows),
            "dossier_bytes_median": statistics.median(r["dossier_bytes"] for r in rows),
            "size_ratio_median": round(statistics.median(r["size"] / r["dossier_bytes"] for r in rows), 3),
            "verify_ms_median": round(1000 * statistics.median(verify), 1),
            "verify_ms_max": round(1000 * max(verify), 1),
            "cpu_ms_per_package": {k: round(v, 1) for k, v in cpu.items() if k in ROLES},
        }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3)}


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("packages_per_second", "seconds_to_seal_median", "seconds_to_seal_alone", "size_ratio_median",
            "package_bytes_median", "dossier_bytes_median", "verify_ms_median")
    out = {k: spread([r[k] for r in runs if r[k] is not None]) for k in keys}
    out["cpu_ms_per_package"] = {role: spread([r["cpu_ms_per_package"].get(role, 0.0) for r in runs])
                                 for role in ROLES}
    out["cpu_ms_per_package"]["workers+mocks"] = spread([r["cpu_ms_per_package"].get("workers", 0.0) +
                                                        r["cpu_ms_per_package"].get("mocks", 0.0) for r in runs])
    return out


def render(s: dict[str, Any], settings: dict[str, Any], size: int | None = None) -> str:
    def row(label: str, f: dict[str, float], unit: str, digits: int = 2) -> str:
        return f"{label:<46}{f['median']:>12,.{digits}f}   ({f['min']:,.{digits}f} - {f['max']:,.{digits}f}) {unit}"

    what = f"signed PDF {settings['pdf_kib']} KiB" if settings["attachments"] == "signed-pdf" else "no attachments"
    batches = f", batches of {size} (waiting {settings['batch_wait']:g} s)" if size is not None else ""
    lines = [f"=== archive benchmark: {settings['runs']} runs x {settings['dossiers']} dossiers, {what}{batches}, "
             f"1 worker x {settings['worker_threads']} threads, {settings['cores']} "
             "cores (a shared, noisy machine: read the spread) ===",
             f"{'':<46}{'median':>12}   (min - max over runs)",
             row("packages sealed per second (burst)", s["packages_per_second"], "packages/s"),
             row("final status -> sealed, burst median", s["seconds_to_seal_median"], "s"),
             row("final status -> sealed, one dossier alone", s["seconds_to_seal_alone"], "s"),
             row("package size / dossier's own size", s["size_ratio_median"], "x", 3),
             row("  package size", s["package_bytes_median"], "bytes", 0),
             row("  dossier's own size", s["dossier_bytes_median"], "bytes", 0),
             row("archive verify per package (in process)", s["verify_ms_median"], "ms", 1),
             "CPU ms per package over the burst (sealing and everything it causes):"]
    lines += [row(f"  {role}", s["cpu_ms_per_package"][role], "ms", 0) for role in ROLES]
    lines.append(row("  workers + mocks (sealing and its TSA)", s["cpu_ms_per_package"]["workers+mocks"], "ms", 1))
    return "\n".join(lines)


def restart_worker(stack: Stack, size: int) -> None:
    """The stack's worker again, sealing in batches of `size` (before a run's CPU window opens)."""
    stack.env["GATEWAY_ARCHIVE__BATCH_SIZE"] = str(size)
    for proc in stack.procs["workers"]:
        proc.terminate()
        proc.wait(30)
    stack.procs["workers"].clear()
    stack.start_worker()
    stack.wait_ready()


def scanned_pdf(kib: int) -> bytes:
    """A one-page PDF holding `kib` KiB of incompressible image data, as a scanned form is (JPEG inside):
    a zip cannot shrink it, so the size figures are not flattered by a compressible test pattern."""
    return one_page_pdf("TO KHAI - ban quet", padding=kib * 1024, incompressible=True)


def prepare_pki(stack: Stack, log_dir: Path) -> tuple[TestPki, Path]:
    """A test PKI whose certificates name the mocks' CRL and OCSP URLs, served by them; the TSA signs with it. Its
    roots go to a folder of their own: the stack writes the roots of its own PKI to log_dir/trust when it starts."""
    pki = TestPki(crl_base=stack.mock("/ca"), ocsp_url=stack.mock("/ocsp/"))
    trust = pki.write_trust_dir(log_dir / "bench-trust")
    return pki, trust


def serve_pki(stack: Stack, pki: TestPki) -> None:
    for name, der in (("vnpt-ca.crl", pki.crl()), ("national-root.crl", pki.root_crl())):
        requests.put(stack.mock(f"/ca/_mock/crls/{name}"), data=der, timeout=10).raise_for_status()
    requests.put(stack.mock("/ocsp/_mock/issuers/vnpt-ca"), json={**pki.ca.as_json(), "revoked": []},
                 timeout=10).raise_for_status()
    requests.put(stack.mock("/tsa/_mock/identity"), json=pki.tsa.as_json(), timeout=10).raise_for_status()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for port, what in ((5432, "PostgreSQL"), (5672, "RabbitMQ")):
        if not reachable("127.0.0.1", port):
            print(f"{what} is not reachable on 127.0.0.1:{port}", file=sys.stderr)
            return 2
    logging.disable(logging.WARNING)  # pyHanko's warnings about the test PKI are not the point here
    log_dir = Path(tempfile.mkdtemp(prefix="gw-bench-archive-"))
    print(f"logs of the gateway processes: {log_dir}", flush=True)
    # With --batch-sizes the packages wait --batch-wait for their batch (the API processes queue them so).
    batching = {"GATEWAY_ARCHIVE__BATCH_WAIT_SECONDS": str(args.batch_wait)} if args.sizes else {}
    options = StackOptions(api_workers=2, api_threads=8, gateway_workers=1, worker_threads=args.worker_threads,
                           log_level="warning", extra_env=batching)
    settings = {**{k: v for k, v in vars(args).items() if k not in ("json", "sizes")}, "cores": os.cpu_count()}
    with Stack(options, log_dir) as stack:
        pki, trust = prepare_pki(stack, log_dir)
        folder = log_dir / "archive"
        stack.env.update({"GATEWAY_ARCHIVE__FOLDER": str(folder),
                          "GATEWAY_ARCHIVE__TSA_URL": stack.mock("/tsa/"),
                          "GATEWAY_SIGNATURE__TRUST_DIR": str(trust)})
        stack.start()
        serve_pki(stack, pki)
        attachments = []
        if args.attachments == "signed-pdf":
            pdf = sign(scanned_pdf(args.pdf_kib), pki.signer)
            attachments = [{"id": "to-khai", "name": "To khai.pdf", "component_code": "TK01",
                            "content_base64": base64.b64encode(pdf).decode()},
                           {"id": "anh", "name": "Anh the.png", "component_code": "TK02",
                            "content_base64": base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(20_000)).decode()}]
        bench = Bench(stack, folder, trust, attachments, args.concurrency)
        meter = CpuMeter(stack.root_pids, stack.tag)
        sizes: list[int | None] = list(args.sizes) or [None]
        runs: dict[str, list[dict[str, Any]]] = {str(size): [] for size in sizes}
        try:
            for n in range(1, args.runs + 1):
                for k, size in enumerate(sizes):
                    if size is not None:
                        restart_worker(stack, size)
                    print(f"run {n}/{args.runs}{f', batches of {size}' if size else ''}: {args.dossiers} dossiers ...",
                          flush=True)
                    done = bench.run(n * len(sizes) + k, args.dossiers, meter, args.seal_timeout)
                    runs[str(size)].append(done)
                    print(f"  {done['packages_per_second']} packages/s, median {done['seconds_to_seal_median']} s to "
                          f"seal, CPU per package: workers {done['cpu_ms_per_package'].get('workers', 0):.1f} ms, "
                          f"mocks {done['cpu_ms_per_package'].get('mocks', 0):.1f} ms", flush=True)
        finally:
            bench.close()
    result = {"settings": settings, "runs": runs, "summary": {size: summary(r) for size, r in runs.items()}}
    json_path = args.json or log_dir / "archive.json"
    write_json(result, json_path)
    for size in sizes:
        print()
        print(render(result["summary"][str(size)], settings, size))
    print(f"\nfigures as JSON: {json_path}\nlogs: {log_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Each partner's mock on its own, driven with the calls the gateway makes, and the CPU its process spent per call.

    python bench/mock_cost.py [--calls 400] [--rounds 3] [--threads 4] [--partners email,viettel,...]
    python bench/mock_cost.py --root /tmp/before --root /tmp/after      # two code snapshots, side by side

The calls are made by the gateway's own adapters with its default settings (zeep for Viettel's SOAP, smtplib for
the email, pyHanko's RFC 3161 client for the TSA, ...), so a mock receives what it receives in production. The
mock runs as in bench/load.py (`python -m mocks --only PREFIX`, a process per partner, from the root's code);
its CPU is read from /proc before and after each round, so the figure is the mock's alone, whatever else runs on
the machine. With several `--root`s, every root's mocks run at once and the rounds alternate between them, so that
their ratio is taken under the same neighbours (bench/README.md). Prints per partner and root the median of the
rounds' CPU ms per call, with min - max.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _cpu import cpu_seconds  # noqa: E402 - the bench's own modules, beside this file
from _stack import MOCK_GROUPS, ROOT, free_port, http_ok, wait_until  # noqa: E402

from gateway.adapters.archive.tsa import TsaClient  # noqa: E402
from gateway.adapters.national_portal.client import NationalPortalClient  # noqa: E402
from gateway.adapters.postal.vnpost import Order, VNPostClient  # noqa: E402
from gateway.adapters.sms_email.base import Sms  # noqa: E402
from gateway.adapters.sms_email.smtp_email import Email, SmtpEmail  # noqa: E402
from gateway.adapters.sms_email.viettel import ViettelSms  # noqa: E402
from gateway.adapters.sms_email.vnpt import VnptSms  # noqa: E402
from gateway.config import Settings  # noqa: E402
from mocks.provincial_portal import sample_dossier  # noqa: E402

# What one call is, per partner, and the mock process that serves it (a group of bench/_stack.py's MOCK_GROUPS).
PARTNERS = {
    "national-portal": "national-portal",  # one new dossier (DongBoHoSoMC) and one step of it (CapNhatTienDoHoSoMC)
    "viettel": "sms",  # one SMS: wsCpMt over SOAP 1.1
    "vnpt": "sms",  # one SMS: send_sms_list
    "email": "email",  # one email over a kept SMTP connection (MAIL, RCPT, DATA)
    "tsa": "trust",  # one RFC 3161 time-stamp token
    "postal": "postal",  # one VNPost order
}
# The body of a citizen's email (the shipped layout, ~0.6 KB of Vietnamese), as the gateway renders it.
EMAIL_TEXT = (ROOT / "gateway" / "templates" / "notifications" / "_email.j2").read_text(encoding="utf-8")
SMS_TEXT = "UBND tinh: Ho so {code} da co ket qua. Tra cuu tai dichvucong.gov.vn bang ma ho so."


@dataclass
class Mock:
    """One partner's mock process, started from `root`'s code."""

    root: Path
    partner: str
    port: int = field(default_factory=free_port)
    smtp_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self, log_dir: Path) -> None:
        prefixes = MOCK_GROUPS[PARTNERS[self.partner]]
        smtp = str(self.smtp_port if "/email" in prefixes else 0)
        log = open(log_dir / f"{self.root.name}-{self.partner}.log", "w")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mocks", "--port", str(self.port), "--smtp-port", smtp,
             *(a for p in prefixes for a in ("--only", p))],
            cwd=self.root, stdout=log, stderr=subprocess.STDOUT)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ready(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"the {self.partner} mock of {self.root} ended; see its log")
        return http_ok(self.url("/healthz"))

    def cpu(self) -> float:
        assert self.proc is not None
        return cpu_seconds({"mock": [self.proc.pid]})["mock"]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def driver(mock: Mock, settings: Settings) -> Callable[[int], Any]:
    """The call the gateway makes to this partner, through its own adapter; `n` makes each call distinct."""
    run = f"{mock.port}"  # a prefix of its own per process: codes and ids never collide across roots
    if mock.partner == "national-portal":
        portal = NationalPortalClient(settings.national_portal.model_copy(
            update={"base_url": mock.url("/national-portal")}))

        def file_and_step(n: int) -> Any:
            code = f"000.00.{run[-2:]}.H56-261206-{n:06d}"
            dossier = sample_dossier(code) | {"status": 2}
            portal.sync_dossier_many([{"dossier": dossier}])
            event = {"status": 2, "at": "2026-12-06T09:00:00+07:00", "officer": "Nguyễn Văn An",
                     "note": f"Tiếp nhận hồ sơ {n}"}
            return portal.report_progress_many([{"code": code, "event": event}])

        return file_and_step
    if mock.partner in ("viettel", "vnpt"):
        sms_settings = settings.notifications.sms
        provider: Any = (
            ViettelSms(sms_settings.viettel.model_copy(update={"wsdl_url": mock.url("/sms/viettel/bulkapi?wsdl")}))
            if mock.partner == "viettel" else
            VnptSms(sms_settings.vnpt.model_copy(update={"url": mock.url("/sms/vnpt/api/send_sms_list")})))
        return lambda n: provider.send(Sms(request_id=f"TB{run}{n:012d}", to=f"849{n % 10**8:08d}",
                                           text=SMS_TEXT.format(code=f"H56-{run}-{n:06d}"), unicode=False))
    if mock.partner == "email":
        smtp = SmtpEmail(settings.notifications.email.model_copy(update={"port": mock.smtp_port}))
        return lambda n: smtp.send(Email(reference=f"tb-{run}-{n:012d}", to=f"cong.dan{n}@example.vn",
                                         subject=f"Hồ sơ 000.00.00.H56-261206-{n:06d} đã có kết quả",
                                         text=EMAIL_TEXT))
    if mock.partner == "tsa":
        tsa = TsaClient(mock.url("/tsa/"), timeout=30)
        return lambda n: tsa.stamp(hashlib.sha256(f"package {run} {n}".encode()).digest())
    if mock.partner == "postal":
        postal = VNPostClient(settings.postal.model_copy(update={"base_url": mock.url("/postal")}))
        receiver = {"Name": "Nguyễn Thị Hồng Nhung", "Address": "12 Phố Điện Biên Phủ", "Tel": "0912345678",
                    "Province": "Hà Nội", "Commune": "Phường Ba Đình"}
        sender = {k.capitalize(): v for k, v in settings.postal.sender.model_dump().items()}
        return lambda n: postal.book(Order(order_number=f"000.00.{run[-2:]}.H56-261206-{n:06d}", cod_amount=0,
                                           sender=sender, receiver=receiver, description="Kết quả giải quyết TTHC"))
    raise ValueError(mock.partner)


def prepare(mock: Mock) -> None:
    if mock.partner == "tsa":  # sign with the test PKI's TSA and its chain, as bench/_stack.py sets it
        from mocks.pki import TestPki

        requests.put(mock.url("/tsa/_mock/identity"), json=TestPki().tsa.as_json(), timeout=30).raise_for_status()


def measure(mock: Mock, call: Callable[[int], Any], numbers: range, threads: int) -> float:
    """CPU ms of the mock's process per call, over `numbers` calls made from `threads` threads."""
    before = mock.cpu()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(call, numbers))
    return 1000 * (mock.cpu() - before) / len(numbers)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=400, help="calls per partner per round (default 400)")
    p.add_argument("--warmup", type=int, default=50, help="calls before the first round (default 50)")
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--threads", type=int, default=4, help="calling threads, as a worker's (default 4)")
    p.add_argument("--partners", default=",".join(PARTNERS), help=f"comma-separated, of {', '.join(PARTNERS)}")
    p.add_argument("--root", type=Path, action="append", default=None,
                   help="a checkout or snapshot whose mocks to run (repeatable; default this one)")
    p.add_argument("--json", type=Path, default=None, help="where to write the figures")
    return p.parse_args(argv)


Figures = dict[tuple[Path, str], list[float]]  # (root, partner) -> CPU ms per call, one per round


def run(roots: list[Path], partners: list[str], args: argparse.Namespace, log_dir: Path) -> Figures:
    """Start every root's mocks, warm them up, then measure round by round."""
    settings = Settings()
    mocks = {(root, partner): Mock(root, partner) for root in roots for partner in partners}
    figures: Figures = {key: [] for key in mocks}
    try:
        for mock in mocks.values():
            mock.start(log_dir)
        for mock in mocks.values():
            wait_until(mock.ready, 60, f"the {mock.partner} mock of {mock.root}")
            prepare(mock)
        calls = {key: driver(mock, settings) for key, mock in mocks.items()}
        for key, mock in mocks.items():
            measure(mock, calls[key], range(args.warmup), args.threads)
        start = args.warmup
        for n in range(args.rounds):
            order = roots if n % 2 == 0 else roots[::-1]  # neither root always runs first
            for partner in partners:
                for root in order:
                    numbers = range(start, start + args.calls)
                    figures[(root, partner)].append(measure(mocks[(root, partner)], calls[(root, partner)],
                                                            numbers, args.threads))
                start += args.calls
            print(f"round {n + 1}/{args.rounds} done", flush=True)
    finally:
        for mock in mocks.values():
            mock.stop()
    return figures


def print_report(figures: Figures, roots: list[Path], partners: list[str], args: argparse.Namespace) -> None:
    print(f"\nmock CPU ms per call (median of {args.rounds} rounds of {args.calls} calls, [min - max]):")
    ratio = "    ratio" if len(roots) == 2 else ""
    print(f"  {'partner':<16}" + "".join(f"{r.name[-24:]:>30}" for r in roots) + ratio)
    for partner in partners:
        runs = [figures[(root, partner)] for root in roots]
        line = f"  {partner:<16}" + "".join(
            f"{f'{statistics.median(r):.3f} [{min(r):.3f} - {max(r):.3f}]':>30}" for r in runs)
        if len(roots) == 2 and statistics.median(runs[0]):
            line += f"    {statistics.median(runs[1]) / statistics.median(runs[0]):.2f}"
        print(line)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    partners = [p.strip() for p in args.partners.split(",") if p.strip()]
    if unknown := set(partners) - set(PARTNERS):
        print(f"unknown partners: {sorted(unknown)}", file=sys.stderr)
        return 2
    roots = [r.resolve() for r in (args.root or [ROOT])]
    log_dir = Path(tempfile.mkdtemp(prefix="gwmockcost-"))
    print(f"logs: {log_dir}", flush=True)
    figures = run(roots, partners, args, log_dir)
    print_report(figures, roots, partners, args)
    report = {partner: {str(root): {"median": round(statistics.median(figures[(root, partner)]), 3),
                                    "runs": [round(v, 3) for v in figures[(root, partner)]]}
                        for root in roots} for partner in partners}
    path = args.json or log_dir / "mock_cost.json"
    path.write_text(json.dumps({"calls": args.calls, "rounds": args.rounds, "threads": args.threads,
                                "roots": [str(r) for r in roots], "ms_per_call": report}, indent=1) + "\n")
    print(f"\nfigures: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

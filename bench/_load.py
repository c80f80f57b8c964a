"""The load: dossiers filed and journeys of processing steps posted by concurrent client threads."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from mocks.provincial_portal import sample_dossier

PORTAL_KEY = "dev-portal-key"
ONE_STOP_KEY = "dev-one-stop-key"
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Sample:
    route: str
    seconds: float
    status: int  # 0: no answer (connection error, timeout)


@dataclass
class PhaseResult:
    started: float  # time.time() when the first request was about to be sent
    finished: float  # time.time() when the last answer arrived
    samples: list[Sample] = field(default_factory=list)
    # code -> the (status, note) steps the API took; for filing, the codes it took (with no steps)
    accepted: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)  # a few failure descriptions

    @property
    def seconds(self) -> float:
        return max(self.finished - self.started, 1e-9)

    def ok(self, route: str) -> int:
        return sum(1 for s in self.samples if s.route == route and 200 <= s.status < 300)

    def failed(self, route: str) -> int:
        return sum(1 for s in self.samples if s.route == route and not 200 <= s.status < 300)


def dossier_code(index: int) -> str:
    """Unique per index below 10**6: NNNN from the low digits, the unit from the high ones."""
    high, low = divmod(index, 10_000)
    return f"000.{high // 100 % 100:02d}.{high % 100:02d}.H31-240725-{low:04d}"


def dossier_index(code: str) -> int:
    """The index dossier_code() made `code` from."""
    high = int(code.split(".")[1]) * 100 + int(code.split(".")[2])
    return high * 10_000 + int(code.rsplit("-", 1)[1])


def dossier_body(code: str) -> dict[str, Any]:
    return sample_dossier(code)


def journey(steps: int) -> list[int]:
    """Accepted, processing (repeated), result ready, returned: `steps` statuses the status machine takes."""
    if steps < 3:
        raise ValueError("a journey needs at least 3 steps: 2, then 9 and 10")
    return [2, *[4] * (steps - 3), 9, 10]


def event_body(code: str, step: int, status: int) -> dict[str, Any]:
    # A distinct note per step: the mock treats identical progress records as one retried record.
    return {"status": status, "event_id": f"{code}#{step}", "officer": "Cán bộ một cửa",
            "department": "Bộ phận một cửa", "note": f"bench step {step}"}


class _Client:
    """One client thread's view: its own HTTP session, its own samples (merged at the end)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {key}"
        self.base_url = base_url
        self.samples: list[Sample] = []
        self.accepted: dict[str, list[tuple[int, str]]] = {}
        self.errors: list[str] = []

    def post(self, route: str, path: str, body: dict[str, Any]) -> int:
        started = time.perf_counter()
        try:
            response = self.http.post(self.base_url + path, json=body, timeout=REQUEST_TIMEOUT)
            status = response.status_code
            detail = response.text[:300] if not response.ok else ""
        except requests.RequestException as exc:
            status, detail = 0, f"{type(exc).__name__}: {exc}"
        self.samples.append(Sample(route, time.perf_counter() - started, status))
        if detail and len(self.errors) < 5:
            self.errors.append(f"{route} {path}: {status} {detail}")
        return status


    def post_batch(self, path: str, events: list[dict[str, Any]]) -> list[int]:
        """One request carrying many steps; a sample per step (each waited as long as the request)."""
        started = time.perf_counter()
        try:
            response = self.http.post(self.base_url + path, json={"events": events}, timeout=REQUEST_TIMEOUT)
            statuses = ([r["status"] for r in response.json()["results"]] if response.ok
                        else [response.status_code] * len(events))
            detail = response.text[:300] if not response.ok else ""
        except (requests.RequestException, ValueError, KeyError) as exc:
            statuses, detail = [0] * len(events), f"{type(exc).__name__}: {exc}"
        elapsed = time.perf_counter() - started
        self.samples += [Sample("events", elapsed, status) for status in statuses]
        if detail and len(self.errors) < 5:
            self.errors.append(f"events {path}: {detail}")
        return statuses


def file_one(client: _Client, code: str, _steps: list[int]) -> None:
    if 200 <= client.post("filing", "/api/v1/dossiers", dossier_body(code)) < 300:
        client.accepted[code] = []


def walk_one(client: _Client, code: str, steps: list[int]) -> None:
    """Post one dossier's journey in order; stop at the first refusal (later steps would be refused too)."""
    taken = client.accepted.setdefault(code, [])
    for n, status in enumerate(steps, start=1):
        body = event_body(code, n, status)
        if not 200 <= client.post("events", f"/api/v1/dossiers/{code}/events", body) < 300:
            return
        taken.append((status, body["note"]))


def walk_group(client: _Client, codes: list[str], steps: list[int]) -> None:
    """Post the journeys of several dossiers through the batch endpoint: step n of all, then step n + 1."""
    active = list(codes)
    for code in codes:
        client.accepted.setdefault(code, [])
    for n, status in enumerate(steps, start=1):
        bodies = [{"code": code, **event_body(code, n, status)} for code in active]
        statuses = client.post_batch("/api/v1/one-stop/events", bodies)
        still = []
        for code, body, answer in zip(active, bodies, statuses, strict=True):
            if 200 <= answer < 300:
                client.accepted[code].append((status, body["note"]))
                still.append(code)
        active = still


Task = Callable[[_Client, Any, list[int]], None]


def run_phase(base_url: str, key: str, codes: list[Any], steps: list[int], task: Task, concurrency: int,
              time_limit: float) -> PhaseResult:
    """`concurrency` threads take dossier codes (or groups of codes) from one queue and run `task` on each,
    within `time_limit`."""
    todo: queue.Queue[Any] = queue.Queue()
    for code in codes:
        todo.put(code)
    clients = [_Client(base_url, key) for _ in range(concurrency)]
    deadline = time.monotonic() + time_limit
    stop = threading.Event()

    def drive(client: _Client) -> None:
        while time.monotonic() < deadline and not stop.is_set():
            try:
                code = todo.get_nowait()
            except queue.Empty:
                return
            task(client, code, steps)

    threads = [threading.Thread(target=drive, args=(c,), name=f"client-{n}", daemon=True)
               for n, c in enumerate(clients)]
    result = PhaseResult(started=time.time(), finished=0.0)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(time_limit + 2 * REQUEST_TIMEOUT)
    except BaseException:  # Ctrl-C: let the threads finish their current dossier, then stop
        stop.set()
        raise
    result.finished = time.time()
    for client in clients:
        result.samples += client.samples
        result.accepted.update(client.accepted)
        result.errors += client.errors[: max(0, 5 - len(result.errors))]
        client.http.close()
    if not todo.empty():
        result.errors.append(f"time limit of {time_limit:.0f}s reached with {todo.qsize()} dossiers not started")
    return result

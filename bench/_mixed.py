"""The mixed workload, offered at a set rate of status events per second (open loop).

Each dossier: filed by the provincial portal (one request), then its journey of steps posted by the
one-stop software through the batch endpoint, a few dossiers at a time, each step once the one before
was answered. Every `pay_every`-th dossier asks for its fee after its first step and is paid through
the payment mock (which sends the signed callback to the gateway); every `post_every`-th books VNPost
delivery once its result is ready. Citizens' SMS and emails follow from the steps. Requests that get no
2xx for a reason that may pass (5xx, no answer) are sent again later, as a caller would, with the same
ids; so whatever the gateway accepted is in the `Ledger`, and reconciliation checks every mock against it.
"""

from __future__ import annotations

import collections
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from _load import (
    ONE_STOP_KEY,
    PORTAL_KEY,
    REQUEST_TIMEOUT,
    dossier_body,
    dossier_code,
    dossier_index,
    event_body,
    journey,
)

FEES = [{"code": "LPKS", "name": "Lệ phí đăng ký khai sinh", "amount": 8000}]
TICK = 0.05  # seconds between two looks at what is owed


@dataclass(frozen=True)
class Mix:
    steps: tuple[int, ...] = tuple(journey(6))
    batch: int = 10  # steps per POST /api/v1/one-stop/events
    pay_every: int = 4  # 0: no payments
    post_every: int = 4  # 0: no deliveries
    filings: bool = True  # file dossiers as part of the load (False: file them beforehand, see prefile)

    @property
    def requests_per_event(self) -> float:
        per_dossier = (self.filings + len(self.steps) / self.batch + (2 / self.pay_every if self.pay_every else 0)
                       + (1 / self.post_every if self.post_every else 0))
        return per_dossier / len(self.steps)


@dataclass(frozen=True)
class Sample:
    route: str
    sent: float  # time.time()
    seconds: float
    status: int  # 0: no answer


@dataclass
class Ledger:
    """What the gateway accepted, by dossier code."""

    filed: set[str] = field(default_factory=set)
    steps: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    payments: dict[str, str] = field(default_factory=dict)  # code -> payment id (the platform's order ref)
    paid: set[str] = field(default_factory=set)  # callback answered "00"
    callbacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # code -> the signed callback the platform sent
    deliveries: dict[str, str | None] = field(default_factory=dict)  # code -> waybill (None while booking)
    refused: list[str] = field(default_factory=list)  # 4xx answers: a bug in the gateway or the bench

    @property
    def events(self) -> int:
        return sum(map(len, self.steps.values()))


class MixedLoad:
    """Drives the mix at a rate; `run()` may be called again at other rates, the dossiers carry on."""

    def __init__(self, api_url: str, mocks: Callable[[str], str], mix: Mix, threads: int = 48,
                 first_index: int = 0) -> None:
        self.api_url = api_url
        self.mocks = mocks  # a mock's path -> its URL (Stack.mock)
        self.mix = mix
        self.ledger = Ledger()
        self.samples: list[Sample] = []
        self.retries = collections.Counter[str]()
        self._codes = (dossier_code(i) for i in itertools.count(first_index))
        # (code, next step index): journeys under way go first, so dossiers finish rather than all start
        self._ready: collections.deque[tuple[str, int]] = collections.deque()
        self._fresh: collections.deque[tuple[str, int]] = collections.deque()
        self._lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="load")
        self._in_flight = 0
        self._stop = threading.Event()  # ends the conductor's current run()
        self._closed = threading.Event()  # ends retries too

    # The conductor -------------------------------------------------------------------------------

    def run(self, rate: float, seconds: float) -> dict[str, float]:
        """Offer `rate` status events/s for `seconds`; answers what was offered and how far the client fell
        behind (requests it had queued but not sent when the time was up)."""
        per_dossier = len(self.mix.steps)
        owed_events = owed_filings = 0.0
        offered = {"events": 0, "filings": 0, "starved": 0}
        self._stop.clear()
        started = last = time.monotonic()
        while not self._stop.is_set() and (now := time.monotonic()) - started < seconds:
            owed_events += rate * (now - last)
            # A few more filings than the steps need, so that steps never wait for a dossier.
            owed_filings += 1.1 * rate / per_dossier * (now - last) if self.mix.filings else 0
            last = now
            while owed_filings >= 1:
                owed_filings -= 1
                offered["filings"] += 1
                self._submit(self._file, next(self._codes))
            while owed_events >= 1:
                with self._lock:
                    take = self._take(min(self.mix.batch, int(owed_events)))
                if not take:
                    offered["starved"] += int(owed_events)
                    owed_events = 0
                    break
                owed_events -= len(take)
                offered["events"] += len(take)
                self._submit(self._steps, take)
            time.sleep(TICK)
        return {**offered, "client_backlog": self._in_flight}

    def prefile(self, count: int) -> None:
        """File `count` dossiers as fast as the gateway takes them (not part of any level's figures)."""
        for _ in range(count):
            self._submit(self._file, next(self._codes))
        while not self.idle():
            time.sleep(TICK)

    def _take(self, count: int) -> list[tuple[str, int]]:
        """Up to `count` steps to post, journeys under way first; the caller holds the lock."""
        take = []
        for source in (self._ready, self._fresh):
            while source and len(take) < count:
                take.append(source.popleft())
        return take

    def stop(self) -> None:
        self._stop.set()

    def callbacks_sent(self) -> dict[str, dict[str, Any]]:
        """The signed payment callbacks the platform has sent so far, by dossier code."""
        with self._lock:
            return dict(self.ledger.callbacks)

    def idle(self) -> bool:
        """No request in flight or waiting to be sent again."""
        with self._lock:
            return self._in_flight == 0

    def finish(self, timeout: float = 600) -> None:
        """Post every journey to its end (the conductor no longer files), then wait for the answers."""
        deadline = time.monotonic() + timeout
        with self._lock:  # dossiers filed but never stepped stay as they are
            self._fresh.clear()
        while time.monotonic() < deadline:
            with self._lock:
                take = self._take(self.mix.batch)
                busy = self._in_flight
            if take:
                self._submit(self._steps, take)
            elif not busy:
                return
            else:
                time.sleep(TICK)
        raise TimeoutError("the load did not finish its journeys in time")

    def close(self) -> None:
        self._stop.set()
        self._closed.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # Requests ------------------------------------------------------------------------------------

    def _submit(self, fn: Any, arg: Any) -> None:
        with self._lock:
            self._in_flight += 1

        def task() -> None:
            try:
                fn(arg)
            finally:
                with self._lock:
                    self._in_flight -= 1

        self._pool.submit(task)

    def _http(self) -> requests.Session:
        session = getattr(self._local, "http", None)
        if session is None:
            session = self._local.http = requests.Session()
        return session

    def _call(self, route: str, method: str, url: str, key: str | None = None, **kw: Any) -> requests.Response | None:
        headers = kw.pop("headers", {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        sent = time.time()
        started = time.perf_counter()
        try:
            response = self._http().request(method, url, headers=headers, timeout=REQUEST_TIMEOUT, **kw)
        except requests.RequestException:
            response = None
        sample = Sample(route, sent, time.perf_counter() - started, response.status_code if response is not None else 0)
        with self._lock:
            self.samples.append(sample)
        return response

    def _refused(self, what: str, response: requests.Response | None) -> bool:
        """Whether the gateway refused for good (a 4xx other than 429), noted as a failure of the run;
        otherwise (no answer, 429, 5xx) the caller sends the request again."""
        if response is None or response.status_code >= 500 or response.status_code == 429:
            return False
        with self._lock:
            self.ledger.refused.append(f"{what}: {response.status_code} {response.text[:200]}")
        return True

    def _later(self, route: str, fn: Any, arg: Any) -> None:
        """Send again after a moment: the gateway or a partner was unavailable."""
        with self._lock:
            self.retries[route] += 1
        if self._closed.is_set():
            return
        with self._lock:
            self._in_flight += 1  # counts as busy until sent again

        def again() -> None:
            self._submit(fn, arg)
            with self._lock:
                self._in_flight -= 1

        threading.Timer(0.5, again).start()

    def _file(self, code: str) -> None:
        r = self._call("filing", "POST", f"{self.api_url}/api/v1/dossiers", PORTAL_KEY, json=dossier_body(code))
        if r is not None and r.ok:
            with self._lock:
                self.ledger.filed.add(code)
                self.ledger.steps[code] = []
                self._fresh.append((code, 0))
        elif not self._refused(f"filing {code}", r):
            self._later("filing", self._file, code)

    def _steps(self, take: list[tuple[str, int]]) -> None:
        bodies = [{"code": code, **event_body(code, n + 1, self.mix.steps[n])} for code, n in take]
        r = self._call("events (batch)", "POST", f"{self.api_url}/api/v1/one-stop/events", ONE_STOP_KEY,
                       json={"events": bodies})
        if r is None or not r.ok:
            if not self._refused("events", r):
                self._later("events (batch)", self._steps, take)
            return
        again: list[tuple[str, int]] = []
        for (code, n), body, result in zip(take, bodies, r.json()["results"], strict=True):
            status = result["status"]
            if status in (200, 201):
                self._accepted_step(code, n, body)
            elif status >= 500:
                again.append((code, n))
            else:
                with self._lock:
                    self.ledger.refused.append(f"step {code}#{n + 1}: {result}")
        if again:
            self._later("events (batch)", self._steps, again)

    def _accepted_step(self, code: str, n: int, body: dict[str, Any]) -> None:
        status = self.mix.steps[n]
        number = dossier_index(code)
        # A paying dossier goes on once its fee is asked, as a one-stop office would: a journey that ran ahead to
        # its final status while the ask waited (202, the platform busy) was refused, rightly ("dossier closed").
        pays = n == 0 and _one_in(number, self.mix.pay_every)
        with self._lock:
            taken = self.ledger.steps[code]
            if len(taken) == n:  # not an answer to a repeat of a step already counted
                taken.append((status, body["note"]))
            if n + 1 < len(self.mix.steps) and not pays:
                self._ready.append((code, n + 1))
        if pays:
            self._submit(self._ask_payment, code)
        if status == 9 and _one_in(number + 1, self.mix.post_every):  # other dossiers than those paying
            self._submit(self._book_delivery, code)

    def _ask_payment(self, code: str) -> None:
        r = self._call("payments", "POST", f"{self.api_url}/api/v1/dossiers/{code}/payments", ONE_STOP_KEY,
                       json={"items": FEES}, headers={"Idempotency-Key": f"bench-{code}"})
        if r is not None and r.status_code in (200, 201):
            with self._lock:
                self.ledger.payments[code] = r.json()["id"]
            self._submit(self._pay, code)
            self._go_on_after_payment(code)
        elif (r is not None and r.status_code == 202  # the platform has not answered yet: ask again later
              or not self._refused(f"payment {code}", r)):
            self._later("payments", self._ask_payment, code)
        else:
            self._go_on_after_payment(code)  # refused for good (noted): the journey still ends

    def _go_on_after_payment(self, code: str) -> None:
        with self._lock:
            if len(self.mix.steps) > 1:
                self._ready.append((code, 1))

    def _pay(self, code: str) -> None:
        ref = self.ledger.payments[code]
        r = self._call("pay + callback", "POST", self.mocks(f"/payment/_mock/pay/national_platform/{ref}"),
                       json={"outcome": "paid"})
        sent = r.json().get("callbacks", []) if r is not None and r.ok else []
        with self._lock:
            if sent:
                self.ledger.callbacks[code] = sent[0]["body"]
            if any((c.get("answer") or {}).get("MaLoi") == "00" for c in sent):
                self.ledger.paid.add(code)
        # Otherwise the gateway did not take the callback (it was down): the platform's reconciliation, or
        # the gateway's own QUERY, settles it; reconciliation reads the gateway's state.

    def _book_delivery(self, code: str) -> None:
        r = self._call("deliveries", "POST", f"{self.api_url}/api/v1/dossiers/{code}/deliveries", ONE_STOP_KEY,
                       json={})
        if r is not None and r.status_code in (200, 201, 202):
            with self._lock:
                self.ledger.deliveries[code] = r.json().get("waybill")
        elif not self._refused(f"delivery {code}", r):
            self._later("deliveries", self._book_delivery, code)


def _one_in(number: int, every: int) -> bool:
    """Every `every`-th dossier (0: none)."""
    return every > 0 and number % every == 0

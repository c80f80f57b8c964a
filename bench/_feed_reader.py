"""The one-stop software reading the change feed while the load runs, as it does in production: a page every
second after its cursor. At the end it reads to the tail, and reconciliation checks it read every item the
gateway wrote, once each, in rising cursor order."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests
from _load import ONE_STOP_KEY, REQUEST_TIMEOUT


@dataclass
class FeedRead:
    cursors: list[int] = field(default_factory=list)
    pages: int = 0
    failures: int = 0  # pages not read (no answer or not 200): read again from the same cursor


class FeedReader:
    """Follows the feed on a thread of its own while in its `with`; then `read_to_tail` reads what is left."""

    def __init__(self, api_url: str, every: float = 1.0, limit: int = 500) -> None:
        self.url = f"{api_url}/api/v1/one-stop/feed"
        self.every = every
        self.limit = limit
        self.read = FeedRead()
        self._after = 0
        self._http = requests.Session()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name="feed-reader", daemon=True)

    def __enter__(self) -> FeedReader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(self.every):
            while self._page() == self.limit and not self._stop.is_set():
                pass  # a full page: more is waiting

    def read_to_tail(self) -> FeedRead:
        """After the load has drained (and the reader thread has stopped): every page up to the end."""
        failed = 0
        while failed < 10:
            before = self.read.failures
            if self._page():
                continue
            if self.read.failures == before:
                break  # an empty page: the tail
            failed += 1
            time.sleep(1)
        return self.read

    def _page(self) -> int:
        try:
            reply = self._http.get(self.url, params={"after": self._after, "limit": self.limit},
                                   headers={"Authorization": f"Bearer {ONE_STOP_KEY}"}, timeout=REQUEST_TIMEOUT)
        except requests.RequestException:
            reply = None
        if reply is None or reply.status_code != 200:
            self.read.failures += 1
            return 0
        page = reply.json()
        self.read.pages += 1
        self.read.cursors += [int(item["cursor"]) for item in page["items"]]
        self._after = int(page["next_cursor"])
        return len(page["items"])

"""The id of the request being served (or of the request that caused the job being run), for the logs.

A caller may send `X-Request-Id`; otherwise the gateway makes one. It is answered back in the same
header, stored with every job the request queues, and set again while a worker runs those jobs.

Also what kind of work is at hand (`work`: a route, a queue drained, a periodic task), under which the
database statements it sends are counted (store/db_metrics.py).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
work: ContextVar[str] = ContextVar("work", default="other")


def from_header(value: str | None) -> str:
    """The caller's id if it is a sane token, else a fresh one (a header is not trusted to be anything)."""
    return value if value and ACCEPTED.match(value) else uuid.uuid4().hex


def current() -> str | None:
    return request_id.get()


@contextmanager
def working_on(name: str) -> Iterator[None]:
    """What is done inside is `name`'s work (`api POST /route`, `job <queue>`, `periodic <task>`)."""
    token = work.set(name)
    try:
        yield
    finally:
        work.reset(token)

"""The id of the request being served (or of the request that caused the job being run), for the logs.

A caller may send `X-Request-Id`; otherwise the gateway makes one. It is answered back in the same
header, stored with every job the request queues, and set again while a worker runs those jobs.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

ACCEPTED = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)


def from_header(value: str | None) -> str:
    """The caller's id if it is a sane token, else a fresh one (a header is not trusted to be anything)."""
    return value if value and ACCEPTED.match(value) else uuid.uuid4().hex


def current() -> str | None:
    return request_id.get()

"""When to try a failed job again: capped exponential backoff with full jitter."""

from __future__ import annotations

import random


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before attempt `attempt + 1`, after `attempt` failed ones (attempt >= 1).

    Full jitter (a uniform draw below the exponential ceiling) keeps a crowd of jobs that failed
    together, say when the national portal went down, from all coming back at the same instant.
    """
    ceiling = min(cap, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)


def retry_delay(attempt: int, *, base: float, cap: float, retry_after: float | None = None) -> float:
    """The partner's Retry-After wins when it asks for longer than our own schedule would wait."""
    delay = backoff_seconds(attempt, base=base, cap=cap)
    return max(delay, min(retry_after, cap)) if retry_after is not None else delay

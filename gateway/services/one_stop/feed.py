"""The one-stop change feed, read by cursor (the webhook pusher sends the same items)."""

from __future__ import annotations

from typing import Any

from gateway.services.unit_of_work import Context
from gateway.store import feed


def page(ctx: Context, after: int, limit: int) -> list[dict[str, Any]]:
    """Up to `limit` items after the cursor `after`, oldest first, as callers see them: the items committed since
    the last reading are numbered first (a write; the feed's lock is held only by readers)."""
    with ctx.engine.begin() as conn:
        feed.place(conn)
        return [feed.as_item(row) for row in feed.read(conn, after, limit)]

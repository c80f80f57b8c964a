"""Public-post (VNPost) delivery of results."""

from __future__ import annotations

QUEUE = "postal"
BOOK = "delivery.book"
TRACK = "delivery.track"
RETURNED = "delivery.returned"  # tell the national portal the result reached the citizen (status 10)

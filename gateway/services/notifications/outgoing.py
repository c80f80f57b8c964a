"""Notifications on their way out of a use case, and what a use case needs of whoever tells citizens.

Apart from `notifications.py` so that the unit of work can name the notifier without importing it (the
notifier itself needs the unit of work's Context).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection

from gateway.store.one_trip import OneTrip, Part


@dataclass
class Outgoing:
    """Notifications rendered, not stored yet: their rows, and the attachments of each email by reference.
    A batch of steps gathers its notifications here and stores them in one go."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def add(self, other: Outgoing) -> None:
        self.rows += other.rows
        self.files.update(other.files)


class CitizenNotifier(Protocol):
    def for_applicant(self, dossier: dict[str, Any], template: str, *, cause: str, origin: str, now: datetime,
                      context: dict[str, Any] | None = None, files: list[dict[str, Any]] | None = None) -> Outgoing:
        """A dossier's applicant, told on every channel the dossier gives; `cause` makes it once only."""

    def store(self, conn: Connection, outgoing: Outgoing, *, max_attempts: int,
              now: datetime) -> list[tuple[int, str]]:
        """Insert the notifications (with their send jobs) in the caller's transaction; the jobs to publish."""

    def add_to(self, trip: OneTrip, outgoing: Outgoing, *, max_attempts: int, now: datetime) -> Part | None:
        """The same, into the caller's one-trip write: the part holding the send jobs to publish after commit."""

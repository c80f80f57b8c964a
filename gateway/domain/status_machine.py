"""Which processing step may follow which: the one table of dossier status transitions."""

from __future__ import annotations

from .codes import Status

S = Status

# Status 4 may repeat: a dossier moves between departments and agencies while processing.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.NEW: frozenset({S.ACCEPTED, S.REFUSED, S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUIRED, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUIRED, S.WITHDRAWN,
                           S.STOPPED, S.RESULT_READY}),
    S.REFUSED: frozenset(),
    S.PROCESSING: frozenset({S.PROCESSING, S.SUPPLEMENT_REQUESTED, S.PAYMENT_REQUIRED, S.WITHDRAWN,
                             S.STOPPED, S.RESULT_READY}),
    S.SUPPLEMENT_REQUESTED: frozenset({S.ACCEPTED, S.REFUSED, S.PROCESSING, S.WITHDRAWN, S.STOPPED}),
    S.PAYMENT_REQUIRED: frozenset({S.ACCEPTED, S.PROCESSING, S.RESULT_READY, S.WITHDRAWN, S.STOPPED}),
    S.WITHDRAWN: frozenset(),
    S.STOPPED: frozenset(),
    S.RESULT_READY: frozenset({S.RESULT_RETURNED, S.PAYMENT_REQUIRED}),
    S.RESULT_RETURNED: frozenset(),
}

# Steps that change the dossier record itself on the national portal (appointment, result, end),
# so they are mirrored with DongBoHoSoMC isUpdating as well as CapNhatTienDoHoSoMC.
CHANGES_DOSSIER_RECORD: frozenset[Status] = frozenset(
    {S.ACCEPTED, S.REFUSED, S.WITHDRAWN, S.STOPPED, S.RESULT_READY, S.RESULT_RETURNED}
)


class IllegalTransition(Exception):
    def __init__(self, current: Status, requested: Status) -> None:
        self.current = current
        self.requested = requested
        self.allowed = sorted(TRANSITIONS[current])
        super().__init__(
            f"status {int(requested)} cannot follow status {int(current)}; "
            f"allowed next: {[int(s) for s in self.allowed] or 'none (final status)'}"
        )


def next_status(current: int, requested: int) -> Status:
    """The new status, or IllegalTransition naming what is allowed instead."""
    cur, req = Status(current), Status(requested)
    if req not in TRANSITIONS[cur]:
        raise IllegalTransition(cur, req)
    return req


def is_final(status: int) -> bool:
    return not TRANSITIONS[Status(status)]

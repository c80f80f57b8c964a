"""National public-service portal (DVCQG): dossier and progress mirroring."""

from .client import NationalPortalClient

QUEUE = "national_portal"
SYNC_DOSSIER = "national_portal.sync_dossier"
PROGRESS = "national_portal.progress"
CHECK = "national_portal.check"  # TraCuuHoSo: the dossier's record read back, for reconciliation

__all__ = ["NationalPortalClient", "QUEUE", "SYNC_DOSSIER", "PROGRESS", "CHECK"]

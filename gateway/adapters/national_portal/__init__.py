"""National public-service portal (DVCQG): dossier and progress mirroring."""

from .client import NationalPortalClient

QUEUE = "national_portal"
SYNC_DOSSIER = "national_portal.sync_dossier"
PROGRESS = "national_portal.progress"

__all__ = ["NationalPortalClient", "QUEUE", "SYNC_DOSSIER", "PROGRESS"]

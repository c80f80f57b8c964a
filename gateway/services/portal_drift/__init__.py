"""Drift with the national portal: each dossier's record there read back, compared with what the gateway sent,
what the gateway owns sent again through the outbox, the rest shown to operators (docs/operations.md)."""

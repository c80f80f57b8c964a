"""The audit log as evidence: its hash chain sealed and checked, its head anchored by the TSA."""

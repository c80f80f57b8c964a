"""Use cases: each runs one transaction (change + audit + outbox jobs), then publishes the jobs."""

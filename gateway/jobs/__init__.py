"""Background work: publishing outbox jobs to kombu, workers, retries, dead letters, the sweeper."""

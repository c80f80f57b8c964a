"""What a process that runs jobs counts: each job's outcome by queue (adapter) and kind, how long a batch
takes to deliver, and what its sweeper's periodic tasks cost. Exposed by the API's /metrics and a worker's
--metrics-port."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

JOBS = Counter("gateway_jobs_processed", "Job outcomes recorded by this process", ["queue", "kind", "outcome"])
BATCH_SECONDS = Histogram("gateway_job_batch_duration_seconds", "Time to deliver and record one batch of jobs",
                          ["queue"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
PERIODIC_SECONDS = Counter("gateway_periodic_cpu_seconds", "CPU time of the sweeper's periodic tasks (its thread's)",
                           ["task"])
PERIODIC_RUNS = Counter("gateway_periodic_runs", "Runs of the sweeper's periodic tasks", ["task"])
PERIODIC_SKIPPED = Counter("gateway_periodic_skipped", "Periodic tasks due but not run: nothing to do", ["task"])

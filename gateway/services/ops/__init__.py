"""What operators watch and do: jobs and dead letters, queue history, partner health, readiness, state counts."""

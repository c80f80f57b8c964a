"""Who may call, and how often: API keys (from settings and the database) and per-key rate limits."""

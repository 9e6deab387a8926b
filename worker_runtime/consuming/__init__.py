"""The consuming side: what runs jobs (the worker, its consumers, leases, cron, observers)."""

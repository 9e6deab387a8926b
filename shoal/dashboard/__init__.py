"""`shoal dashboard`: a small server-rendered web UI over queues, workers, jobs, the
dead-letter store and (with ``--kube``) WorkerPools. See docs/dashboard.md."""

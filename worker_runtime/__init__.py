"""Shoal's worker runtime: a reliable asyncio job queue on Redis."""

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.consuming.processor import Job, JobResult, Processor
from worker_runtime.consuming.worker import Worker
from worker_runtime.core.backoff import Backoff, RetryPolicy
from worker_runtime.core.codec import JobRecord, JobState
from worker_runtime.core.cron_schedule import CronJob
from worker_runtime.errors import NonRetryableError, PayloadValidationError
from worker_runtime.producing.job_spec import InvalidJobSpec
from worker_runtime.producing.queue import EnqueuedJob, JobActiveError, JobSpec, Queue
from worker_runtime.rate_limit import GroupRateLimit, RateLimit
from worker_runtime.version import __version__

__all__ = [
    "Backoff",
    "CronJob",
    "EnqueuedJob",
    "GroupRateLimit",
    "InvalidJobSpec",
    "Job",
    "JobActiveError",
    "JobRecord",
    "JobResult",
    "JobSpec",
    "JobState",
    "NonRetryableError",
    "PayloadValidationError",
    "Processor",
    "Queue",
    "QueueConfig",
    "RateLimit",
    "RetryPolicy",
    "Worker",
    "WorkerSettings",
    "__version__",
]

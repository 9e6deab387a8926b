"""Shoal's worker runtime: a reliable asyncio job queue on Redis."""

from worker_runtime.config import QueueConfig, WorkerSettings
from worker_runtime.core.backoff import Backoff, RetryPolicy
from worker_runtime.core.codec import JobRecord, JobState
from worker_runtime.errors import NonRetryableError, PayloadValidationError
from worker_runtime.processor import Job, JobResult, Processor
from worker_runtime.queue import EnqueuedJob, JobActiveError, JobSpec, Queue
from worker_runtime.worker import Worker

__version__ = "0.1.0"

__all__ = [
    "Backoff",
    "EnqueuedJob",
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
    "RetryPolicy",
    "Worker",
    "WorkerSettings",
    "__version__",
]

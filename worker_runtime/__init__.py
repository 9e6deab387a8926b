"""Shoal's worker runtime: a reliable asyncio job queue on Redis.

The public names are loaded on first use (PEP 562): a producer's ``from worker_runtime import
Queue`` does not pay for the worker, its observability stack or the SQL status store (about a
second of imports on a small machine), and neither does every CLI command that only enqueues.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from worker_runtime.version import __version__

if TYPE_CHECKING:
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

#: Public name -> the module that defines it.
_LAZY = {
    "QueueConfig": "worker_runtime.config",
    "WorkerSettings": "worker_runtime.config",
    "Job": "worker_runtime.consuming.processor",
    "JobResult": "worker_runtime.consuming.processor",
    "Processor": "worker_runtime.consuming.processor",
    "Worker": "worker_runtime.consuming.worker",
    "Backoff": "worker_runtime.core.backoff",
    "RetryPolicy": "worker_runtime.core.backoff",
    "JobRecord": "worker_runtime.core.codec",
    "JobState": "worker_runtime.core.codec",
    "CronJob": "worker_runtime.core.cron_schedule",
    "NonRetryableError": "worker_runtime.errors",
    "PayloadValidationError": "worker_runtime.errors",
    "InvalidJobSpec": "worker_runtime.producing.job_spec",
    "EnqueuedJob": "worker_runtime.producing.queue",
    "JobActiveError": "worker_runtime.producing.queue",
    "JobSpec": "worker_runtime.producing.queue",
    "Queue": "worker_runtime.producing.queue",
    "GroupRateLimit": "worker_runtime.rate_limit",
    "RateLimit": "worker_runtime.rate_limit",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'worker_runtime' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain lookup
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


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

"""Redis key names: the only place that spells them.

Every key of one queue shares the hash tag ``{queue}`` so that a queue lives on a single
Redis Cluster slot and each Lua script touches one slot only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_PREFIX = "shoal"
#: Job events kept per queue (the events stream is trimmed to about this many entries).
DEFAULT_EVENTS_MAX_LEN = 10_000
QUEUE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


class InvalidQueueName(ValueError):
    """A queue name that cannot be used as a Redis hash tag and Kubernetes label value."""


def validate_queue_name(name: str) -> str:
    if not QUEUE_NAME_RE.match(name):
        raise InvalidQueueName(
            f"invalid queue name {name!r}: use 1-63 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """All keys of one queue. ``job_prefix`` + job id is a job's hash."""

    queue: str
    prefix: str = DEFAULT_PREFIX

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.queue}}}"

    @property
    def wait(self) -> str:
        """LIST of job ids ready to run; producers push at the tail, workers pop the head."""
        return f"{self.base}:wait"

    @property
    def active(self) -> str:
        """ZSET job id -> lease deadline (ms): jobs being processed."""
        return f"{self.base}:active"

    @property
    def delayed(self) -> str:
        """ZSET job id -> due time (ms): scheduled jobs and retries waiting for backoff."""
        return f"{self.base}:delayed"

    @property
    def completed(self) -> str:
        """ZSET job id -> finish time (ms): retained completed jobs (trimmed)."""
        return f"{self.base}:completed"

    @property
    def failed(self) -> str:
        """ZSET job id -> finish time (ms): finally failed jobs kept when dead-lettering is off."""
        return f"{self.base}:failed"

    @property
    def dead(self) -> str:
        """ZSET job id -> dead-letter time (ms): the dead-letter store."""
        return f"{self.base}:dead"

    @property
    def stats(self) -> str:
        """HASH of monotonic counters (completed, failed, retried, stalled, dead, enqueued)."""
        return f"{self.base}:stats"

    @property
    def marker(self) -> str:
        """ZSET with one member; idle workers BZPOPMIN it to wake on new work."""
        return f"{self.base}:marker"

    @property
    def job_prefix(self) -> str:
        """Prefix of job hashes; passed to scripts in KEYS so derived keys keep the hash tag."""
        return f"{self.base}:job:"

    def job(self, job_id: str) -> str:
        return f"{self.job_prefix}{job_id}"

    def set_aside(self, job_id: str) -> str:
        """Where fetch.lua moves a job key of another type (someone else's value in the job's
        place) before it dead-letters the job; the value is kept there, untouched."""
        return f"{self.job(job_id)}:bad"

    @property
    def lease_clock(self) -> str:
        """STRING: Redis ms of the last lease-script call (lease_clock.lua: freezes don't count)."""
        return f"{self.base}:lclock"

    @property
    def fetch_receipts_prefix(self) -> str:
        """Prefix of a fetch call's receipt (+ its lease token): the ids it leased, kept for
        one lease so a retried call whose reply was lost gets the same jobs (fetch.lua)."""
        return f"{self.base}:fetched:"

    # --- flow control and scheduling (docs/flow-control.md) --------------------------------

    @property
    def prioritized(self) -> str:
        """ZSET job id -> -priority * 2^32 + sequence: ready jobs with a non-zero priority.

        Priority-0 jobs stay on the plain ``wait`` LIST, so queues without priorities pay
        nothing; negative scores (priority > 0) run before the LIST, positive ones after it.
        """
        return f"{self.base}:prio"

    @property
    def rate(self) -> str:
        """ZSET of the starts in the last window (sliding log): the queue-wide rate limiter."""
        return f"{self.base}:rate"

    @property
    def group_rate_prefix(self) -> str:
        """Prefix of per-group limiter ZSETs (like ``rate``, one per group, with a TTL)."""
        return f"{self.base}:grate:"

    @property
    def group_parked_prefix(self) -> str:
        """Prefix of per-group LISTs of rate-limited jobs parked until their group's window."""
        return f"{self.base}:gpark:"

    @property
    def limited_groups(self) -> str:
        """ZSET group -> ms when its parked jobs may start again."""
        return f"{self.base}:glimited"

    @property
    def cancelled(self) -> str:
        """ZSET job id -> cancel time (ms): cancelled jobs (they never run again)."""
        return f"{self.base}:cancelled"

    @property
    def events(self) -> str:
        """STREAM of job events (progress, completed, failed, retried, dead, cancelled)."""
        return f"{self.base}:events"

    @property
    def cron(self) -> str:
        """HASH cron name -> last tick (epoch seconds) enqueued: one job per tick."""
        return f"{self.base}:cron"

    @property
    def flows(self) -> str:
        """ZSET parent id -> enqueue ms: parents waiting for their children."""
        return f"{self.base}:flows"

    @property
    def children_prefix(self) -> str:
        """Prefix of a parent's HASH child id -> result JSON (``children_prefix`` + parent)."""
        return f"{self.base}:kids:"

    @property
    def child_failures_prefix(self) -> str:
        """Prefix of a parent's HASH child id -> error, for failed children it ignored."""
        return f"{self.base}:kidfail:"


def worker_key(prefix: str, worker_id: str) -> str:
    """Heartbeat record of one worker (a HASH with a TTL)."""
    return f"{prefix}:worker:{worker_id}"


def workers_index_key(prefix: str) -> str:
    """ZSET worker id -> last heartbeat (ms), for listing live workers cheaply."""
    return f"{prefix}:workers"

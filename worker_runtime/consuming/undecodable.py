"""Jobs whose id or payload is not UTF-8 (written into Redis by something else): the worker
receives the fetch reply undecoded (`scripts.call_undecoded`), so such a job fails alone. This
makes it readable before it is dead-lettered: every reader of Redis decodes ids and fields."""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker_runtime.core.keys import QueueKeys

if TYPE_CHECKING:
    from worker_runtime.redis_io.scripts import Scripts


def shown_id(raw_id: bytes) -> str:
    """The id as readers will see it: bytes that are not UTF-8 as ``\\xNN``."""
    return raw_id.decode(errors="backslashreplace")


async def make_decodable(
    scripts: Scripts, keys: QueueKeys, *, raw_id: bytes, raw: bytes, token: str
) -> bool:
    """Rewrite a leased job's payload, and move it to its `shown_id`, keeping its lease
    (decodable.lua: one atomic step, harmless to repeat). False: the lease ``token`` no longer
    holds it (or the move was done already), nothing was written."""
    job_id = shown_id(raw_id)
    raw_key = keys.job_prefix.encode() + raw_id
    data = raw.decode(errors="backslashreplace")
    done = await scripts.decodable(keys=[keys.active, raw_key, keys.job(job_id)],
                                   args=[raw_id, job_id, data, token])  # fmt: skip
    return bool(done)

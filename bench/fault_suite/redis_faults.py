"""Scenarios that fault Redis: a clean restart (AOF), a crash (`kill -9`, AOF everysec),
freezes (SIGSTOP), memory full (`maxmemory`)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from redis.exceptions import ResponseError

from bench.fault_suite.kit import Row, outcome, poll, settled, stage
from worker_runtime import JobSpec, Queue
from worker_runtime.redis_io.connection import CONNECTION_ERRORS

#: Redis' documented loss window for `appendfsync everysec`: "you can lose one second of
#: writes"; a slow disk can postpone the write up to two seconds (aof_flush_postponed).
AOF_EVERYSEC_WINDOW_MS = 2000


async def _ran(q: Queue, ids: set[str], share: float) -> None:
    """Wait until ``share`` of ``ids`` ran to the end (the fault lands mid-run)."""

    async def enough() -> bool:
        done = (await q.counts())["completed"]
        return done >= share * len(ids)

    await poll(enough, within=60, interval=0.05)


async def redis_restart(*, short: bool = False) -> Row:
    """Redis restarted cleanly (SIGTERM, AOF everysec) while 2 workers drain the queue.
    Proves: nothing lost, nothing dead-lettered, nothing stuck."""
    n, restarts = (2_000, 1) if short else (20_000, 3)
    row = Row("redis-restart", n, f"{restarts} clean restarts (AOF everysec)")
    async with (
        stage(appendonly=True, appendfsync="everysec") as st,
        Queue("faults", redis_url=st.redis.url) as q,
    ):
        ids = {j.id for j in await q.enqueue_many([{"ms": 20}] * n)}
        for _ in range(2):
            st.start_worker("faults")
        began = time.monotonic()
        for i in range(restarts):
            await _ran(q, ids, (i + 1) / (restarts + 2))
            await asyncio.to_thread(st.redis.restart)
        drained = await poll(lambda: settled(q, st.read_ledger, ids), within=60)
        row.drain_s = time.monotonic() - began
        await outcome(q, st, row, ids)
        up = len(st.alive()) == 2
    row.checks = {"drained": drained, "0 lost": row.lost == 0, "0 dead": row.dead == 0,
                  "workers up": up}  # fmt: skip
    return row


async def redis_crash(*, short: bool = False) -> Row:
    """Redis `kill -9`ed (AOF everysec) while a producer enqueues one job at a time and 2
    workers drain; restarted a second later. Proves: what is lost was accepted within the
    documented window before the crash, and nothing is stuck (every surviving job runs)."""
    n = 1_500 if short else 10_000
    row = Row("redis-kill-9", n, "1 kill -9 (AOF everysec)")
    accepted: dict[str, float] = {}
    async with (
        stage(appendonly=True, appendfsync="everysec") as st,
        Queue("faults", redis_url=st.redis.url) as q,
    ):
        for _ in range(2):
            st.start_worker("faults")
        began = time.monotonic()
        producer = asyncio.create_task(_produce(q, n, accepted))

        async def halfway() -> bool:
            return len(accepted) >= n // 2

        await poll(halfway, within=60, interval=0.01)
        st.redis.kill()
        crashed_ms = time.time() * 1000
        await asyncio.sleep(1)
        await asyncio.to_thread(st.redis.start)
        await producer
        ids = set(accepted)

        async def nothing_stuck() -> bool:
            counts = await q.counts()
            return not (counts["waiting"] or counts["active"] or counts["delayed"])

        drained = await poll(nothing_stuck, within=60)
        row.drain_s = time.monotonic() - began
        ledger, dead = await outcome(q, st, row, ids)
        up = len(st.alive()) == 2
    lost = ledger.lost(ids, dead)
    outside = [i for i in lost if accepted[i] < crashed_ms - AOF_EVERYSEC_WINDOW_MS]
    row.notes.append(
        f"{len(lost)} lost, all accepted within {AOF_EVERYSEC_WINDOW_MS} ms before the crash: "
        f"{not outside}"
    )
    row.checks = {
        "nothing stuck": drained,
        f"lost only within {AOF_EVERYSEC_WINDOW_MS / 1000:g} s before the crash": not outside,
        "0 dead": row.dead == 0,
        "workers up": up,
    }
    return row


async def _produce(q: Queue, n: int, accepted: dict[str, float]) -> None:
    """Enqueue ``n`` jobs one by one; a job counts as accepted when Redis said so."""
    for i in range(n):
        while True:
            try:
                await q.enqueue({"ms": 5}, id=f"p{i}")
            except CONNECTION_ERRORS:
                await asyncio.sleep(0.05)  # Redis is down: the same id again (dedups)
                continue
            accepted[f"p{i}"] = time.time() * 1000
            break


async def redis_freeze(seconds: int, *, short: bool = False) -> Row:
    """Redis frozen (SIGSTOP) for ``seconds`` while 4 workers run 20 jobs that outlast the
    freeze (default queue settings: one stall tolerated). Proves (item 1): no job of a live
    worker runs twice, no stall is counted, nothing lost or dead-lettered."""
    row = Row(f"redis-freeze-{seconds}", 20, f"Redis frozen {seconds} s (SIGSTOP)")
    async with stage() as st, Queue("plain", redis_url=st.redis.url) as q:
        ids = {j.id for j in await q.enqueue_many([{"ms": (seconds + 4) * 1000}] * 20)}
        # Four workers: after the freeze, each one's lease renewal races every other one's
        # reclaim scan (today whichever Redis runs first decides).
        for _ in range(4):
            st.start_worker("plain", WORKER_CONCURRENCY="5")
        began = time.monotonic()

        async def all_running() -> bool:
            return len((await st.read_ledger()).started) == len(ids)

        await poll(all_running, within=30)
        await asyncio.sleep(1)  # a lease renewal or two first
        assert st.redis.proc is not None
        os.kill(st.redis.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(st.redis.proc.pid, signal.SIGCONT)
        drained = await poll(lambda: settled(q, st.read_ledger, ids), within=seconds + 40)
        row.drain_s = time.monotonic() - began
        await outcome(q, st, row, ids)
        up = len(st.alive()) == 4
    row.checks = {
        "drained": drained,
        "0 ran twice": row.ran_twice == 0,
        "0 stalls counted": row.stalls == 0,
        "0 lost": row.lost == 0,
        "0 dead": row.dead == 0,
        "workers up": up,
    }
    return row


async def redis_oom(*, short: bool = False) -> Row:
    """Redis' `maxmemory` reached (noeviction) while producers enqueue batches of 2,500 jobs
    and 2 workers drain; then memory is raised again. Proves: enqueue is refused with a clear
    error, a refused batch wrote nothing, the workers stay up, every accepted job runs."""
    row = Row("redis-oom", 0, "maxmemory reached")
    accepted: set[str] = set()
    errors: list[str] = []
    partial = 0
    async with (
        stage(extra_args=["--maxmemory-policy", "noeviction"]) as st,
        Queue("faults", redis_url=st.redis.url) as q,
    ):
        used = int((await q.redis.info("memory"))["used_memory"])
        await q.redis.config_set("maxmemory", used + 8 * 2**20)
        for _ in range(2):
            st.start_worker("faults")
        began = time.monotonic()
        for batch in range(40):
            payloads = [{"ms": 50, "pad": "x" * 512} for _ in range(2_500)]
            ids = [f"b{batch}-{i}" for i in range(len(payloads))]
            try:
                await q.enqueue_many(
                    [JobSpec(data=p, id=job_id) for job_id, p in zip(ids, payloads, strict=True)]
                )
            except ResponseError as exc:
                errors.append(str(exc))
                async with q.redis.pipeline(transaction=False) as pipe:
                    for job_id in ids:
                        pipe.exists(q.keys.job(job_id))
                    partial += sum(await pipe.execute())
                if len(errors) >= 2:
                    break
            else:
                accepted.update(ids)
        up_while_full = len(st.alive()) == 2
        await q.redis.config_set("maxmemory", 0)
        drained = await poll(lambda: settled(q, st.read_ledger, accepted), within=120)
        row.drain_s = time.monotonic() - began
        row.jobs = len(accepted)
        await outcome(q, st, row, accepted)
        up = len(st.alive()) == 2
    clear = bool(errors) and all("maxmemory" in e or "OOM" in e for e in errors)
    row.faults = f"maxmemory reached, {len(errors)} enqueues refused"
    row.notes.append(f"refused with: {errors[0] if errors else '(never refused)'}")
    row.notes.append(f"{partial} jobs of refused batches were written anyway")
    row.checks = {
        "enqueue refused with a clear error": clear,
        "no partial writes": partial == 0,
        "workers up": up_while_full and up,
        "drained": drained,
        "0 lost": row.lost == 0,
    }
    return row

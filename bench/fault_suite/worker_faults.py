"""Scenarios that fault the workers: a SIGKILL storm, a garbage corpus, misbehaving
processors (issue 11 item 5)."""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time

import redis.asyncio as aioredis

from bench.fault_suite.kit import Row, Stage, outcome, poll, settled, stage
from bench.fault_suite.ledger import percentile
from worker_runtime import Queue

#: A SIGKILLed worker's jobs must start again within this (p99): lease 3 s + scan 1 s + slack.
RECLAIM_P99_S = 5.0


async def sigkill_storm(*, short: bool = False) -> Row:
    """4 workers drain the queue while one busy worker (holding leases), chosen at random, is
    SIGKILLed every 2 s and replaced at once, as Kubernetes would. Proves: nothing lost,
    nothing dead-lettered, a killed worker's jobs start again within 5 s (p99)."""
    # Short: 3 kills, and jobs long enough that the run outlasts them on an idle machine (a kill
    # every 2 s for the whole run cascades on a loaded one: a worker takes longer to start).
    n, ms, most = (3_000, 500, 3) if short else (100_000, 20, 1_000_000)
    row = Row("sigkill-storm", n, "")
    kills: list[tuple[int, int]] = []
    rnd = random.Random(11)
    async with stage() as st, Queue("faults", redis_url=st.redis.url) as q:
        for _ in range(4):
            st.start_worker("faults")
        ids = {job.id for job in await q.enqueue_many([{"ms": ms}] * n)}
        began = time.monotonic()
        while (
            len(kills) < most and (await q.counts())["waiting"] and time.monotonic() - began < 900
        ):
            await asyncio.sleep(2)
            busy = await _busy(q, st)
            if not busy:
                continue  # every worker is still starting: nothing running to kill
            victim = rnd.choice(busy)
            victim.kill()
            kills.append((victim.pid, int(time.time() * 1000)))
            victim.wait()
            st.start_worker("faults")
        drained = await poll(lambda: settled(q, st.read_ledger, ids), within=120)
        row.drain_s = time.monotonic() - began
        ledger, _dead = await outcome(q, st, row, ids)
    row.faults = f"{len(kills)} SIGKILLs"
    row.reclaim_ms = ledger.reclaim_latencies_ms(kills)
    p99 = percentile(row.reclaim_ms, 99)
    row.checks = {
        "3 or more busy workers killed": len(kills) >= 3,
        "drained": drained,
        "0 lost": row.lost == 0,
        "0 dead": row.dead == 0,
        f"reclaim p99 <= {RECLAIM_P99_S:g} s": p99 is not None and p99 <= RECLAIM_P99_S * 1000,
    }
    return row


async def _busy(q: Queue, st: Stage) -> list[subprocess.Popen[bytes]]:
    """Live workers holding a lease now (a lease token is ``<host>-<pid>-<random>``)."""
    active = await q.redis.zrange(q.keys.active, 0, -1)
    async with q.redis.pipeline(transaction=False) as pipe:
        for job_id in active:
            pipe.hget(q.keys.job(job_id), "lk")
        tokens = await pipe.execute()
    pids = {int(t.rsplit("-", 2)[1]) for t in tokens if t and t.count("-") >= 2}
    return [p for p in st.alive() if p.pid in pids]


#: Payloads no processor can take (the `data` field as stored).
MALFORMED_PAYLOADS: list[bytes] = [
    b"not json", b"", b"{", b"[1,2,3]", b'"a string"', b"null", b'{"ms":"fast"}',
    b'{"ms":1,"extra":true}', b'{"kind":"explode"}', b'{"ms":1e400}',
    b"\xff\xfe\x00 not utf-8", b'{"ms":0,"kind":"\\ud800"}', b"[" * 100_000,
    b'{"ms":99999999999999999999999}', b'{"ms":NaN}',
]  # fmt: skip
#: Job hashes with fields the runtime must read and cannot (None deletes the field).
GARBAGE_FIELDS: list[dict[str, bytes | None]] = [
    {"att": b"x"}, {"stl": b"x"}, {"att": b"one", "stl": b"[]"}, {"data": None},
    {"data": None, "att": b"x"}, {"hist": b"{", "data": b"not json"},
    {"hist": b"5", "data": b"[]"}, {"hist": b'{"a":1}', "data": b"null"},
    {"att": b"x", "data": b"\xff"},
]  # fmt: skip


async def garbage_corpus(*, short: bool = False) -> Row:
    """24 jobs whose payload or hash is garbage, ahead of 200 good ones, on one worker.
    Proves: each garbage job is dead-lettered with its reason, every good job runs once,
    the worker stays up and keeps taking jobs."""
    good = 200
    corpus = len(MALFORMED_PAYLOADS) + len(GARBAGE_FIELDS)
    row = Row("garbage-corpus", corpus + good + 20, f"{corpus} garbage jobs")
    async with stage() as st, Queue("fragile", redis_url=st.redis.url) as q:
        bad = [job.id for job in await q.enqueue_many([{"ms": 0}] * corpus)]
        # A client of its own that writes bytes as they are: garbage is not always UTF-8.
        async with aioredis.Redis.from_url(st.redis.url) as writer:
            for job_id, data in zip(bad, MALFORMED_PAYLOADS, strict=False):
                await writer.hset(q.keys.job(job_id), "data", data)
            for job_id, fields in zip(bad[len(MALFORMED_PAYLOADS) :], GARBAGE_FIELDS, strict=True):
                for name, value in fields.items():
                    if value is None:
                        await writer.hdel(q.keys.job(job_id), name)
                    else:
                        await writer.hset(q.keys.job(job_id), name, value)
        good_ids = {job.id for job in await q.enqueue_many([{"ms": 5}] * good)}
        worker = st.start_worker("fragile")
        began = time.monotonic()
        await poll(lambda: settled(q, st.read_ledger, good_ids | set(bad)), within=30)
        # Still taking jobs after the corpus?
        later = {job.id for job in await q.enqueue_many([{"ms": 0}] * 20)}
        ids = good_ids | later
        drained = await poll(lambda: settled(q, st.read_ledger, ids | set(bad)), within=15)
        row.drain_s = time.monotonic() - began
        ledger, dead = await outcome(q, st, row, ids | set(bad))
        reasons = [await _reason(q, job_id) for job_id in bad]
        up = worker.poll() is None
    row.lost = len(ledger.lost(ids, set()))
    with_reason = sum(1 for job_id, why in zip(bad, reasons, strict=True) if job_id in dead and why)
    row.notes.append(f"{with_reason}/{corpus} garbage jobs dead-lettered with a reason")
    row.checks = {
        "drained": drained,
        "each garbage job dead-lettered with its reason": with_reason == corpus,
        "0 good jobs lost": row.lost == 0,
        "0 ran twice": row.ran_twice == 0,
        "worker up": up,
    }
    return row


async def _reason(q: Queue, job_id: str) -> str:
    try:
        return str(await q.redis.hget(q.keys.job(job_id), "err") or "")
    except UnicodeDecodeError:
        return "(undecodable)"


#: A processor ignoring cancellation may keep its lease this long past its timeout; a worker
#: with one may take this long past its shutdown grace to exit (item 5's bounds).
HARD_KILL_BOUND_S = 10.0


async def misbehaving_processors(*, short: bool = False) -> Row:
    """Processors that raise CancelledError, raise SystemExit, or ignore cancellation past
    their 1 s timeout, among 50 good jobs, on one worker (shutdown grace 2 s).
    Proves (item 5): each misbehaving attempt fails (dead-lettered, run once), the worker stays
    up, the deaf job's lease is not renewed past its timeout + the bound, and SIGTERM stops the
    worker within its grace + the bound."""
    row = Row("misbehaving-processors", 61, "5 CancelledError, 5 SystemExit, 1 ignores cancel")
    async with stage() as st, Queue("fragile", redis_url=st.redis.url) as q:
        bad = [
            j.id for j in await q.enqueue_many([{"kind": "cancel"}] * 5 + [{"kind": "exit"}] * 5)
        ]
        good = {j.id for j in await q.enqueue_many([{"ms": 5}] * 50)}
        worker = st.start_worker("fragile", WORKER_SHUTDOWN_GRACE_SECONDS="2")
        began = time.monotonic()
        drained = await poll(lambda: settled(q, st.read_ledger, good | set(bad)), within=20)
        row.drain_s = time.monotonic() - began
        up = worker.poll() is None
        deaf = (await q.enqueue({"kind": "deaf", "ms": 60_000})).id
        longest_lease = await _longest_lease(q, deaf, watch=1 + HARD_KILL_BOUND_S + 5)
        ledger, dead = await outcome(q, st, row, good | set(bad))
        stopped = _sigterm_seconds(worker, limit=2 + HARD_KILL_BOUND_S + 20)
    started = ledger.started
    row.ran_twice = (row.ran_twice or 0) + sum(1 for job_id in bad if started[job_id] > 1)
    row.lost = len(ledger.lost(good, set()))
    bad_dead = sum(1 for job_id in bad if job_id in dead)
    lease_bound = (1 + HARD_KILL_BOUND_S) * 1000 + 3000
    row.notes.append(
        f"deaf job's lease reached {longest_lease / 1000:.1f} s past its start; "
        f"SIGTERM took {'> limit' if stopped is None else f'{stopped:.1f} s'}"
    )
    row.checks = {
        "drained": drained,
        "each misbehaving attempt fails (dead-lettered)": bad_dead == len(bad),
        "misbehaving jobs ran once": row.ran_twice == 0,
        "0 good jobs lost": row.lost == 0,
        "worker up": up,
        "lease not renewed past timeout + bound": longest_lease <= lease_bound,
        "shutdown within grace + bound": stopped is not None and stopped <= 2 + HARD_KILL_BOUND_S,
    }
    return row


async def _longest_lease(q: Queue, job_id: str, *, watch: float) -> int:
    """Watch a job for ``watch`` seconds; the furthest its lease deadline got past its start."""
    longest = 0
    deadline = time.monotonic() + watch
    while time.monotonic() < deadline:
        lease = await q.redis.zscore(q.keys.active, job_id)
        start = await q.redis.hget(q.keys.job(job_id), "st")
        if lease is not None and start:
            longest = max(longest, int(lease) - int(start))
        await asyncio.sleep(0.2)
    return longest


def _sigterm_seconds(proc: subprocess.Popen[bytes], *, limit: float) -> float | None:
    if proc.poll() is not None:
        return 0.0
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None
    return time.monotonic() - began

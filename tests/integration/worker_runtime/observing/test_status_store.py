"""Job status rows in real databases (SQLite file, private PostgreSQL), and a database outage
in the middle of a run that loses nothing."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import text

from tests.harness.async_waiting import eventually
from tests.harness.postgres_server import PostgresServer
from tests.integration.worker_runtime.conftest import fast_settings, running
from tests.integration.worker_runtime.observed import retrying
from worker_runtime import Job, NonRetryableError, Queue, Worker
from worker_runtime.observing.health import health_of
from worker_runtime.observing.status_store import StatusRecorder, StatusStore
from worker_runtime.observing.status_store.buffer import Batch, StatusBuffer
from worker_runtime.observing.status_store.retention import Retention

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL for this module (fails, never skips, when PostgreSQL is not installed)."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/status.db"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    store = StatusStore(server.url)
    async with store.engine.begin() as conn:  # a clean schema for each test
        await conn.execute(text("DROP SCHEMA public CASCADE"))
        await conn.execute(text("CREATE SCHEMA public"))
    await store.close()
    yield server.url


class Order(BaseModel):
    userId: str
    mode: str = "ok"


async def _counts(store: StatusStore, expected: dict[str, int]) -> bool:
    return await store.counts() == expected


async def test_lifecycle_rows(redis_url: str, store_url: str) -> None:
    recorder = StatusRecorder(StatusStore(store_url), flush_seconds=0.05)
    worker = Worker(settings=fast_settings(redis_url), observers=[recorder], extensions=[recorder])
    release = asyncio.Event()

    @worker.processor("orders", config=retrying(2))
    async def orders(job: Job[Order]) -> dict[str, Any]:
        if job.data.mode == "wait":
            await release.wait()
        if job.data.mode == "boom":
            raise ValueError("card declined")
        return {"charged": True, "user": job.data.userId}

    @worker.processor("audit", config=retrying(1, dead_letter=False))
    async def audit(job: Job[Order]) -> None:
        raise NonRetryableError("audit log closed")

    reader = StatusStore(store_url)
    try:
        async with (
            running(worker),
            Queue("orders", redis_url=redis_url) as orders_q,
            Queue("audit", redis_url=redis_url) as audit_q,
        ):
            (waiting,) = await orders_q.enqueue_many([{"userId": "u-wait", "mode": "wait"}])
            await eventually(lambda: _status_is(reader, "orders", waiting.id, "processing"))

            ok = await orders_q.enqueue_many([{"userId": f"u-{i}"} for i in range(5)])
            (boom,) = await orders_q.enqueue_many([{"userId": "u-boom", "mode": "boom"}])
            (closed,) = await audit_q.enqueue_many([{"userId": "u-audit"}])
            release.set()
            expected = {"completed": 6, "dead": 1, "failed": 1}
            await eventually(lambda: _counts(reader, expected), description=str(expected))

        row = await reader.get("orders", ok[0].id)
        assert row is not None
        assert (row.status, row.attempts, row.owner_id) == ("completed", 1, "u-0")
        assert row.worker_id == worker.id
        assert row.result_summary == '{"charged":true,"user":"u-0"}'
        assert row.started_at is not None
        assert row.finished_at is not None
        assert row.created_at <= row.started_at <= row.finished_at <= row.updated_at

        dead = await reader.get("orders", boom.id)
        assert dead is not None
        assert (dead.status, dead.attempts, dead.error) == ("dead", 2, "card declined")
        failed = await reader.get("audit", closed.id)
        assert failed is not None
        assert (failed.status, failed.attempts, failed.owner_id) == ("failed", 1, "u-audit")

        (letter,) = await reader.dead_letters(queue="orders")
        assert letter.job_id == boom.id
        assert letter.owner_id == "u-boom"
        assert letter.error_type == "ValueError"
        assert "card declined" in (letter.traceback or "")
        assert '"mode":"boom"' in (letter.payload or "").replace(" ", "")
        assert [r.job_id for r in await reader.find(owner_id="u-3")] == [ok[3].id]
        assert len(await reader.find(status="completed", queue="orders")) == 6
    finally:
        await reader.close()


async def _status_is(store: StatusStore, queue: str, job_id: str, status: str) -> bool:
    row = await store.get(queue, job_id)
    return row is not None and row.status == status


async def test_migrations_are_idempotent_and_concurrent_safe(store_url: str) -> None:
    stores = [StatusStore(store_url) for _ in range(3)]
    try:
        await asyncio.gather(*(s.migrate() for s in stores))  # several pods starting at once
        await stores[0].migrate()
        async with stores[0].engine.connect() as conn:
            version = (
                await conn.execute(text("SELECT version_num FROM shoal_status_alembic_version"))
            ).scalar_one()
        assert version == "0001"
    finally:
        for s in stores:
            await s.close()


@pytest.mark.postgres
async def test_database_outage_loses_no_record(redis_url: str) -> None:
    with PostgresServer() as pg:
        recorder = StatusRecorder(StatusStore(pg.url, timeout_seconds=2), flush_seconds=0.05)
        worker = Worker(
            settings=fast_settings(redis_url), observers=[recorder], extensions=[recorder]
        )

        @worker.processor("outage")
        async def handle(job: Job[Order]) -> None:
            pass

        reader = StatusStore(pg.url)
        try:
            async with running(worker), Queue("outage", redis_url=redis_url) as q:
                await q.enqueue_many([{"userId": f"a-{i}"} for i in range(100)])
                await eventually(lambda: _counts(reader, {"completed": 100}), timeout=20)

                await asyncio.to_thread(pg.stop)
                await q.enqueue_many([{"userId": f"b-{i}"} for i in range(300)])
                # Jobs keep flowing while the database is down ...
                await eventually(lambda: _done(q, 400), timeout=20, description="400 completed")
                # ... the outage shows in health, and the records wait in the buffer.
                await eventually(lambda: _async(not recorder.ok), description="store marked down")
                component = next(
                    c for c in health_of(worker).components if c.name == "status_store"
                )
                assert component.ok is False
                assert len(recorder.buffer) > 0

                await asyncio.to_thread(pg.start)
                await eventually(
                    lambda: _counts(reader, {"completed": 400}), timeout=30, description="all rows"
                )
                await eventually(lambda: _async(recorder.ok), description="store marked up")
            assert recorder.buffer.dropped == 0
            owners = {r.owner_id for r in await reader.find(limit=1000)}
            assert owners == {f"a-{i}" for i in range(100)} | {f"b-{i}" for i in range(300)}
        finally:
            await reader.close()


async def _done(q: Queue, n: int) -> bool:
    return (await q.counts())["completed"] >= n


async def _async(value: bool) -> bool:
    return value


async def test_sqlite_writer_runs_at_low_priority_until_it_falls_behind(tmp_path: Path) -> None:
    """The SQLite child process: nice 19 by default, nice 5 for batches written while behind,
    back to nice 19 once caught up; completions arrive packed."""
    store = StatusStore(f"sqlite:///{tmp_path}/status.db")
    await store.migrate()
    writer = store._writer
    assert writer is not None
    buffer = StatusBuffer()
    ours = os.getpriority(os.PRIO_PROCESS, 0)

    async def write(job_ids: list[str], *, behind: bool) -> int:
        for job_id in job_ids:
            buffer.completed_job("q", job_id, 1, 1000, 2000, None, None)
        await store.write(buffer.take(), worker_id="w", behind=behind)
        process = writer._process
        assert process is not None
        return os.getpriority(os.PRIO_PROCESS, process.pid) - ours

    try:
        assert await write(["a"], behind=False) == min(19, 19 - ours)
        assert await write(["b", "c"], behind=True) == min(19, ours + 5) - ours
        assert await write(["d"], behind=False) == min(19, 19 - ours)
        assert await store.counts() == {"completed": 4}
    finally:
        await store.close()


async def test_stopping_during_a_write_loses_no_record(redis_url: str, tmp_path: Path) -> None:
    """`stop` cancels the flush task; a batch it was writing goes back to the buffer and is
    written by the final flush (it used to vanish with the task)."""
    path = tmp_path / "status.db"
    recorder = StatusRecorder(StatusStore(f"sqlite:///{path}"), flush_seconds=0.05)
    worker = Worker(settings=fast_settings(redis_url), observers=[recorder], extensions=[recorder])

    @worker.processor("midwrite")
    async def handle(job: Job[Order]) -> None:
        pass

    reader = StatusStore(f"sqlite:///{path}")
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        async with Queue("midwrite", redis_url=redis_url) as q:
            await worker.start()
            await q.enqueue_many([{"userId": f"a-{i}"} for i in range(10)])
            await eventually(lambda: _counts(reader, {"completed": 10}), description="10 rows")

            blocker.execute("BEGIN IMMEDIATE")  # the next write waits for this lock
            await q.enqueue_many([{"userId": f"b-{i}"} for i in range(20)])
            await eventually(lambda: _done(q, 30), description="30 completed")
            # Taken by a flush and not written: the write is in flight.
            await eventually(lambda: _async(len(recorder.buffer) == 0), description="in flight")

            stopping = asyncio.create_task(worker.stop(grace_seconds=1))
            # Cancelled with the flush task, the batch goes back; the final flush takes it
            # again and waits for the lock, gives up after SQLite's 5 s busy timeout and puts
            # it back once more (without the fix, it was gone for good at the cancel).
            await eventually(
                lambda: _async(len(recorder.buffer) == 20),
                timeout=30,
                description="batch put back",
            )
            blocker.execute("ROLLBACK")
            await stopping
        assert await reader.counts() == {"completed": 30}
        assert recorder.buffer.dropped == 0
    finally:
        blocker.close()
        await reader.close()


def _entry(status: str, updated_ms: int) -> tuple[Any, ...]:
    # (status, attempts, owner, error, result, created, started, finished, updated)
    return (status, 1, None, None, None, updated_ms, None, None, updated_ms)


async def test_retention_prunes_old_and_excess_finished_rows_only(store_url: str) -> None:
    store = StatusStore(store_url)
    now = 10_000_000_000
    minute = 60_000
    try:
        await store.migrate()
        entries = {("q", f"done-{i:03}"): _entry("completed", now - i * minute) for i in range(60)}
        entries |= {("q", f"dead-{i:03}"): _entry("dead", now - i * minute) for i in range(10)}
        # Unfinished rows are kept whatever their age (a pending job may be a retry or delayed);
        # a final failure is finished.
        entries |= {("q", f"wait-{i}"): _entry("pending", now - 999 * minute) for i in range(5)}
        entries[("q", "failed")] = _entry("failed", now - 999 * minute)
        old_letter = ("q", "dead-009", None, "boom", None, None, 1, None, now - 999 * minute)
        new_letter = ("q", "dead-000", None, "boom", None, None, 1, None, now)
        await store.write(Batch(entries, {}, 0, [old_letter, new_letter]), worker_id="w")

        # Age 30 min: completed 0..29 and dead 0..9 stay (40 finished); the cap of 25 then
        # keeps the 25 newest of those.
        rules = Retention(max_age_seconds=30 * 60 - 1, max_rows=25)
        assert await store.prune(rules, now_ms=now) == 30 + 1 + 1 + 15
        counts = await store.counts()
        assert counts == {"completed": 15, "dead": 10, "pending": 5}
        kept = {r.job_id for r in await store.find(status="completed", limit=100)}
        assert kept == {f"done-{i:03}" for i in range(15)}
        assert [d.dead_at for d in await store.dead_letters()] == [now]
        assert await store.prune(rules, now_ms=now) == 0  # idempotent
        assert await store.prune(Retention(max_age_seconds=0, max_rows=0), now_ms=now) == 0
    finally:
        await store.close()


async def test_a_worker_keeps_its_store_within_the_row_cap(redis_url: str, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/status.db"
    recorder = StatusRecorder(
        StatusStore(url),
        flush_seconds=0.05,
        retention=Retention(max_rows=50, interval_seconds=0.1),
    )
    worker = Worker(settings=fast_settings(redis_url), observers=[recorder], extensions=[recorder])

    @worker.processor("capped")
    async def handle(job: Job[Order]) -> None:
        return None

    async with running(worker), Queue("capped", redis_url=redis_url) as q:
        await q.enqueue_many([{"userId": f"u-{i}"} for i in range(400)])
        await eventually(lambda: _done(q, 400), description="400 jobs done")
        await eventually(lambda: _async(recorder.written >= 400), description="rows written")
        await eventually(lambda: _async(recorder.pruned >= 350), description="pruned to 50")
    with sqlite3.connect(tmp_path / "status.db") as db:
        assert db.execute("SELECT count(*) FROM shoal_job_status").fetchone()[0] == 50

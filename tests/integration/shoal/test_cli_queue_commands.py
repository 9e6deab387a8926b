"""The `shoal` CLI against a real Redis: enqueue, stats, dlq; one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.harness.redis_server import RedisServer
from worker_runtime import JobSpec, Queue

pytestmark = pytest.mark.integration


def shoal(*args: str, env: dict[str, str] | None = None, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "shoal", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env=env,
        timeout=60,
    )


def test_enqueue_prints_id_and_stats_json_counts(redis_url: str) -> None:
    out = shoal("enqueue", "emails", "--data", '{"to": "x"}', "--redis-url", redis_url)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.strip()
    assert len(job_id) == 32
    again = shoal("enqueue", "emails", "--data", "{}", "--id", "fixed-1", "--redis-url", redis_url)
    dup = shoal("enqueue", "emails", "--data", "{}", "--id", "fixed-1", "--redis-url", redis_url)
    assert again.stdout.strip() == dup.stdout.strip() == "fixed-1"
    stats = shoal("stats", "emails", "--json", "--redis-url", redis_url)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout) == {
        "waiting": 2, "active": 0, "delayed": 0, "completed": 0, "failed": 0, "dead": 0,
    }  # fmt: skip


def test_redis_url_from_environment(redis_url: str) -> None:
    import os

    env = {**os.environ, "REDIS_URL": redis_url}
    assert shoal("enqueue", "envq", env=env).returncode == 0
    stats = shoal("stats", "envq", "--json", env=env)
    assert json.loads(stats.stdout)["waiting"] == 1


def test_enqueue_jsonl_from_stdin(redis_url: str) -> None:
    lines = "\n".join(json.dumps({"i": i}) for i in range(1200)) + "\n"
    out = shoal("enqueue", "bulk", "--jsonl", "-", "--redis-url", redis_url, stdin=lines)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1200"
    stats = shoal("stats", "bulk", "--json", "--redis-url", redis_url)
    assert json.loads(stats.stdout)["waiting"] == 1200


async def test_dlq_list_replay_purge(redis_url: str) -> None:
    async with Queue("dq", redis_url=redis_url) as q:
        await q.enqueue_many([JobSpec(data={"n": i}, id=f"d{i}") for i in range(3)])
        # Dead-letter them the way a worker does: lease, then fail for good.
        k = q.keys
        await q.scripts.fetch(keys=[k.wait, k.active, k.delayed, k.marker, k.job_prefix],
                              args=[60_000, 3, "w"])  # fmt: skip
        fail_keys = [k.active, k.wait, k.delayed, k.dead, k.failed, k.stats, k.marker,
                     k.job_prefix]  # fmt: skip
        for i in range(3):
            record = json.dumps({"attempt": 1, "error": f"bad {i}"})
            args = [f"d{i}", "w", "dead", 0, f"bad {i}", "tb", record]
            await q.scripts.fail(keys=fail_keys, args=args)

    listed = shoal("dlq", "list", "dq", "--json", "--redis-url", redis_url)
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["error"], r["data"]) for r in rows] == [
        ("d0", "bad 0", {"n": 0}), ("d1", "bad 1", {"n": 1}), ("d2", "bad 2", {"n": 2}),
    ]  # fmt: skip
    assert rows[0]["history"][0]["error"] == "bad 0"
    one = shoal("dlq", "replay", "dq", "d1", "--redis-url", redis_url)
    assert one.stdout.strip() == "replayed 1 job(s)"
    purge = shoal("dlq", "purge", "dq", "--all", "--redis-url", redis_url)
    assert purge.stdout.strip() == "purged 2 job(s)"
    stats = json.loads(shoal("stats", "dq", "--json", "--redis-url", redis_url).stdout)
    assert (stats["waiting"], stats["dead"]) == (1, 0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["enqueue", "Bad Name", "--data", "{}"], "invalid queue name"),
        (["enqueue", "q", "--data", "{not json"], "--data is not valid JSON"),
        (["dlq", "replay", "q"], "give job IDS or --all"),
        (["worker", "no_such_module:app"], "cannot import 'no_such_module'"),
        (["worker", "nocolon"], "APP must look like"),
        (["worker", "worker_runtime.demo:nothing"], "has no attribute 'nothing'"),
    ],
)
def test_bad_arguments_give_one_line_error(args: list[str], message: str, redis_url: str) -> None:
    out = shoal(*args, "--redis-url", redis_url)
    assert out.returncode != 0
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [["enqueue", "q", "--data", "{}"], ["stats", "q", "--json"], ["dlq", "list", "q"]],
)
def test_unreachable_redis_is_one_line(args: list[str]) -> None:
    dead = RedisServer()  # a free port nobody listens on
    out = shoal(*args, "--redis-url", dead.url)
    assert out.returncode == 1
    assert out.stderr.startswith("Error: cannot reach Redis at redis://127.0.0.1:")
    assert len(out.stderr.strip().splitlines()) == 1
    assert "Traceback" not in out.stderr


def test_key_prefix_targets_one_pools_keyspace(redis_url: str) -> None:
    import os

    out = shoal("enqueue", "shared", "--key-prefix", "team-a", "--redis-url", redis_url)
    assert out.returncode == 0, out.stderr
    env = {**os.environ, "SHOAL_KEY_PREFIX": "team-a"}
    team = shoal("stats", "shared", "--json", "--redis-url", redis_url, env=env)
    assert json.loads(team.stdout)["waiting"] == 1
    default = shoal("stats", "shared", "--json", "--redis-url", redis_url)
    assert json.loads(default.stdout)["waiting"] == 0  # another team's queue of the same name
    bad = shoal("stats", "shared", "--key-prefix", "a{b}", "--redis-url", redis_url)
    assert bad.returncode != 0

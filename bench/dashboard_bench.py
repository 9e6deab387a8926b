"""Dashboard page render time with a large dead-letter store: p50/p95 per page over HTTP.

Fills one queue's dead-letter store with --dead jobs the way production does (enqueue, and a
worker whose processor fails non-retryably: the public API has no direct dead-letter path),
then serves `shoal dashboard` in its own process and times sequential GETs of each page from
this one; appends its table to bench/RESULTS.md unless --no-record.

    python bench/dashboard_bench.py [--dead 100000] [--requests 200] [--pools 1000] [--no-record]

--pools N also starts the Kubernetes test cluster (kwok; binaries from scripts/k8s-binaries.sh),
creates N WorkerPools with a status each, and times the Pools page (`--kube`) as well, with the
dashboard process's CPU use while idle (its one LIST of every pool per 5 s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from host import CpuAccount, git_head, utc_now, versions  # noqa: E402
from results_table import append_results  # noqa: E402

from tests.harness.async_waiting import eventually  # noqa: E402
from tests.harness.k8s import KubeCluster  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.redis_server import RedisServer, redis_server_binary  # noqa: E402
from worker_runtime import Job, NonRetryableError, Queue, Worker  # noqa: E402

QUEUE = "dashbench"
OTHER_QUEUES = 50  # the queues page lists these too


async def fill(url: str, dead: int) -> float:
    """Dead-letter ``dead`` jobs through a real worker; seconds it took."""
    started = time.monotonic()
    async with Queue(QUEUE, redis_url=url) as q:
        worker = Worker(redis_url=url, concurrency=200, max_jobs_per_worker=200)

        @worker.processor(QUEUE)
        async def fail(job: Job[Any]) -> None:
            raise NonRetryableError(f"invalid address #{job.data['n']}")

        await worker.start()
        try:
            for start in range(0, dead, 10_000):
                await q.enqueue_many([{"n": n} for n in range(start, min(dead, start + 10_000))])

            async def all_dead() -> bool:
                return (await q.counts())["dead"] >= dead

            await eventually(all_dead, timeout=600, interval=0.2, description="dead-lettering")
        finally:
            await worker.stop()
        for i in range(OTHER_QUEUES):
            async with Queue(f"other-{i}", redis=q.redis) as other:
                await other.enqueue({"i": i})
    return time.monotonic() - started


def make_pools(cluster: KubeCluster, count: int) -> None:
    """``count`` WorkerPools in namespace ``bench``, each with an operator-like status."""
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client

    cluster.kubectl(
        "apply", "--server-side", "-f", str(ROOT / "crds" / "workerpools.shoal.dev.yaml")
    )
    cluster.kubectl("wait", "--for", "condition=Established", "crd/workerpools.shoal.dev")
    cluster.kubectl("create", "namespace", "bench")
    custom = client.CustomObjectsApi(cluster.api_client())

    def one(i: int) -> None:
        name = f"pool-{i:04d}"
        body = {
            "apiVersion": "shoal.dev/v1alpha1", "kind": "WorkerPool", "metadata": {"name": name},
            "spec": {"image": "registry.invalid/w:1", "queues": [f"q{i}"]},
        }  # fmt: skip
        for attempt in range(20):  # a new CRD's storage answers 429/404 for a moment
            try:
                custom.create_namespaced_custom_object("shoal.dev", "v1alpha1", "bench",
                                                       "workerpools", body)  # fmt: skip
                break
            except client.exceptions.ApiException:
                if attempt == 19:
                    raise
                time.sleep(0.5)
        status = {
            "replicas": i % 5, "readyReplicas": i % 5, "desiredReplicas": i % 7, "backlog": i * 3,
            "lastScaleReason": f"backlog {i * 3}, drain in 30 s -> {i % 7}",
            "conditions": [{"type": "Ready", "status": "True", "reason": "PodsReady",
                            "message": "ok"}],
        }  # fmt: skip
        custom.patch_namespaced_custom_object_status(
            "shoal.dev", "v1alpha1", "bench", "workerpools", name, {"status": status}
        )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(count)))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timings(base: str, path: str, requests: int) -> list[float]:
    async with aiohttp.ClientSession() as http:
        for _ in range(3):  # warm up
            (await http.get(base + path)).release()
        out = []
        for _ in range(requests):
            begin = time.perf_counter()
            async with http.get(base + path) as response:
                await response.read()
                assert response.status == 200, (path, response.status)
            out.append((time.perf_counter() - begin) * 1000)
    return sorted(out)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p * len(values)))]


async def wait_up(base: str) -> None:
    async with aiohttp.ClientSession() as http:

        async def up() -> bool:
            try:
                (await http.get(base + "/queues")).release()
            except aiohttp.ClientError:
                return False
            return True

        await eventually(up, timeout=30, interval=0.1, description="the dashboard")


async def main(args: argparse.Namespace) -> str:
    cpu = CpuAccount.start()
    with RedisServer() as redis, contextlib.ExitStack() as stack:
        kube_args: list[str] = []
        if args.pools:
            cluster = stack.enter_context(KubeCluster(nodes=1))
            begin = time.monotonic()
            await asyncio.to_thread(make_pools, cluster, args.pools)
            pools_seconds = time.monotonic() - begin
            kube_args = ["--kube", "--kubeconfig", str(cluster.kubeconfig)]
        fill_seconds = await fill(redis.url, args.dead)
        async with Queue(QUEUE, redis_url=redis.url) as q:
            some_id = (await q.dead_letter_ids(limit=1))[0]
        port = free_port()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "operator")])}
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoal", "dashboard", "--redis-url", redis.url, "--port",
            str(port), *kube_args, env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        pages = {
            f"queues ({OTHER_QUEUES + 1} queues)": "/queues",
            "dead-letter, newest page (50 jobs)": f"/dead?queue={QUEUE}",
            "dead-letter, oldest page": f"/dead?queue={QUEUE}&start={args.dead - 50}",
            "dead-letter, filter without a match (2,000 scanned)": f"/dead?queue={QUEUE}&q=zzz",
            "job by id (any queue)": f"/jobs?id={some_id}",
            "workers": "/workers",
        }
        if args.pools:
            last = (args.pools - 1) // 50
            pages[f"pools, first page (50 of {args.pools:,})"] = "/pools"
            pages["pools, last page"] = f"/pools?page={last}"
        try:
            await wait_up(base)
            notes = []
            if args.pools:
                await asyncio.sleep(6)  # the first LIST is done and a second one began
                before, begin = cpu_seconds(server.pid), time.monotonic()
                await asyncio.sleep(30)
                idle = (cpu_seconds(server.pid) - before) / (time.monotonic() - begin)
                notes.append(
                    f"{args.pools:,} WorkerPools created (with status) in {pools_seconds:.1f} s; "
                    f"the dashboard process idle (no browser) with `--kube`: {idle:.1%} of a "
                    "core over 30 s (one LIST of every pool per 5 s, plus the 2 s queue sample)."
                )
            rows = []
            for label, path in pages.items():
                t = await timings(base, path, args.requests)
                rows.append(f"| {label} | {pct(t, 0.5):.1f} | {pct(t, 0.95):.1f} | {t[-1]:.1f} |")
        finally:
            server.terminate()
            await asyncio.wait_for(server.wait(), 10)
    return "\n".join(
        [
            f"## Dashboard page render time — {utc_now()}, commit {git_head(ROOT)}",
            "",
            f"{args.dead:,} dead-lettered jobs in one queue (filled by a real worker failing them "
            f"non-retryably in {fill_seconds:.1f} s) plus {OTHER_QUEUES} small queues; "
            f"`shoal dashboard` in its own process; {args.requests} sequential GETs per page "
            "from one client, whole response read; milliseconds.",
            f"Machine: {cpu.summary()}. {versions(redis_server_binary())}.",
            *notes,
            "",
            "| page | p50 ms | p95 ms | max ms |",
            "|---|---|---|---|",
            *rows,
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--pools", type=int, default=0)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args()
    text = asyncio.run(main(args))
    print(text)
    if not args.no_record:
        append_results(args.results, text)

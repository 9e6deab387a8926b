"""Take the screenshots in docs/img/dashboard-*.png: a real Redis, a real worker under varying
load, WorkerPools on the test cluster (kwok; binaries from scripts/k8s-binaries.sh), and the
dashboard in Debian's chromium.

    PYTHONPATH=.:operator python scripts/dashboard_screenshots.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kubernetes import client  # noqa: E402

from tests.harness.dashboard import TOKEN, chromium, serve_dashboard  # noqa: E402
from tests.harness.k8s import KubeCluster  # noqa: E402
from tests.harness.redis_server import RedisServer  # noqa: E402
from worker_runtime import Job, NonRetryableError, Queue, QueueConfig, Worker  # noqa: E402
from worker_runtime.observing.heartbeat import Heartbeat  # noqa: E402

IMG = ROOT / "docs" / "img"
CRD = ROOT / "crds" / "workerpools.shoal.dev.yaml"
GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workerpools"


def pools(cluster: KubeCluster) -> None:
    cluster.kubectl("apply", "--server-side", "-f", str(CRD))
    cluster.kubectl("wait", "--for", "condition=Established", "crd/workerpools.shoal.dev")
    cluster.kubectl("create", "namespace", "shop")
    custom = client.CustomObjectsApi(cluster.api_client())
    rows = [
        ("emails", 3, 3, 3, 240, "backlog 240, 41 jobs/s arriving, drain in 30 s -> 3", "True"),
        ("thumbnails", 8, 6, 10, 5200, "backlog 5200, 160 jobs/s arriving, drain in 30 s -> 10",
         "False"),
        ("reports", 0, 0, 0, 0, "idle for 60 s (cooldown) -> 0", "True"),
    ]  # fmt: skip
    for name, replicas, ready, desired, backlog, reason, ok in rows:
        custom.create_namespaced_custom_object(GROUP, VERSION, "shop", PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool", "metadata": {"name": name},
            "spec": {"image": "registry.example/shop-worker:1.4", "queues": [name]},
        })  # fmt: skip
        scaling = "True" if desired != replicas else "False"
        ready_reason = "PodsReady" if ok == "True" else "PodsNotReady"
        status = {
            "replicas": replicas, "readyReplicas": ready, "desiredReplicas": desired,
            "backlog": backlog, "inFlight": ready * 10, "oldestJobAgeSeconds": backlog / 50,
            "lastScaleTime": "2026-12-02T04:10:00Z", "lastScaleReason": reason,
            "conditions": [
                {"type": "Ready", "status": ok, "reason": ready_reason,
                 "message": f"{ready}/{replicas} workers ready"},
                {"type": "Scaling", "status": scaling, "reason": "Backlog", "message": reason},
                {"type": "Degraded", "status": "False", "reason": "AsExpected", "message": ""},
            ],
        }  # fmt: skip
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, "shop", PLURAL, name, {"status": status}
        )


def worker(url: str) -> Worker:
    w = Worker(redis_url=url, extensions=[Heartbeat(interval_seconds=1)])
    rng = random.Random(3)

    @w.processor("emails", config=QueueConfig(concurrency=20))
    async def send(job: Job[Any]) -> str:
        await asyncio.sleep(0.05)
        if rng.random() < 0.05:
            raise NonRetryableError(f"550 mailbox unavailable: {job.data['to']}")
        return "sent"

    @w.processor("thumbnails", config=QueueConfig(concurrency=4))
    async def thumb(job: Job[Any]) -> dict[str, int]:
        await asyncio.sleep(0.2)
        await job.progress({"step": "resize", "progress": 1.0})
        return {"width": 320}

    return w


async def traffic(url: str, seconds: float) -> None:
    async with (
        Queue("emails", redis_url=url) as emails,
        Queue("thumbnails", redis=emails.redis) as th,
    ):
        await Queue("reports", redis=emails.redis).enqueue({"month": "2026-11"}, delay_seconds=3600)
        for tick in range(int(seconds * 2)):
            wave = 1 + math.sin(tick / 12)
            await emails.enqueue_many(
                [{"to": f"user{tick}-{i}@example.com"} for i in range(int(8 * wave))]
            )
            await th.enqueue_many([{"image": f"img-{tick}-{i}.jpg"} for i in range(int(6 * wave))])
            await asyncio.sleep(0.5)


async def main(seconds: float) -> None:
    IMG.mkdir(parents=True, exist_ok=True)
    with RedisServer() as redis, KubeCluster(nodes=1) as cluster:
        pools(cluster)
        w = worker(redis.url)
        await w.start()
        try:
            async with serve_dashboard(
                redis_url=redis.url, allow_writes=True, token=TOKEN, kube=True,
                kubeconfig=str(cluster.kubeconfig), sample_seconds=1.0,
                history_seconds=max(60.0, seconds),
            ) as base, chromium() as browser:  # fmt: skip
                await traffic(redis.url, seconds)
                async with Queue("emails", redis_url=redis.url) as q:
                    dead_id = (await q.dead_letter_ids(limit=1))[0]
                page = await browser.new_page(viewport={"width": 1360, "height": 760})
                shots = {
                    "queues": "/queues",
                    "workers": "/workers",
                    "dead-letter": "/dead?queue=emails",
                    "job": f"/jobs?queue=emails&id={dead_id}",
                    "pools": "/pools",
                }
                for name, path in shots.items():
                    await page.goto(base + path)
                    await page.screenshot(path=str(IMG / f"dashboard-{name}.png"))
                    print(f"docs/img/dashboard-{name}.png")
        finally:
            await w.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    asyncio.run(main(parser.parse_args().seconds))

"""One scaling run on a real cluster: a pool per scaler, each on its own Redis, the same arrivals
replayed into all of them at once, and a sampler that records what each pool did.

Used by ``bench/scaling_real.py`` (every trace, every scaler) and by the short e2e variant
(``tests/e2e/test_scaling_keda.py``). Every pool runs the same image and app
(``worker_runtime.demo:app``: a job ``{"ms": N}`` sleeps N ms) with the same Deployment, probes
and drain; only who sets its replicas differs:

* Shoal: the operator, the pool in Auto mode;
* KEDA: a ScaledObject (Redis list scaler on the queue's wait list) whose ``scaleTargetRef`` is
  the WorkerPool's scale subresource, the pool in Manual mode.

Figures come from the workers' own records: a job's wait is ``st - ts`` of its hash (Redis'
clock: enqueued, leased), harvested from the completed set before it is trimmed; jobs
interrupted by a scale-down are the queue's ``released`` (handed back by a drain) plus
``stalled`` (a killed worker's lease lapsed) counters.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis
import yaml

from bench.scaling_figures import SAMPLE_SECONDS, Figures, Sample, figures
from bench.traces import Trace
from tests.e2e.cluster_env import GROUP, VERSION, E2EEnv
from tests.harness.redis_server import RedisServer
from worker_runtime.core.keys import QueueKeys
from worker_runtime.demo import DEMO_QUEUE
from worker_runtime.producing.sync import SyncQueue

POOL = "bench"
CONCURRENCY = 10
MAX_REPLICAS = 10


@dataclass(frozen=True)
class Scaler:
    key: str
    label: str
    scaling: dict[str, Any]  # the WorkerPool's spec.scaling
    keda: dict[str, Any] | None = None  # ScaledObject spec + trigger metadata; None: Shoal scales


SHOAL = Scaler("shoal", "Shoal defaults", {"maxReplicas": MAX_REPLICAS})
SHOAL_TUNED = Scaler(
    "shoal-tuned", "Shoal cooldownSeconds 20", {"maxReplicas": MAX_REPLICAS, "cooldownSeconds": 20}
)
KEDA = Scaler("keda", "KEDA defaults", {"mode": "Manual"}, {"spec": {}, "trigger": {}})
KEDA_TUNED = Scaler(
    "keda-tuned",
    "KEDA poll 5 s, cooldown 20 s, listLength 10",
    {"mode": "Manual"},
    {"spec": {"pollingInterval": 5, "cooldownPeriod": 20},
     "trigger": {"listLength": str(CONCURRENCY)}},
)  # fmt: skip
ALL_SCALERS = (SHOAL, SHOAL_TUNED, KEDA, KEDA_TUNED)


def pool_manifest(namespace: str, image: str, redis_url: str, scaler: Scaler) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "image": image,
        "imagePullPolicy": "Never",
        "app": "worker_runtime.demo:app",
        "queues": [DEMO_QUEUE],
        "concurrency": CONCURRENCY,
        "redis": {"url": redis_url},
        "scaling": scaler.scaling,
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"}},
    }
    if scaler.keda is not None:
        spec["replicas"] = 0  # KEDA wakes it
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": POOL, "namespace": namespace},
        "spec": spec,
    }


def scaled_object(namespace: str, redis_address: str, scaler: Scaler) -> dict[str, Any]:
    """KEDA's Redis list scaler on the queue's wait list, scaling the WorkerPool."""
    assert scaler.keda is not None
    trigger = {"address": redis_address, "listName": QueueKeys(DEMO_QUEUE).wait}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": POOL, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool",
                               "name": POOL},
            "minReplicaCount": 0,
            "maxReplicaCount": MAX_REPLICAS,
            **scaler.keda["spec"],
            "triggers": [{"type": "redis", "metadata": {**trigger, **scaler.keda["trigger"]}}],
        },
    }  # fmt: skip


@dataclass
class Lane:
    """One scaler's pool, Redis and records."""

    scaler: Scaler
    namespace: str
    server: RedisServer
    client: Any
    samples: list[Sample] = field(default_factory=list)
    waits: dict[str, float] = field(default_factory=dict)  # job id -> seconds enqueued -> leased
    last_fin: float = 0.0
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def keys(self) -> QueueKeys:
        return QueueKeys(DEMO_QUEUE)


def start_lanes(env: E2EEnv, scalers: tuple[Scaler, ...], *, tag: str) -> list[Lane]:
    lanes = []
    for scaler in scalers:
        server = RedisServer(bind=("127.0.0.1", env.host_address)).start()
        namespace = f"bench-{tag}-{scaler.key}-{uuid.uuid4().hex[:4]}"
        env.kubectl("create", "namespace", namespace)
        docs = [pool_manifest(namespace, env.image, server.url_at(env.host_address), scaler)]
        if scaler.keda is not None:
            address = f"{env.host_address}:{server.port}"
            docs.append(scaled_object(namespace, address, scaler))
        env.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(docs))
        client = redis.Redis.from_url(server.url, decode_responses=True)
        lanes.append(Lane(scaler, namespace, server, client))
    _await_deployments(env, lanes)
    return lanes


def _await_deployments(env: E2EEnv, lanes: list[Lane], timeout: float = 60.0) -> None:
    """Every pool's Deployment exists (at zero) before the first arrival: each scaler then
    starts from the same place, the operator's first reconcile not counted against Shoal."""
    deadline = time.monotonic() + timeout
    for lane in lanes:
        while env.kubectl("get", "deployment", POOL, "-n", lane.namespace, check=False).returncode:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no Deployment {lane.namespace}/{POOL} after {timeout:g} s")
            time.sleep(0.2)


def stop_lanes(env: E2EEnv, lanes: list[Lane]) -> None:
    for lane in lanes:
        env.kubectl("delete", "namespace", lane.namespace, "--wait=false", check=False)
        lane.client.close()
        lane.server.stop()


def replay(trace: Trace, lanes: list[Lane], t0: float, stop: threading.Event) -> float:
    """Enqueue each job at its arrival time into every lane; returns the worst lateness (s)."""
    queues = [SyncQueue(DEMO_QUEUE, redis_url=lane.server.url) for lane in lanes]
    jobs = [{"ms": round(d * 1000)} for d in trace.durations]
    late, i = 0.0, 0
    try:
        while i < len(jobs) and not stop.is_set():
            now = time.monotonic() - t0
            j = i
            while j < len(jobs) and trace.arrivals[j] <= now:
                j += 1
            if j > i:
                for q in queues:
                    q.enqueue_many(jobs[i:j])
                late = max(late, time.monotonic() - t0 - trace.arrivals[i])
                i = j
            if i < len(jobs):
                time.sleep(max(0.0, min(0.02, trace.arrivals[i] - (time.monotonic() - t0))))
    finally:
        for q in queues:
            q.close()
    return late


def sample(env: E2EEnv, lanes: list[Lane], t0: float) -> None:
    pods: dict[str, list[Any]] = {}
    for p in env.core().list_pod_for_all_namespaces(label_selector="shoal.dev/pool").items:
        if p.status.phase not in ("Succeeded", "Failed"):
            pods.setdefault(p.metadata.namespace, []).append(p)
    desired = {
        d.metadata.namespace: d.spec.replicas or 0
        for d in env.apps().list_deployment_for_all_namespaces().items
    }
    t = time.monotonic() - t0  # after the API calls (slow on a busy machine), with Redis' reads
    for lane in lanes:
        k = lane.keys
        pipe = lane.client.pipeline(transaction=False)
        pipe.llen(k.wait)
        pipe.zcard(k.active)
        pipe.hgetall(k.stats)
        waiting, active, stats = pipe.execute()
        lane.stats = {name: int(v) for name, v in stats.items() if v.lstrip("-").isdigit()}
        mine = pods.get(lane.namespace, [])
        ready = sum(
            1 for p in mine
            if any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
        )  # fmt: skip
        lane.samples.append(
            Sample(t, waiting, active, len(mine), ready, desired.get(lane.namespace, 0))
        )
        harvest(lane)


def harvest(lane: Lane) -> None:
    """Read the waits of jobs completed since the last call (before the set is trimmed)."""
    k = lane.keys
    done = lane.client.zrangebyscore(k.completed, lane.last_fin, "+inf", withscores=True)
    fresh = [job_id for job_id, _ in done if job_id not in lane.waits]
    if not fresh:
        return
    pipe = lane.client.pipeline(transaction=False)
    for job_id in fresh:
        pipe.hmget(k.job_prefix + job_id, "ts", "st")
    for job_id, (ts, st) in zip(fresh, pipe.execute(), strict=True):
        if ts is not None and st is not None:
            lane.waits[job_id] = (int(st) - int(ts)) / 1000
    lane.last_fin = max(score for _, score in done)


def run(
    env: E2EEnv, trace: Trace, lanes: list[Lane], *, tail: float, settle: float = 10.0
) -> float:
    """Replay ``trace`` and sample until every lane is idle at zero pods, or ``tail`` seconds
    after the last arrival. Returns the worst enqueue lateness."""
    stop = threading.Event()
    t0 = time.monotonic()
    result: list[float] = []
    feeder = threading.Thread(target=lambda: result.append(replay(trace, lanes, t0, stop)))
    feeder.start()
    try:
        end = trace.horizon + tail
        while (begin := time.monotonic()) - t0 < end:
            sample(env, lanes, t0)
            if begin - t0 > trace.horizon + settle and all(_at_rest(lane) for lane in lanes):
                break
            time.sleep(max(0.0, SAMPLE_SECONDS - (time.monotonic() - begin)))
    finally:
        stop.set()
        feeder.join()
    return result[0] if result else float("nan")


def _at_rest(lane: Lane) -> bool:
    s = lane.samples[-1]
    return (s.waiting, s.active, s.pods) == (0, 0, 0)


def lane_figures(trace: Trace, lane: Lane) -> Figures:
    return figures(
        label=lane.scaler.label, jobs=len(trace.arrivals),
        last_arrival=trace.arrivals[-1] if trace.arrivals else 0.0,
        samples=lane.samples, waits=list(lane.waits.values()),
        interrupted=lane.stats.get("released", 0) + lane.stats.get("stalled", 0),
    )  # fmt: skip

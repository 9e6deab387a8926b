"""Operator at scale: 1,000 WorkerPools on one `shoal operator`, on the project's test cluster.

    python bench/operator_scale.py                  # 1,000 pools, 60 s steady state, appended
    python bench/operator_scale.py --pools 200 --steady-seconds 20 --no-record
    python bench/operator_scale.py --min-replicas 1             # idle at one warm worker each
    python bench/operator_scale.py --min-replicas 1 --busy 0.5  # half of them with a moving backlog

Not a test. Starts the Kubernetes test control plane (kwok nodes, tests/harness/k8s.py) and a
private Redis, applies the CRD, starts the operator (default flags: 1 s tick, all namespaces),
then creates the pools as fast as the API server takes them and measures:

1. time from the first create until every pool's Deployment exists (and until every pool's
   status carries observedGeneration, i.e. the operator has also written status);
2. steady state: the operator's CPU (% of one core, from /proc utime+stime) and RSS over
   --steady-seconds, once the cluster is quiet again (the deployment controller has processed
   every new Deployment, then --settle-seconds more); plus its tick duration
   (shoal_operator_tick_duration_seconds) over the same window.

Targets (issue 7): all reconciled within 60 s, <= 10% of a core, <= 250 MB RSS. The design
notes' reference: a plain kopf operator with a 2 s timer per pool costs ~52% and ~460 MB here.

Variants (issue 12, item 7): ``--min-replicas 1`` keeps one (kwok) pod per pool, idle queues:
<= 10% of a core. ``--busy 0.5`` enqueues one job per second on half of the queues (nothing
consumes them: each backlog moves every second): <= 15% of a core, <= 50 status writes/s in
total (PATCHes of workerpools/status counted by the API server's own metrics, so old and new
operators are measured alike), and no status older than 10 s: a busy pool's backlog grows by
one a second, so ``enqueued - status.backlog`` is its status' age in seconds (sampled every 2 s
over every busy pool, one tick of observation lag included).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import platform
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kubernetes import client  # noqa: E402

from tests.harness.k8s import KubeCluster  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402
from tests.harness.redis_server import RedisServer  # noqa: E402
from tests.harness.waiting import wait_until  # noqa: E402
from worker_runtime.producing.queue import JobSpec, Queue  # noqa: E402
from worker_runtime.redis_io.connection import connect  # noqa: E402

GROUP, VERSION, PLURAL = "shoal.dev", "v1alpha1", "workerpools"
NAMESPACE = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, to report how busy the rest of it was."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
    return 0.0


def pool_body(i: int, min_replicas: int) -> dict[str, Any]:
    # A backlog of a few hundred stays within one worker: the busy variant measures status
    # writes, not scaling.
    scaling = {"minReplicas": min_replicas, "targetBacklogPerReplica": 100000}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WorkerPool",
        "metadata": {"name": f"pool-{i:04d}"},
        "spec": {
            "image": "registry.invalid/bench/worker:1",
            "queues": [f"bench-{i:04d}"],
            "scaling": scaling,
        },
    }


def status_patches(cluster: KubeCluster) -> float:
    """PATCHes of workerpools/status the API server has answered (its own counter)."""
    token = {"Authorization": f"Bearer {cluster.admin_token}"}
    request = urllib.request.Request(cluster.server + "/metrics", headers=token)
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    with urllib.request.urlopen(request, timeout=30, context=context) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("apiserver_request_total{") and 'resource="workerpools"' in line
                and 'subresource="status"' in line and 'verb="PATCH"' in line):  # fmt: skip
            total += float(line.split()[-1])
    return total


class Backlogs:
    """One job a second on each busy queue, from a thread of its own; counts what it enqueued."""

    def __init__(self, redis_url: str, indexes: list[int]) -> None:
        self.redis_url, self.indexes = redis_url, indexes
        self.enqueued = dict.fromkeys(indexes, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    async def _run(self) -> None:
        redis = connect(self.redis_url)
        queues = {i: Queue(f"bench-{i:04d}", redis=redis) for i in self.indexes}
        started = time.monotonic()
        second = 0
        while not self._stop.is_set():
            await asyncio.gather(*(q.enqueue_many([JobSpec(data={})]) for q in queues.values()))
            for i in self.indexes:
                self.enqueued[i] += 1
            second += 1
            await asyncio.sleep(max(0.0, started + second - time.monotonic()))
        await redis.aclose()


def run(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {"pools": args.pools, "tick": args.tick_seconds,
                              "min_replicas": args.min_replicas, "busy": args.busy}  # fmt: skip
    busy = list(range(0, args.pools, max(1, round(1 / args.busy)))) if args.busy > 0 else []
    result["busy_pools"] = len(busy)
    with KubeCluster(nodes=1) as cluster, RedisServer() as redis:
        api = cluster.api_client()
        cluster.kubectl(
            "apply", "--server-side", "-f", str(REPO / "crds/workerpools.shoal.dev.yaml")
        )
        cluster.kubectl("wait", "--for", "condition=Established", "crd/workerpools.shoal.dev")
        custom, core, apps = (
            client.CustomObjectsApi(api),
            client.CoreV1Api(api),
            client.AppsV1Api(api),
        )
        wait_until(lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL) is not None,
                   30, 0.1, description="CRD served", ignore=(client.ApiException,))  # fmt: skip
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))

        metrics_port = free_port()
        log = (cluster.directory / "operator.log").open("wb")
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        operator = subprocess.Popen(
            [sys.executable, "-m", "shoal", "operator", "--redis-url", redis.url,
             "--tick-seconds", str(args.tick_seconds), "--metrics-host", "127.0.0.1",
             "--metrics-port", str(metrics_port), "--log-level", "warning"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_until(lambda: metric(metrics_port, "shoal_operator_ticks_total") >= 1, 30, 0.1,
                       description="operator ticking", ignore=(OSError,))  # fmt: skip
            idle_cpu = cpu_seconds(operator.pid)
            result["rss_idle_mb"] = rss_mb(operator.pid)

            began = time.monotonic()

            def create(i: int) -> None:
                custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL,
                                                       pool_body(i, args.min_replicas))  # fmt: skip

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, range(args.pools)))
            result["create_seconds"] = time.monotonic() - began

            def deployments() -> int:
                items = apps.list_namespaced_deployment(
                    NAMESPACE, label_selector="app.kubernetes.io/managed-by=shoal"
                ).items
                return len(items)  # fmt: skip

            wait_until(lambda: deployments() >= args.pools, 300, 0.25,
                       description="every Deployment")  # fmt: skip
            result["all_deployments_seconds"] = time.monotonic() - began

            def with_status() -> int:
                items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)
                return sum(1 for p in items["items"]
                           if (p.get("status") or {}).get("observedGeneration"))  # fmt: skip

            wait_until(lambda: with_status() >= args.pools, 300, 0.5, description="every status")
            result["all_status_seconds"] = time.monotonic() - began
            result["burst_cpu_seconds"] = cpu_seconds(operator.pid) - idle_cpu

            def settled() -> bool:
                # The deployment controller works through 1,000 new Deployments for a minute or
                # so; each status change it makes is an event the operator handles. Steady
                # state starts when it is done.
                items = apps.list_namespaced_deployment(NAMESPACE).items
                return all((d.status.observed_generation or 0) >= d.metadata.generation
                           and d.status.conditions
                           and (d.status.replicas or 0) >= (d.spec.replicas or 0)
                           for d in items)  # fmt: skip

            wait_until(settled, 1200, 1.0, description="the deployment controller done")
            result["settled_seconds"] = time.monotonic() - began

            def window(backlogs: Backlogs | None) -> dict[str, Any]:
                """One steady-state window: the operator's CPU, RSS, ticks, status writes."""
                w: dict[str, Any] = {}
                patches0 = status_patches(cluster)
                cpu0, (busy0, total0) = cpu_seconds(operator.pid), machine_cpu()
                ticks0 = metric(metrics_port, "shoal_operator_tick_duration_seconds_count")
                tsum0 = metric(metrics_port, "shoal_operator_tick_duration_seconds_sum")
                t0, rss_max, age_max, samples = time.monotonic(), 0.0, 0.0, 0
                while time.monotonic() - t0 < args.steady_seconds:
                    rss_max = max(rss_max, rss_mb(operator.pid))
                    if backlogs is not None:
                        age_max = max(age_max, status_age(custom, backlogs, busy))
                        samples += 1
                    time.sleep(1.0)
                elapsed = time.monotonic() - t0
                cpu1, (busy1, total1) = cpu_seconds(operator.pid), machine_cpu()
                w["status_writes_per_second"] = (status_patches(cluster) - patches0) / elapsed
                w["status_age_max"] = age_max if backlogs is not None else math.nan
                w["age_samples"] = samples
                ticks = metric(metrics_port, "shoal_operator_tick_duration_seconds_count") - ticks0
                tsum = metric(metrics_port, "shoal_operator_tick_duration_seconds_sum") - tsum0
                w["steady_cpu_percent"] = 100 * (cpu1 - cpu0) / elapsed
                w["steady_rss_mb"] = rss_max
                w["tick_mean_ms"] = 1000 * tsum / ticks if ticks else float("nan")
                w["ticks"] = int(ticks)
                cores = os.cpu_count() or 1
                w["machine_busy_cores"] = cores * (busy1 - busy0) / max(1, total1 - total0)
                w["decided"] = metric(metrics_port, "shoal_operator_pools_decided")
                return w

            time.sleep(args.settle_seconds)  # let the reconcile burst's last events drain
            result["idle"] = window(None)
            if busy:  # then the same pools, half of them with a moving backlog
                backlogs = Backlogs(redis.url, busy)
                backlogs.start()
                time.sleep(args.settle_seconds)
                result["busy_window"] = window(backlogs)
                backlogs.stop()
            result["api_retries"] = metric(metrics_port, "shoal_operator_api_retries_total")
        finally:
            operator.terminate()
            result["exit_code"] = operator.wait(timeout=60)
            log.close()
            api.close()
    return result


def status_age(custom: Any, backlogs: Backlogs, busy: list[int]) -> float:
    """The oldest busy pool's status, in seconds behind its (one job a second) backlog."""
    enqueued = dict(backlogs.enqueued)  # read first: status can only be behind it
    items = custom.list_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL)["items"]
    by_name = {p["metadata"]["name"]: (p.get("status") or {}).get("backlog") for p in items}
    ages = [enqueued[i] - (by_name.get(f"pool-{i:04d}") or 0) for i in busy]
    return float(max(ages, default=0))


def report(r: dict[str, Any]) -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    flags = (f" --min-replicas {r['min_replicas']}" if r["min_replicas"] else "") + (
        f" --busy {r['busy']}" if r["busy"] else ""
    )
    idle = r["idle"]

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    idle_target = 10
    rows = [
        ("pools created by the client in", f"{r['create_seconds']:.1f} s", ""),
        (
            "every Deployment exists after",
            f"{r['all_deployments_seconds']:.1f} s",
            f"≤ 60 s {mark(r['all_deployments_seconds'] <= 60)}",
        ),
        ("every status written after", f"{r['all_status_seconds']:.1f} s", ""),
        ("deployment controller done with them after", f"{r['settled_seconds']:.1f} s", ""),
        ("operator CPU during the burst", f"{r['burst_cpu_seconds']:.1f} CPU-s", ""),
        ("RSS before any pool", f"{r['rss_idle_mb']:.0f} MB", ""),
    ]
    windows = [("idle", idle, idle_target)]
    if "busy_window" in r:
        windows.append((f"{r['busy_pools']} busy", r["busy_window"], 15))
    for name, w, target in windows:
        rows += [
            (
                f"[{name}] CPU, % of one core",
                f"{w['steady_cpu_percent']:.1f} %",
                f"≤ {target} % {mark(w['steady_cpu_percent'] <= target)}",
            ),
            (
                f"[{name}] RSS (max)",
                f"{w['steady_rss_mb']:.0f} MB",
                f"≤ 250 MB {mark(w['steady_rss_mb'] <= 250)}",
            ),
            (
                f"[{name}] status writes (PATCH workerpools/status)",
                f"{w['status_writes_per_second']:.1f} /s",
                f"≤ 50 /s {mark(w['status_writes_per_second'] <= 50)}",
            ),
            (
                f"[{name}] scaling tick, mean ({w['ticks']} ticks)",
                f"{w['tick_mean_ms']:.1f} ms",
                "",
            ),
            (f"[{name}] pools decided in the last tick", f"{w['decided']:.0f}", ""),
            (f"[{name}] rest of the machine busy", f"{w['machine_busy_cores']:.2f} cores", ""),
        ]
        if w["age_samples"]:
            rows.append(
                (
                    f"[{name}] oldest busy status ({w['age_samples']} samples)",
                    f"{w['status_age_max']:.0f} s behind",
                    f"≤ 10 s {mark(w['status_age_max'] <= 10)}",
                )
            )
    rows += [("API requests retried", f"{r['api_retries']:.0f}", ""),
             ("exit code on SIGTERM", f"{r['exit_code']}", "0")]  # fmt: skip
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    return f"""
## Operator at scale: {r["pools"]:,} WorkerPools on one operator{flags} — {when}, commit {head}

`python bench/operator_scale.py{flags}`: the project's test control plane (kwok node), one private
Redis, `shoal operator` with its defaults (tick {r["tick"]} s, all namespaces, default Redis),
{r["pools"]:,} pools created by 8 client threads (each gets a Deployment and a PDB; minReplicas
{r["min_replicas"]}); "idle": every queue empty; "busy": then one job a second enqueued on
{r["busy_pools"]} of the queues. Machine: {os.cpu_count()} cores, Python
{platform.python_version()}.

| metric | value | target |
|---|---|---|
{table}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pools", type=int, default=1000)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
    parser.add_argument("--settle-seconds", type=float, default=10.0)
    parser.add_argument("--tick-seconds", type=float, default=1.0)
    parser.add_argument("--min-replicas", type=int, default=0, help="every pool's minReplicas")
    parser.add_argument("--busy", type=float, default=0.0,
                        help="share of pools whose queue gets one job a second")  # fmt: skip
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    text = report(run(args))
    print(text)
    if not args.no_record:
        with (REPO / "bench" / "RESULTS.md").open("a") as out:
            out.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

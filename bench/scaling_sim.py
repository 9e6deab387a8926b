"""Scaling simulation: Shoal's autoscaler against a KEDA-style policy on the same arrivals.

    python bench/scaling_sim.py               # all traces, table printed and appended to RESULTS.md
    python bench/scaling_sim.py --no-record   # print only
    python bench/scaling_sim.py --trace bursts --seed 7

A discrete-event model of one queue and a pool of pods (not a test; runs in seconds). Pods take
POD_START_SECONDS to become ready and run CONCURRENCY jobs each; a free slot takes the oldest
waiting job (workers blocked on Redis are served first come, first served). Both policies see
the same trace and pod model; they differ only in how they size the pool and remove pods:

* Shoal: ``worker_runtime.core.autoscaler.decide`` every 2 s on the queue's exact counters
  and per-pod heartbeats. Scale-down removes idle pods first (pod-deletion-cost); a busy pod
  that is removed drains (stops fetching, finishes its jobs within the timeout) and costs
  replica-seconds until it is empty.
* KEDA-style: the Redis list scaler polls the list length every 30 s; the HPA (15 s sync,
  10% tolerance, scale-up max(100%, 4 pods) per 15 s, 300 s scale-down stabilisation) sets
  replicas = ceil(waiting / listLength); KEDA itself does 0 -> 1 on activity and 1 -> 0 after
  its 300 s cooldown. In-flight jobs are invisible to it, and scale-down removes the newest
  pods whatever they run: their jobs are interrupted and go back to the queue.
"""

from __future__ import annotations

import argparse
import heapq
import math
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import traces
from traces import Trace

from worker_runtime.core.autoscaler import decide, record_scale
from worker_runtime.core.observations import History, Observations, QueueObservation, WorkerLoad
from worker_runtime.core.spec import WorkerPoolSpec

CONCURRENCY = 10
MAX_REPLICAS = 50
POD_START_SECONDS = 10.0
SHOAL_TICK = 2.0
KEDA_POLL, HPA_SYNC, HPA_DOWN_WINDOW, KEDA_COOLDOWN, HPA_TOLERANCE = 30.0, 15.0, 300.0, 300.0, 0.1
LIST_LENGTH = CONCURRENCY  # KEDA's target list length per replica: one pod's worth of jobs
GIVE_UP_AFTER = 4 * 3600.0  # a job still unfinished this long after the trace never will be
RESULTS = Path(__file__).with_name("RESULTS.md")


@dataclass
class Job:
    arrival: float
    duration: float
    started: float | None = None
    attempt: int = 0  # bumped when a pod is killed under it; stale completions are ignored


@dataclass
class Pod:
    id: int
    created: float
    ready: bool = False
    draining: bool = False
    gone_at: float | None = None
    running: dict[int, Job] = field(default_factory=dict)  # job index -> job


@dataclass
class Result:
    waits: list[float]
    replica_seconds: float
    scale_events: int
    interrupted: int
    unfinished: int
    end: float

    def wait_pct(self, q: float) -> float:
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Cluster:
    """The queue, the pods and the event loop; a policy calls ``scale`` from its ticks."""

    def __init__(self, trace: Trace, *, kill_busy_pods: bool) -> None:
        self.jobs = [Job(a, d) for a, d in zip(trace.arrivals, trace.durations, strict=True)]
        self.horizon = trace.horizon
        self.kill_busy_pods = kill_busy_pods
        self.waiting: deque[int] = deque()
        self.free: deque[Pod] = deque()  # one entry per free slot, oldest first
        self.pods: list[Pod] = []
        self.events: list[tuple[float, int, str, int, int]] = []
        self.seq = 0
        self.arrived = self.finished = self.done = self.interrupted = self.scale_events = 0
        self.busy_seconds = 0.0

    # -- the policy's view and lever ----------------------------------------------------
    def active(self) -> list[Pod]:
        return [p for p in self.pods if p.gone_at is None and not p.draining]

    def scale(self, replicas: int, now: float) -> None:
        active = self.active()
        if replicas == len(active):
            return
        self.scale_events += 1
        for _ in range(replicas - len(active)):
            pod = Pod(len(self.pods), now)
            self.pods.append(pod)
            self._push(now + POD_START_SECONDS, "ready", pod.id)
        if replicas < len(active):
            for pod in self._victims(active, len(active) - replicas):
                self._remove(pod, now)

    def _victims(self, active: list[Pod], count: int) -> list[Pod]:
        if self.kill_busy_pods:  # ReplicaSet default: unready first, then the newest
            return sorted(active, key=lambda p: (p.ready, -p.created))[:count]
        # pod-deletion-cost = jobs running: unready and idle pods go first
        return sorted(active, key=lambda p: (p.ready, len(p.running), -p.created))[:count]

    def _remove(self, pod: Pod, now: float) -> None:
        if pod.running and not self.kill_busy_pods:
            pod.draining = True  # SIGTERM: finishes its jobs, takes no new ones
            return
        for index, job in pod.running.items():  # killed mid-job: back to the queue
            job.attempt += 1
            self.interrupted += 1
            self.waiting.appendleft(index)
        pod.running.clear()
        pod.gone_at = now
        self._dispatch(now)

    # -- the event loop -----------------------------------------------------------------
    def _push(self, at: float, kind: str, a: int, b: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, kind, a, b))

    def run(self, ticks: list[tuple[float, Callable[[Cluster, float], None]]]) -> Result:
        for index, job in enumerate(self.jobs):
            self._push(job.arrival, "arrive", index)
        for i, (period, _) in enumerate(ticks):
            self._push(period, "tick", i)
        now = 0.0
        deadline = self.horizon + GIVE_UP_AFTER
        while self.events and self.events[0][0] <= deadline:
            now, _, kind, a, b = heapq.heappop(self.events)
            if kind == "arrive":
                self.arrived += 1
                self.waiting.append(a)
            elif kind == "ready":
                pod = self.pods[a]
                if pod.gone_at is None:
                    pod.ready = True
                    self.free.extend([pod] * CONCURRENCY)
            elif kind == "finish":
                self._finish(a, b, now)
            else:
                period, policy = ticks[a]
                policy(self, now)
                if self.done < len(self.jobs) or self.active():
                    self._push(now + period, "tick", a)
            self._dispatch(now)
        for pod in self.pods:
            pod.gone_at = now if pod.gone_at is None else pod.gone_at
        replica_seconds = sum((p.gone_at or now) - p.created for p in self.pods)
        # a job that never started waited until the end
        waits = [(j.started if j.started is not None else now) - j.arrival for j in self.jobs]
        unfinished = len(self.jobs) - self.done
        return Result(waits, replica_seconds, self.scale_events, self.interrupted, unfinished, now)

    def _finish(self, index: int, attempt: int, now: float) -> None:
        job = self.jobs[index]
        if job.attempt != attempt:
            return  # its pod was killed; the job went back to the queue
        pod = next(p for p in self.pods if index in p.running)
        del pod.running[index]
        self.finished += 1
        self.done += 1
        self.busy_seconds += job.duration
        if pod.draining:
            if not pod.running:
                pod.gone_at = now
        else:
            self.free.append(pod)

    def _dispatch(self, now: float) -> None:
        while self.waiting and self.free:
            pod = self.free.popleft()
            if pod.gone_at is not None or pod.draining:
                continue  # a stale slot of a removed pod
            index = self.waiting.popleft()
            job = self.jobs[index]
            job.started = now if job.started is None else job.started
            pod.running[index] = job
            self._push(now + job.duration, "finish", index, job.attempt)


def shoal_policy(drain_seconds: int = 30) -> Callable[[Cluster, float], None]:
    spec = WorkerPoolSpec.model_validate(
        {
            "image": "sim",
            "queues": ["q"],
            "concurrency": CONCURRENCY,
            "timeoutSeconds": 600,
            "scaling": {"maxReplicas": MAX_REPLICAS, "targetDrainSeconds": drain_seconds},
        }
    )
    state = {"history": History()}

    def tick(cluster: Cluster, now: float) -> None:
        oldest = cluster.jobs[cluster.waiting[0]].arrival if cluster.waiting else now
        in_flight = sum(len(p.running) for p in cluster.pods if p.gone_at is None)
        obs = Observations(
            current_replicas=len(cluster.active()),
            queues=(
                QueueObservation(
                    "q",
                    waiting=len(cluster.waiting),
                    in_flight=in_flight,
                    arrived_total=cluster.arrived,
                    finished_total=cluster.finished,
                    busy_seconds_total=cluster.busy_seconds,
                    oldest_waiting_age_seconds=now - oldest,
                ),
            ),
            workers=tuple(
                WorkerLoad(str(p.id), len(p.running)) for p in cluster.pods if p.gone_at is None
            ),
        )
        decision = decide(spec, obs, state["history"], now)
        before = obs.current_replicas
        cluster.scale(decision.replicas, now)
        state["history"] = record_scale(
            decision.history, at=now, before=before, after=decision.replicas
        )

    return tick


def keda_policies() -> list[tuple[float, Callable[[Cluster, float], None]]]:
    state = {"list_length": 0, "last_active": -math.inf}
    recommendations: deque[tuple[float, int]] = deque()

    def poll(cluster: Cluster, now: float) -> None:  # KEDA's scaler loop
        state["list_length"] = length = len(cluster.waiting)
        current = len(cluster.active())
        if length > 0:
            state["last_active"] = now
            if current == 0:
                cluster.scale(1, now)
        elif current > 0 and now - state["last_active"] >= KEDA_COOLDOWN:
            cluster.scale(0, now)
            recommendations.clear()

    def hpa(cluster: Cluster, now: float) -> None:  # the HPA's sync loop, only when active
        current = len(cluster.active())
        if current == 0:
            return
        length = state["list_length"]
        desired = math.ceil(length / LIST_LENGTH)
        if abs(length / (current * LIST_LENGTH) - 1) <= HPA_TOLERANCE:
            desired = current
        desired = min(max(desired, 1), MAX_REPLICAS)
        recommendations.append((now, desired))
        while recommendations and recommendations[0][0] <= now - HPA_DOWN_WINDOW:
            recommendations.popleft()
        if desired < current:
            desired = min(current, max(r for _, r in recommendations))
        else:
            desired = min(desired, max(current * 2, current + 4))
        cluster.scale(desired, now)

    return [(KEDA_POLL, poll), (HPA_SYNC, hpa)]


def simulate(trace: Trace, *, drain_seconds: int = 30) -> tuple[Result, Result]:
    shoal_tick = shoal_policy(drain_seconds)
    shoal = Cluster(trace, kill_busy_pods=False).run([(SHOAL_TICK, shoal_tick)])
    keda = Cluster(trace, kill_busy_pods=True).run(keda_policies())
    return shoal, keda


def table(rows: list[tuple[Trace, Result, Result]]) -> str:
    lines = [
        "| trace | policy | p50 wait s | p95 wait s | replica-s | scale events | interrupted "
        "| never finished |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    verdicts = []
    for trace, shoal, keda in rows:
        for name, r in (("Shoal", shoal), ("KEDA-style", keda)):
            lines.append(
                f"| {trace.name} | {name} | {r.wait_pct(0.5):.1f} | {r.wait_pct(0.95):.1f} "
                f"| {r.replica_seconds:,.0f} | {r.scale_events} | {r.interrupted} "
                f"| {r.unfinished} |"
            )
        p95_ok = shoal.wait_pct(0.95) <= keda.wait_pct(0.95) / 3
        cost_ok = shoal.replica_seconds <= keda.replica_seconds
        ok = p95_ok and cost_ok and shoal.interrupted == 0
        if trace.name in traces.TARGETED:
            verdict = "meets the target" if ok else "MISSES the target"
        else:
            verdict = f"extra trace, no target ({'would meet' if ok else 'would miss'} it)"
        verdicts.append(
            f"- {trace.name} ({trace.description}, {len(trace.arrivals):,} jobs): "
            f"p95 wait {_ratio(shoal.wait_pct(0.95), keda.wait_pct(0.95))} of KEDA-style's, "
            f"replica-s {_ratio(shoal.replica_seconds, keda.replica_seconds)}, "
            f"{shoal.interrupted} interrupted vs {keda.interrupted} -> {verdict}"
        )
    return "\n".join([*lines, "", *verdicts])


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else ("1.00x" if a == 0 else "inf")


def record(text: str, seed: int, drain_seconds: int) -> None:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"\n## Scaling simulation, {stamp}, commit {commit}\n\n"
    setup = (
        f"`python bench/scaling_sim.py --seed {seed} --drain-seconds {drain_seconds}`: "
        f"concurrency {CONCURRENCY}/pod, maxReplicas {MAX_REPLICAS}, pod start "
        f"{POD_START_SECONDS:.0f} s; Shoal defaults but targetDrainSeconds {drain_seconds} "
        f"(120 s down window, cooldown 60 s, tick {SHOAL_TICK:.0f} s); "
        f"KEDA-style listLength {LIST_LENGTH}, poll {KEDA_POLL:.0f} s, HPA {HPA_SYNC:.0f} s, "
        f"{HPA_DOWN_WINDOW:.0f} s stabilisation, cooldown {KEDA_COOLDOWN:.0f} s.\n\n"
    )
    with RESULTS.open("a") as out:
        if out.tell() == 0:
            out.write("# Benchmark results\n")
        out.write(header + setup + text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", choices=sorted(traces.ALL), action="append")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--drain-seconds", type=int, default=30, help="Shoal's targetDrainSeconds (default 30)"
    )
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = []
    for name in args.trace or list(traces.ALL):
        trace = traces.ALL[name](args.seed)
        rows.append((trace, *simulate(trace, drain_seconds=args.drain_seconds)))
    text = table(rows)
    print(text)
    print(f"\n({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if not args.no_record:
        record(text, args.seed, args.drain_seconds)
    return 1 if "MISSES" in text else 0


if __name__ == "__main__":
    sys.exit(main())

"""Shoal's throughput benchmark, side by side with BullMQ (Node) and arq, on one private Redis.

    bench/run.sh [--quick] [--repeat N] [--with-observability] ...   (installs the peers first)
    python bench/throughput.py --help

Every system runs in its own processes (one worker process at concurrency 50; producers
apart), one after the other, on a redis-server started here on a free loopback port and
flushed before every step. See bench/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Run as a script: bench/ is on sys.path already; the repo root brings tests.harness.
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from host import CpuAccount, git_head, utc_now, versions  # noqa: E402
from results_table import (  # noqa: E402
    Figures,
    append_results,
    drain_runs,
    percentile,
    render_table,
    target_checks,
)
from systems import (  # noqa: E402
    BenchError,
    System,
    arq_system,
    bench_process,
    bullmq_system,
    peak_rss_kib,
    run_to_end,
    shoal_system,
)

from tests.harness.redis_server import RedisServer, redis_server_binary  # noqa: E402

SYSTEMS = ("shoal", "bullmq", "arq")
STEPS = ("drain", "enqueue", "pickup")


@dataclass(frozen=True)
class Plan:
    jobs: int
    repeat: int
    single_jobs: int
    samples: int
    warmup: int
    gap_ms: float
    concurrency: int

    @property
    def drain_timeout(self) -> float:
        return 60 + self.jobs / 100  # arq drains ~500-1500 jobs/s here

    @property
    def enqueue_timeout(self) -> float:
        return 60 + max(self.jobs, self.single_jobs) / 200

    @property
    def pickup_timeout(self) -> float:
        return 60 + (self.samples + self.warmup) * (self.gap_ms / 1000 + 1.0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Shoal vs BullMQ vs arq: drain throughput, enqueue rate, idle pickup "
        "latency and worker peak RSS, on one private Redis."
    )
    parser.add_argument("--jobs", type=int, default=20_000, help="jobs per drain and bulk enqueue")
    parser.add_argument("--repeat", type=int, default=3, help="drains per system (median kept)")
    parser.add_argument("--single-jobs", type=int, default=5_000, help="one-by-one enqueues")
    parser.add_argument("--samples", type=int, default=200, help="idle pickup samples")
    parser.add_argument("--warmup", type=int, default=10, help="pickup samples discarded first")
    parser.add_argument("--gap-ms", type=float, default=20.0, help="mean pause between samples")
    parser.add_argument("--concurrency", type=int, default=50, help="worker concurrency")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}"
    )
    parser.add_argument(
        "--steps", default=",".join(STEPS), help=f"comma-separated subset of {STEPS}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2,000 jobs, 1 drain, 20 samples"
    )
    parser.add_argument(
        "--with-observability",
        action="store_true",
        help="add a 'Shoal + observability' column (metrics, heartbeats, SQLite status store)",
    )
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="append the table to bench/RESULTS.md (default: yes, except with --quick)",
    )
    parser.add_argument("--results", type=Path, default=BENCH / "RESULTS.md")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SYSTEMS))
    if unknown or "shoal" not in chosen:
        parser.error(f"--systems: must include shoal and name only {SYSTEMS}; got {args.systems}")
    args.systems = chosen
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    if not steps or set(steps) - set(STEPS):
        parser.error(f"--steps: name only {STEPS}; got {args.steps}")
    args.steps = steps
    for name in ("jobs", "repeat", "single_jobs", "samples", "concurrency"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be at least 1")
    return args


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(jobs=2_000, repeat=1, single_jobs=500, samples=20, warmup=3,
                    gap_ms=args.gap_ms, concurrency=args.concurrency)  # fmt: skip
    return Plan(
        jobs=args.jobs,
        repeat=args.repeat,
        single_jobs=args.single_jobs,
        samples=args.samples,
        warmup=args.warmup,
        gap_ms=args.gap_ms,
        concurrency=args.concurrency,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Runner:
    """Runs each measurement of one system against the shared Redis."""

    def __init__(self, plan: Plan, redis_url: str) -> None:
        self.plan = plan
        self.url = redis_url

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"redis_url": self.url, "concurrency": self.plan.concurrency, **extra}

    async def flush(self) -> None:
        client = aioredis.Redis.from_url(self.url)
        await client.flushall()
        await client.aclose()

    async def drain(self, system: System, figures: Figures) -> None:
        await self.flush()
        jobs = self.plan.jobs
        await run_to_end(system, "fill", self.options(jobs=jobs), limit_s=self.plan.drain_timeout)
        async with bench_process(system, "drain-worker", self.options(jobs=jobs)) as worker:
            result = await worker.event("result", limit_s=self.plan.drain_timeout)
            rss = peak_rss_kib(worker.pid)  # while the worker is still alive
        rate = result["jobs"] / result["seconds"]
        figures.drain_jobs_per_s.append(rate)
        figures.peak_rss_kib.append(rss)
        log(f"  drain  {system.label:<28} {rate:>9,.0f} jobs/s   peak RSS {rss / 1024:6.1f} MiB")

    async def enqueue(self, system: System, figures: Figures) -> None:
        await self.flush()
        single = await run_to_end(
            system, "enqueue-single", self.options(jobs=self.plan.single_jobs),
            limit_s=self.plan.enqueue_timeout,
        )  # fmt: skip
        figures.single_jobs_per_s = single["jobs"] / single["seconds"]
        await self.flush()
        bulk = await run_to_end(
            system, "enqueue-bulk", self.options(jobs=self.plan.jobs),
            limit_s=self.plan.enqueue_timeout,
        )  # fmt: skip
        if bulk.get("unsupported"):
            figures.bulk_unsupported = True
            shown = "n/a"
        else:
            figures.bulk_jobs_per_s = bulk["jobs"] / bulk["seconds"]
            shown = f"{figures.bulk_jobs_per_s:,.0f} jobs/s"
        log(f"  enqueue {system.label:<27} one-by-one {figures.single_jobs_per_s:>9,.0f} jobs/s"
            f"   bulk {shown}")  # fmt: skip

    async def noise_floor(self, samples: int = 200) -> str:
        """Round trips of a bare PING from this process: what the machine alone adds."""
        client = aioredis.Redis.from_url(self.url)
        rtts: list[float] = []
        for _ in range(samples):
            sent = time.monotonic_ns()
            await client.ping()
            rtts.append((time.monotonic_ns() - sent) / 1e6)
            await asyncio.sleep(0.005)  # pacing, like the pickup probes
        await client.aclose()
        return (
            f"a bare Redis PING round trip (redis-py) takes p50 {percentile(rtts, 50):.2f} ms, "
            f"p99 {percentile(rtts, 99):.2f} ms here"
        )

    async def pickup(self, system: System, figures: Figures) -> None:
        await self.flush()
        plan = self.plan
        options = self.options(samples=plan.samples, warmup=plan.warmup, gap_ms=plan.gap_ms)
        async with bench_process(system, "latency-worker", options) as worker:
            await worker.event("ready", limit_s=60)
            result = await run_to_end(
                system, "latency-producer", options, limit_s=plan.pickup_timeout
            )
        figures.pickup_ms = [float(v) for v in result["latencies_ms"]]
        log(f"  pickup {system.label:<28} p50 {figures.pickup_p50:.2f} ms   "
            f"p99 {figures.pickup_p99:.2f} ms")  # fmt: skip


async def attempt(figures: Figures, step: str, call: Any) -> None:
    """Run one measurement; a failure is recorded and shown, and the run goes on."""
    try:
        await call
    except (BenchError, OSError, KeyError, ValueError) as exc:
        message = f"{figures.label} {step}: {exc}"
        figures.errors.append(message)
        log(f"  FAILED {message}")


async def observability_available(runner: Runner) -> bool:
    try:
        check = await run_to_end(
            shoal_system(), "observability-check", {"redis_url": runner.url}, limit_s=60
        )
    except BenchError as exc:
        log(f"observability check failed: {exc}")
        return False
    return bool(check.get("available"))


@dataclass
class Outcome:
    figures: list[Figures]
    notes: list[str] = field(default_factory=list)
    noise_floor: str | None = None


async def run(args: argparse.Namespace, plan: Plan, redis_url: str) -> Outcome:
    runner = Runner(plan, redis_url)
    builders = {"shoal": shoal_system, "bullmq": bullmq_system, "arq": arq_system}
    systems = [builders[name]() for name in args.systems]
    notes: list[str] = []
    if args.with_observability:
        if await observability_available(runner):
            systems.insert(1, shoal_system(observability=True))
        else:
            notes.append("Shoal + observability: not available yet (worker_runtime has no "
                         "observability extensions)")  # fmt: skip
            log(notes[-1])
    figures = {s.key: Figures(key=s.key, label=s.label) for s in systems}
    ready = []
    for system in systems:
        if system.missing:
            figures[system.key].errors.append(f"{system.label}: not installed: {system.missing}")
            log(f"skipping {system.label}: not installed: {system.missing}")
        else:
            ready.append(system)
    if "drain" in args.steps:
        # Rounds interleave the systems, so a burst of background load hits all alike.
        for round_no in range(1, plan.repeat + 1):
            log(f"drain round {round_no}/{plan.repeat} ({plan.jobs:,} jobs each)")
            for system in ready:
                f = figures[system.key]
                await attempt(f, "drain", runner.drain(system, f))
    if "enqueue" in args.steps:
        log("enqueue rate")
        for system in ready:
            if system.key != "shoal+obs":  # the producer is the same with or without it
                f = figures[system.key]
                await attempt(f, "enqueue", runner.enqueue(system, f))
    noise_floor = None
    if "pickup" in args.steps:
        noise_floor = await runner.noise_floor()
        log(f"noise floor: {noise_floor}")
        log(f"idle pickup latency ({plan.samples} samples each)")
        for system in ready:
            f = figures[system.key]
            await attempt(f, "pickup", runner.pickup(system, f))
    notes += [f"{s.label}: {note}" for s in systems for note in s.notes]
    return Outcome(list(figures.values()), notes, noise_floor)


def method(plan: Plan, steps: list[str]) -> str:
    parts = [f"One worker process per system at concurrency {plan.concurrency}"]
    if "drain" in steps:
        parts.append(
            f"drain of {plan.jobs:,} pre-enqueued no-op jobs timed from the worker's first job "
            f"to the last completion, median of {plan.repeat}"
        )
    if "enqueue" in steps:
        parts.append(
            f"one-by-one enqueue of {plan.single_jobs:,} jobs (sequential awaits); "
            f"bulk enqueue of {plan.jobs:,} in one call"
        )
    if "pickup" in steps:
        parts.append(
            f"idle pickup from just before enqueue to the start of the job's function, "
            f"{plan.samples} samples"
        )
    return "; ".join(parts) + "."


def report(outcome: Outcome, *, plan: Plan, steps: list[str], cpu: CpuAccount, quick: bool) -> str:
    figures = outcome.figures
    by_key = {f.key: f for f in figures}
    shoal = by_key["shoal"]
    others = [f for f in figures if f.key == "shoal+obs"]
    peers = [f for f in figures if not f.key.startswith("shoal")]
    mode = " (quick smoke run)" if quick else ""
    lines = [
        f"## Throughput: Shoal vs peers — {utc_now()}, commit {git_head(ROOT)}{mode}",
        "",
        method(plan, steps),
        f"Machine: {cpu.summary()}. {versions(redis_server_binary())}.",
    ]
    if outcome.noise_floor:
        lines.append(f"Noise floor: {outcome.noise_floor}.")
    lines += [
        "",
        render_table(shoal, others, peers),
        "",
        drain_runs([shoal, *others, *peers]),
        "",
        "Settings:",
        *(f"- {n}" for n in outcome.notes),
        "",
        "Targets (issue 2, against BullMQ):",
        *target_checks(shoal, by_key.get("bullmq")),
    ]
    errors = [e for f in figures for e in f.errors]
    if errors:
        lines += ["", "Errors:", *(f"- {e}" for e in errors)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    plan = make_plan(args)
    cpu = CpuAccount.start()
    with RedisServer() as server:
        log(f"redis-server on {server.url}")
        outcome = asyncio.run(run(args, plan, server.url))
    text = report(outcome, plan=plan, steps=args.steps, cpu=cpu, quick=args.quick)
    print(text)
    record = (not args.quick) if args.record is None else args.record
    if record:
        append_results(args.results, text)
        log(f"appended to {args.results}")
    return 1 if any(f.errors for f in outcome.figures) else 0


if __name__ == "__main__":
    sys.exit(main())

"""Scaling on a real cluster: Shoal's operator against KEDA 2.21, same image, same traces.

    sudo python bench/scaling_real.py                  # every trace; table to RESULTS.md, plots
    python bench/scaling_real.py --trace bursts --no-record

Starts what it needs (needs root, like the e2e tier, see docs/e2e.md): the real-node cluster of
``tests/harness/k8s_node.py``, the image ``shoal:e2e`` (``scripts/build-image.sh``), the Shoal
operator (the Helm chart), KEDA (``scripts/keda.sh``, built once from Go modules). Per trace it
creates four pools of the same image, each with its own Redis (``bench/scaling_rig.py``) and
scaled by Shoal (defaults; cooldownSeconds 20), KEDA at its defaults and KEDA tuned, and replays
the trace into the four queues at once. The traces are the simulation's (``bench/traces.py``),
time-compressed to about three minutes at the same arrival rates; the simulation runs on the
same compressed traces so the two can be compared row by row.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))  # scaling_sim imports its neighbours by bare name

from bench import scaling_figures as sf  # noqa: E402
from bench import traces  # noqa: E402
from bench.host import git_head, machine_busy_seconds, utc_now  # noqa: E402
from bench.results_table import append_results  # noqa: E402
from bench.scaling_plot import plot  # noqa: E402
from bench.scaling_rig import (  # noqa: E402
    ALL_SCALERS,
    CONCURRENCY,
    KEDA,
    KEDA_TUNED,
    MAX_REPLICAS,
    SHOAL,
    SHOAL_TUNED,
    Lane,
    lane_figures,
    run,
    start_lanes,
    stop_lanes,
)  # fmt: skip
from bench.scaling_setup import install_operator, keda_build, keda_running  # noqa: E402
from bench.traces import Trace  # noqa: E402
from tests.e2e.cluster_env import E2EEnv  # noqa: E402
from tests.harness.k8s_binaries import ensure_binaries, kubectl_path  # noqa: E402
from tests.harness.k8s_node import RealNodeCluster  # noqa: E402

RESULTS = REPO / "bench" / "RESULTS.md"
IMAGES = REPO / "docs" / "img"

#: The simulation's traces, ~3 minutes each at the original rates (see traces.compressed).
REAL: dict[str, Callable[[int], Trace]] = {
    "steady": lambda s: traces.compressed(traces.steady(s), factor=10, seed=s),
    "bursts": lambda s: traces.compressed(traces.bursts(s), factor=15, seed=s),
    "ramp": lambda s: traces.compressed(traces.daily(s), factor=40, seed=s, name="ramp"),
    "long-jobs": lambda s: traces.compressed(
        traces.long_jobs(s), factor=20, seed=s, duration_scale=0.25
    ),
    # One episode of the sparse trace: 40 jobs of ~2 s after idle, every pool at zero.
    "from-zero": lambda s: traces.windowed(traces.sparse(s), start=198, end=240, name="from-zero"),
}


def run_trace(env: E2EEnv, trace: Trace, *, tail: float) -> tuple[list[Lane], float, str]:
    lanes = start_lanes(env, ALL_SCALERS, tag=trace.name)
    try:
        busy0, wall0 = machine_busy_seconds(), time.monotonic()
        late = run(env, trace, lanes, tail=tail)
        cores = (machine_busy_seconds() - busy0) / (time.monotonic() - wall0)
    finally:
        stop_lanes(env, lanes)
    return lanes, late, f"machine CPU busy {cores:.2f} of 2 cores on average"


def report(trace: Trace, lanes: list[Lane], seed: int) -> tuple[list[str], list[str]]:
    by_key = {lane.scaler.key: lane_figures(trace, lane) for lane in lanes}
    rows = [sf.row(trace.name, f) for f in by_key.values()]
    rows += sim_rows(trace)
    checks = []
    for key in (SHOAL.key, SHOAL_TUNED.key):
        if key in by_key:
            checks += sf.verdicts(trace.name, by_key[key], by_key.get(KEDA.key),
                                  by_key.get(KEDA_TUNED.key))  # fmt: skip
    return rows, checks


def sim_rows(trace: Trace) -> list[str]:
    """The simulation on the same compressed trace (its pod model: 10 s start, listLength 10)."""
    import scaling_sim

    shoal, keda = scaling_sim.simulate(trace)
    out = []
    for name, r in (("simulated Shoal", shoal), ("simulated KEDA-style", keda)):
        out.append(
            f"| {trace.name} | {name} | {r.wait_pct(0.5):.1f} | {r.wait_pct(0.95):.1f} "
            f"| {r.wait_pct(0.99):.1f} | {r.replica_seconds:,.0f} | - | {r.scale_events} "
            f"| {r.interrupted} | - | - |"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trace", choices=sorted(REAL), action="append")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tail", type=float, default=120,
                        help="seconds watched after the last arrival (default 120)")  # fmt: skip
    parser.add_argument("--image", default="shoal:e2e")
    parser.add_argument("--skip-build", action="store_true", help="use the image Docker has")
    parser.add_argument("--no-record", action="store_true", help="no RESULTS.md, no plots")
    args = parser.parse_args(argv)
    names = args.trace or list(REAL)

    bins = ensure_binaries(("kubelet", "kube-proxy", "helm"),
                           build_args=("--with-node", "--with-helm"))  # fmt: skip
    keda_build()
    if not args.skip_build:
        subprocess.run(["bash", str(REPO / "scripts" / "build-image.sh"), args.image], check=True,
                       stdout=subprocess.DEVNULL, timeout=1800)  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="shoal-scaling-"))
    out: list[str] = [sf.HEADER]
    checks: list[str] = []
    notes: list[str] = []
    with RealNodeCluster() as rn:
        rn.node.import_image(args.image)  # type: ignore[union-attr]
        env = E2EEnv(rn.cluster.kubeconfig, rn.network.gateway, args.image, bins["helm"],
                     kubectl_path(), work, local=rn)  # fmt: skip
        install_operator(env, "shoal-system")
        with keda_running(env, work / "keda"):
            for name in names:
                trace = REAL[name](args.seed)
                print(f"[{time.strftime('%T')}] {name}: {trace.description}, "
                      f"{len(trace.arrivals):,} jobs", flush=True)  # fmt: skip
                lanes, late, cpu = run_trace(env, trace, tail=args.tail)
                rows, trace_checks = report(trace, lanes, args.seed)
                out += rows
                checks += trace_checks
                notes.append(f"- {name} ({trace.description}, {len(trace.arrivals):,} jobs): "
                             f"{cpu}; enqueues at most {late:.2f} s late")  # fmt: skip
                print("\n".join([sf.HEADER, *rows, *trace_checks, notes[-1]]), flush=True)
                if not args.no_record:
                    title = f"{name}: {trace.description} (seed {args.seed})"
                    plot(trace, lanes, IMAGES / f"scaling-real-{name}.png", title=title)
        env.close()
    text = "\n".join([*out, "", *checks, "", *notes])
    if not args.no_record:
        append_results(RESULTS, header(args) + text)
    print(text)
    return 1 if "MISSED" in text else 0


def header(args: argparse.Namespace) -> str:
    return (
        f"## Scaling on a real cluster: Shoal vs KEDA 2.21 — {utc_now()}, commit "
        f"{git_head(REPO)}\n\n`python bench/scaling_real.py --seed {args.seed} --tail "
        f"{args.tail:g}`: one real node (2 cores), image {args.image}, `worker_runtime.demo:app` "
        f"(jobs sleep), concurrency {CONCURRENCY}/pod, maxReplicas {MAX_REPLICAS}; the four "
        "pools run at once on the same node, each on its own Redis, the same arrivals replayed "
        "into each. Wait = enqueued -> leased (Redis' clock, from the job's hash); a job that "
        "never started counts as waiting until the window closed. Interrupted = the queue's "
        "`released` + `stalled` counters (written by the workers). `+`: the pool was not back "
        "to zero when the window closed. Simulated rows: `bench/scaling_sim.py`'s model on the "
        "same compressed trace.\n\n"
    )


if __name__ == "__main__":
    sys.exit(main())

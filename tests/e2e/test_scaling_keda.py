"""The short variant of ``bench/scaling_real.py``: one burst, Shoal's operator and tuned KEDA
scaling two pools of the same image side by side on the real node (issue 15). It keeps the
comparison from rotting: KEDA's build and start, the ScaledObject on the WorkerPool's scale
subresource, the workers' interruption counters and the figures all run in CI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import scaling_figures as sf
from bench import traces
from bench.scaling_rig import KEDA_TUNED, SHOAL, lane_figures, run, start_lanes, stop_lanes
from bench.scaling_setup import install_operator, keda_build, keda_running
from tests.e2e.cluster_env import E2EEnv
from tests.e2e.conftest import report

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

TAIL = 60.0


def short_trace() -> traces.Trace:
    """The bursts trace compressed like the bench's, one spike of it: 2 jobs/s, 6 s at 40/s."""
    bursts = traces.compressed(traces.bursts(1), factor=15, seed=1)
    return traces.windowed(bursts, start=10, end=60, name="burst")


@pytest.fixture(scope="module")
def keda(e2e_env: E2EEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    bins = keda_build()
    install_operator(e2e_env, "shoal-scaling")
    with keda_running(e2e_env, tmp_path_factory.mktemp("keda")):
        yield bins
    e2e_env.helm("uninstall", "shoal", "-n", "shoal-scaling", check=False)
    e2e_env.delete_namespace("shoal-scaling")


def test_shoal_and_keda_scale_the_same_burst_side_by_side(e2e_env: E2EEnv, keda: Path) -> None:
    trace = short_trace()
    lanes = start_lanes(e2e_env, (SHOAL, KEDA_TUNED), tag="short")
    try:
        run(e2e_env, trace, lanes, tail=TAIL)
    finally:
        stop_lanes(e2e_env, lanes)
    shoal, tuned = (lane_figures(trace, lane) for lane in lanes)
    report(sf.HEADER)
    for f in (shoal, tuned):
        report(sf.row(trace.name, f))
    for line in sf.verdicts(trace.name, shoal, None, tuned):
        report(line)

    # Both scalers woke from zero and every job ran (the comparison measured something).
    assert shoal.started == tuned.started == len(trace.arrivals), (shoal, tuned)
    assert shoal.peak >= 1
    assert tuned.peak >= 1
    # Issue 15's hard targets for Shoal: nothing interrupted, no scale-up once empty.
    assert shoal.interrupted == 0
    assert shoal.ups_after_empty == 0
    # The wait and cost targets are performance figures: printed above (met / MISSED) and
    # measured by bench/scaling_real.py, not asserted on one noisy run. One 6 s spike on a
    # shared 2-core node moved tuned KEDA's cost from 402 to 182 replica-s and Shoal's from 108
    # to 202 between CI runs. Shoal's own promise holds: every job started within the drain
    # target (30 s by default).
    assert shoal.p99 <= 30, shoal

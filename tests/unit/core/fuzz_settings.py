"""hypothesis settings of the fuzz tests: derandomized (the same inputs every run, so CI is
deterministic) and bounded; `bench/faults.py` raises the bound with SHOAL_FUZZ_EXAMPLES."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

FUZZ = settings(
    derandomize=True,
    max_examples=int(os.environ.get("SHOAL_FUZZ_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

"""The fault suite's short variants in CI (bench/faults.py --short): each scenario's
guarantees must hold. One scenario alone: pytest tests/integration/bench -k redis-freeze-5.
The fuzzing row runs in the unit tier (tests/unit/core/test_fuzz_*.py)."""

from __future__ import annotations

import pytest

from bench.fault_suite.kit import table
from bench.fault_suite.scenarios import FULL_ONLY, SCENARIOS

pytestmark = pytest.mark.integration

SHORT = [name for name in SCENARIOS if name not in FULL_ONLY and name != "fuzz-codec-manifest"]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", SHORT)
async def test_guarantees_hold(name: str) -> None:
    row = await SCENARIOS[name](short=True)
    assert not row.failures, "\n".join([table([row]), *row.notes])

"""The README's two commands on a truly fresh Debian 12 (``scripts/fresh-machine.sh``).

A clean clone of HEAD in a throwaway container of the Debian 12 base image with only ``make`` and
``git`` added (and its venv module removed): ``make demo`` as an ordinary user first refuses with a
one-line error naming the Debian packages it needs, then, once root installed exactly those,
passes without root, twice (the second setup a no-op), and the unit tier passes with the test
setup. Needs root and Docker, like the rest of the tier.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from tests.e2e.cluster_env import REPO
from tests.e2e.conftest import report

pytestmark = pytest.mark.e2e

SUMMARY = re.compile(r"demo: 2,000 jobs done; workers 0 -> (\d+) -> 0 in ([\d.]+) s")
STEP = re.compile(r"fresh-machine: (.+) took (\d+) s")


@pytest.mark.timeout(1800)
def test_make_demo_and_the_unit_tier_pass_on_a_fresh_debian() -> None:
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("the fresh-machine test needs root (docker, debootstrap)", pytrace=False)
        pytest.skip("needs root (docker, debootstrap)")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "fresh-machine.sh")],
        capture_output=True, text=True, timeout=1500, check=False,
    )  # fmt: skip
    out = done.stdout + done.stderr
    assert done.returncode == 0, "scripts/fresh-machine.sh failed:\n" + "\n".join(
        out.splitlines()[-60:]
    )
    report("fresh Debian 12: " + check(out))


def check(out: str) -> str:
    """Assert what the script's output must show; a one-line summary of its times."""
    refused = re.search(r"missing Debian packages: ([^;]+);", out)
    assert refused is not None, out[-3000:]
    assert {"redis-server", "python3-venv"} <= set(refused.group(1).split()), refused.group(0)

    summaries = SUMMARY.findall(out)
    assert len(summaries) == 2, f"expected two demo summaries:\n{out[-3000:]}"
    assert all(int(peak) >= 1 for peak, _ in summaries), summaries
    assert re.search(r"\d+ passed", out), out[-3000:]
    assert not re.search(r"\d+ (failed|skipped|error)", out), out[-3000:]

    steps = dict(STEP.findall(out))
    # Re-running is idempotent and fast: the second demo's setup installs nothing.
    assert "installing shoal" not in out.split("make demo (second run")[1].split("took")[0]
    return (
        "; ".join(f"{name} {seconds} s" for name, seconds in steps.items())
        + f"; demo peaks {'/'.join(peak for peak, _ in summaries)} workers"
    )

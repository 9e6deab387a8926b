"""The fuzzing row: the hypothesis properties of the job codec and the manifest loader
(tests/unit/core/test_fuzz_*.py), run with more examples than CI's unit tier uses."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

from bench.fault_suite.kit import Row

ROOT = Path(__file__).resolve().parents[2]
FUZZ_TESTS = ["tests/unit/core/test_fuzz_codec.py", "tests/unit/core/test_fuzz_manifest.py"]


async def fuzz(*, short: bool = False) -> Row:
    """Proves: arbitrary bytes, hashes and manifests give a record or the documented error,
    never another exception; encode/decode round-trips."""
    examples = 200 if short else 5_000
    began = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=3600",
        *FUZZ_TESTS,
        cwd=ROOT, env={**os.environ, "SHOAL_FUZZ_EXAMPLES": str(examples)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    properties = sum(int(n) for n in re.findall(r"(\d+) (?:passed|failed)", text))
    row = Row("fuzz-codec-manifest", examples, f"≤ {examples:,} inputs × {properties} properties")
    row.drain_s = time.monotonic() - began
    row.checks = {"no exception but the documented one": proc.returncode == 0}
    if proc.returncode:
        row.notes.append(text.strip().splitlines()[-1])
    return row

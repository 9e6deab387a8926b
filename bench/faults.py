"""The fault suite in one command (issue 11 B): each scenario injects one kind of fault into
real `shoal worker` processes on a real Redis and prints one row of figures.

    python bench/faults.py                      # every scenario, full size
    python bench/faults.py --short              # the small variants CI runs (~2 min)
    python bench/faults.py --scenario redis-freeze-5 --scenario garbage-corpus
    python bench/faults.py --record             # also append the table to bench/RESULTS.md

Lost and ran-twice are counted by the jobs themselves (a ledger on a second Redis, see
fault_suite/app.py), not by the runtime. Exit status 1 when any guarantee did not hold.
What each row proves: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fault_suite.kit import Row, table  # noqa: E402
from bench.fault_suite.scenarios import SCENARIOS  # noqa: E402


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="the small variants (CI)")
    parser.add_argument(
        "--scenario", action="append", choices=list(SCENARIOS), help="only these (repeatable)"
    )
    parser.add_argument("--record", action="store_true", help="append to bench/RESULTS.md")
    return parser.parse_args(argv)


async def run(names: list[str], *, short: bool) -> list[Row]:
    rows = []
    for name in names:
        began = time.monotonic()
        row = await SCENARIOS[name](short=short)
        print(f"{name}: {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def report(rows: list[Row], *, short: bool) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    variant = "short variants" if short else "full size"
    notes = [f"- {row.scenario}: {note}" for row in rows for note in row.notes]
    return "\n".join(
        [f"## Fault suite ({variant}) — {when}, commit {commit}", "", table(rows), "", *notes]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    rows = asyncio.run(run(args.scenario or list(SCENARIOS), short=args.short))
    text = report(rows, short=args.short)
    print(text)
    if args.record:
        with (ROOT / "bench" / "RESULTS.md").open("a") as results:
            results.write("\n" + text + "\n")
    return 1 if any(row.failures for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

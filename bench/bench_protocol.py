"""The protocol the Python bench scripts speak (shoal_bench.py, peers/arq_bench.py).

A role and the same flags on the command line, JSON lines on stdout; latency probes report
their start on STARTED_KEY. Standard library only: the peers' venv imports it too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import Any

#: The latency handshake: a worker LPUSHes "<seq> <start ns>" here when a probe job starts.
STARTED_KEY = "shoal-bench:started"
#: How long the latency producer waits for a probe job to start.
PROBE_TIMEOUT_S = 30
#: Untimed calls before the timed ones, so script loading and first-call costs are excluded.
WARMUP_SINGLE = 100

#: The roles every system's script takes.
ROLES = (
    "fill",
    "drain-worker",
    "latency-worker",
    "enqueue-single",
    "enqueue-bulk",
    "latency-producer",
)


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def argument_parser(description: str, roles: tuple[str, ...] = ROLES) -> argparse.ArgumentParser:
    """The role and the flags every system's script takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("role", choices=roles)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--queue", default="bench")
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gap-ms", type=float, default=20.0)
    return parser


async def until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def probe_started_ns(seq: int, reply: Any) -> int:
    """When probe ``seq`` started, from the BLPOP reply on STARTED_KEY (None: timed out)."""
    if reply is None:
        raise SystemExit(f"probe job {seq} did not start within {PROBE_TIMEOUT_S} s")
    raw = reply[1]
    got_seq, started = (raw.decode() if isinstance(raw, bytes) else str(raw)).split()
    if int(got_seq) != seq:
        raise SystemExit(f"probe {seq}: the worker reported job {got_seq}")
    return int(started)

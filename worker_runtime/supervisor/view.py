"""How `shoal up` shows its ticks: a rich live view on a terminal, JSON lines otherwise.

JSON mode writes one object per tick (``"kind": "tick"``, see `report.TickReport`) and a last
one with ``"kind": "summary"``; nothing else goes to stdout, so a script can parse every line.
"""

from __future__ import annotations

import sys
from collections import deque
from types import TracebackType
from typing import Literal, Protocol, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from worker_runtime.supervisor.report import Event, RunSummary, TickReport, WorkerRow

OutputMode = Literal["auto", "live", "json"]
RECENT_EVENTS = 8


class View(Protocol):
    def __enter__(self) -> View: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def tick(self, report: TickReport) -> None: ...

    def summary(self, summary: RunSummary) -> None: ...


def open_view(mode: OutputMode, *, title: str, stream: TextIO | None = None) -> View:
    """``auto``: live when ``stream`` (stdout) is a terminal, JSON lines otherwise."""
    out = stream or sys.stdout
    if mode == "json" or (mode == "auto" and not out.isatty()):
        return JsonLinesView(out)
    return LiveView(Console(file=out), title=title)


class JsonLinesView:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __enter__(self) -> JsonLinesView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stream.flush()

    def tick(self, report: TickReport) -> None:
        self.stream.write(report.to_json() + "\n")
        self.stream.flush()

    def summary(self, summary: RunSummary) -> None:
        self.stream.write(summary.model_dump_json() + "\n")
        self.stream.flush()


class LiveView:
    def __init__(self, console: Console, *, title: str) -> None:
        self.console = console
        self.title = title
        self.recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
        self.live = Live(console=console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveView:
        self.live.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.stop()

    def tick(self, report: TickReport) -> None:
        self.recent.extend(report.events)
        self.live.update(render(report, list(self.recent), title=self.title), refresh=True)

    def summary(self, summary: RunSummary) -> None:
        self.live.stop()
        self.console.print(summary.message, highlight=False, markup=False)


def render(report: TickReport, recent: list[Event], *, title: str) -> RenderableType:
    """One screen: replicas, queues, workers, the scale reason and recent events."""
    phase = {"running": "", "stopping": "  stopping: draining workers", "stopped": "  stopped"}
    head = Text.assemble(
        (f"{title} ", "bold"),
        (report.pool, "bold cyan"),
        f"  t={report.t:.0f}s  replicas ",
        (f"{report.desired_replicas} desired", "bold"),
        f" / {report.replicas} running ({report.ready_replicas} ready)",
        f", {report.draining} draining" if report.draining else "",
        (phase[report.phase], "yellow"),
    )
    parts: list[RenderableType] = [head]
    if report.observation_error:
        parts.append(Text(f"observation failed: {report.observation_error}", style="red"))
    parts.append(_queues(report))
    parts.append(_workers(report.workers))
    parts.append(Text.assemble(("now: ", "bold"), report.reason))
    if report.last_scale_reason:
        ago = report.last_scale_seconds_ago or 0.0
        reason = f" ({ago:.0f} s ago): {report.last_scale_reason}"
        parts.append(Text.assemble(("last scale", "bold"), reason))
    for e in recent:
        style = {"crashed": "red", "killed": "red", "scaled": "cyan"}.get(e.kind, "dim")
        who = f"{e.worker} " if e.worker else ""
        line = f"{e.t:7.1f}s {e.kind:<8} {who}{e.message}"
        parts.append(Text(line, style=style, no_wrap=True, overflow="ellipsis"))
    return Group(*parts)


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:,.1f}"


def _queues(report: TickReport) -> Table:
    table = Table(title=None, expand=False, box=None, pad_edge=False)
    for name in ("queue", "waiting", "due", "active", "in/s", "done/s", "oldest"):
        table.add_column(name, justify="left" if name == "queue" else "right")
    for q in report.queues:
        table.add_row(
            q.queue,
            f"{q.waiting:,}",
            f"{q.due_delayed:,}",
            f"{q.active:,}",
            _rate(q.arrival_rate),
            _rate(q.finish_rate),
            f"{q.oldest_waiting_seconds:.1f}s",
        )
    return table


def _workers(rows: list[WorkerRow]) -> RenderableType:
    if not rows:
        return Text("no workers (scaled to zero)", style="dim")
    table = Table(box=None, pad_edge=False)
    for name in ("worker", "pid", "state", "load", "", "restarts", "up"):
        table.add_column(name)
    colours = {"running": "green", "starting": "yellow", "draining": "magenta", "backoff": "red"}
    for w in rows:
        load = w.in_flight or 0
        bar = ProgressBar(total=w.capacity, completed=min(load, w.capacity), width=12)
        table.add_row(
            w.name,
            str(w.pid or "-"),
            Text(w.state, style=colours[w.state]),
            bar,
            "?" if w.in_flight is None else f"{load}/{w.capacity}",
            str(w.restarts),
            f"restart in {w.restart_in_seconds:.0f}s"
            if w.restart_in_seconds is not None
            else f"{w.up_seconds or 0:.0f}s",
        )
    return table

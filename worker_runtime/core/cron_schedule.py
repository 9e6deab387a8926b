"""Cron schedules (pure): parse the 5-field form (or 6 with seconds first) and find ticks.

Fields: [second] minute hour day-of-month month day-of-week, each ``*``, ``N``, ``A-B``,
lists ``A,B`` and steps ``*/S`` / ``A-B/S`` / ``A/S``; month and weekday names (``jan``,
``mon``); weekday 0 or 7 is Sunday; macros ``@yearly @monthly @weekly @daily @hourly``.
As in Vixie cron, when both day-of-month and day-of-week are restricted a day matching either
fires. Times are UTC. No clock here: callers pass the instant they mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
#: How far ahead a tick is searched before a schedule is declared impossible (Feb 30).
SEARCH_YEARS = 5


class InvalidCronSchedule(ValueError):
    """A schedule that cannot be parsed, or that never fires."""


def _value(text: str, names: list[str] | None, offset: int) -> int:
    if names and text.lower() in names:
        return names.index(text.lower()) + offset
    if not text.isdigit():
        raise InvalidCronSchedule(f"{text!r} is not a number")
    return int(text)


def _field(
    text: str, *, lo: int, hi: int, names: list[str] | None = None, offset: int = 0
) -> frozenset[int]:
    out: set[int] = set()
    for part in text.split(","):
        rng, _, step_text = part.partition("/")
        step = _value(step_text, None, 0) if step_text else 1
        if step < 1:
            raise InvalidCronSchedule(f"step {step_text!r} must be at least 1")
        if rng == "*":
            start, end = lo, hi
        elif "-" in rng:
            a, b = rng.split("-", 1)
            start, end = _value(a, names, offset), _value(b, names, offset)
        else:
            start = _value(rng, names, offset)
            end = hi if step_text else start
        if not (lo <= start <= hi and lo <= end <= hi) or start > end:
            raise InvalidCronSchedule(f"{part!r} is outside {lo}-{hi}")
        out.update(range(start, end + 1, step))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> CronSchedule:
        fields = MACROS.get(text.strip().lower(), text).split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise InvalidCronSchedule(
                f"{text!r}: expected 5 fields (minute hour day month weekday) or 6 (seconds first)"
            )
        sec, minute, hour, day, month, weekday = fields
        try:
            weekdays = _field(weekday, lo=0, hi=7, names=WEEKDAYS)
            return cls(
                seconds=_field(sec, lo=0, hi=59),
                minutes=_field(minute, lo=0, hi=59),
                hours=_field(hour, lo=0, hi=23),
                days=_field(day, lo=1, hi=31),
                months=_field(month, lo=1, hi=12, names=MONTHS, offset=1),
                weekdays=frozenset(d % 7 for d in weekdays),
                days_restricted=not day.startswith("*"),
                weekdays_restricted=not weekday.startswith("*"),
                text=text,
            )
        except InvalidCronSchedule as exc:
            raise InvalidCronSchedule(f"{text!r}: {exc}") from None

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def next_after(self, epoch_seconds: float) -> int:
        """The first tick strictly after ``epoch_seconds`` (epoch seconds, UTC)."""
        t = datetime.fromtimestamp(int(epoch_seconds) + 1, UTC)
        limit = t + timedelta(days=366 * SEARCH_YEARS)
        while t < limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime(year, month, 1, tzinfo=UTC)
            elif not self._day_matches(t):
                t = datetime(t.year, t.month, t.day, tzinfo=UTC) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = datetime(t.year, t.month, t.day, t.hour, tzinfo=UTC) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t = t.replace(second=0) + timedelta(minutes=1)
            elif t.second not in self.seconds:
                t += timedelta(seconds=1)
            else:
                return int(t.timestamp())
        raise InvalidCronSchedule(f"{self.text!r} never fires")


def every_next_after(every_seconds: int, epoch_seconds: float) -> int:
    """Interval ticks fall on multiples of ``every_seconds`` since the epoch (aligned)."""
    return (int(epoch_seconds) // every_seconds + 1) * every_seconds


class CronJob(BaseModel):
    """A repeatable job of one queue: a cron ``schedule`` or a fixed ``every_seconds``.

    Each tick enqueues one job with id ``cron:<name>:<tick epoch seconds>``, once however
    many workers run. Ticks missed while no worker ran are skipped unless ``catch_up``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field("", max_length=200, description="default: the schedule text")
    schedule: str | None = Field(None, description="cron: 5 fields, or 6 with seconds first")
    every_seconds: int | None = Field(None, ge=1, le=366 * 86400)
    data: Any = None
    priority: int = Field(0, ge=-1_000_000, le=1_000_000)
    catch_up: bool = Field(False, description="enqueue ticks missed while no worker ran")

    @model_validator(mode="after")
    def _one_schedule(self) -> CronJob:
        if (self.schedule is None) == (self.every_seconds is None):
            raise ValueError("set exactly one of schedule and every_seconds")
        if self.schedule is not None:
            try:
                CronSchedule.parse(self.schedule).next_after(0)
            except InvalidCronSchedule as exc:
                raise ValueError(f"schedule: {exc}") from None
        if not self.name:
            name = self.schedule if self.schedule is not None else f"every-{self.every_seconds}s"
            object.__setattr__(self, "name", name)
        return self

    def next_after(self, epoch_seconds: float) -> int:
        if self.every_seconds is not None:
            return every_next_after(self.every_seconds, epoch_seconds)
        assert self.schedule is not None
        return _parsed(self.schedule).next_after(epoch_seconds)


_CACHE: dict[str, CronSchedule] = {}


def _parsed(text: str) -> CronSchedule:
    found = _CACHE.get(text)
    if found is None:
        found = _CACHE[text] = CronSchedule.parse(text)
    return found

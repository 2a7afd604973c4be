"""Opening hours: "open now" from OSM `opening_hours`, evaluated in Europe/Vilnius time.

Three states, never two: a place whose hours are missing, unparsable or say "unknown" is
*unknown*, which a parent must be able to tell apart from *closed* (and which is never *open*).
An `HoursEvaluator` is built per request with that request's "now"; it parses each distinct
hours string once (stores repeat a few patterns many times), so filtering thousands of rows costs
a dictionary lookup per row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from opening_hours import OpeningHours

TIMEZONE = ZoneInfo("Europe/Vilnius")
STATES = ("open", "closed", "unknown")


@dataclass(frozen=True, slots=True)
class HoursState:
    state: str  # open | closed | unknown
    next_change: datetime | None = None  # local time the state changes (None: not within reach)


@dataclass(frozen=True, slots=True)
class DaySchedule:
    day: date
    intervals: tuple[tuple[datetime, datetime], ...]  # open intervals within the day, local time
    unknown: bool = False  # some part of the day is "unknown" in the expression


def parse(hours: str | None) -> OpeningHours | None:
    """The parsed expression, or None when there is none or it cannot be read."""
    if not hours or not hours.strip():
        return None
    try:
        return OpeningHours(hours.strip(), timezone=TIMEZONE, max_interval_days=8)
    except Exception:  # opening_hours.ParserError and friends: unreadable hours are unknown hours
        return None


class HoursEvaluator:
    """Answers open / closed / unknown for hours strings at one instant, caching by string."""

    def __init__(self, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=TIMEZONE)
        self.now = now.astimezone(TIMEZONE)
        self._states: dict[str | None, HoursState] = {}

    def state(self, hours: str | None) -> HoursState:
        cached = self._states.get(hours)
        if cached is None:
            cached = self._states[hours] = self._evaluate(hours)
        return cached

    def state_name(self, hours: str | None) -> str:
        """Just the state's name (the SQL function and the JSON use this)."""
        return self.state(hours).state

    def _evaluate(self, hours: str | None) -> HoursState:
        oh = parse(hours)
        if oh is None:
            return HoursState("unknown")
        try:
            raw, _comment = oh.state(self.now)
            name = str(getattr(raw, "name", raw)).lower()
            nxt = oh.next_change(self.now)
        except Exception:
            return HoursState("unknown")
        if name not in STATES:
            name = "unknown"
        if nxt is not None and nxt.tzinfo is not None:
            nxt = nxt.astimezone(TIMEZONE)
        return HoursState(name, nxt)


def week(hours: str | None, *, start: datetime, days: int = 7) -> list[DaySchedule] | None:
    """The open intervals for `days` days from `start`'s local date (None when hours are unknown)."""
    oh = parse(hours)
    if oh is None:
        return None
    local = start.astimezone(TIMEZONE)
    first = datetime(local.year, local.month, local.day, tzinfo=TIMEZONE)
    out: list[DaySchedule] = []
    for i in range(days):
        day_start = first + timedelta(days=i)
        day_end = day_start + timedelta(days=1)
        intervals: list[tuple[datetime, datetime]] = []
        unknown = False
        try:
            for begin, end, raw, _comment in oh.intervals(day_start, day_end):
                name = str(getattr(raw, "name", raw)).lower()
                if name == "open":
                    intervals.append((begin.astimezone(TIMEZONE), end.astimezone(TIMEZONE)))
                elif name == "unknown":
                    unknown = True
        except Exception:
            return None
        out.append(DaySchedule(day_start.date(), tuple(intervals), unknown))
    return out

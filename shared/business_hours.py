"""Business hours of a focal point: open now?, next opening, deadline = start + N business hours.

Weekly hours are local wall-clock times in an IANA time zone; holidays are local dates. All
arithmetic runs on the UTC instants of each day's opening intervals, so a DST change or a holiday
is accounted for exactly: eight business hours are eight hours of real time spent open.
A local time the clock skips (spring forward) is read with the offset before the change (PEP 495
fold=0); an interval that thereby becomes empty is ignored. Intervals may end at "24:00" but not
run past midnight: split an overnight shift into two days.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from shared.i18n import N_, Message

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Look this far ahead for an opening before concluding the schedule never opens.
HORIZON_DAYS = 2 * 366
EXAMPLE_SCHEDULE: dict[str, Any] = {
    "timezone": "Africa/Lagos",
    "weekly_hours": {day: [["08:00", "16:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
}


class ScheduleNeverOpens(ValueError):
    """The schedule has no opening within the horizon (no hours, or every day a holiday)."""


def _parse_clock(value: str) -> time | None:
    """Parse HH:MM; "24:00" (end of day) gives None."""
    if value == "24:00":
        return None
    try:
        parsed = datetime.strptime(value, "%H:%M").time()
    except ValueError:
        raise ValueError(
            Message("'{value}' is not a time of day; write it as HH:MM, e.g. 08:30", value=value)
        ) from None
    return parsed


def _minutes(value: str) -> int:
    parsed = _parse_clock(value)
    return 24 * 60 if parsed is None else parsed.hour * 60 + parsed.minute


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(N_("give an aware datetime (with a time zone), e.g. 2026-03-02T09:00:00Z"))
    return at.astimezone(UTC)


class Schedule(BaseModel):
    """Opening hours of a focal point: IANA zone, local weekly hours and local holidays."""

    model_config = ConfigDict(frozen=True, json_schema_extra={"examples": [EXAMPLE_SCHEDULE]})

    timezone: str = Field(examples=["Africa/Lagos"], description="IANA time zone name.")
    weekly_hours: dict[Weekday, list[tuple[str, str]]] = Field(
        default_factory=dict,
        description="Per weekday, opening intervals [start, end) as local HH:MM; end may be 24:00.",
        examples=[EXAMPLE_SCHEDULE["weekly_hours"]],
    )
    holidays: list[date] = Field(
        default_factory=list,
        description="Local dates when closed all day.",
        examples=[["2026-12-25"]],
    )
    _zone: ZoneInfo = PrivateAttr()
    _holidays: frozenset[date] = PrivateAttr()

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zone_names():
            raise ValueError(
                Message(
                    "'{value}' is not an IANA time zone; use a name like Africa/Lagos", value=value
                )
            )
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _ordered_intervals(
        cls, value: dict[Weekday, list[tuple[str, str]]]
    ) -> dict[Weekday, list[tuple[str, str]]]:
        for day, intervals in value.items():
            previous_end = -1
            for start, end in intervals:
                if _minutes(start) >= _minutes(end) or start == "24:00":
                    raise ValueError(
                        Message(
                            "{day}: interval {start}-{end} must start before it ends; split an "
                            "overnight shift across two days",
                            day=day,
                            start=start,
                            end=end,
                        )
                    )
                if _minutes(start) < previous_end:
                    raise ValueError(
                        Message("{day}: intervals overlap or are out of order; sort them", day=day)
                    )
                previous_end = _minutes(end)
        return value

    def model_post_init(self, _context: object) -> None:
        """Prepare the zone and holiday lookup once."""
        try:
            self._zone = ZoneInfo(self.timezone)
        except ZoneInfoNotFoundError:  # pragma: no cover - validated above
            raise ValueError(
                Message("unknown time zone {timezone}", timezone=self.timezone)
            ) from None
        self._holidays = frozenset(self.holidays)

    def intervals_from(self, at: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Yield the UTC opening intervals that end after `at`, in time order."""
        at = _require_aware(at)
        day = at.astimezone(self._zone).date() - timedelta(days=1)
        for offset in range(HORIZON_DAYS):
            for start, end in self._day_intervals(day + timedelta(days=offset)):
                if end > at:
                    yield start, end

    def _day_intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        if day in self._holidays:
            return
        for start, end in self.weekly_hours.get(WEEKDAYS[day.weekday()], []):
            opens = self._instant(day, _parse_clock(start))
            closes = self._instant(day, _parse_clock(end))
            if closes > opens:
                yield opens, closes

    def _instant(self, day: date, clock: time | None) -> datetime:
        if clock is None:
            day, clock = day + timedelta(days=1), time(0)
        return datetime.combine(day, clock, tzinfo=self._zone).astimezone(UTC)

    def is_open(self, at: datetime) -> bool:
        """Return True when `at` falls inside an opening interval."""
        at = _require_aware(at)
        start, _end = self._first_interval(at)
        return start <= at

    def next_opening(self, at: datetime) -> datetime:
        """Return `at` (in UTC) when open, else the UTC start of the next opening interval."""
        at = _require_aware(at)
        start, _end = self._first_interval(at)
        return max(start, at)

    def add_business_hours(self, start: datetime, hours: float) -> datetime:
        """Return the UTC instant when `hours` of opening time have elapsed since `start`."""
        if hours < 0:
            raise ValueError(N_("business hours to add must be zero or more"))
        cursor = _require_aware(start)
        remaining = timedelta(hours=hours)
        for opens, closes in self.intervals_from(cursor):
            begin = max(opens, cursor)
            if remaining <= closes - begin:
                return begin + remaining
            remaining -= closes - begin
        raise ScheduleNeverOpens(_never_opens_message(self.timezone))

    def _first_interval(self, at: datetime) -> tuple[datetime, datetime]:
        for interval in self.intervals_from(at):
            return interval
        raise ScheduleNeverOpens(_never_opens_message(self.timezone))


def _never_opens_message(zone: str) -> Message:
    return Message(
        "The schedule ({zone}) has no opening hours in the next {horizon_days} days; "
        "add weekly hours or remove holidays.",
        zone=zone,
        horizon_days=HORIZON_DAYS,
    )


@cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_open(schedule: Schedule, at: datetime) -> bool:
    """Return True when `schedule` is open at `at`."""
    return schedule.is_open(at)


def next_opening(schedule: Schedule, at: datetime) -> datetime:
    """Return the next UTC instant at or after `at` when `schedule` is open."""
    return schedule.next_opening(at)


def add_business_hours(schedule: Schedule, start: datetime, hours: float) -> datetime:
    """Return the UTC deadline `hours` business hours after `start` under `schedule`."""
    return schedule.add_business_hours(start, hours)

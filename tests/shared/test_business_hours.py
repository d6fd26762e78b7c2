"""Business hours: opening checks, next opening and deadlines across DST changes and holidays."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.business_hours import Schedule, ScheduleNeverOpens, add_business_hours, is_open

BERLIN = ZoneInfo("Europe/Berlin")
LAGOS_WEEKDAYS = {
    "timezone": "Africa/Lagos",
    "weekly_hours": {d: [["08:00", "16:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
}


def berlin(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


def all_day_berlin() -> Schedule:
    every_day = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    return Schedule.model_validate({"timezone": "Europe/Berlin", "weekly_hours": every_day})


class TestIsOpen:
    def test_open_inside_local_hours_and_closed_outside(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        # 2026-03-02 is a Monday; Lagos is UTC+1 all year.
        assert lagos.is_open(datetime(2026, 3, 2, 7, 0, tzinfo=UTC))  # 08:00 local
        assert not lagos.is_open(datetime(2026, 3, 2, 6, 59, tzinfo=UTC))
        assert not lagos.is_open(datetime(2026, 3, 2, 15, 0, tzinfo=UTC))  # 16:00 local closes
        assert not lagos.is_open(datetime(2026, 3, 7, 10, 0, tzinfo=UTC))  # Saturday

    def test_holiday_is_closed_all_day(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        assert not lagos.is_open(datetime(2026, 12, 25, 10, 0, tzinfo=UTC))  # a Friday
        assert lagos.is_open(datetime(2026, 12, 24, 10, 0, tzinfo=UTC))

    def test_naive_datetime_is_refused(self) -> None:
        with pytest.raises(ValueError, match="aware"):
            is_open(Schedule.model_validate(LAGOS_WEEKDAYS), datetime(2026, 3, 2, 9))


class TestNextOpening:
    def test_friday_evening_opens_monday_morning(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        friday_evening = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
        assert lagos.next_opening(friday_evening) == datetime(2026, 3, 9, 7, 0, tzinfo=UTC)

    def test_when_open_the_answer_is_now(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
        assert lagos.next_opening(now) == now

    def test_skips_holiday(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        christmas_eve_evening = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)
        assert lagos.next_opening(christmas_eve_evening) == datetime(2026, 12, 28, 7, tzinfo=UTC)

    def test_opening_after_spring_forward_uses_summer_offset(self) -> None:
        weekdays = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        office = Schedule.model_validate({"timezone": "Europe/Berlin", "weekly_hours": weekdays})
        # Berlin switches to CEST on Sunday 2026-03-29; Monday 09:00 CEST is 07:00 UTC.
        saturday = berlin(2026, 3, 28, 12)
        assert office.next_opening(saturday) == datetime(2026, 3, 30, 7, tzinfo=UTC)


class TestAddBusinessHours:
    def test_deadline_rolls_over_the_weekend(self) -> None:
        lagos = Schedule.model_validate(LAGOS_WEEKDAYS)
        friday_14_local = datetime(2026, 3, 6, 13, 0, tzinfo=UTC)
        # 2 h left on Friday, 6 more from Monday 08:00 local → Monday 14:00 local = 13:00 UTC.
        assert add_business_hours(lagos, friday_14_local, 8) == datetime(2026, 3, 9, 13, tzinfo=UTC)

    def test_spring_forward_day_has_23_hours(self) -> None:
        sunday_start = berlin(2026, 3, 29, 0)
        deadline = all_day_berlin().add_business_hours(sunday_start, 23)
        assert deadline == berlin(2026, 3, 30, 0).astimezone(UTC)

    def test_fall_back_day_has_25_hours(self) -> None:
        sunday_start = berlin(2026, 10, 25, 0)
        deadline = all_day_berlin().add_business_hours(sunday_start, 25)
        assert deadline == berlin(2026, 10, 26, 0).astimezone(UTC)

    def test_office_hours_keep_local_clock_across_dst(self) -> None:
        weekdays = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        office = Schedule.model_validate({"timezone": "Europe/Berlin", "weekly_hours": weekdays})
        friday_16 = berlin(2026, 3, 27, 16)  # CET, UTC+1
        deadline = office.add_business_hours(friday_16, 2)
        assert deadline == berlin(2026, 3, 30, 10).astimezone(UTC)  # Monday 10:00 CEST
        assert deadline == datetime(2026, 3, 30, 8, tzinfo=UTC)

    def test_holidays_are_skipped(self) -> None:
        weekdays = {d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        office = Schedule.model_validate(
            {"timezone": "Europe/Berlin", "weekly_hours": weekdays, "holidays": ["2026-12-24"]}
        )
        deadline = office.add_business_hours(berlin(2026, 12, 23, 16), 2)
        assert deadline == berlin(2026, 12, 25, 10).astimezone(UTC)

    def test_result_is_utc(self) -> None:
        deadline = all_day_berlin().add_business_hours(berlin(2026, 6, 1, 12), 1)
        assert deadline.tzinfo == UTC

    def test_schedule_without_hours_says_so(self) -> None:
        closed = Schedule.model_validate({"timezone": "Europe/Berlin"})
        with pytest.raises(ScheduleNeverOpens, match="no opening hours"):
            closed.add_business_hours(berlin(2026, 6, 1, 12), 1)


class TestScheduleValidation:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"timezone": "Mars/Olympus"}, "IANA"),
            ({"timezone": "UTC", "weekly_hours": {"mon": [["17:00", "09:00"]]}}, "overnight"),
            ({"timezone": "UTC", "weekly_hours": {"mon": [["8h", "16:00"]]}}, "HH:MM"),
            (
                {
                    "timezone": "UTC",
                    "weekly_hours": {"mon": [["08:00", "12:00"], ["11:00", "13:00"]]},
                },
                "overlap",
            ),
            ({"timezone": "UTC", "weekly_hours": {"monday": [["08:00", "12:00"]]}}, "mon"),
        ],
    )
    def test_bad_schedules_are_refused_with_a_reason(self, body: dict, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            Schedule.model_validate(body)


day_intervals = (
    st.lists(
        st.tuples(st.integers(0, 47), st.integers(1, 48)).filter(lambda t: t[0] < t[1]),
        max_size=2,
    )
    .map(lambda xs: sorted(xs))
    .filter(lambda xs: all(a[1] <= b[0] for a, b in itertools.pairwise(xs)))
)


def _clock(half_hours: int) -> str:
    return "24:00" if half_hours == 48 else f"{half_hours // 2:02d}:{(half_hours % 2) * 30:02d}"


ZONES = ["Europe/Berlin", "Africa/Lagos", "Asia/Baghdad", "America/New_York"]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    zone = draw(
        st.sampled_from(["Europe/Berlin", "Africa/Lagos", "Asia/Baghdad", "America/New_York"])
    )
    hours = {}
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun"):
        intervals = draw(day_intervals)
        if intervals:
            hours[day] = [[_clock(a), _clock(b)] for a, b in intervals]
    # At least three hours a week, so 80 business hours fit the two-year search horizon (a
    # schedule open 30 minutes a week rightly answers ScheduleNeverOpens for such deadlines).
    hours.setdefault("wed", [["09:00", "12:00"]])
    holidays = draw(
        st.lists(st.dates(datetime(2026, 3, 1).date(), datetime(2026, 11, 30).date()), max_size=5)
    )
    return Schedule.model_validate({"timezone": zone, "weekly_hours": hours, "holidays": holidays})


instants = st.datetimes(datetime(2026, 3, 1), datetime(2026, 11, 1), timezones=st.just(UTC))
business_hours = st.floats(0, 80, allow_nan=False).map(lambda h: round(h, 2))


def _open_time_between(schedule: Schedule, start: datetime, end: datetime) -> timedelta:
    total = timedelta()
    for opens, closes in schedule.intervals_from(start):
        if opens >= end:
            break
        total += min(closes, end) - max(opens, start)
    return total


class TestBusinessHoursProperties:
    @settings(max_examples=60, deadline=None)
    @given(schedules(), instants, business_hours, business_hours)
    def test_deadline_is_monotone_in_hours(
        self, schedule: Schedule, start: datetime, a: float, b: float
    ) -> None:
        low, high = sorted((a, b))
        assert schedule.add_business_hours(start, low) <= schedule.add_business_hours(start, high)

    @settings(max_examples=60, deadline=None)
    @given(schedules(), instants, business_hours)
    def test_deadline_falls_inside_opening_hours(
        self, schedule: Schedule, start: datetime, hours: float
    ) -> None:
        deadline = schedule.add_business_hours(start, hours)
        opens, closes = next(schedule.intervals_from(deadline - timedelta(microseconds=1)))
        assert opens <= deadline <= closes

    @settings(max_examples=60, deadline=None)
    @given(schedules(), instants, business_hours)
    def test_exactly_the_requested_open_time_elapses(
        self, schedule: Schedule, start: datetime, hours: float
    ) -> None:
        deadline = schedule.add_business_hours(start, hours)
        assert _open_time_between(schedule, start, deadline) == timedelta(hours=hours)

    @settings(max_examples=60, deadline=None)
    @given(schedules(), instants)
    def test_next_opening_is_open_and_nothing_earlier_is(
        self, schedule: Schedule, at: datetime
    ) -> None:
        opening = schedule.next_opening(at)
        assert opening >= at
        assert schedule.is_open(opening)
        assert _open_time_between(schedule, at, opening) == timedelta()

"""Calling hours with controlled clocks: every ``now`` is explicit, nothing reads the real clock."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_provider_alta.calling_hours import (
    HORIZON_DAYS,
    CallingHours,
    WindowDecision,
    decide,
    decide_for_zones,
)
from airflow_provider_alta.phone import candidate_timezones

NY = "America/New_York"
LONDON = "Europe/London"
DEFAULT = CallingHours()


def utc(*args: int) -> pendulum.DateTime:
    return pendulum.datetime(*args, tz="UTC")


def in_zone(hours: CallingHours | str, now: pendulum.DateTime, zone: str = NY) -> WindowDecision:
    return decide(CallingHours.parse(hours), now=now, timezone=zone, phone_e164=None)


def skip(d: WindowDecision) -> bool:
    """No usable common window: the record is skipped with ``d.reason``."""
    return not d.open and d.opens_at is None


def closes_at(hours: CallingHours | str, d: WindowDecision) -> pendulum.DateTime | None:
    """End of the current (if open) or next common window: what an open decision's reason says."""
    if skip(d):
        return None
    if not d.open:
        d = decide_for_zones(CallingHours.parse(hours), d.opens_at, d.zones)
        assert d.open
    _, sep, end = d.reason.rpartition("; closes ")
    assert sep, d.reason
    return pendulum.parse(end).in_timezone("UTC")


# --- default window, boundaries, exact opens_at -------------------------------------------------------


def test_before_the_window_opens_at_8_local_as_exact_utc():
    d = in_zone(DEFAULT, utc(2026, 11, 24, 11, 12))  # 06:12 EST, Tuesday
    assert (d.open, skip(d), d.zones) == (False, False, (NY,))
    assert d.opens_at == utc(2026, 11, 24, 13)
    assert d.opens_at.timezone_name == "UTC"
    assert closes_at(DEFAULT, d) == utc(2026, 11, 25, 2)
    assert d.reason == (
        "outside calling hours 08:00-21:00 in America/New_York (now 06:12 Tue); "
        "opens 2026-11-24T13:00:00+00:00"
    )


def test_inside_the_window():
    d = in_zone(DEFAULT, utc(2026, 11, 24, 15))
    assert (d.open, skip(d), d.opens_at) == (True, False, None)
    assert closes_at(DEFAULT, d) == utc(2026, 11, 25, 2)
    assert d.reason == (
        "inside calling hours 08:00-21:00 in America/New_York (now 10:00 Tue); "
        "closes 2026-11-25T02:00:00+00:00"
    )


def test_start_is_inclusive():
    assert in_zone(DEFAULT, utc(2026, 11, 24, 13)).open
    just_before = in_zone(DEFAULT, utc(2026, 11, 24, 13).subtract(microseconds=1))
    assert not just_before.open
    assert just_before.opens_at == utc(2026, 11, 24, 13)


def test_end_is_exclusive_and_the_next_day_opens():
    assert in_zone(DEFAULT, utc(2026, 11, 25, 1, 59, 59)).open
    d = in_zone(DEFAULT, utc(2026, 11, 25, 2))  # 21:00 EST
    assert not d.open
    assert d.opens_at == utc(2026, 11, 25, 13)


def test_late_evening_waits_for_the_next_morning():
    d = in_zone(DEFAULT, utc(2026, 6, 10, 3, 30))  # 23:30 EDT, Tuesday
    assert d.opens_at == utc(2026, 6, 10, 12)


def test_aware_stdlib_datetimes_are_accepted():
    expected = in_zone(DEFAULT, utc(2026, 11, 24, 11, 12))
    for now in (
        datetime(2026, 11, 24, 11, 12, tzinfo=timezone.utc),
        datetime(2026, 11, 24, 6, 12, tzinfo=ZoneInfo(NY)),
        datetime(2026, 11, 24, 16, 42, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        pendulum.datetime(2026, 11, 24, 20, 12, tz="Asia/Tokyo"),
    ):
        assert decide(DEFAULT, now=now, timezone=NY, phone_e164=None) == expected


def test_naive_now_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(DEFAULT, now=datetime(2026, 11, 24, 12), timezone=NY, phone_e164=None)
    with pytest.raises(ValueError, match="timezone-aware"):
        decide_for_zones(DEFAULT, pendulum.naive(2026, 11, 24, 12), ())


# --- weekdays -------------------------------------------------------------------------------------------


def test_friday_night_with_weekdays_only_opens_monday_morning():
    d = in_zone("08:00-21:00 mon-fri", pendulum.datetime(2026, 11, 27, 21, 30, tz=NY))
    assert not d.open
    assert d.opens_at == utc(2026, 11, 30, 13)  # Monday 08:00 EST
    assert "08:00-21:00 mon-fri" in d.reason
    assert "(now 21:30 Fri)" in d.reason


def test_weekend_day_is_closed_all_day():
    d = in_zone("09:00-17:00 mon-fri", pendulum.datetime(2026, 11, 28, 12, tz=NY))  # Saturday noon
    assert not d.open
    assert d.opens_at == utc(2026, 11, 30, 14)


def test_weekend_only_window():
    hours = {"start": "10:00", "end": "12:00", "days": ["sat", "sun"]}
    assert in_zone(hours, pendulum.datetime(2026, 11, 29, 11, tz=NY)).open  # Sunday
    d = in_zone(hours, pendulum.datetime(2026, 11, 30, 11, tz=NY))  # Monday
    assert d.opens_at == pendulum.datetime(2026, 12, 5, 10, tz=NY)


def test_weekday_is_the_recipients_local_weekday():
    # Monday 02:00 UTC is still Sunday 21:00 in Los Angeles: a mon-only window waits until Monday there.
    d = in_zone("08:00-21:00 mon", utc(2026, 11, 30, 2), "America/Los_Angeles")
    assert d.opens_at == pendulum.datetime(2026, 11, 30, 8, tz="America/Los_Angeles")


# --- DST --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day_before", "change_day", "before_utc_hour", "after_utc_hour"),
    [
        (NY, (2026, 3, 7), (2026, 3, 8), 13, 12),  # spring forward: EST -> EDT
        (NY, (2026, 10, 31), (2026, 11, 1), 12, 13),  # fall back: EDT -> EST
        (LONDON, (2026, 3, 28), (2026, 3, 29), 8, 7),  # GMT -> BST
        (LONDON, (2026, 10, 24), (2026, 10, 25), 7, 8),  # BST -> GMT
    ],
)
def test_opens_at_shifts_by_an_hour_across_a_dst_change(
    zone, day_before, change_day, before_utc_hour, after_utc_hour
):
    d1 = in_zone(DEFAULT, pendulum.datetime(*day_before, tz=zone), zone)
    d2 = in_zone(DEFAULT, pendulum.datetime(*change_day, tz=zone), zone)
    assert d1.opens_at == utc(*day_before, before_utc_hour)
    assert d2.opens_at == utc(*change_day, after_utc_hour)
    assert d2.opens_at.in_timezone(zone).time() == time(8, 0)


def test_window_on_a_dst_day_has_its_true_utc_length():
    hours = "00:00-23:59"
    spring = in_zone(hours, utc(2026, 3, 8, 5))  # 00:00 EST, the day clocks go forward
    assert spring.open
    assert closes_at(hours, spring) == utc(2026, 3, 9, 3, 59)
    assert closes_at(hours, spring) - utc(2026, 3, 8, 5) == timedelta(hours=22, minutes=59)
    autumn = in_zone(hours, utc(2026, 11, 1, 4))  # 00:00 EDT, the day clocks go back
    assert closes_at(hours, autumn) - utc(2026, 11, 1, 4) == timedelta(hours=24, minutes=59)


def test_now_after_the_change_within_the_day():
    # 2026-03-08 12:30 UTC is 08:30 EDT: open (it would be 07:30 with the old offset).
    assert in_zone(DEFAULT, utc(2026, 3, 8, 12, 30)).open
    # 2026-11-01 12:30 UTC is 07:30 EST: closed (it would be 08:30 with the old offset).
    d = in_zone(DEFAULT, utc(2026, 11, 1, 12, 30))
    assert (d.open, d.opens_at) == (False, utc(2026, 11, 1, 13))


def test_start_in_the_spring_forward_gap_opens_at_the_change():
    # 02:30 does not exist on 2026-03-08 in New York: clocks jump from 02:00 EST to 03:00 EDT (07:00 UTC).
    d = in_zone("02:30-21:00", utc(2026, 3, 8, 5))
    assert d.opens_at == utc(2026, 3, 8, 7)
    assert d.opens_at.in_timezone(NY).time() == time(3, 0)
    assert not in_zone("02:30-21:00", utc(2026, 3, 8, 6, 59, 59)).open
    assert in_zone("02:30-21:00", utc(2026, 3, 8, 7)).open
    # The next day 02:30 exists again.
    assert in_zone("02:30-21:00", utc(2026, 3, 9, 2)).opens_at == utc(2026, 3, 9, 6, 30)


def test_end_in_the_spring_forward_gap_closes_at_the_change():
    d = in_zone("00:00-02:30", utc(2026, 3, 8, 6))
    assert d.open
    assert closes_at("00:00-02:30", d) == utc(2026, 3, 8, 7)  # never lets the clock run past 02:30 local
    assert not in_zone("00:00-02:30", utc(2026, 3, 8, 7)).open


def test_start_in_the_london_gap():
    # Europe/London skips 01:00-02:00 on 2026-03-29; the change is at 01:00 UTC.
    d = in_zone("01:30-21:00", utc(2026, 3, 29, 0, 10), LONDON)
    assert d.opens_at == utc(2026, 3, 29, 1)


def test_window_entirely_inside_the_gap_is_empty_that_day():
    d = in_zone("02:10-02:50", utc(2026, 3, 8, 5))
    assert d.opens_at == utc(2026, 3, 9, 6, 10)  # the next day, not the skipped hour


def test_repeated_start_time_uses_the_later_occurrence():
    # 01:30 happens twice on 2026-11-01 in New York (05:30 UTC as EDT, 06:30 UTC as EST).
    d = in_zone("01:30-21:00", utc(2026, 11, 1, 4))
    assert d.opens_at == utc(2026, 11, 1, 6, 30)
    assert not in_zone("01:30-21:00", utc(2026, 11, 1, 5, 45)).open


def test_repeated_end_time_uses_the_earlier_occurrence():
    d = in_zone("00:00-01:30", utc(2026, 11, 1, 5))
    assert d.open
    assert closes_at("00:00-01:30", d) == utc(2026, 11, 1, 5, 30)
    assert not in_zone("00:00-01:30", utc(2026, 11, 1, 6, 15)).open


# --- zones from the number --------------------------------------------------------------------------------


def from_number(phone: str, now: pendulum.DateTime, hours: CallingHours = DEFAULT) -> WindowDecision:
    d = decide(hours, now=now, timezone=None, phone_e164=phone)
    assert phone[2:] not in d.reason
    return d


def test_new_york_number():
    d = from_number("+12025550123", utc(2026, 11, 24, 11, 12))
    assert d.zones == (NY,)
    assert d.opens_at == utc(2026, 11, 24, 13)


def test_london_number():
    d = from_number("+442079460123", utc(2026, 7, 1, 6, 30))  # 07:30 BST
    assert d.zones == (LONDON,)
    assert d.opens_at == utc(2026, 7, 1, 7)


def test_newfoundland_area_code_uses_the_overlap_of_two_zones():
    zones = ("America/Halifax", "America/St_Johns")
    assert candidate_timezones("+17095550123") == zones
    # Winter: Halifax is UTC-4, St John's UTC-3:30; both are inside from 12:00 to 00:30 UTC.
    d = from_number("+17095550123", utc(2026, 11, 24, 11, 45))  # 07:45 Halifax, 08:15 St John's
    assert (d.open, d.zones) == (False, zones)
    assert d.opens_at == utc(2026, 11, 24, 12)
    assert closes_at(DEFAULT, d) == utc(2026, 11, 25, 0, 30)
    assert "America/Halifax (now 07:45 Tue), America/St_Johns (now 08:15 Tue)" in d.reason
    late = from_number("+17095550123", utc(2026, 11, 25, 0, 15))  # 20:15 Halifax, 20:45 St John's
    assert late.open
    assert closes_at(DEFAULT, late) == utc(2026, 11, 25, 0, 30)


def test_toll_free_number_spanning_guam_to_newfoundland():
    zones = candidate_timezones("+18005550199")
    assert len(zones) > 20
    assert {"Pacific/Guam", "America/St_Johns", "Pacific/Honolulu"} <= set(zones)
    d = from_number("+18005550199", utc(2026, 11, 24, 15))
    # Guam (UTC+10) opens at 22:00 UTC, St John's (UTC-3:30) closes at 00:30 UTC.
    assert (d.open, d.opens_at, closes_at(DEFAULT, d)) == (
        False,
        utc(2026, 11, 24, 22),
        utc(2026, 11, 25, 0, 30),
    )
    assert f"and {len(zones) - 5} more" in d.reason


def test_record_timezone_wins_over_the_number():
    d = decide(DEFAULT, now=utc(2026, 11, 24, 15), timezone="Asia/Tokyo", phone_e164="+12025550123")
    assert d.zones == ("Asia/Tokyo",)


def test_no_common_window_is_a_skip():
    hours = CallingHours.parse("09:00-10:00")
    d = decide_for_zones(hours, utc(2026, 7, 1), ("America/Los_Angeles", "Asia/Tokyo"))
    assert (d.open, skip(d), d.opens_at, closes_at(hours, d)) == (False, True, None, None)
    assert d.zones == ("America/Los_Angeles", "Asia/Tokyo")
    assert d.reason == (
        "no common calling window 09:00-10:00 for zones America/Los_Angeles, Asia/Tokyo "
        f"within {HORIZON_DAYS} days"
    )


def test_overlap_of_far_apart_zones():
    d = decide_for_zones(DEFAULT, utc(2026, 7, 1, 12), ("America/Los_Angeles", "Asia/Tokyo"))
    # Tokyo opens at 08:00 JST = 23:00 UTC; Los Angeles closes at 21:00 PDT = 04:00 UTC.
    assert (d.open, d.opens_at, closes_at(DEFAULT, d)) == (False, utc(2026, 7, 1, 23), utc(2026, 7, 2, 4))
    d = decide_for_zones(DEFAULT, utc(2026, 7, 1), ("America/New_York", "Europe/London"))
    # New York opens at 08:00 EDT = 12:00 UTC; London closes at 21:00 BST = 20:00 UTC.
    assert (d.opens_at, closes_at(DEFAULT, d)) == (utc(2026, 7, 1, 12), utc(2026, 7, 1, 20))


def test_overlap_that_exists_only_between_the_us_and_eu_dst_changes_and_the_horizon():
    # Los Angeles and London are 8 hours apart, except 7 between the US (2026-03-08) and EU (03-29)
    # changes: only then do two 08:00-15:30 windows overlap, from 15:00 to 15:30 UTC.
    hours, zones = CallingHours.parse("08:00-15:30"), ("America/Los_Angeles", LONDON)
    d = decide_for_zones(hours, utc(2026, 3, 20), zones)
    assert (d.opens_at, closes_at(hours, d)) == (utc(2026, 3, 20, 15), utc(2026, 3, 20, 15, 30))
    assert skip(decide_for_zones(hours, utc(2026, 3, 29), zones))
    # The first overlap is 2026-03-08 15:00 UTC: found from exactly HORIZON_DAYS before, not earlier.
    assert decide_for_zones(hours, utc(2026, 2, 28, 15), zones).opens_at == utc(2026, 3, 8, 15)
    assert skip(decide_for_zones(hours, utc(2026, 2, 28, 14, 59), zones))


def test_duplicate_zones_are_considered_once():
    d = decide_for_zones(DEFAULT, utc(2026, 7, 1), [NY, NY])
    assert d.zones == (NY,)


@pytest.mark.parametrize(
    ("tz", "phone"),
    [(None, "+15555550123"), (None, None), ("", None), ("  ", None), (None, "+1555")],
)
def test_unknown_timezone_is_a_skip(tz, phone):
    d = decide(DEFAULT, now=utc(2026, 7, 1, 15), timezone=tz, phone_e164=phone)
    assert (d.open, skip(d), d.zones) == (False, True, ())
    assert d.reason == "timezone unknown: set the record's timezone"


@pytest.mark.parametrize("tz", ["Mars/Base", "../etc/passwd", "New York"])
def test_invalid_record_timezone_is_a_skip(tz):
    d = decide(DEFAULT, now=utc(2026, 7, 1, 15), timezone=tz, phone_e164="+12025550123")
    assert skip(d)
    assert repr(tz) in d.reason
    assert "IANA" in d.reason
    assert "5550123" not in d.reason


# --- parse / to_dict ---------------------------------------------------------------------------------------

WEEKDAYS = frozenset(range(1, 6))
ALL_DAYS = frozenset(range(1, 8))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, CallingHours(time(8), time(21), ALL_DAYS)),
        ("08:00-21:00", CallingHours(time(8), time(21), ALL_DAYS)),
        (" 9:00 - 17:30 ", CallingHours(time(9), time(17, 30), ALL_DAYS)),
        ("09:00-17:00 mon-fri", CallingHours(time(9), time(17), WEEKDAYS)),
        ("09:00-17:00 Mon, Wed,fri", CallingHours(time(9), time(17), frozenset({1, 3, 5}))),
        ("09:00-17:00 mon-fri,sun", CallingHours(time(9), time(17), frozenset({1, 2, 3, 4, 5, 7}))),
        ("09:00-17:00 mon - fri", CallingHours(time(9), time(17), WEEKDAYS)),
        ("09:00-17:00 fri-mon", CallingHours(time(9), time(17), frozenset({5, 6, 7, 1}))),
        ("00:00-23:59 saturday sunday", CallingHours(time(0), time(23, 59), frozenset({6, 7}))),
        ({}, CallingHours()),
        ({"start": "09:00", "end": "17:30"}, CallingHours(time(9), time(17, 30))),
        (
            {"start": "09:00", "end": "17:30", "days": ["mon", "TUE", "wednesday"]},
            CallingHours(time(9), time(17, 30), frozenset({1, 2, 3})),
        ),
        ({"days": "mon-fri"}, CallingHours(days=WEEKDAYS)),
        ({"days": [1, 2, 3]}, CallingHours(days=frozenset({1, 2, 3}))),
        ({"days": ("sat-sun", 1)}, CallingHours(days=frozenset({6, 7, 1}))),
        ({"days": None}, CallingHours()),
        ({"start": time(7, 15), "end": time(19)}, CallingHours(time(7, 15), time(19))),
    ],
)
def test_parse_accepted_forms(value, expected):
    assert CallingHours.parse(value) == expected


def test_parse_returns_an_instance_unchanged():
    hours = CallingHours(days=WEEKDAYS)
    assert CallingHours.parse(hours) is hours


def test_days_given_as_a_set_are_frozen():
    hours = CallingHours(days={1, 2})  # type: ignore[arg-type]
    assert hours.days == frozenset({1, 2})
    assert isinstance(hours.days, frozenset)
    hash(hours)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("8am-21:00", "calling_hours.start: '8am' is not a time (use HH:MM, 00:00..23:59)"),
        ("08:00-25:00", "calling_hours.end: '25:00' is not a time (use HH:MM, 00:00..23:59)"),
        ("08:00-21:60", "calling_hours.end: '21:60' is not a time"),
        ({"start": "08:00:30"}, "calling_hours.start: '08:00:30' is not a time"),
        ({"end": 21}, "calling_hours.end: 21 is not a time"),
        (
            "21:00-08:00",
            "calling_hours.end: 08:00 must be after start 21:00 (overnight windows are not supported)",
        ),
        ("09:00-09:00", "calling_hours.end: 09:00 must be after start 09:00"),
        ({"start": "22:00"}, "calling_hours.end: 21:00 must be after start 22:00"),
        ("08:00-21:00 funday", "calling_hours.days: 'funday' is not a weekday (use mon..sun or 1..7)"),
        ({"days": ["mon", "funday"]}, "calling_hours.days: 'funday' is not a weekday"),
        ({"days": "mon-xyz"}, "calling_hours.days: 'xyz' is not a weekday"),
        ({"days": [0]}, "calling_hours.days: 0 is not a weekday"),
        ({"days": [8]}, "calling_hours.days: 8 is not a weekday"),
        ({"days": [True]}, "calling_hours.days: True is not a weekday"),
        ({"days": []}, "calling_hours.days: must name at least one weekday"),
        ({"days": ""}, "calling_hours.days: must name at least one weekday"),
        ({"days": " , "}, "calling_hours.days: must name at least one weekday"),
        ({"days": 5}, "calling_hours.days: 5 is not a list of weekdays"),
        ({"start": "08:00", "stop": "21:00"}, "calling_hours: unknown key 'stop' (use start, end, days)"),
        ("08:00", "calling_hours: '08:00' is not a window (use 'HH:MM-HH:MM [days]'"),
        ("", "calling_hours: '' is not a window"),
        (42, "calling_hours: expected a string or a mapping, not int"),
        (["08:00", "21:00"], "calling_hours: expected a string or a mapping, not list"),
    ],
)
def test_parse_errors_name_the_part_and_the_rule(value, message):
    with pytest.raises(ValueError, match=r"^calling_hours") as info:
        CallingHours.parse(value)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": time(8, 0, 30)}, "calling_hours.start: datetime.time(8, 0, 30) must be a whole-minute"),
        ({"end": time(21, tzinfo=timezone.utc)}, "calling_hours.end: "),
        ({"start": "08:00"}, "calling_hours.start: '08:00' must be a whole-minute"),
        ({"days": frozenset()}, "calling_hours.days: must name at least one weekday"),
        ({"days": frozenset({0, 1})}, "calling_hours.days: [0, 1] must be ISO weekdays 1..7"),
    ],
)
def test_direct_construction_is_validated(kwargs, message):
    with pytest.raises(ValueError, match=r"^calling_hours\.") as info:
        CallingHours(**kwargs)
    assert str(info.value).startswith(message)


def test_to_dict_is_json_and_round_trips():
    hours = CallingHours.parse("09:00-17:30 mon-fri,sun")
    data = hours.to_dict()
    assert data == {"start": "09:00", "end": "17:30", "days": ["mon", "tue", "wed", "thu", "fri", "sun"]}
    assert CallingHours.parse(json.loads(json.dumps(data))) == hours
    assert CallingHours().to_dict() == {
        "start": "08:00",
        "end": "21:00",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    }


def test_str_is_the_string_form():
    assert str(CallingHours()) == "08:00-21:00"
    assert str(CallingHours.parse("09:00-17:00 mon,wed-fri,sun")) == "09:00-17:00 mon,wed-fri,sun"
    assert str(CallingHours.parse({"days": [6, 7]})) == "08:00-21:00 sat-sun"


minutes = st.integers(0, 23 * 60 + 59)


@st.composite
def calling_hours(draw: st.DrawFn) -> CallingHours:
    a, b = sorted(draw(st.lists(minutes, min_size=2, max_size=2, unique=True)))
    days = draw(st.frozensets(st.integers(1, 7), min_size=1))
    return CallingHours(time(a // 60, a % 60), time(b // 60, b % 60), days)


@given(calling_hours())
def test_round_trip_property(hours):
    assert CallingHours.parse(json.loads(json.dumps(hours.to_dict()))) == hours
    assert CallingHours.parse(str(hours)) == hours


# --- property: opens_at is the first instant at which every zone is inside its window -----------------------

ZONES = [
    NY,
    "America/Los_Angeles",
    LONDON,
    "Asia/Tokyo",
    "Asia/Kathmandu",  # +05:45
    "America/St_Johns",  # -03:30, DST
    "Australia/Lord_Howe",  # half-hour DST shift at 02:00
    "America/Santiago",  # changes at local midnight
    "Pacific/Chatham",  # +12:45 / +13:45
    "UTC",
]
# Near the 2026 DST changes of the zones above, so that hypothesis reaches them often.
CHANGES = [
    utc(2026, 3, 8, 7),
    utc(2026, 3, 29, 1),
    utc(2026, 4, 4, 15),
    utc(2026, 4, 5, 3),
    utc(2026, 9, 6, 4),
    utc(2026, 9, 26, 14),
    utc(2026, 10, 3, 15, 30),
    utc(2026, 10, 25, 1),
    utc(2026, 11, 1, 6),
]

nows = st.one_of(
    st.datetimes(
        datetime(2025, 1, 1),
        datetime(2028, 12, 31),
        timezones=st.sampled_from([timezone.utc, ZoneInfo(NY), ZoneInfo("Asia/Kathmandu")]),
        allow_imaginary=False,
    ).map(pendulum.instance),
    st.builds(
        lambda base, minute: base.add(minutes=minute),
        st.sampled_from(CHANGES),
        st.integers(-3 * 1440, 3 * 1440),
    ),
)


def inside(hours: CallingHours, zone: str, t: pendulum.DateTime) -> bool:
    """The documented rule, from the wall clock: start <= local time < end on an allowed local weekday,
    except before the later pass of a repeated start time and after the first pass of a repeated end time."""
    t = t.in_timezone("UTC")  # compare instants: aware datetimes sharing a tzinfo compare by wall time
    local = t.in_timezone(zone)
    if local.isoweekday() not in hours.days or not hours.start <= local.time() < hours.end:
        return False
    day = (local.year, local.month, local.day)
    start_later = pendulum.datetime(*day, hours.start.hour, hours.start.minute, tz=zone, fold=1)
    end_earlier = pendulum.datetime(*day, hours.end.hour, hours.end.minute, tz=zone, fold=0)
    late_start = start_later.time() == hours.start and t < start_later.in_timezone("UTC")
    early_end = end_earlier.time() == hours.end and t >= end_earlier.in_timezone("UTC")
    return not late_start and not early_end


def all_inside(hours: CallingHours, zones: list[str], t: pendulum.DateTime) -> bool:
    return all(inside(hours, z, t) for z in zones)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hours=calling_hours(),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    now=nows,
    probes=st.lists(st.floats(0, 1, exclude_max=True), max_size=5),
)
def test_decision_matches_the_wall_clock_rule(hours, zones, now, probes):
    d = decide_for_zones(hours, now, zones)
    assert d.zones == tuple(zones)
    assert d.open == all_inside(hours, zones, now)
    if d.open:
        assert d.opens_at is None
        end = closes_at(hours, d)
        assert end > now
        assert all_inside(hours, zones, end.subtract(microseconds=1))
        assert not decide_for_zones(hours, end, zones).open
        return
    if skip(d):
        # No overlap: a coarse scan over the horizon finds no instant inside every window.
        step = timedelta(minutes=20)
        t = pendulum.instance(now)
        while t < now + timedelta(days=7):
            assert not all_inside(hours, zones, t)
            t += step
        return
    opens_at = d.opens_at
    assert opens_at > now
    assert opens_at - now <= timedelta(days=HORIZON_DAYS)
    assert opens_at.timezone_name == "UTC"
    assert closes_at(hours, d) > opens_at
    assert all_inside(hours, zones, opens_at)
    assert decide_for_zones(hours, opens_at, zones).open
    assert not decide_for_zones(hours, opens_at.subtract(microseconds=1), zones).open
    span = opens_at - now
    step = max(span / 200, timedelta(minutes=1))
    t = pendulum.instance(now)
    while t < opens_at:
        assert not all_inside(hours, zones, t), t
        t += step
    for p in probes:
        t = min(now + span * p, opens_at.subtract(microseconds=1))
        assert not decide_for_zones(hours, t, zones).open
        assert decide_for_zones(hours, t, zones).opens_at == opens_at

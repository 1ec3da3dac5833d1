from __future__ import annotations

import pendulum

from airflow_provider_alta.operators._window import describe_opening

MOMENT = pendulum.datetime(2026, 11, 24, 13, 0, tz="UTC")


def test_one_zone_shows_the_local_time_and_utc():
    assert describe_opening(MOMENT, ("America/New_York",)) == (
        "2026-11-24 08:00 America/New_York (2026-11-24 13:00 UTC)"
    )


def test_utc_alone_is_not_repeated():
    assert describe_opening(MOMENT, ("UTC",)) == "2026-11-24 13:00 UTC"


def test_several_zones_show_each_one_up_to_three():
    zones = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
    assert describe_opening(MOMENT, zones) == (
        "2026-11-24 08:00 America/New_York, 2026-11-24 07:00 America/Chicago, "
        "2026-11-24 06:00 America/Denver and 1 more zones (2026-11-24 13:00 UTC)"
    )

"""Calling hours: may a number be called now in the recipient's local time, and when does the window open.

No Airflow here. ``pendulum`` and ``phonenumbers`` are imported inside functions: both are slow to import
and operator modules that Airflow's DAG processor parses import this module.

A day's window in one zone is the UTC interval ``[S, E)``: ``S`` is when the local clock shows ``start``
(the later occurrence if ``start`` is repeated by a fall-back change) and ``E`` is when it first shows
``end``. A time skipped by a spring-forward change resolves to the instant of the change, the first moment
the clock is past it. With several zones the window is open only where every zone's window is open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from airflow_provider_alta.phone import candidate_timezones

if TYPE_CHECKING:
    import pendulum

__all__ = ["HORIZON_DAYS", "CallingHours", "WindowDecision", "decide", "decide_for_zones"]

#: ``opens_at`` is at most this far ahead (covers every weekday set); no window by then is "no overlap".
HORIZON_DAYS = 8

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_WINDOW = re.compile(r"\s*([^\s-]+)\s*-\s*([^\s-]+)\s*(.*)", re.DOTALL)
_MAX_ZONES_SHOWN = 5

Interval = tuple["pendulum.DateTime", "pendulum.DateTime"]


def _parse_time(value: Any, part: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (m := _TIME.fullmatch(value.strip())):
        return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f"calling_hours.{part}: {value!r} is not a time (use HH:MM, 00:00..23:59)")


def _parse_day(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 7:
        return value
    if isinstance(value, str):
        name = value.strip().lower()
        for names in (_DAYS, _FULL_DAYS):
            if name in names:
                return names.index(name) + 1
    raise ValueError(f"calling_hours.days: {value!r} is not a weekday (use mon..sun or 1..7)")


def _parse_days(value: Any) -> frozenset[int]:
    if value is None:
        return frozenset(range(1, 8))
    items: Iterable[Any]
    if isinstance(value, str):
        items = [p for p in re.split(r"[\s,]+", re.sub(r"\s*-\s*", "-", value.strip())) if p]
    elif isinstance(value, Iterable):
        items = value
    else:
        raise ValueError(f"calling_hours.days: {value!r} is not a list of weekdays (e.g. 'mon-fri')")
    days: set[int] = set()
    for item in items:
        if isinstance(item, str) and "-" in item:
            first, _, last = item.partition("-")
            a, b = _parse_day(first), _parse_day(last)
            days.update((a - 1 + i) % 7 + 1 for i in range((b - a) % 7 + 1))  # "fri-mon" wraps
        else:
            days.add(_parse_day(item))
    return frozenset(days)


def _days_label(days: frozenset[int]) -> str:
    runs: list[list[int]] = []
    for d in sorted(days):
        if runs and runs[-1][-1] == d - 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    return ",".join(_DAYS[r[0] - 1] if len(r) == 1 else f"{_DAYS[r[0] - 1]}-{_DAYS[r[-1] - 1]}" for r in runs)


@dataclass(frozen=True)
class CallingHours:
    """A daily window ``[start, end)`` in local time on ISO weekdays ``days`` (1=Monday .. 7=Sunday)."""

    start: time = time(8, 0)
    end: time = time(21, 0)
    days: frozenset[int] = frozenset(range(1, 8))

    def __post_init__(self) -> None:
        for part in ("start", "end"):
            t = getattr(self, part)
            if not isinstance(t, time) or t.tzinfo is not None or t.second or t.microsecond:
                raise ValueError(f"calling_hours.{part}: {t!r} must be a whole-minute local time (HH:MM)")
        if self.end <= self.start:
            raise ValueError(
                f"calling_hours.end: {self.end:%H:%M} must be after start {self.start:%H:%M} "
                "(overnight windows are not supported)"
            )
        days = frozenset(self.days)
        if not days:
            raise ValueError("calling_hours.days: must name at least one weekday")
        if not days <= frozenset(range(1, 8)):
            raise ValueError(f"calling_hours.days: {sorted(days)} must be ISO weekdays 1..7")
        object.__setattr__(self, "days", days)

    @classmethod
    def parse(cls, value: CallingHours | str | Mapping[str, Any] | None) -> CallingHours:
        """Build from ``None`` (default), ``"09:00-17:00 mon-fri"`` or ``{"start", "end", "days"}``."""
        if value is None:
            return cls()
        if isinstance(value, CallingHours):
            return value
        if isinstance(value, str):
            m = _WINDOW.fullmatch(value)
            if not m:
                raise ValueError(
                    f"calling_hours: {value!r} is not a window (use 'HH:MM-HH:MM [days]', "
                    "e.g. '08:00-21:00 mon-fri')"
                )
            return cls(
                _parse_time(m.group(1), "start"), _parse_time(m.group(2), "end"), _parse_days(m[3] or None)
            )
        if isinstance(value, Mapping):
            unknown = sorted(str(k) for k in value if k not in ("start", "end", "days"))
            if unknown:
                raise ValueError(f"calling_hours: unknown key {unknown[0]!r} (use start, end, days)")
            return cls(
                _parse_time(value.get("start", cls.start), "start"),
                _parse_time(value.get("end", cls.end), "end"),
                _parse_days(value.get("days")),
            )
        raise ValueError(f"calling_hours: expected a string or a mapping, not {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``CallingHours.parse`` reads it back."""
        return {
            "start": f"{self.start:%H:%M}",
            "end": f"{self.end:%H:%M}",
            "days": [_DAYS[d - 1] for d in sorted(self.days)],
        }

    def __str__(self) -> str:
        window = f"{self.start:%H:%M}-{self.end:%H:%M}"
        return window if len(self.days) == 7 else f"{window} {_days_label(self.days)}"


#: The ``calling_hours`` settings that turn the check off (operators, notifier, preview).
OFF = (False, "off")


def from_setting(value: Any) -> CallingHours | None:
    """A task's ``calling_hours`` setting parsed; ``None`` when it turns the check off.

    ``ValueError`` names the rule of a bad setting.
    """
    return None if value in OFF else CallingHours.parse(value)


@dataclass(frozen=True)
class WindowDecision:
    """Whether to call now; if not, when the common window next opens (``None``: never, so skip)."""

    open: bool
    zones: tuple[str, ...]
    opens_at: pendulum.DateTime | None
    reason: str


def decide(
    hours: CallingHours,
    *,
    now: pendulum.DateTime | datetime,
    timezone: str | None,
    phone_e164: str | None,
) -> WindowDecision:
    """Decide for a record: its ``timezone`` if set, else every zone ``phonenumbers`` gives its number.

    No zone at all (no timezone, and a number without a known zone) is a skip, as is a timezone that is
    not an IANA name: calling could be outside hours and waiting cannot help. ``now`` must be aware.
    The reason never contains the number.
    """
    if timezone and timezone.strip():
        zones: tuple[str, ...] = (timezone.strip(),)
    elif phone_e164:
        import phonenumbers

        try:
            zones = candidate_timezones(phone_e164)
        except phonenumbers.NumberParseException:
            zones = ()
    else:
        zones = ()
    return decide_for_zones(hours, now, zones)


def decide_for_zones(
    hours: CallingHours, now: pendulum.DateTime | datetime, zones: Iterable[str]
) -> WindowDecision:
    """Decide for an explicit set of IANA zones; an empty set or an unknown zone name is a skip."""
    import pendulum

    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now_utc = pendulum.instance(now).in_timezone("UTC")
    names = tuple(dict.fromkeys(zones))
    if not names:
        return WindowDecision(False, (), None, "timezone unknown: set the record's timezone")
    tzs = []
    for name in names:
        try:
            tzs.append(_timezone(name))
        except ValueError:  # pendulum's InvalidTimezone, or a malformed key
            return WindowDecision(
                False, names, None, f"unknown timezone {name!r}: use an IANA name such as America/New_York"
            )
    common = _windows(hours, tzs[0], now_utc)
    for tz in tzs[1:]:
        common = _intersect(common, _windows(hours, tz, now_utc))
    horizon = now_utc.add(days=HORIZON_DAYS)
    for start, end in common:
        if end <= now_utc:
            continue
        if start > horizon:
            break
        where = _where(names, now_utc)
        if start <= now_utc:
            reason = f"inside calling hours {hours} in {where}; closes {end.isoformat()}"
            return WindowDecision(True, names, None, reason)
        reason = f"outside calling hours {hours} in {where}; opens {start.isoformat()}"
        return WindowDecision(False, names, start, reason)
    shown = ", ".join(names[:_MAX_ZONES_SHOWN]) + _more(names)
    reason = f"no common calling window {hours} for zones {shown} within {HORIZON_DAYS} days"
    return WindowDecision(False, names, None, reason)


def _more(names: tuple[str, ...]) -> str:
    extra = len(names) - _MAX_ZONES_SHOWN
    return f" and {extra} more" if extra > 0 else ""


def _where(names: tuple[str, ...], now_utc: pendulum.DateTime) -> str:
    parts = []
    for name in names[:_MAX_ZONES_SHOWN]:
        local = now_utc.in_timezone(name)
        parts.append(f"{name} (now {local:%H:%M} {_DAYS[local.isoweekday() - 1].title()})")
    return ", ".join(parts) + _more(names)


def _windows(hours: CallingHours, tz: pendulum.Timezone, now_utc: pendulum.DateTime) -> list[Interval]:
    """The zone's daily windows as sorted UTC intervals, from yesterday to past the horizon."""
    today = now_utc.in_timezone(tz).date()
    out = []
    for offset in range(-1, HORIZON_DAYS + 2):
        day = today.add(days=offset)
        if day.isoweekday() in hours.days:
            start = _instant(day, hours.start, tz, later=True)
            end = _instant(day, hours.end, tz, later=False)
            if start < end:
                out.append((start, end))
    return out


def _instant(day: pendulum.Date, at: time, tz: pendulum.Timezone, *, later: bool) -> pendulum.DateTime:
    """UTC instant the local clock in ``tz`` shows ``day`` ``at``; see the module docstring for DST."""
    import pendulum

    args = (day.year, day.month, day.day, at.hour, at.minute)
    dt = pendulum.datetime(*args, tz=tz, fold=1 if later else 0)
    if (dt.year, dt.month, dt.day, dt.hour, dt.minute) == args:
        return dt.in_timezone("UTC")
    # Skipped by a spring-forward change: find the change, the first instant whose wall clock is past it.
    wall = datetime(*args)
    lo = int(pendulum.datetime(*args, tz=tz, fold=0).timestamp())
    hi = int(pendulum.datetime(*args, tz=tz, fold=1).timestamp())
    lo, hi = min(lo, hi), max(lo, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if pendulum.from_timestamp(mid, tz=tz).naive() >= wall:
            hi = mid
        else:
            lo = mid
    return pendulum.from_timestamp(hi, tz="UTC")


def _intersect(a: list[Interval], b: list[Interval]) -> list[Interval]:
    out: list[Interval] = []
    i = j = 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


@lru_cache(maxsize=1024)
def _timezone(name: str) -> pendulum.Timezone:
    """pendulum re-reads the zone file on every lookup; zones do not change during a run."""
    import pendulum

    return pendulum.timezone(name)

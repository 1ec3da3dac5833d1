"""How often one person may be called: a contact policy such as ``"1/7d"`` (at most 1 call per 7 days).

A policy is ``N/<duration>``: at most ``N`` calls in any window of ``<duration>``, where the duration
is a positive whole number followed by a unit, ``s``, ``m``, ``h`` or ``d`` (``"3/24h"``, ``"1/30m"``).
A call at time ``t`` counts while ``now < t + window``; from ``t + window`` on it no longer does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

# The most calls a policy may allow per window: keeps the ledger's window query bounded.
MAX_CALLS = 1000
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RULE = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*([smhd])\s*$")
_RULE_HELP = (
    'expected "N/<duration>" with N >= 1 and a duration such as 30m, 24h or 7d (e.g. "1/7d", "3/24h")'
)


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value


@dataclass(frozen=True)
class ContactPolicy:
    """At most ``max_calls`` calls to one person in any ``window``."""

    max_calls: int
    window: timedelta

    def __post_init__(self) -> None:
        if not 1 <= self.max_calls <= MAX_CALLS:
            raise ValueError(f"contact policy: max_calls must be 1..{MAX_CALLS}, got {self.max_calls}")
        if self.window <= timedelta(0):
            raise ValueError(f"contact policy: window must be positive, got {self.window}")

    @classmethod
    def parse(cls, rule: str | ContactPolicy) -> ContactPolicy:
        """A policy from ``"N/<duration>"`` (or the policy itself); ``ValueError`` names a bad rule."""
        if isinstance(rule, ContactPolicy):
            return rule
        if not isinstance(rule, str):
            raise ValueError(f"contact policy {rule!r}: {_RULE_HELP}")
        match = _RULE.match(rule)
        if match is None:
            raise ValueError(f"contact policy {rule!r}: {_RULE_HELP}")
        count, amount, unit = int(match[1]), int(match[2]), match[3]
        if count < 1 or count > MAX_CALLS:
            raise ValueError(f"contact policy {rule!r}: N must be 1..{MAX_CALLS}, got {count}")
        if amount < 1:
            raise ValueError(f"contact policy {rule!r}: the duration must be positive")
        return cls(count, timedelta(seconds=amount * _UNITS[unit]))

    def __str__(self) -> str:
        seconds = int(self.window.total_seconds())
        for unit in ("d", "h", "m"):
            if seconds % _UNITS[unit] == 0:
                return f"{self.max_calls}/{seconds // _UNITS[unit]}{unit}"
        return f"{self.max_calls}/{seconds}s"

    def window_start(self, now: datetime) -> datetime:
        """The earliest call time that still counts at ``now`` (calls strictly after it count)."""
        return _aware(now, "now") - self.window

    def next_allowed(self, history_times: Iterable[datetime], now: datetime) -> datetime | None:
        """``None`` if one more call is allowed at ``now``, else the first moment it will be.

        ``history_times`` are the times of the calls that count (ambiguous ones included); any order.
        """
        start = self.window_start(now)
        recent = sorted(t for t in (_aware(t, "a history time") for t in history_times) if t > start)
        if len(recent) < self.max_calls:
            return None
        # Once the (len - max_calls + 1) oldest recent calls have left the window, one more is allowed.
        return recent[len(recent) - self.max_calls] + self.window


def parse_contact_policy(rule: str | ContactPolicy) -> ContactPolicy:
    """``ContactPolicy.parse``: a policy from ``"N/<duration>"``, e.g. ``"1/7d"`` or ``"3/24h"``."""
    return ContactPolicy.parse(rule)

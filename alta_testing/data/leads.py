"""Lead files as the example DAGs read them, and calling windows that open soon."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from zoneinfo import ZoneInfo

COLUMNS = ("lead_id", "full_name", "phone", "email", "timezone", "plan", "consent")
ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", "America/Los_Angeles", "Australia/Sydney")


def leads(prefix: str, numbers: Sequence[str], timezone: str) -> list[dict[str, str]]:
    """One consented lead per number, as the example DAGs' CSV has them."""
    return [
        {"lead_id": f"{prefix}{i:04d}", "full_name": f"Lead {prefix}{i}", "phone": number,
         "email": f"{prefix.lower()}{i}@example.com", "timezone": timezone, "plan": "pro", "consent": "yes"}
        for i, number in enumerate(numbers)
    ]  # fmt: skip


def write_leads(path: Path, rows: Iterable[dict[str, str]]) -> Path:
    """Write ``rows`` as the example DAGs' lead CSV (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def window_opening_in(seconds: float, now: dt.datetime | None = None) -> tuple[str, str, dt.datetime]:
    """A zone and an ``HH:MM-HH:MM`` window there that opens ``seconds`` to ``seconds + 60`` from now.

    Returns ``(timezone, window, opens_at_utc)``; picks a zone where the window does not cross midnight.
    """
    now = now or dt.datetime.now(dt.timezone.utc)
    for zone in ZONES:
        local = (now + dt.timedelta(seconds=seconds)).astimezone(ZoneInfo(zone))
        start = (local + dt.timedelta(minutes=1)).replace(second=0, microsecond=0)
        if 1 <= start.hour <= 20:
            end = start + dt.timedelta(hours=2)
            return zone, f"{start:%H:%M}-{end:%H:%M}", start.astimezone(dt.timezone.utc)
    raise AssertionError("no zone without midnight in the next two hours (cannot happen)")

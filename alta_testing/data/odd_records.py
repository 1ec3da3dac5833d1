"""Records that used to crash a pass: nested too deep, referring to themselves, unprintable."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def deep(depth: int, leaf: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``{"x": {"x": ... leaf}}``, ``depth`` levels of ``x`` around ``leaf`` (default: empty)."""
    value: dict[str, Any] = dict(leaf or {})
    for _ in range(depth):
        value = {"x": value}
    return value


def looped(**fields: Any) -> dict[str, Any]:
    """``fields`` and a key ``me`` that refers to the dict itself (a cycle)."""
    loop: dict[str, Any] = dict(fields)
    loop["me"] = loop
    return loop


class Unprintable:
    """A value whose ``repr`` and ``str`` raise (and that still hashes, so it can be a key)."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__

    def __hash__(self) -> int:
        return 1

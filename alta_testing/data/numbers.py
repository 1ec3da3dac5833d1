"""Fictional phone numbers: distinct valid E.164 numbers from the NANP's 555-0100..0199 range."""

from __future__ import annotations

from functools import cache


@cache
def area_codes() -> tuple[int, ...]:
    """US geographic area codes (no toll-free, premium or personal) valid with 555-0100..0199."""
    import phonenumbers

    geographic = {
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
    codes = []
    for area in range(201, 1000):
        numbers = [phonenumbers.parse(f"+1{area}555{line:04d}") for line in (100, 199)]
        if all(
            phonenumbers.is_valid_number(n)
            and phonenumbers.region_code_for_number(n) == "US"
            and phonenumbers.number_type(n) in geographic
            for n in numbers
        ):
            codes.append(area)
    return tuple(codes)


def fictional_numbers(count: int | None = None) -> list[str]:
    """Up to ``count`` distinct valid E.164 numbers from the fictional 555-0100..0199 range.

    Varies the area code, line 0100..0199, and checks each with ``phonenumbers.is_valid_number``.
    ``None`` returns the whole pool (about 36,000).
    """
    import phonenumbers

    out: list[str] = []
    for area in area_codes():
        for line in range(100, 200):
            number = f"+1{area}555{line:04d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(number)):
                out.append(number)
                if count is not None and len(out) >= count:
                    return out
    if count is not None and len(out) < count:
        raise ValueError(f"only {len(out)} distinct fictional numbers available, {count} asked")
    return out


class NumberPool:
    """Hands out fictional numbers that no other lead of the session got."""

    def __init__(self, size: int = 3000) -> None:
        self._numbers = fictional_numbers(size)
        self._next = 0

    def handed_out(self) -> list[str]:
        """Every number given to a lead so far."""
        return self._numbers[: self._next]

    def take(self, count: int) -> list[str]:
        """``count`` numbers nobody got before."""
        if self._next + count > len(self._numbers):
            raise ValueError("out of fictional numbers")
        out = self._numbers[self._next : self._next + count]
        self._next += count
        return out

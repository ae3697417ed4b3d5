"""Numbers in the dashboard's query strings: ASCII digits only, bounded, else a fallback.

`str.isdigit` is true of '²' and '١' too, which `int` refuses or reads unexpectedly; the
pages read numbers through these helpers instead, so odd input is never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIGITS = re.compile(r"[0-9]+")


def is_digits(text: str, max_digits: int) -> bool:
    """Whether `text` is 1 to `max_digits` ASCII digits (no sign, space or other numerals)."""
    return len(text) <= max_digits and _DIGITS.fullmatch(text) is not None


def positive_int(text: str | None, default: int, *, max_digits: int = 6) -> int:
    """`text` as an integer ≥ 1 of at most `max_digits` ASCII digits; `default` otherwise."""
    if text is None or not is_digits(text, max_digits):
        return default
    value = int(text)
    return value if value >= 1 else default


def id_list(values: Iterable[str], limit: int, *, max_digits: int = 10) -> list[int]:
    """Distinct ids from comma-separated query values ('12', '3,4'), in order, at
    most `limit`; parts that are not ASCII digits are skipped."""
    ids: list[int] = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if is_digits(part, max_digits) and int(part) not in ids:
                ids.append(int(part))
                if len(ids) == limit:
                    return ids
    return ids

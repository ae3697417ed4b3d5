"""Form posts shared by the create pages: reading the fields, and turning pydantic's errors
into readable messages placed next to the fields they are about."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from fastapi import Request
from pydantic import ValidationError

Fields = dict[str, list[str]]
MAX_FIELDS = 200


async def read_form(request: Request) -> Fields:
    """The fields of a url-encoded form post (repeated names keep every value)."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        return parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return {}


def first(fields: Fields, name: str) -> str:
    """A field's value, stripped ('' when absent)."""
    return fields.get(name, [""])[0].strip()


def split_values(text: str) -> list[str]:
    """Values typed as a list: '1e-4, 1e-3 1e-2' → ['1e-4', '1e-3', '1e-2']."""
    return [part for part in re.split(r"[\s,;]+", text) if part]


@dataclass
class FormErrors:
    """Messages for the user: by field name, and those about the form as a whole."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)

    def add(self, name: str | None, message: str) -> None:
        """Attach a message to a field (the first one wins), or to the form."""
        if name is None:
            self.general.append(message)
        elif name not in self.fields:
            self.fields[name] = message


def message(error: dict[str, Any]) -> str:
    """Pydantic's message without its 'Value error, ' prefix, naming a list item's position."""
    text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    positions = [p for p in error.get("loc", ()) if isinstance(p, int)]
    return f"value {positions[0] + 1}: {text}" if positions else text


def errors_from(
    error: ValidationError, locate: Callable[[tuple[str, ...]], str | None]
) -> FormErrors:
    """Every error of a failed validation, each next to the field `locate` finds for it."""
    errors = FormErrors()
    for item in error.errors():
        path = tuple(p for p in item.get("loc", ()) if isinstance(p, str))
        errors.add(locate(path), message(dict(item)))
    return errors


def locator(table: dict[tuple[str, ...], str]) -> Callable[[tuple[str, ...]], str | None]:
    """Find a field by the longest prefix of the error's location listed in `table`."""

    def locate(path: tuple[str, ...]) -> str | None:
        for size in range(len(path), 0, -1):
            if path[:size] in table:
                return table[path[:size]]
        return None

    return locate

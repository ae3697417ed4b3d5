"""Logging for the server and the workers: one stderr handler, text or JSON lines.

Pure standard library, so both sides (`avatune serve`, `avatune worker`) import it without
torch or a web stack. Our loggers are ``avatune.*``; uvicorn's own (``uvicorn.*``) go
through the same handler; other libraries log their warnings and errors only.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any


class LogLevel(StrEnum):
    """--log-level choices."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class LogFormat(StrEnum):
    """--log-format choices: text lines, or one JSON object per line (log shippers)."""

    text = "text"
    json = "json"


LEVELS = tuple(LogLevel)
FORMATS = tuple(LogFormat)
#: Loggers that follow the chosen level (the root logger stays at warning).
OWN_LOGGERS = ("avatune", "uvicorn", "uvicorn.error", "uvicorn.asgi")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: Attributes every LogRecord has: anything else on a record came from `extra=`.
#: (uvicorn's `color_message` is its message again, with terminal colours.)
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}


def iso_utc(created: float) -> str:
    """A record's time as ISO-8601 UTC with milliseconds, e.g. 2026-05-09T07:35:25.123Z."""
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, then the record's `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON (non-JSON extras as their `str`)."""
        entry: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`TEXT_FORMAT` with UTC timestamps (the message itself carries the fields)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """ISO-8601 UTC, as in the JSON lines."""
        return iso_utc(record.created)


class StderrHandler(logging.StreamHandler):
    """Writes to the current `sys.stderr` (so a rich live display that redirects it keeps
    log lines above its bars, and test capture sees them)."""

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        """`sys.stderr` at the time of writing."""
        return sys.stderr

    @stream.setter
    def stream(self, _value: IO[str]) -> None:
        pass


def make_formatter(fmt: str) -> logging.Formatter:
    """The formatter for `fmt` (text or json); ValueError otherwise."""
    if fmt == "json":
        return JsonFormatter()
    if fmt == "text":
        return TextFormatter()
    raise ValueError(f"unknown log format {fmt!r}; use one of {', '.join(FORMATS)}")


def configure_logging(level: str, fmt: str, stream: IO[str] | None = None) -> None:
    """Send `avatune.*` and `uvicorn.*` at `level` (and everything else at warning) to stderr
    (or `stream`) as `fmt` lines; calling it again replaces the previous setup."""
    name = level.lower()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    handler: logging.Handler = StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(make_formatter(fmt.lower()))
    handler._avatune = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_avatune", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(logging.WARNING, logging.getLevelName(name.upper())))
    for logger in OWN_LOGGERS:
        logging.getLogger(logger).setLevel(name.upper())
    access = logging.getLogger("uvicorn.access")  # ours is avatune.access
    access.handlers = []
    access.propagate = False

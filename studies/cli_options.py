"""Command-line options that server and worker commands share (one definition each)."""

from __future__ import annotations

import typer

from studies.log_setup import LogFormat, LogLevel

SERVER = typer.Option(
    "http://127.0.0.1:8000", "--server", envvar="AVATUNE_SERVER", help="The server's URL."
)
TOKEN = typer.Option(None, "--token", envvar="AVATUNE_TOKEN", help="The server's token.")
LOG_LEVEL = typer.Option(
    LogLevel.info,
    "--log-level",
    envvar="AVATUNE_LOG_LEVEL",
    case_sensitive=False,
    metavar="LEVEL",
    help="debug, info, warning or error.",
)
LOG_FORMAT = typer.Option(
    LogFormat.text,
    "--log-format",
    envvar="AVATUNE_LOG_FORMAT",
    case_sensitive=False,
    help="text, or json: one JSON object per line (log shippers).",
)

"""The plugin's tests run against the installed package: its entry points must be found."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, distribution

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Stop with the fix when the plugin is not installed (entry points come from its
    metadata, which only an installed package has)."""
    try:
        distribution("avatune-example-plugin")
    except PackageNotFoundError:
        raise pytest.UsageError(
            "the example plugin is not installed: pip install -e examples/plugin"
        ) from None

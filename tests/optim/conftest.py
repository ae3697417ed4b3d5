"""Fixtures for optimizer tests."""

from __future__ import annotations

import pytest
from torch import Tensor

from tests.optim.helpers import make_params


@pytest.fixture
def params() -> list[Tensor]:
    """Three float64 tensors of different shapes (one parameter group)."""
    return make_params()

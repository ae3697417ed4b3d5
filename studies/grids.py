"""The paper's (α, ε) grids (§5.1): 21 values each in the {1, 5}×10^k pattern."""

from __future__ import annotations

from typing import Literal

GridName = Literal["paper", "coarse"]


def _one_five(first_exponent: int, count: int, start_with_five: bool) -> list[float]:
    values: list[float] = []
    exponent, five = first_exponent, start_with_five
    while len(values) < count:
        values.append(float(f"{5 if five else 1}e{exponent}"))
        if five:
            exponent += 1
        five = not five
    return values


PAPER_ALPHAS: list[float] = _one_five(-7, 21, start_with_five=True)  # 5e-7 … 5e3
PAPER_EPSILONS: list[float] = _one_five(-8, 21, start_with_five=False)  # 1e-8 … 1e2


def grid_values(name: GridName = "paper") -> tuple[list[float], list[float]]:
    """(alphas, epsilons) of a named grid: `paper` is 21×21, `coarse` every other value (11×11)."""
    if name == "paper":
        return list(PAPER_ALPHAS), list(PAPER_EPSILONS)
    if name == "coarse":
        return PAPER_ALPHAS[::2], PAPER_EPSILONS[::2]
    raise ValueError(f"unknown grid {name!r}; choose 'paper' or 'coarse'")

"""Mechanism-diagnostics records of a training (AvaGrad family), and their bounded wire form.

The trainer records, at steps N, 2N, …, what `optim.diagnostics.measure_optimizer` reads
from the optimizer just before that step: γ, the fraction of v = 0, and each named part of
the model's share of Σq⁻². Results carry them to the server within the protocol's bounds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studies import protocol

if TYPE_CHECKING:  # torch loads only when training (the worker loop imports this module)
    from optim.diagnostics import Diagnostics

#: The share of the names a record leaves out when a model has more than the wire allows.
OTHER = "(other)"


@dataclass(frozen=True)
class DiagnosticsRecord:
    """γ, fraction of v = 0 and share of Σq⁻² per named segment, read before step `step`."""

    step: int
    gamma: float
    zero_fraction: float
    shares: dict[str, float]


def per_config(diagnostics: Diagnostics, step: int) -> list[DiagnosticsRecord | None]:
    """One record per configuration; None where a value is not finite (a diverging config)."""
    gammas = diagnostics.gamma.tolist()
    zeros = diagnostics.zero_fraction.tolist()
    shares = {name: share.tolist() for name, share in diagnostics.shares.items()}
    records: list[DiagnosticsRecord | None] = []
    for c, (gamma, zero) in enumerate(zip(gammas, zeros, strict=True)):
        mine = {name: values[c] for name, values in shares.items()}
        finite = all(math.isfinite(x) for x in (gamma, zero, *mine.values()))
        records.append(DiagnosticsRecord(step, gamma, zero, mine) if finite else None)
    return records


def _bounded_shares(shares: dict[str, float]) -> dict[str, float]:
    """Names cut to the wire's length; beyond the wire's count, the smallest shares lumped."""
    cut: dict[str, float] = {}
    for name, share in shares.items():
        key = name[: protocol.MAX_DIAGNOSTICS_NAME]
        cut[key] = cut.get(key, 0.0) + share
    if len(cut) > protocol.MAX_DIAGNOSTICS_NAMES:
        ranked = sorted(cut.items(), key=lambda item: item[1], reverse=True)
        kept = dict(ranked[: protocol.MAX_DIAGNOSTICS_NAMES - 1])
        kept[OTHER] = kept.get(OTHER, 0.0) + math.fsum(share for _, share in ranked[len(kept) :])
        cut = kept
    return {name: min(1.0, max(0.0, share)) for name, share in cut.items()}


def _thinned(records: Sequence[DiagnosticsRecord], cap: int) -> list[DiagnosticsRecord]:
    """At most `cap` evenly spaced records, the last one always among them."""
    if len(records) <= cap:
        return list(records)
    stride = math.ceil(len(records) / cap)
    return list(records[len(records) - 1 :: -stride][::-1])


def wire_diagnostics(
    seeds: Sequence[Sequence[DiagnosticsRecord]] | None,
) -> list[list[protocol.DiagnosticsRecord]] | None:
    """Each seed's records as the protocol carries them (thinned to fit its bounds); None
    when no seed has any."""
    if not seeds or not any(seeds):
        return None
    names = max((len(r.shares) for records in seeds for r in records), default=0)
    per_record = min(names, protocol.MAX_DIAGNOSTICS_NAMES) + protocol.DIAGNOSTICS_RECORD_COST
    cap = min(
        protocol.MAX_DIAGNOSTICS_RECORDS,
        max(1, protocol.MAX_DIAGNOSTICS_VALUES // (len(seeds) * per_record)),
    )
    return [
        [
            protocol.DiagnosticsRecord(
                step=r.step,
                gamma=max(0.0, r.gamma),
                zero_fraction=min(1.0, max(0.0, r.zero_fraction)),
                shares=_bounded_shares(r.shares),
            )
            for r in _thinned(records, cap)
        ]
        for records in seeds
    ]

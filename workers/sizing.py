"""How many configurations fit in one job on a GPU, from what one configuration costs.

A job's memory is a fixed part (data views, the minibatch keys, cuBLAS workspaces) plus a
part per configuration (parameters, gradients, optimizer state, activations, evaluation).
`Footprint` holds both, measured by training two small probe jobs (`probe_footprint`), and
`max_configs` divides the device's free memory by it, keeping headroom for the allocator's
fragmentation and a CUDA graph's private pool. The out-of-memory split in workers.trainer
backs the estimate up. `DoesNotFit` says that not even one configuration fits: the worker
then hands the lease back with the reason instead of failing its trials.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import torch

from studies.protocol import MAX_LEASE_TRIALS

#: Share of the free memory a job may plan to use.
HEADROOM = 0.8
#: Bytes always left free (other processes' contexts, cuDNN and cuBLAS workspaces).
RESERVE_BYTES = 512 * 2**20
#: A configuration's measured bytes are scaled by this (the captured graph keeps a step's
#: intermediates in its own pool, and allocation sizes round up).
SAFETY = 1.25
#: The two job sizes the probe trains (their difference gives the per-config part).
PROBE_SIZES = (1, 4)

MIB = 2**20


class DoesNotFit(RuntimeError):
    """Not even one configuration of this task fits in the device's memory."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Footprint:
    """Bytes a job of C configurations needs: `fixed` + C · `per_config`."""

    fixed: float
    per_config: float

    def bytes(self, configs: int) -> float:
        """The planned bytes of a job of `configs` configurations, safety included."""
        return self.fixed + configs * self.per_config * SAFETY

    @staticmethod
    def from_peaks(small: tuple[int, float], large: tuple[int, float]) -> Footprint:
        """The line through two (configurations, peak bytes) probes; a probe's noise never
        makes either part negative."""
        (c1, p1), (c2, p2) = small, large
        if c2 <= c1:
            raise ValueError(f"the larger probe must have more configurations, got {c1}, {c2}")
        per_config = max((p2 - p1) / (c2 - c1), p2 / c2 / 8, 1.0)
        return Footprint(fixed=max(0.0, p1 - c1 * per_config), per_config=per_config)


def usable_bytes(free: float, total: float) -> float:
    """What a job may plan to take of `free` bytes on a device of `total`."""
    return max(0.0, min(free * HEADROOM, free - RESERVE_BYTES, total - RESERVE_BYTES))


def max_configs(
    footprint: Footprint, free: float, total: float, *, cap: int = MAX_LEASE_TRIALS, what: str = ""
) -> int:
    """Configurations per job that fit in `free` bytes (at most `cap`); `DoesNotFit` when
    not even one does, saying how much one needs and how much is free."""
    usable = usable_bytes(free, total)
    fits = math.floor((usable - footprint.fixed) / (footprint.per_config * SAFETY))
    if fits < 1:
        need = footprint.bytes(1)
        raise DoesNotFit(
            f"one configuration{' of ' + what if what else ''} needs about {need / MIB:.0f} MiB "
            f"and {usable / MIB:.0f} MiB of the device's {free / MIB:.0f} MiB free may be used"
        )
    return min(cap, fits)


def free_memory(device: torch.device) -> tuple[float, float]:
    """(free, total) bytes on a CUDA device, counting what torch's allocator holds unused
    as free (it hands that out before asking the driver)."""
    free, total = torch.cuda.mem_get_info(device)
    cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return float(free + max(0, cached)), float(total)


def peak_bytes(device: torch.device, work: Callable[[], object]) -> float:
    """Peak bytes `work()` allocated on a CUDA device beyond what was held before it."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    work()
    torch.cuda.synchronize(device)
    return float(torch.cuda.max_memory_allocated(device) - before)


#: Probed footprints by (task, optimizer, batch size, dtype, device): a probe costs two
#: short jobs, once per process.
_FOOTPRINTS: dict[Hashable, Footprint] = {}
_LOCK = threading.Lock()


def probe_footprint(key: Hashable, probe: Callable[[int], float]) -> Footprint:
    """The footprint under `key`, measured once with `probe(configs) -> peak bytes` at the
    `PROBE_SIZES`. An out-of-memory error in the probe means one configuration does not fit."""
    with _LOCK:
        known = _FOOTPRINTS.get(key)
    if known is not None:
        return known
    small, large = PROBE_SIZES
    try:
        at_small = probe(small)
    except torch.OutOfMemoryError as error:
        raise DoesNotFit(
            f"a job of {small} configuration ran out of memory: {_first_line(error)}"
        ) from None
    try:
        footprint = Footprint.from_peaks((small, at_small), (large, probe(large)))
    except torch.OutOfMemoryError:
        footprint = Footprint(fixed=0.0, per_config=at_small / small)  # all of it per config
    with _LOCK:
        _FOOTPRINTS[key] = footprint
    return footprint


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0][:300] if str(error) else type(error).__name__


def forget_footprints() -> None:
    """Drop the probed footprints (tests; a device shared with a process that grew)."""
    with _LOCK:
        _FOOTPRINTS.clear()

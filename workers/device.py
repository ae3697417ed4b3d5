"""Which device a worker trains on: CUDA when present, else CPU, unless told; the card's index
checked against the GPUs this process sees (CUDA_VISIBLE_DEVICES), and made current."""

from __future__ import annotations

import os

import torch

from studies.protocol import MAX_LEASE_TRIALS

#: Trials per lease on CPU unless told (a CPU trains a batch of 64 in about the lease's time).
CPU_MAX_BATCH = 64


def visible_gpus() -> int:
    """CUDA devices this process may use (torch counts only those CUDA_VISIBLE_DEVICES lists)."""
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _not_visible(device: torch.device, count: int) -> str:
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    where = "CUDA_VISIBLE_DEVICES unset" if listed is None else f"CUDA_VISIBLE_DEVICES={listed}"
    if not count:
        return f"{device} asked for, but no GPU is visible ({where})"
    gpus = "1 GPU is" if count == 1 else f"{count} GPUs are"
    return f"{device} asked for, but only {gpus} visible ({where}); use cuda:0 to cuda:{count - 1}"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """`device` as a torch.device; None picks cuda when available, else cpu.

    ValueError, saying what to change, for an unknown name, CUDA without CUDA, or a `cuda:N`
    past the visible GPUs (N counts the GPUs CUDA_VISIBLE_DEVICES leaves visible)."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but CUDA is not available here")
    if resolved.type == "cuda" and resolved.index is not None:
        count = torch.cuda.device_count()
        if resolved.index >= count:
            raise ValueError(_not_visible(resolved, count))
    return resolved


def use_device(device: torch.device) -> torch.device:
    """Make a CUDA `device` the calling thread's current one (so "cuda" means that card);
    returns it with its index. CPU: returned as is. CUDA's current device is per thread."""
    if device.type != "cuda":
        return device
    if device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(device.index)
    return device


def describe_device(device: torch.device) -> str:
    """What a lease request reports, e.g. 'cuda:1 NVIDIA H100 80GB HBM3 (79.1 GiB)' or
    'cpu (8 threads)'."""
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        memory = torch.cuda.get_device_properties(index).total_memory / 2**30
        name = torch.cuda.get_device_name(index)
        return f"cuda:{index} {name} ({memory:.1f} GiB)"[:200]
    if device.type == "cpu":
        threads = torch.get_num_threads()
        return f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    return str(device)


def default_max_batch(device: torch.device) -> int:
    """Trials per lease unless told: the server's cap on CUDA (memory-based sizing splits the
    lease into jobs that fit), 64 elsewhere."""
    return MAX_LEASE_TRIALS if device.type == "cuda" else CPU_MAX_BATCH

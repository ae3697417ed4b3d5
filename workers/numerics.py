"""The numerics policy of CUDA workers: fp32 everywhere (TF32 off), deterministic cuDNN.

Call `apply_cuda_policy` once, as early as possible (before the first CUDA matmul): cuBLAS
reads ``CUBLAS_WORKSPACE_CONFIG`` when it initialises, so a later call cannot make it
deterministic. `numerics_label` records the policy next to a trial's result.
"""

from __future__ import annotations

import os

import torch

#: cuBLAS's documented setting for deterministic results (fixed workspace per stream).
CUBLAS_WORKSPACE = ":4096:8"

#: How far (relative) a trial's curve and objective may move on CUDA when it shares a lease
#: with other configurations. Every reduction that decides a config's result runs inside that
#: config (batched GEMMs, grouped convolutions, per-config float64 γ sums), but cuBLAS and
#: cuDNN may pick a different kernel, hence another summation order, for another C, so
#: bitwise equality holds on CPU only. Not yet measured on hardware: a conservative bound.
CUDA_COMPOSITION_RTOL = 1e-4


_PRECISIONS = {torch.float32: "fp32", torch.float64: "fp64", torch.bfloat16: "bf16"}


def apply_cuda_policy(device: torch.device) -> None:
    """For a CUDA device: TF32 off (matmul and cuDNN), deterministic cuDNN without autotuning,
    and a deterministic cuBLAS workspace unless one is already set. Idempotent; CPU: no-op.

    Uses the ``allow_tf32`` setters: on torch 2.9+ they also set the new ``fp32_precision``
    flags consistently, whereas setting those directly makes reading ``cudnn.allow_tf32`` raise.
    """
    if device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def numerics_label(device: torch.device, dtype: torch.dtype = torch.float32) -> str:
    """A short record of the numerics a trial ran with, e.g. "cpu fp32, torch 2.13.0"."""
    version = torch.__version__.split("+")[0]
    precision = _PRECISIONS.get(dtype, str(dtype).removeprefix("torch."))
    if device.type != "cuda":
        return f"{device.type} {precision}, torch {version}"
    cudnn = "cudnn deterministic" if torch.backends.cudnn.deterministic else "cudnn default"
    return f"cuda {precision}, tf32 {_tf32()}, {cudnn}, torch {version}"


def _tf32() -> str:
    """ "on", "off", or "mixed" when torch refuses to answer (flags set through both APIs)."""
    try:
        on = torch.backends.cuda.matmul.allow_tf32 or torch.backends.cudnn.allow_tf32
    except RuntimeError:
        return "mixed"
    return "on" if on else "off"


def composition_rtol(device: torch.device) -> float:
    """The tolerance for "batched equals alone" on `device`: 0 (bitwise) except on CUDA."""
    return CUDA_COMPOSITION_RTOL if device.type == "cuda" else 0.0

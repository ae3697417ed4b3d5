"""The CUDA numerics policy (flags, label, tolerance) and per-config sums independent of C."""

from __future__ import annotations

import os

import pytest
import torch

from optim import _foreach as F
from optim import get_optimizer
from workers import numerics
from workers.numerics import (
    CUBLAS_WORKSPACE,
    CUDA_COMPOSITION_RTOL,
    apply_cuda_policy,
    composition_rtol,
    numerics_label,
)

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


class FakeFlags:
    """Stand-in for torch.backends.cuda.matmul / torch.backends.cudnn: records assignments."""

    def __init__(self, **values: bool) -> None:
        self.__dict__.update(values)


@pytest.fixture
def flags(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeFlags, FakeFlags]:
    """Fake backend flags in their torch defaults, and no CUBLAS_WORKSPACE_CONFIG."""
    matmul = FakeFlags(allow_tf32=True)
    cudnn = FakeFlags(allow_tf32=True, deterministic=False, benchmark=True)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    return matmul, cudnn


def test_cpu_is_a_no_op(flags: tuple[FakeFlags, FakeFlags]) -> None:
    matmul, cudnn = flags
    before = (dict(vars(matmul)), dict(vars(cudnn)))
    apply_cuda_policy(CPU)
    assert (vars(matmul), vars(cudnn)) == before
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ


def test_cuda_sets_fp32_and_determinism_idempotently(flags: tuple[FakeFlags, FakeFlags]) -> None:
    matmul, cudnn = flags
    for _ in range(2):
        apply_cuda_policy(CUDA)
        assert matmul.allow_tf32 is False and cudnn.allow_tf32 is False
        assert cudnn.deterministic is True and cudnn.benchmark is False
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == CUBLAS_WORKSPACE


def test_an_existing_cublas_setting_is_kept(
    flags: tuple[FakeFlags, FakeFlags], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUBLAS_WORKSPACE_CONFIG", ":16:8")
    apply_cuda_policy(CUDA)
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":16:8"


def test_labels_record_device_precision_and_policy(flags: tuple[FakeFlags, FakeFlags]) -> None:
    version = torch.__version__.split("+")[0]
    assert numerics_label(CPU) == f"cpu fp32, torch {version}"
    assert numerics_label(CPU, torch.float64) == f"cpu fp64, torch {version}"
    assert numerics_label(CUDA) == f"cuda fp32, tf32 on, cudnn default, torch {version}"
    apply_cuda_policy(CUDA)
    assert numerics_label(CUDA) == f"cuda fp32, tf32 off, cudnn deterministic, torch {version}"


def test_label_survives_flags_torch_refuses_to_read(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        @property
        def allow_tf32(self) -> bool:
            raise RuntimeError("mix of the legacy and new APIs")

    monkeypatch.setattr(torch.backends.cuda, "matmul", Refusing())
    assert ", tf32 mixed, " in numerics_label(CUDA)


def test_real_flags_are_untouched_on_cpu() -> None:
    before = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    apply_cuda_policy(CPU)
    after = (
        torch.backends.cuda.matmul.allow_tf32,
        torch.backends.cudnn.allow_tf32,
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    assert after == before


def test_real_torch_accepts_the_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's own flag setters take the policy for a CUDA device (nothing is allocated)."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        apply_cuda_policy(CUDA)
        assert not matmul.allow_tf32 and not cudnn.allow_tf32
        assert cudnn.deterministic and not cudnn.benchmark
        if hasattr(matmul, "fp32_precision"):
            assert matmul.fp32_precision == "ieee"
        assert ", tf32 off, cudnn deterministic, " in numerics_label(CUDA)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


def test_composition_tolerance_is_zero_on_cpu_only() -> None:
    assert composition_rtol(CPU) == 0.0
    assert composition_rtol(CUDA) == CUDA_COMPOSITION_RTOL > 0
    assert numerics.CUDA_COMPOSITION_RTOL < 1e-2


def _odd_stack(config: list[torch.Tensor], position: int, configs: int) -> list[torch.Tensor]:
    """`config`'s tensors at `position` among `configs` others of huge, tiny and odd values."""
    g = torch.Generator().manual_seed(7)
    out = []
    for t in config:
        others = torch.randn(configs, *t.shape, generator=g, dtype=t.dtype)
        scale = torch.tensor([1e30, 1e-30, 3.0, -7e12, 1e-3, 5e17, 2.0][:configs], dtype=t.dtype)
        others = others * scale.view(-1, *([1] * t.dim()))
        others[position] = t
        out.append(others)
    return out


def test_config_sum_of_one_config_ignores_its_neighbours() -> None:
    g = torch.Generator().manual_seed(0)
    config = [torch.rand(50, 40, generator=g), torch.rand(100, generator=g), torch.rand(3, 7)]
    alone = F.config_sum([t.unsqueeze(0) for t in config])
    inside = F.config_sum(_odd_stack(config, 4, 7))
    assert alone.dtype == torch.float64
    assert torch.equal(alone[0], inside[4])


def _avagrad_steps(params, lr, eps, steps: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    optimizer = get_optimizer("avagrad", params, lr=lr, eps=eps, stacked=True)
    for t in range(steps):
        for p in params:
            g = torch.Generator().manual_seed(t)
            noise = torch.randn(p.shape[1:], generator=g, dtype=p.dtype)
            p.grad = torch.sin(p.detach()) + noise
        optimizer.step()
    return params, optimizer.param_groups[0]["gamma"]


def test_avagrad_config_alone_equals_it_among_six_odd_others() -> None:
    """C = 1 versus the same config at position 4 of C = 7: bitwise equal on CPU."""
    g = torch.Generator().manual_seed(1)
    config = [torch.randn(100, 40, generator=g), torch.randn(100, generator=g)]
    alone, gamma_alone = _avagrad_steps(
        [t.unsqueeze(0).clone() for t in config],
        torch.tensor([0.1]),
        torch.tensor([1e-2]),
        steps=5,
    )
    lrs = torch.tensor([1e3, 1e-6, 0.3, 10.0, 0.1, 1e-3, 2.0])
    epss = torch.tensor([1e-8, 10.0, 1e-30, 1.0, 1e-2, 1e4, 1e-1])
    together, gamma_together = _avagrad_steps(_odd_stack(config, 4, 7), lrs, epss, steps=5)
    for a, b in zip(alone, together, strict=True):
        assert torch.equal(a[0], b[4])
    assert torch.equal(gamma_alone[0], gamma_together[4])


def test_config_sums_accumulate_in_float64() -> None:
    """2²⁴ + 1 float32 ones sum to 16777217 only when accumulated past float32."""
    ones = torch.ones(1, 2**24 + 1)
    assert float(F.config_sum([ones])[0]) == 2**24 + 1

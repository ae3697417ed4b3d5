"""Stacked Adam's CPU fallback (torch's fused kernel per config) reads strided gradients right."""

from __future__ import annotations

import pytest
import torch

from optim.registry import get_optimizer

CONFIGS = 3


@pytest.mark.parametrize("name", ["adam", "amsgrad", "adamw"])
def test_transposed_gradients_step_like_contiguous_ones(name: str) -> None:
    """A gradient with transposed strides (autograd's for a weight used as wᵀ) gives the
    same step as its contiguous copy."""
    generator = torch.Generator().manual_seed(0)
    init = torch.randn(CONFIGS, 5, 7, generator=generator, dtype=torch.float64)
    grads = [
        torch.randn(CONFIGS, 7, 5, generator=generator, dtype=torch.float64).transpose(1, 2)
        for _ in range(3)
    ]
    lr = torch.tensor([1e-3, 1e-2, 1e-1], dtype=torch.float64)
    eps = torch.tensor([1e-8, 1e-4, 1e-1], dtype=torch.float64)
    results = []
    for layout in (lambda g: g, torch.Tensor.contiguous):
        param = init.clone()
        optimizer = get_optimizer(name, [param], lr=lr, eps=eps, stacked=True, fused=True)
        for grad in grads:
            param.grad = layout(grad)
            optimizer.step()
        results.append(param)
    assert not grads[0].is_contiguous()
    torch.testing.assert_close(results[0], results[1], rtol=1e-12, atol=1e-14)

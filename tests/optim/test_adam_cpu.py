"""The one-pass C loop of stacked Adam/AdamW (CPU fast path) computes torch.optim's step."""

from __future__ import annotations

import pytest
import torch

from optim import adam_cpu, native
from optim.adam import _adam_elementwise
from optim.registry import get_optimizer
from tests.optim.helpers import run_without_compiler

CONFIGS = 4
SHAPES = [(CONFIGS, 70_000), (CONFIGS, 5), (CONFIGS, 3, 7, 2)]  # one tensor spans several items
LRS = [0.3, 0.03, 1e-3, 2.0]
EPSILONS = [1e-8, 1e-3, 0.1, 10.0]

pytestmark = pytest.mark.skipif(
    native.load(adam_cpu.SOURCE) is None, reason="no C compiler: the C loop cannot be built"
)


def state(dtype: torch.dtype) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    grads = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    exp_avgs = [torch.randn(s, generator=g, dtype=dtype) * 0.1 for s in SHAPES]
    exp_avg_sqs = [torch.rand(s, generator=g, dtype=dtype) for s in SHAPES]
    exp_avg_sqs[0][0, :10] = 0.0
    return [params, grads, exp_avgs, exp_avg_sqs]


def hyper(dtype: torch.dtype, case: str) -> dict:
    lr = torch.tensor(LRS, dtype=dtype)
    decay = torch.tensor([1e-2, 0.0, 5e-4, 0.1], dtype=dtype)
    return dict(
        step_size=lr / (1 - 0.9**7),
        bias_correction2_sqrt=(1 - 0.999**7) ** 0.5,
        eps=torch.tensor(EPSILONS, dtype=dtype),
        l2=decay if case == "l2" else 0.0,
        decay=1 - lr * decay if case == "decoupled" else None,
        beta1=0.9,
        beta2=0.999,
    )


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", ["plain", "l2", "decoupled"])
def test_c_loop_equals_eager_rule(case, dtype):
    kwargs = hyper(dtype, case)
    eager, native_lists = state(dtype), state(dtype)
    _adam_elementwise(*eager, None, **kwargs)
    adam_cpu.adam_step(*native_lists, **kwargs)
    exact = dtype == torch.float64
    tolerance = dict(rtol=1e-12, atol=1e-14) if exact else dict(rtol=1e-5, atol=1e-6)
    for name, want, have in zip(("param", "grad", "m", "v"), eager, native_lists, strict=True):
        for a, b in zip(have, want, strict=True):
            torch.testing.assert_close(a, b, **tolerance, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("name", ["adam", "adamw"])
def test_fused_stacked_optimizer_matches_torch_optim_per_config(name):
    """Stacked configs with their own lr, ε and decay, 10 steps, against torch.optim one by one."""
    g = torch.Generator().manual_seed(1)
    start = torch.randn(CONFIGS, 50, 3, generator=g, dtype=torch.float64)
    grads = [torch.randn(start.shape, generator=g, dtype=torch.float64) for _ in range(10)]
    decay = [1e-2, 0.0, 5e-4, 0.1]
    stacked = start.clone().requires_grad_(True)
    opt = get_optimizer(
        name,
        [stacked],
        lr=torch.tensor(LRS, dtype=torch.float64),
        eps=torch.tensor(EPSILONS, dtype=torch.float64),
        weight_decay=torch.tensor(decay, dtype=torch.float64),
        stacked=True,
        fused=True,
    )
    reference = torch.optim.AdamW if name == "adamw" else torch.optim.Adam
    singles = [start[c].clone().requires_grad_(True) for c in range(CONFIGS)]
    torch_opts = [
        reference([p], lr=LRS[c], eps=EPSILONS[c], weight_decay=decay[c], foreach=False)
        for c, p in enumerate(singles)
    ]
    for grad in grads:
        stacked.grad = grad.clone()
        opt.step()
        for c, (p, o) in enumerate(zip(singles, torch_opts, strict=True)):
            p.grad = grad[c].clone()
            o.step()
    for c, p in enumerate(singles):
        torch.testing.assert_close(stacked.detach()[c], p.detach(), rtol=1e-10, atol=1e-12)


def test_without_a_compiler_fused_adam_uses_torch_kernels(tmp_path):
    """No C compiler: the loop is not built and fused Adam steps with torch's kernels."""
    code = (
        "import torch\n"
        "from optim import adam_cpu\n"
        "from optim.registry import get_optimizer\n"
        "assert not adam_cpu.supports([torch.zeros(1, 3)])\n"
        "finals = []\n"
        "for fused in (False, True):\n"
        "    p = torch.ones(2, 5, dtype=torch.float64, requires_grad=True)\n"
        "    lr = torch.tensor([0.1, 0.01], dtype=torch.float64)\n"
        "    opt = get_optimizer('adam', [p], lr=lr, eps=1e-8, stacked=True, fused=fused)\n"
        "    for k in range(3):\n"
        "        p.grad = torch.full_like(p, k + 1.0)\n"
        "        opt.step()\n"
        "    finals.append(p.detach())\n"
        "torch.testing.assert_close(finals[0], finals[1], rtol=1e-12, atol=0)\n"
    )
    run_without_compiler(code, tmp_path)

"""The one-pass C loop of AvaGrad (CPU fast path) computes what the eager rule computes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from optim import AvaGrad, avagrad_cpu, native
from optim import _foreach as F
from optim.avagrad import _avagrad_elementwise
from tests.optim.helpers import run_without_compiler

CONFIGS = 4
SHAPES = [(CONFIGS, 70_000), (CONFIGS, 5), (CONFIGS, 3, 7, 2)]  # one tensor spans several items


def state(dtype: torch.dtype, seed: int = 0) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    grads = [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]
    exp_avgs = [torch.randn(s, generator=g, dtype=dtype) * 0.1 for s in SHAPES]
    exp_avg_sqs = [torch.rand(s, generator=g, dtype=dtype) for s in SHAPES]
    exp_avg_sqs[0][0, :10] = 0.0  # v = 0 gives the largest q: the elements γ depends on most
    return [params, grads, exp_avgs, exp_avg_sqs]


def hyper(dtype: torch.dtype, *, moving: bool, l2: bool, decay: bool, normalise: bool) -> dict:
    per_config = torch.tensor([0.3, 0.03, 1e-3, 2.0], dtype=dtype)
    return dict(
        moving=moving,
        step_size=per_config * 0.7,
        delayed_correction=1.3 if moving else 0.0,
        correction=1.1,
        eps=torch.tensor([1e-8, 1e-3, 0.1, 10.0], dtype=dtype),
        l2=per_config * 1e-2 if l2 else 0.0,
        decay=1 - per_config * 1e-3 if decay else None,
        beta1=0.9,
        beta2=0.999,
        normalise=normalise,
    )


CASES = {
    "first step": dict(moving=False, l2=False, decay=False, normalise=True),
    "moving": dict(moving=True, l2=False, decay=False, normalise=True),
    "l2": dict(moving=True, l2=True, decay=False, normalise=True),
    "decoupled": dict(moving=True, l2=False, decay=True, normalise=True),
    "delayed adam": dict(moving=True, l2=False, decay=False, normalise=False),
}

pytestmark = pytest.mark.skipif(
    native.load("avagrad_cpu.c") is None, reason="no C compiler: the C loop cannot be built"
)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("case", sorted(CASES))
def test_c_loop_equals_eager_rule(case, dtype):
    kwargs = hyper(dtype, **CASES[case])
    eager, native_lists = state(dtype), state(dtype)
    expected = _avagrad_elementwise(*eager, **kwargs)
    got = avagrad_cpu.avagrad_step(*native_lists, **kwargs)
    exact = dtype == torch.float64
    tolerance = dict(rtol=1e-12, atol=1e-14) if exact else dict(rtol=1e-5, atol=1e-6)
    for name, want, have in zip(("param", "grad", "m", "v"), eager, native_lists, strict=True):
        for a, b in zip(have, want, strict=True):
            torch.testing.assert_close(a, b, **tolerance, msg=lambda m, n=name: f"{n}: {m}")
    if expected is None:
        assert got is None
    else:
        assert got.dtype == dtype and got.shape == (CONFIGS,)
        torch.testing.assert_close(got, expected, rtol=1e-12 if exact else 1e-5, atol=0)


@pytest.mark.slow
def test_c_loop_equals_compiled_rule():
    """The CPU loop and the torch.compile'd body (the GPU fast path) agree."""
    kwargs = hyper(torch.float64, **CASES["l2"])
    compiled_lists, native_lists = state(torch.float64), state(torch.float64)
    expected = F.fusable(_avagrad_elementwise, True)(*compiled_lists, **kwargs)
    got = avagrad_cpu.avagrad_step(*native_lists, **kwargs)
    for want, have in zip(compiled_lists, native_lists, strict=True):
        for a, b in zip(have, want, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=0)


def test_results_do_not_depend_on_thread_count():
    kwargs = hyper(torch.float32, **CASES["moving"])
    runs = []
    threads = torch.get_num_threads()
    try:
        for count in (1, 3):
            torch.set_num_threads(count)
            lists = state(torch.float32)
            runs.append((lists, avagrad_cpu.avagrad_step(*lists, **kwargs)))
    finally:
        torch.set_num_threads(threads)
    (one, sums_one), (three, sums_three) = runs
    assert torch.equal(sums_one, sums_three)
    for tensors_one, tensors_three in zip(one, three, strict=True):
        for a, b in zip(tensors_one, tensors_three, strict=True):
            assert torch.equal(a, b)


def test_optimizer_takes_the_c_loop_only_for_what_it_handles():
    contiguous = [torch.zeros(1, 4), torch.zeros(1, 3)]
    assert avagrad_cpu.supports(contiguous, contiguous)
    assert not avagrad_cpu.supports([torch.zeros(1, 4, 2).transpose(1, 2)])
    assert not avagrad_cpu.supports([torch.zeros(1, 4, dtype=torch.bfloat16)])
    assert not avagrad_cpu.supports([torch.zeros(1, 4)], [torch.zeros(1, 4, dtype=torch.float64)])


def test_fused_optimizer_matches_eager_optimizer_in_float32():
    """End to end through AvaGrad(fused=True): 30 steps on a float32 model-sized tensor."""
    g = torch.Generator().manual_seed(3)
    start = [torch.randn(300, 200, generator=g), torch.randn(200, generator=g)]
    grads = [[torch.randn(p.shape, generator=g) for p in start] for _ in range(30)]
    finals = []
    for fused in (False, True):
        ps = [p.clone().requires_grad_(True) for p in start]
        opt = AvaGrad(ps, lr=0.1, eps=1e-4, weight_decay=1e-3, fused=fused)
        for step in grads:
            for p, grad in zip(ps, step, strict=True):
                p.grad = grad.clone()
            opt.step()
        finals.append(ps)
    for a, b in zip(*finals, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_without_a_compiler_the_loop_is_not_built(tmp_path):
    """No C compiler: `load` returns None (the step falls back to torch.compile), no crash."""
    code = (
        "from optim import native, avagrad_cpu\n"
        "import torch\n"
        "assert native.load('avagrad_cpu.c') is None\n"
        "assert not avagrad_cpu.supports([torch.zeros(1, 3)])\n"
    )
    run_without_compiler(code, tmp_path)
    assert not (tmp_path / "cache").exists()


def test_library_is_built_once_and_cached(tmp_path):
    env_cache = {"AVATUNE_CACHE_DIR": str(tmp_path)}
    code = "from optim import native; print(native.load('avagrad_cpu.c')._name)"
    paths = []
    for _ in range(2):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **env_cache},
            capture_output=True,
            text=True,
            check=True,
        )
        paths.append(result.stdout.strip())
    built = list((tmp_path / "kernels").iterdir())
    assert len(built) == 1 and built[0].name.startswith("avagrad_cpu-")
    assert paths == [str(built[0])] * 2

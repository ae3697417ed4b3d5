"""optim.diagnostics against hand computation, and against the γ the optimizer itself uses."""

from __future__ import annotations

import math

import pytest
import torch

from optim import AvaGrad, AvaGradW, DelayedAdam, StackedAdam
from optim.diagnostics import Segment, measure, measure_optimizer, supports, whole_tensors

C = 3
STEPS = 12


def _closed_form(vs: list[list[list[float]]], step: int, eps: list[float], beta2: float):
    """γ, zero fraction and per-tensor shares per config, in plain Python floats."""
    correction = (1 - beta2**step) ** -0.5
    out = []
    for c, e in enumerate(eps):
        parts = [[(math.sqrt(v) * correction + e) ** -2 for v in tensor[c]] for tensor in vs]
        total = math.fsum(x for part in parts for x in part)
        d = sum(len(tensor[c]) for tensor in vs)
        zeros = sum(v == 0 for tensor in vs for v in tensor[c])
        shares = [math.fsum(part) / total for part in parts]
        out.append((1 / math.sqrt(total / d), zeros / d, shares))
    return out


def test_measure_matches_the_closed_form() -> None:
    first = [[0.0, 4.0, 1e-6], [0.25, 0.0, 0.0], [9.0, 1.0, 2.0]]
    second = [[1.0, 0.0], [16.0, 1e-12], [0.0, 0.0]]
    eps = [1e-2, 1.0, 1e-8]
    got = measure(
        [torch.tensor(first, dtype=torch.float64), torch.tensor(second, dtype=torch.float64)],
        step=3,
        eps=torch.tensor(eps, dtype=torch.float64),
        beta2=0.9,
    )
    assert set(got.shares) == {"p0", "p1"}
    for c, (gamma, zeros, shares) in enumerate(_closed_form([first, second], 3, eps, 0.9)):
        assert got.gamma[c].item() == pytest.approx(gamma, rel=1e-12)
        assert got.zero_fraction[c].item() == pytest.approx(zeros, rel=1e-12)
        assert got.shares["p0"][c].item() == pytest.approx(shares[0], rel=1e-12)
        assert got.shares["p1"][c].item() == pytest.approx(shares[1], rel=1e-12)


def test_segments_split_a_flat_tensor_and_add_up_by_name() -> None:
    """Three elements of v = 0 next to three of v = 1; ε = 1, no bias correction: q = 1 or 2."""
    v = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]], dtype=torch.float64)
    segments = [Segment("zero", 0, 0, 3), Segment("one", 0, 3, 5), Segment("one", 0, 5, 6)]
    got = measure([v], step=1, eps=1.0, beta2=0.999, segments=segments, bias_correction=False)
    total = 3 * 1.0 + 3 * 0.25
    assert got.shares["zero"].item() == pytest.approx(3 / total)
    assert got.shares["one"].item() == pytest.approx(0.75 / total)
    assert got.gamma.item() == pytest.approx(1 / math.sqrt(total / 6))
    assert got.zero_fraction.item() == 0.5


def test_bad_segments_are_refused() -> None:
    v = torch.ones(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match="outside"):
        measure([v], step=1, eps=0.1, beta2=0.9, segments=[Segment("w", 0, 2, 5)])
    with pytest.raises(ValueError, match="tensor 1"):
        measure([v], step=1, eps=0.1, beta2=0.9, segments=[Segment("w", 1, 0, 1)])
    with pytest.raises(ValueError, match="2 names for 1"):
        whole_tensors([4], ["a", "b"])


def _stacked(dtype: torch.dtype, seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = [(C, 4, 3), (C, 5), (C, 2, 3, 2)]
    return [torch.randn(s, generator=generator, dtype=dtype).requires_grad_() for s in shapes]


def _set_grads(params: list[torch.Tensor], t: int, sparse: bool = True) -> None:
    """Gradients that depend on t only (so v does not depend on the optimizer), some exactly 0."""
    generator = torch.Generator().manual_seed(1000 + t)
    for p in params:
        g = torch.randn(p.shape, generator=generator, dtype=torch.float64)
        if sparse:
            g[:, :1] = 0.0  # a slice of each tensor never sees a gradient: v stays 0 there
        p.grad = g.to(p.dtype)


def _hyper(dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        "lr": torch.tensor([0.1, 1.0, 0.01], dtype=dtype),
        "eps": torch.tensor([1e-8, 1e-3, 1.0], dtype=dtype),
    }


@pytest.mark.parametrize(
    "cls,fused,dtype",
    [
        (AvaGrad, False, torch.float64),
        (AvaGrad, True, torch.float64),
        (AvaGradW, False, torch.float64),
        (AvaGrad, False, torch.float32),
        (AvaGrad, True, torch.float32),
    ],
)
def test_recorded_gamma_is_the_gamma_the_optimizer_uses_next(cls, fused, dtype) -> None:
    params = _stacked(dtype)
    decay = 1e-3 if cls is AvaGradW else 0.0  # L2 decay would make every v > 0
    opt = cls(params, **_hyper(dtype), weight_decay=decay, stacked=True, fused=fused)
    rtol = 1e-12 if dtype == torch.float64 else 1e-5
    for t in range(1, STEPS + 1):
        _set_grads(params, t)
        measured = measure_optimizer(opt)
        opt.step()
        used = opt.param_groups[0]["gamma"]  # computed by step t, multiplies step t + 1
        torch.testing.assert_close(measured.gamma, used.to(torch.float64), rtol=rtol, atol=0)
        total = sum(measured.shares.values())
        torch.testing.assert_close(total, torch.ones(C, dtype=torch.float64))
        assert torch.all(measured.zero_fraction >= 1 / 5)  # the zero-gradient slices
    assert measured.zero_fraction.tolist() == pytest.approx([(3 + 1 + 6) / 29] * C)


def test_first_record_sees_no_state_and_gamma_equals_eps() -> None:
    params = _stacked(torch.float64)
    opt = AvaGrad(params, **_hyper(torch.float64), stacked=True)
    _set_grads(params, 1)
    measured = measure_optimizer(opt)
    assert measured.zero_fraction.tolist() == [1.0] * C
    torch.testing.assert_close(measured.gamma, _hyper(torch.float64)["eps"])
    sizes = [12, 5, 12]
    for k, size in enumerate(sizes):
        assert measured.shares[f"p{k}"].tolist() == pytest.approx([size / sum(sizes)] * C)


def test_plain_optimizer_and_tensors_without_gradient() -> None:
    """An unstacked AvaGrad is one config; a tensor without a gradient is outside the scope."""
    params = [p[0].detach().clone().requires_grad_() for p in _stacked(torch.float64)]
    opt = AvaGrad(params, lr=0.1, eps=1e-4)
    for t in range(1, 6):
        _set_grads(params, t, sparse=False)
        params[1].grad = None
        measured = measure_optimizer(opt, [Segment("a", 0, 0, 12), Segment("b", 1, 0, 5)])
        opt.step()
        gamma = opt.param_groups[0]["gamma"]
        assert measured.gamma.shape == (1,)
        torch.testing.assert_close(measured.gamma, gamma, rtol=1e-12, atol=0)
        assert set(measured.shares) == {"a"}  # b's tensor has no gradient; p2 is not named
        assert measured.shares["a"].item() < 1


def test_delayed_adam_reports_what_avagrad_would_use() -> None:
    """v depends only on the gradients here: DelayedAdam's would-be γ is AvaGrad's real one."""
    delayed, ava = _stacked(torch.float64), _stacked(torch.float64)
    opts = [
        DelayedAdam(delayed, **_hyper(torch.float64), stacked=True),
        AvaGrad(ava, **_hyper(torch.float64), stacked=True),
    ]
    for t in range(1, STEPS + 1):
        _set_grads(delayed, t)
        _set_grads(ava, t)
        would = measure_optimizer(opts[0])
        for opt in opts:
            opt.step()
        assert torch.equal(opts[0].param_groups[0]["gamma"], torch.ones(C, dtype=torch.float64))
        torch.testing.assert_close(
            would.gamma, opts[1].param_groups[0]["gamma"], rtol=1e-12, atol=0
        )


def test_paper_variant_gamma_is_the_one_its_step_applies() -> None:
    """Paper variant: p ← p − lr·γ·η⊙m with η = 1/(√v + ε) and γ from the same η."""
    params = _stacked(torch.float64)
    hyper = _hyper(torch.float64)
    opt = AvaGrad(params, **hyper, variant="paper", stacked=True)
    for t in range(1, 6):
        _set_grads(params, t)
        before = [p.detach().clone() for p in params]
        v = [
            opt.state[p]["exp_avg_sq"].clone() if opt.state[p] else torch.zeros_like(p)
            for p in params
        ]
        measured = measure_optimizer(opt)
        opt.step()
        for p, old, v_old in zip(params, before, v, strict=True):
            m = opt.state[p]["exp_avg"]
            shape = (C,) + (1,) * (p.dim() - 1)
            eta = 1 / (v_old.sqrt() + hyper["eps"].view(shape))
            step = hyper["lr"].view(shape) * measured.gamma.view(shape) * eta * m
            torch.testing.assert_close(old - p.detach(), step, rtol=1e-10, atol=1e-14)


def test_other_optimizers_are_not_measured() -> None:
    params = _stacked(torch.float64)
    opt = StackedAdam(params, lr=torch.full((C,), 1e-3, dtype=torch.float64), stacked=True)
    assert not supports(opt) and supports(AvaGradW(params, stacked=True))
    with pytest.raises(TypeError, match="StackedAdam"):
        measure_optimizer(opt)

"""The character LSTM's hand-written backward through time equals autograd's, in float64."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from workers.tasks.charlm import CharLSTM, CharLSTMModel
from workers.tasks.lstm import shaped_views

CPU = torch.device("cpu")
CONFIGS = 3


def reference_nats(params: list[Tensor], windows: Tensor) -> Tensor:
    """Per-config mean cross-entropy (nats) of an autograd LSTM on windows [N, T + 1]."""
    embedding, w_ih, w_hh, bias, w_out, b_out = params
    inputs, targets = windows[:, :-1], windows[:, 1:]
    c, (n, t) = embedding.shape[0], inputs.shape
    h = embedding.new_zeros(c, n, w_hh.shape[2])
    cell = torch.zeros_like(h)
    outputs = []
    for step in range(t):
        x = embedding[:, inputs[:, step]]
        gates = torch.baddbmm(bias.unsqueeze(1), x, w_ih.transpose(1, 2))
        gates = gates + torch.bmm(h, w_hh.transpose(1, 2))
        i, f, g, o = gates.chunk(4, dim=2)
        cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(cell)
        outputs.append(h)
    states = torch.stack(outputs, 2).flatten(1, 2)  # [C, N·T, H]
    logits = torch.baddbmm(b_out.unsqueeze(1), states, w_out.transpose(1, 2))
    flat_targets = targets.flatten().expand(c, -1)
    return F.cross_entropy(logits.transpose(1, 2), flat_targets, reduction="none").mean(1)


def perturbed_model(task: CharLSTM, seed: int = 0) -> CharLSTMModel:
    """C configurations with different parameters (the init plus per-config noise)."""
    model = task.build(seed, CONFIGS, device=CPU, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.randn(model.flat.shape, generator=generator, dtype=torch.float64)
    model.flat.add_(0.3 * noise)
    return model


def reference_grads(model: CharLSTMModel, windows: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    """(per-config nats, flat gradient [C, P]) of Σ_c weight_c·loss_c by autograd."""
    flat = model.flat.detach().clone().requires_grad_()
    params = shaped_views(flat, [shape for _, shape in model.layout])
    nats = reference_nats(params, windows)
    (grad,) = torch.autograd.grad((nats * weight).sum(), [flat])
    return nats.detach(), grad


@pytest.mark.parametrize(
    ("sizes", "batch"),
    [
        (dict(embedding=4, hidden=8, seq_len=8), 5),
        (dict(embedding=3, hidden=5, seq_len=1), 2),
        (dict(embedding=6, hidden=4, seq_len=13), 1),
    ],
)
def test_gradients_equal_autograd(sizes: dict[str, int], batch: int) -> None:
    task = CharLSTM(**sizes, eval_windows=4, eval_batch=3)
    model = perturbed_model(task)
    keys = task.batch_keys(3, 2, batch, CPU)
    weight = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    for step in range(2):  # twice: the reused buffers must not leak between steps
        bits = model.train_step(keys[step], weight)
        offsets = keys[step].unsqueeze(1) + torch.arange(task.seq_len + 1)
        nats, grad = reference_grads(model, model.train_ids[offsets], weight)
        torch.testing.assert_close(bits, nats / math.log(2), rtol=1e-10, atol=0)
        torch.testing.assert_close(model.flat.grad, grad, rtol=1e-10, atol=1e-14)
    assert torch.all(model.flat.grad[2] == 0)  # weight 0: no gradient


def test_evaluation_equals_the_reference_loss() -> None:
    task = CharLSTM(embedding=4, hidden=8, seq_len=8, eval_windows=7, eval_batch=3)
    model = perturbed_model(task)
    objective, test = model.evaluate()
    for value, split in ((objective, "val"), (test, "test")):
        windows = model.windows[split]
        assert windows.shape[0] == 7  # chunks of 3, 3 and 1 windows
        params = shaped_views(model.flat, [shape for _, shape in model.layout])
        expected = reference_nats(params, windows) / math.log(2)
        torch.testing.assert_close(value, expected, rtol=1e-10, atol=0)


def test_segments_cover_the_flat_buffer_by_name() -> None:
    task = CharLSTM(embedding=4, hidden=8, seq_len=8)
    model = task.build(0, 2, device=CPU, dtype=torch.float32)
    segments = model.segments()
    assert [s.name for s in segments] == model.parameter_names()
    assert segments[0].start == 0 and segments[-1].stop == model.flat.shape[1]
    assert all(a.stop == b.start for a, b in itertools.pairwise(segments))

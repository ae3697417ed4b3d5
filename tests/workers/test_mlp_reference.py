"""The hand-written batched MLP is an ordinary MLP: same gradients, same training as nn.Module."""

from __future__ import annotations

import torch
from torch import nn

from tests.workers.helpers import max_relative_difference
from workers.tasks import get_task
from workers.tasks.mlp import LAYERS, mlp_init
from workers.tasks.mnist1d_data import mnist1d_on
from workers.trainer import TrialConfig, train

CPU = torch.device("cpu")


def reference_mlp(seed: int) -> nn.Sequential:
    """nn.Sequential 40-100-100-10 holding exactly the task's initial weights for `seed`."""
    linears = [nn.Linear(fan_in, out, dtype=torch.float64) for out, fan_in in LAYERS]
    flat, offset = mlp_init(seed), 0
    with torch.no_grad():
        for layer in linears:
            for p in (layer.weight, layer.bias):
                p.copy_(flat[offset : offset + p.numel()].view_as(p))
                offset += p.numel()
    return nn.Sequential(linears[0], nn.ReLU(), linears[1], nn.ReLU(), linears[2])


def test_manual_backward_matches_autograd() -> None:
    task = get_task("mnist1d-mlp")
    model = task.build(3, 2, device=CPU, dtype=torch.float64)
    with torch.no_grad():
        model.flat[1].mul_(1.7)  # two different configurations
    keys = task.batch_keys(3, 1, 32, CPU)[0]
    weight = torch.tensor([1.0, 0.5], dtype=torch.float64)
    losses = model.train_step(keys, weight)
    data = mnist1d_on(CPU, torch.float64)
    for c in range(2):
        reference = reference_mlp(3)
        offset = 0
        with torch.no_grad():
            for p in reference.parameters():
                p.copy_(model.flat[c, offset : offset + p.numel()].view_as(p))
                offset += p.numel()
        loss = nn.functional.cross_entropy(reference(data.x_train[keys]), data.y_train[keys])
        (weight[c] * loss).backward()
        expected = torch.cat([p.grad.flatten() for p in reference.parameters()])
        torch.testing.assert_close(model.flat.grad[c], expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(losses[c], loss.detach(), rtol=1e-12, atol=0)


def test_training_matches_nn_module_with_torch_adam() -> None:
    steps, lr = 30, 3e-3
    result = train(
        "mnist1d-mlp", "adam", [TrialConfig(lr, 1e-8, 5)], steps=steps, dtype=torch.float64
    )[0]
    model = reference_mlp(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, eps=1e-8)
    data = mnist1d_on(CPU, torch.float64)
    keys = get_task("mnist1d-mlp").batch_keys(5, steps, 100, CPU)
    curve = []
    for step in range(steps):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(
            model(data.x_train[keys[step]]), data.y_train[keys[step]]
        )
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
    assert max_relative_difference(result.curve, curve) < 1e-9
    with torch.no_grad():
        wrong = (model(data.x_val).argmax(1) != data.y_val).double().mean().item() * 100
    assert abs(result.objective - wrong) < 1e-9

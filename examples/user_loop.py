"""Tune Adam's (α, ε) for a plain PyTorch training loop with avatune's CGLD tuner.

The training below is ordinary PyTorch (an MLP on MNIST-1D, generated locally by the
`mnist1d` package), not an avatune Task: `client.run_trials` leases one trial at a time,
hands its α and ε to `train`, heartbeats the lease while it trains and reports the
validation error it returns. Ctrl-C hands the current trial back to the server.

Run it against a server (start one first, in another terminal):

    avatune serve
    python examples/user_loop.py --budget 30

Several copies of this script (on any machines) share the study's trials: start more
with `--study ID`, the id the first one prints.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np
import torch
from mnist1d.data import get_dataset_args, make_dataset
from torch import nn

from avatune.client import Client, Result, TrialHandle

CHANCE = 90.0  # % error of a guess among 10 classes: a diverged run's value


def mnist1d(samples: int = 4000) -> tuple[torch.Tensor, ...]:
    """Train and validation splits of MNIST-1D, generated here (no download)."""
    args = get_dataset_args()
    args.num_samples, args.train_split = samples, 0.75
    data = make_dataset(args)
    x, y = torch.tensor(data["x"], dtype=torch.float32), torch.tensor(data["y"])
    x_val = torch.tensor(data["x_test"], dtype=torch.float32)
    mean, std = x.mean(0), x.std(0)
    return (x - mean) / std, y, (x_val - mean) / std, torch.tensor(data["y_test"])


def train(trial: TrialHandle, data: tuple[torch.Tensor, ...], batch: int = 128) -> Result:
    """Train an MLP with Adam at the trial's α and ε; its validation error in %."""
    x, y, x_val, y_val = data
    torch.manual_seed(trial.fidelity.seed)
    model = nn.Sequential(
        nn.Linear(40, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=trial.alpha, eps=trial.eps)
    steps = trial.fidelity.steps or 300
    curve: list[float] = []
    for step in range(steps):
        index = torch.randint(0, len(x), (batch,))
        loss = nn.functional.cross_entropy(model(x[index]), y[index])
        if not math.isfinite(loss.item()):
            return Result(value=CHANCE, curve=curve, diverged=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        curve.append(loss.item())
        trial.progress(step + 1, steps)  # the next heartbeat shows it on the dashboard
    with torch.no_grad():
        error = 100.0 * (model(x_val).argmax(1) != y_val).float().mean().item()
    return Result(value=min(error, CHANCE), curve=curve[:: max(1, steps // 100)])


def study_spec(budget: int, steps: int, tuner: str = "cgld") -> dict[str, Any]:
    """The study: Adam's (α, ε) on the coarse 11 × 11 grid, CGLD by default, task `external`
    (ours; its config only records the loop's settings)."""
    return {
        "name": f"my MLP, Adam, {tuner}",
        "task": {"name": "external", "config": {"model": "mlp-100-100", "batch": 128}},
        "optimizer": "adam",
        "space": {"grid": "coarse"},
        "tuner": {"name": tuner, "seed": 0},
        "budget": budget,
        "fidelity": {"steps": steps},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default="http://127.0.0.1:8000", help="avatune's URL")
    parser.add_argument("--token", default=None, help="the server's token, if it has one")
    parser.add_argument("--budget", type=int, default=30, help="trainings the tuner may ask for")
    parser.add_argument("--tuner", default="cgld", help="cgld, gld, tpe, random, grid, …")
    parser.add_argument("--steps", type=int, default=300, help="training steps per trial")
    parser.add_argument("--study", type=int, default=None, help="join this study instead")
    args = parser.parse_args()

    np.random.seed(0)  # make_dataset draws from numpy's global generator
    data = mnist1d()
    with Client(args.server, args.token) as client:
        if args.study is None:
            study = client.create_study(study_spec(args.budget, args.steps, args.tuner))
        else:
            study = client.study(args.study)
        print(f"study {study.id}: {study.name}, budget {study.budget}")
        summary = client.run_trials(study, lambda trial: train(trial, data))
        best = client.study(study).best
    print(f"{summary.reported} trainings reported, {summary.failed} failed ({summary.ended})")
    if best is not None:
        print(f"best: validation error {best.value:.2f} % at α = {best.alpha:g}, ε = {best.eps:g}")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # the trial in training was handed back already
        raise SystemExit(130) from None

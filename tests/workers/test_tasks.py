"""The task registry and the data of each task (generated or read locally, never downloaded)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from workers.tasks import TASKS, get_task
from workers.tasks.charlm import pydoc_corpus
from workers.tasks.eq11 import W_STAR
from workers.tasks.mnist1d_data import mnist1d_splits
from workers.trainer import TrialConfig, train


def test_registry_lists_every_task() -> None:
    assert set(TASKS) == {
        "mnist1d-mlp",
        "mnist1d-cnn",
        "mnist1d-resnet",
        "charlm-lstm",
        "eq11",
        "cifar10-wrn",
    }
    for name, task in TASKS.items():
        assert task.name == name and task.description and task.objective_name
        assert task.default_steps > 0 and task.default_batch_size > 0
        assert isinstance(task.batchable, bool)
    assert not TASKS["cifar10-wrn"].batchable
    assert get_task("mnist1d-mlp").chance == 90.0


def test_unknown_task_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match="mnist1d-mlp"):
        get_task("mnist2d")


def test_mnist1d_splits_are_standardised_and_leave_global_rng_alone() -> None:
    random.seed(7)
    np.random.seed(7)
    expected = (random.random(), np.random.rand())
    random.seed(7)
    np.random.seed(7)
    splits = mnist1d_splits()
    assert (random.random(), np.random.rand()) == expected
    assert splits.x_train.shape == (4000, 40) and splits.x_val.shape == (4000, 40)
    assert splits.x_test.shape == (4000, 40) and splits.y_test.shape == (4000,)
    assert splits.y_val.shape == (4000,) and set(splits.y_val.tolist()) == set(range(10))
    # three disjoint sets of examples (no input appears in two splits)
    rows = [tuple(r) for x in (splits.x_train, splits.x_val, splits.x_test) for r in x.tolist()]
    assert len(set(rows)) == 12_000
    torch.testing.assert_close(splits.x_train.mean(0), torch.zeros(40, dtype=torch.float64))
    torch.testing.assert_close(splits.x_train.std(0), torch.ones(40, dtype=torch.float64))
    assert set(splits.y_train.tolist()) == set(range(10))


def test_charlm_corpus_and_chance() -> None:
    corpus = pydoc_corpus()
    assert corpus.train.numel() > 100_000 and corpus.val.numel() > 1000
    assert int(corpus.train.max()) < len(corpus.vocabulary)
    assert get_task("charlm-lstm").chance == pytest.approx(math.log2(len(corpus.vocabulary)))


def test_eq11_objective_and_test_metric() -> None:
    """|w_T − w*| and F(w_T) − F(w*) = 0.999·(w_T − w*)²; projected w never leaves [0, 1]."""
    configs = [TrialConfig(0.0, 1e-8), TrialConfig(0.1, 1e-8), TrialConfig(50.0, 1e-8)]
    results = train("eq11", "adam", configs, steps=500, dtype=torch.float64)
    assert results[0].objective == pytest.approx(abs(0.5 - W_STAR))
    for result in results:
        assert 0 <= result.objective <= 1 - W_STAR + 1e-12
        assert result.test_metric == pytest.approx(0.999 * result.objective**2)
    assert results[2].objective == pytest.approx(1 - W_STAR) or results[2].objective == W_STAR

"""cifar10-wrn on a tiny fake CIFAR-10 folder: loading, augmentation, one-by-one training."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.workers.helpers import write_fake_cifar
from workers.tasks.cifar import CifarWRN
from workers.tasks.cifar_data import (
    apply_augmentation,
    augment,
    cifar_splits,
    data_folder,
    draw_augmentation,
)
from workers.tasks.wrn import WideResNet
from workers.trainer import TrialConfig, train


@pytest.fixture
def cifar_root(tmp_path: Path) -> Path:
    return write_fake_cifar(tmp_path, train=50, test=10)


def test_loader_splits_and_normalises(cifar_root: Path) -> None:
    splits = cifar_splits(data_folder(cifar_root))
    assert splits.x_train.shape == (45, 3, 32, 32) and splits.x_val.shape == (5, 3, 32, 32)
    assert splits.x_test.shape == (10, 3, 32, 32) and splits.y_test.dtype == torch.int64
    means = splits.x_train.mean((0, 2, 3))
    torch.testing.assert_close(means, torch.zeros(3), atol=1e-5, rtol=0)


def test_data_dir_from_environment(cifar_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATUNE_DATA_DIR", str(cifar_root))
    assert data_folder() == cifar_root / "cifar-10-batches-py"
    monkeypatch.delenv("AVATUNE_DATA_DIR")
    with pytest.raises(FileNotFoundError, match="AVATUNE_DATA_DIR"):
        data_folder()
    with pytest.raises(FileNotFoundError, match="no CIFAR-10 batches"):
        data_folder(cifar_root / "elsewhere")


def test_augment_crops_and_flips_deterministically() -> None:
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32)
    a = augment(x, torch.Generator().manual_seed(1))
    b = augment(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b)


def _reference_augment(x: torch.Tensor, draws: torch.Tensor) -> torch.Tensor:
    """The definition, one image at a time: pad 4, crop 32×32 at (dx, dy), mirror if flip."""
    out = []
    for image, (dx, dy, flip) in zip(x, draws.t().tolist(), strict=True):
        crop = torch.nn.functional.pad(image, (4, 4, 4, 4))[:, dy : dy + 32, dx : dx + 32]
        out.append(crop.flip(-1) if flip else crop)
    return torch.stack(out)


def test_augmentation_on_device_equals_the_per_image_definition() -> None:
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    draws = draw_augmentation(16, torch.Generator().manual_seed(3))
    assert set(draws[2].tolist()) == {0, 1} and draws[:2].max() > 0
    assert torch.equal(apply_augmentation(x, draws), _reference_augment(x, draws))
    assert torch.equal(augment(x, torch.Generator().manual_seed(3)), _reference_augment(x, draws))


def test_data_is_uploaded_once_per_device_and_dtype(cifar_root: Path) -> None:
    task = CifarWRN(data_dir=cifar_root)
    cpu = torch.device("cpu")
    on_cpu = task.splits_on(cpu, torch.float64)
    assert task.splits_on(cpu, torch.float64) is on_cpu
    assert on_cpu.x_train.dtype == torch.float64 and on_cpu.y_train.dtype == torch.int64
    assert torch.equal(on_cpu.x_val, task.splits().x_val.double())
    keys = task.batch_keys(0, steps=3, batch_size=8, device=cpu)
    assert keys.shape == (3, 8) and keys.device == cpu


def test_wide_resnet_shapes() -> None:
    model = WideResNet(depth=10, width=1)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="6n"):
        WideResNet(depth=12)


def test_trains_one_trial_at_a_time(cifar_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVATUNE_WRN_DEPTH", "10")
    monkeypatch.setenv("AVATUNE_WRN_WIDTH", "1")
    task = CifarWRN(data_dir=cifar_root)
    assert (task.depth, task.width) == (10, 1)
    configs = [TrialConfig(1e-3, 1e-8), TrialConfig(1e-2, 1e-8)]
    results = train(task, "adam", configs, steps=2, batch_size=8)
    for result in results:
        assert len(result.curve) == 2 and not result.diverged
        assert 0 <= result.objective <= 100 and 0 <= result.test_metric <= 100
    again = train(task, "adam", configs, steps=2, batch_size=8)
    assert [r.curve for r in again] == [r.curve for r in results]

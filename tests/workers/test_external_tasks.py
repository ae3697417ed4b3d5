"""Tasks named by import path: a Task class or a function returning one, options checked."""

from __future__ import annotations

import pytest

from workers.tasks import get_task
from workers.tasks.mlp import MnistMLP
from workers.tasks.resnet import MnistResNet


def small_resnet(channels: int = 4) -> MnistResNet:
    """A factory: a function returning a Task."""
    return MnistResNet(channels=channels, blocks=1)


def not_a_task() -> int:
    return 3


def test_a_task_class_by_import_path_is_built_once_per_options() -> None:
    first = get_task("workers.tasks.resnet:MnistResNet", {"channels": 4})
    assert isinstance(first, MnistResNet)
    assert get_task("workers.tasks.resnet:MnistResNet", {"channels": 4}) is first
    assert isinstance(get_task("workers.tasks.mlp:MnistMLP"), MnistMLP)


def test_a_factory_function_and_its_options() -> None:
    task = get_task(f"{__name__}:small_resnet", {"channels": 6})
    assert isinstance(task, MnistResNet)
    with pytest.raises(ValueError, match=r"unknown option 'chanels'.*did you mean 'channels'"):
        get_task(f"{__name__}:small_resnet", {"chanels": 6})
    with pytest.raises(ValueError, match="returned int, not a Task"):
        get_task(f"{__name__}:not_a_task")


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("torch.nn:Linear", ValueError, "neither a Task subclass nor a function"),
        ("workers.tasks.mlp:Nope", AttributeError, "has no attribute 'Nope'"),
        ("mnist1d-mpl", ValueError, "did you mean 'mnist1d-mlp'"),
    ],
)
def test_what_is_not_a_task_says_why(name: str, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        get_task(name)

"""The shape of `mnist1d-resnet`: its blocks, parameter names and shapes, init and FLOPs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workers.tasks.base import init_generator, uniform_init

LENGTH = 40
CLASSES = 10
#: The stem: conv1d(1 → channels, kernel 5, stride 2, padding 2), 40 → 20 positions.
STEM_KERNEL, STEM_STRIDE, STEM_PADDING = 5, 2, 2
STEM_LENGTH = (LENGTH + 2 * STEM_PADDING - STEM_KERNEL) // STEM_STRIDE + 1


@dataclass(frozen=True)
class BlockShape:
    """One pre-activation block: parameter-name prefix, widths, stride, input length."""

    prefix: str
    in_channels: int
    out_channels: int
    stride: int
    length: int

    @property
    def projects(self) -> bool:
        """Whether the shortcut is a 1×1 projection (the shape changes) rather than identity."""
        return self.stride != 1 or self.in_channels != self.out_channels

    @property
    def out_length(self) -> int:
        """Positions after the block (kernel 3, padding 1)."""
        return (self.length - 1) // self.stride + 1


@dataclass(frozen=True)
class Architecture:
    """Stage-1 width `channels` (stage 2: twice that) and `blocks` residual blocks per stage."""

    channels: int = 8
    blocks: int = 1

    def __post_init__(self) -> None:
        for name in ("channels", "blocks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"mnist1d-resnet: {name} must be an integer >= 1, got {value!r}")

    @property
    def width(self) -> int:
        """Channels of stage 2, the pooled features and the classifier's input."""
        return 2 * self.channels

    @property
    def block_shapes(self) -> list[BlockShape]:
        """Every block in order: stage 1 at `channels`, then stage 2 (first block strided)."""
        k, half = self.channels, STEM_LENGTH
        stage1 = [BlockShape(f"stage1.{b}.", k, k, 1, half) for b in range(self.blocks)]
        quarter = stage1[-1].out_length
        stage2 = [BlockShape("stage2.0.", k, 2 * k, 2, quarter)]
        short = stage2[0].out_length
        stage2 += [
            BlockShape(f"stage2.{b}.", 2 * k, 2 * k, 1, short) for b in range(1, self.blocks)
        ]
        return stage1 + stage2

    @property
    def final_length(self) -> int:
        """Positions the global average pool averages over."""
        return self.block_shapes[-1].out_length

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        """Parameter name → shape in torch's Conv1d/BatchNorm1d/Linear layout, in init order."""
        shapes: dict[str, tuple[int, ...]] = {"stem.weight": (self.channels, 1, STEM_KERNEL)}
        for block in self.block_shapes:
            i, o, p = block.in_channels, block.out_channels, block.prefix
            shapes |= {
                p + "bn1.weight": (i,),
                p + "bn1.bias": (i,),
                p + "conv1.weight": (o, i, 3),
                p + "bn2.weight": (o,),
                p + "bn2.bias": (o,),
                p + "conv2.weight": (o, o, 3),
            }
            if block.projects:
                shapes[p + "shortcut.weight"] = (o, i, 1)
        shapes |= {
            "bn.weight": (self.width,),
            "bn.bias": (self.width,),
            "fc.weight": (CLASSES, self.width),
            "fc.bias": (CLASSES,),
        }
        return shapes

    @property
    def batch_norms(self) -> dict[str, int]:
        """BatchNorm name (its parameters' prefix) → channels."""
        suffix = ".weight"
        return {
            name[: -len(suffix)]: shape[0]
            for name, shape in self.shapes.items()
            if name.endswith(suffix) and len(shape) == 1
        }

    def parameter_count(self) -> int:
        """Trainable parameters of one configuration."""
        return sum(torch.Size(shape).numel() for shape in self.shapes.values())

    def step_flops(self, batch_size: int) -> float:
        """Nominal conv/matmul FLOPs (2 per multiply-add) of one training step of one config.

        Forward, weight gradients (as many) and input gradients (as many, except the stem's:
        its input is data), i.e. 3·forward − stem; BatchNorm, ReLU and the loss not counted.
        """
        stem = 2 * self.channels * STEM_KERNEL * STEM_LENGTH
        forward = stem + 2 * CLASSES * self.width
        for block in self.block_shapes:
            i, o = block.in_channels, block.out_channels
            macs = o * i * 3 + o * o * 3 + (o * i if block.projects else 0)
            forward += 2 * block.out_length * macs
        return float(batch_size * (3 * forward - stem))


def resnet_init(seed: int, arch: Architecture) -> dict[str, Tensor]:
    """One configuration's float64 parameters, drawn from `init_generator(seed)` in name order.

    Convolutions He-normal (fan_out, ReLU) as `WideResNet.reset`; BatchNorm weight 1 and
    bias 0; the classifier torch's default Linear init (weight and bias U(±1/√fan_in)).
    """
    generator = init_generator(seed)
    params = {}
    for name, shape in arch.shapes.items():
        if name.startswith("fc."):
            params[name] = uniform_init(shape, arch.width, generator)
        elif len(shape) == 3:
            weight = torch.empty(shape, dtype=torch.float64)
            nn.init.kaiming_normal_(
                weight, mode="fan_out", nonlinearity="relu", generator=generator
            )
            params[name] = weight
        elif name.endswith(".weight"):
            params[name] = torch.ones(shape, dtype=torch.float64)
        else:
            params[name] = torch.zeros(shape, dtype=torch.float64)
    return params

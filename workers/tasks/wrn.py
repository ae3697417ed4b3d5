"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), pre-activation blocks with BatchNorm."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Block(nn.Module):
    """BN-ReLU-conv3×3, BN-ReLU-conv3×3, plus a 1×1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.shortcut = (
            None
            if in_channels == out_channels and stride == 1
            else nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)
        )

    def forward(self, x: Tensor) -> Tensor:
        """Residual block output."""
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class WideResNet(nn.Module):
    """WRN-depth-width for 32×32 images: 3 groups of (depth − 4)/6 blocks, widths 16k, 32k, 64k."""

    def __init__(
        self,
        depth: int = 16,
        width: int = 4,
        classes: int = 10,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if (depth - 4) % 6 or depth < 10:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1, got {depth}")
        if width < 1:
            raise ValueError(f"WRN width must be >= 1, got {width}")
        blocks = (depth - 4) // 6
        widths = (16, 16 * width, 32 * width, 64 * width)
        self.stem = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        layers: list[nn.Module] = []
        for group in range(3):
            for b in range(blocks):
                in_channels = widths[group] if b == 0 else widths[group + 1]
                stride = 1 if group == 0 or b > 0 else 2
                layers.append(Block(in_channels, widths[group + 1], stride))
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], classes)
        self.reset(generator)

    @torch.no_grad()
    def reset(self, generator: torch.Generator | None = None) -> None:
        """The reference initialisation (He-normal convolutions), drawn from `generator`."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(
                    module.weight, mode="fan_out", nonlinearity="relu", generator=generator
                )
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=5**0.5, generator=generator)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Logits [N, classes]."""
        out = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.fc(out.mean((2, 3)))

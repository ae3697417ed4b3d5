"""Optimizer step time on ResNet-18-shaped parameters (≈11M), CPU, 2 threads.

Prints one JSON line. Every optimizer steps the same parameters and gradients; steps
are interleaved round-robin so background load affects all of them alike, and the
median per optimizer is reported. Targets: ratio_vs_adam_fused ≤ 1.2, speedup_vs_kozistr ≥ 5.
`avagrad_fast` is ``AvaGrad(fused=True)``: on CPU the one-pass C loop (optim/avagrad_cpu.c),
`adabelief_fast` the torch.compile'd rule.
"""

from __future__ import annotations

import json
import statistics
import time
import warnings

import torch

from optim import AdaBelief, AvaGrad


def resnet18_shapes() -> list[tuple[int, ...]]:
    """Weight shapes of torchvision's ResNet-18 (convs, batch-norm affine, fc)."""
    shapes: list[tuple[int, ...]] = [(64, 3, 7, 7), (64,), (64,)]
    channels = 64
    for width, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        for block in range(2):
            in_ch = channels if block == 0 else width
            shapes += [
                (width, in_ch, 3, 3),
                (width,),
                (width,),
                (width, width, 3, 3),
                (width,),
                (width,),
            ]
            if block == 0 and (stride != 1 or in_ch != width):
                shapes += [(width, in_ch, 1, 1), (width,), (width,)]
        channels = width
    shapes += [(1000, 512), (1000,)]
    return shapes


def main(repeats: int = 25, warmup: int = 5) -> dict[str, float]:
    torch.set_num_threads(2)
    torch.manual_seed(0)
    shapes = resnet18_shapes()
    base = [torch.randn(s) * 0.05 for s in shapes]
    grads = [torch.randn(s) * 1e-2 for s in shapes]

    def params() -> list[torch.Tensor]:
        ps = [b.clone().requires_grad_(True) for b in base]
        for p, g in zip(ps, grads, strict=True):
            p.grad = g.clone()
        return ps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pytorch_optimizer import AvaGrad as KozistrAvaGrad

        builders = {
            "adam_foreach": lambda ps: torch.optim.Adam(ps, lr=1e-3, foreach=True),
            "adam_fused": lambda ps: torch.optim.Adam(ps, lr=1e-3, fused=True),
            "kozistr_avagrad": lambda ps: KozistrAvaGrad(
                ps, lr=0.1, eps=0.1, weight_decouple=False
            ),
            "avagrad_foreach": lambda ps: AvaGrad(ps, lr=0.1, eps=0.1),
            "avagrad_fast": lambda ps: AvaGrad(ps, lr=0.1, eps=0.1, fused=True),
            "adabelief_foreach": lambda ps: AdaBelief(ps, lr=1e-3),
            "adabelief_fast": lambda ps: AdaBelief(ps, lr=1e-3, fused=True),
        }
        optimizers = {name: build(params()) for name, build in builders.items()}
        compile_start = time.perf_counter()
        for _ in range(warmup):
            for opt in optimizers.values():
                opt.step()
        warmup_seconds = time.perf_counter() - compile_start
        samples: dict[str, list[float]] = {name: [] for name in optimizers}
        for _ in range(repeats):
            for name, opt in optimizers.items():
                start = time.perf_counter()
                opt.step()
                samples[name].append((time.perf_counter() - start) * 1e3)

    ms = {name: statistics.median(values) for name, values in samples.items()}
    result = {f"{name}_ms": round(value, 3) for name, value in ms.items()}
    result.update(
        params_millions=round(sum(b.numel() for b in base) / 1e6, 2),
        threads=torch.get_num_threads(),
        ratio_vs_adam_fused=round(ms["avagrad_fast"] / ms["adam_fused"], 3),
        speedup_vs_kozistr=round(ms["kozistr_avagrad"] / ms["avagrad_fast"], 2),
        foreach_ratio_vs_adam_foreach=round(ms["avagrad_foreach"] / ms["adam_foreach"], 3),
        warmup_and_compile_s=round(warmup_seconds, 1),
    )
    return result


if __name__ == "__main__":
    print(json.dumps(main()))

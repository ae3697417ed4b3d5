"""`mnist1d-resnet`: the batched model equals C separate torch.nn ResNets, in training mode
(batch statistics) and eval mode (each configuration's own running statistics), for both
BN-ReLU implementations (fused C loops and torch ops); a diverging configuration leaves the
others bit-identical."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from optim import get_optimizer
from tests.workers.helpers import CONFIGS, assert_same_results
from workers.tasks import get_task, resnet, resnet_native
from workers.tasks.mnist1d_data import mnist1d_on
from workers.tasks.resnet import MnistResNet, ResNetModel
from workers.tasks.resnet_arch import Architecture, resnet_init
from workers.trainer import TrialConfig, train

CPU = torch.device("cpu")
FUSED = [
    pytest.param(
        True,
        id="fused-c",
        marks=pytest.mark.skipif(
            not resnet_native.available(CPU, torch.float32), reason="no C compiler"
        ),
    ),
    pytest.param(False, id="torch-ops"),
]
#: (dtype, rtol): float32 results agree to rounding, float64 to far better. A batch-norm
#: weight's gradient sums batch × length products, and the CPU's kernels differ (AMD EPYC
#: reaches 1.5e-5 of the tensor's scale where Intel stays below 1e-5), hence 5e-5 (~400 ulp).
DTYPES = [
    pytest.param(torch.float32, 5e-5, id="float32"),
    pytest.param(torch.float64, 1e-10, id="float64"),
]
STEPS, BATCH = 3, 32


class RefBlock(nn.Module):
    """`workers.tasks.wrn.Block` in 1-D: BN-ReLU-conv3, BN-ReLU-conv3, + (projected) skip."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm1d(in_channels)
        self.conv1 = nn.Conv1d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.conv2 = nn.Conv1d(out_channels, out_channels, 3, 1, 1, bias=False)
        projects = stride != 1 or in_channels != out_channels
        self.shortcut = (
            nn.Conv1d(in_channels, out_channels, 1, stride, bias=False) if projects else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(x))
        skip = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(torch.relu(self.bn2(self.conv1(out))))
        return out + skip


class RefNet(nn.Module):
    """One configuration of the ResNet from plain torch.nn layers."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        k, blocks = arch.channels, arch.blocks
        self.stem = nn.Conv1d(1, k, 5, 2, 2, bias=False)
        self.stage1 = nn.Sequential(*[RefBlock(k, k, 1) for _ in range(blocks)])
        self.stage2 = nn.Sequential(
            *[RefBlock(k if b == 0 else 2 * k, 2 * k, 2 if b == 0 else 1) for b in range(blocks)]
        )
        self.bn = nn.BatchNorm1d(2 * k)
        self.fc = nn.Linear(2 * k, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stage2(self.stage1(self.stem(x.unsqueeze(1))))
        return self.fc(torch.relu(self.bn(h)).mean(2))


def _references(arch: Architecture, dtype: torch.dtype, configs: int) -> list[RefNet]:
    init = resnet_init(0, arch)
    refs = []
    for _ in range(configs):
        ref = RefNet(arch).to(dtype)
        missing, unexpected = ref.load_state_dict(init, strict=False)
        assert not unexpected and all("running" in k or "num_batches" in k for k in missing)
        refs.append(ref)
    return refs


def _model(arch: Architecture, dtype: torch.dtype, fused: bool, configs: int) -> ResNetModel:
    data = mnist1d_on(CPU, dtype)
    return ResNetModel(data, arch, resnet_init(0, arch), configs, CPU, dtype, fused=fused)


def assert_close_to(got: Tensor, expected: Tensor, rtol: float, name: str = "") -> None:
    """max |got − expected| ≤ rtol · max |expected|: relative to the tensor's scale, since a
    gradient entry that cancels to ≈ 0 carries the rounding of its large terms."""
    error = float((got - expected).abs().max())
    scale = float(expected.abs().max())
    assert error <= rtol * scale, f"{name}: max error {error:.3g}, scale {scale:.3g}"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread: these models are tiny, and spare threads only spin on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Three configurations per pass, so a batch of 8 runs as several passes."""
    monkeypatch.setattr(resnet, "CPU_PASS", 3)


@pytest.mark.usefixtures("small_passes")
@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize(("dtype", "rtol"), DTYPES)
@pytest.mark.parametrize("arch", [Architecture(), Architecture(3, 2)], ids=["8x1", "3x2"])
def test_batched_equals_separate_torch_modules(
    arch: Architecture, dtype: torch.dtype, rtol: float, fused: bool
) -> None:
    """Losses and gradients over a few Adam steps, then running statistics and eval-mode
    logits, equal those of C separately trained nn.Conv1d/BatchNorm1d/Linear networks."""
    configs = len(CONFIGS)
    model, refs = _model(arch, dtype, fused, configs), _references(arch, dtype, configs)
    assert len(model.passes) > 1
    like = dict(dtype=dtype)
    lr = torch.tensor([c.lr for c in CONFIGS], **like) / 10
    eps = torch.tensor([c.eps for c in CONFIGS], **like)
    batched = get_optimizer("adam", model.parameters, lr=lr, eps=eps, stacked=True)
    separate = [
        torch.optim.Adam(ref.parameters(), lr=float(lr[c]), eps=float(eps[c]))
        for c, ref in enumerate(refs)
    ]
    data = model.data
    keys = torch.arange(STEPS * BATCH).view(STEPS, BATCH)
    weight = torch.ones(configs, **like)
    for step in range(STEPS):
        x, y = data.x_train[keys[step]], data.y_train[keys[step]]
        losses = model.train_step(keys[step], weight)
        for c, (ref, opt) in enumerate(zip(refs, separate, strict=True)):
            opt.zero_grad()
            loss = F.cross_entropy(ref.train()(x), y)
            loss.backward()
            torch.testing.assert_close(losses[c], loss.detach(), rtol=rtol, atol=0)
            for name, p in ref.named_parameters():
                got = model.grads[name][c].reshape(p.shape)
                assert_close_to(got, p.grad, rtol, f"step {step} config {c} {name}")
            opt.step()
        batched.step()
    x_val = data.x_val[:200]
    logits = model.logits(x_val)
    for c, ref in enumerate(refs):
        for name in arch.batch_norms:
            mean, var = model.running_stats(name)
            module = ref.get_submodule(name)
            assert_close_to(mean[c], module.running_mean, rtol, f"{name}.running_mean")
            assert_close_to(var[c], module.running_var, rtol, f"{name}.running_var")
        assert_close_to(logits[c].t(), ref.eval()(x_val).detach(), rtol, "eval logits")


@pytest.mark.parametrize("fused", FUSED)
def test_running_statistics_are_per_configuration_and_used_in_eval(fused: bool) -> None:
    """Configs trained with different α accumulate different running statistics; eval mode
    normalises with them, not with the batch's statistics (train mode)."""
    arch = Architecture()
    model = _model(arch, torch.float64, fused, 2)
    lr = torch.tensor([1e-3, 1e-1], dtype=torch.float64)
    opt = get_optimizer("sgd", model.parameters, lr=lr, stacked=True)
    keys = torch.arange(5 * BATCH).view(5, BATCH)
    for step in range(5):
        model.train_step(keys[step], torch.ones(2, dtype=torch.float64))
        opt.step()
    for name in arch.batch_norms:
        mean, var = model.running_stats(name)
        assert not torch.allclose(mean[0], mean[1]) and not torch.allclose(var[0], var[1])
    x = model.data.x_train[keys[0]]
    eval_logits = model.logits(x)
    before = [s.clone() for pair in model.stats.values() for s in pair]
    refs = _references(arch, torch.float64, 2)
    for c, ref in enumerate(refs):  # the reference with the trained weights, batch statistics
        for name, p in ref.named_parameters():
            with torch.no_grad():
                p.copy_(model.weights[name][c].reshape(p.shape))
        train_logits = ref.train()(x).detach()
        assert not torch.allclose(eval_logits[c].t(), train_logits, rtol=1e-3)
    after = [s for pair in model.stats.values() for s in pair]
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))  # eval: no update


@pytest.mark.parametrize("fused", FUSED)
def test_batch_of_eight_equals_each_alone_through_the_trainer(
    fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fused:
        monkeypatch.setattr(resnet_native, "available", lambda device, dtype: False)
    task = MnistResNet(channels=4)
    fidelity = dict(steps=6, batch_size=16, dtype=torch.float64)
    together = train(task, "adam", CONFIGS, max_batch=8, **fidelity)
    alone = [train(task, "adam", [config], **fidelity)[0] for config in CONFIGS]
    assert all(len(r.curve) == 6 for r in together)
    assert_same_results(together, alone, rtol=1e-10)


HEALTHY = [TrialConfig(1e-2, 1e-8), TrialConfig(1e-1, 1e-3), TrialConfig(3e-3, 1e-1)]
#: What stands in the diverging configuration's place in the batch without divergence.
CALM = TrialConfig(1e-3, 1e-8)


@pytest.mark.parametrize("fused", FUSED)
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_diverging_config_leaves_the_others_bit_identical(
    optimizer: str, fused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BatchNorm makes the loss scale-invariant in the weights, so only a learning rate that
    overflows float32 (the weights reach ~1e38) diverges; it must not touch the others."""
    if not fused:
        monkeypatch.setattr(resnet_native, "available", lambda device, dtype: False)
    task = MnistResNet(channels=4)
    fidelity = dict(steps=60, batch_size=32)
    blowup = TrialConfig(1e38, 1e-8)
    together = train(task, optimizer, [HEALTHY[0], blowup, *HEALTHY[1:]], max_batch=4, **fidelity)
    bad = together[1]
    assert bad.diverged and bad.objective == 90.0 and bad.test_metric == 90.0
    assert len(bad.curve) < 60
    healthy = [r for i, r in enumerate(together) if i != 1]
    assert not any(r.diverged for r in healthy)
    calm = train(task, optimizer, [HEALTHY[0], CALM, *HEALTHY[1:]], max_batch=4, **fidelity)
    assert_same_results(healthy, [r for i, r in enumerate(calm) if i != 1], rtol=0)
    alone = train(task, optimizer, HEALTHY, max_batch=4, **fidelity)
    assert_same_results(healthy, alone, rtol=0)


def test_options_shape_and_flops() -> None:
    """Options are validated; the default network has 1986 parameters per configuration."""
    assert MnistResNet().arch.parameter_count() == 1986
    assert get_task("mnist1d-resnet", {"channels": 4, "blocks": 2}).arch == Architecture(4, 2)
    for bad in (dict(channels=0), dict(blocks=-1), dict(channels=2.5), dict(blocks=True)):
        with pytest.raises(ValueError, match="mnist1d-resnet"):
            MnistResNet(**bad)
    model = MnistResNet().build(0, 2, device=CPU, dtype=torch.float32)
    segments = model.segments()
    assert [s.name for s in segments] == list(model.arch.shapes)
    assert segments[0].start == 0 and segments[-1].stop == model.flat.shape[1] == 1986
    flops = MnistResNet().step_flops(100)
    assert flops == pytest.approx(2 * MnistResNet().step_flops(50)) and flops > 1e7

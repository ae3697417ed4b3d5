"""`charlm-lstm`: a character-level LSTM language model on the Python docs' topic texts.

The corpus is `pydoc_data.topics` from the standard library (about 0.5 M characters in
every Python), split 90/5/5 into contiguous train/validation/test text. The LSTM is
written with batched matrix products over the config dimension, forward and backward
through time by hand (`workers.tasks.lstm`; several times faster than autograd on a step
loop). Objective: validation bits per character (chance: log2 of the vocabulary size).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor

from optim.diagnostics import Segment
from workers.tasks.base import BatchedModel, Task, data_generator, init_generator, uniform_init
from workers.tasks.lstm import LSTMWorkspace, lstm_backward, lstm_forward, shaped_views

UNKNOWN = "\x00"  # stands for every non-ASCII character


@dataclass(frozen=True)
class Corpus:
    """Character ids of the three splits and the vocabulary."""

    train: Tensor
    val: Tensor
    test: Tensor
    vocabulary: str


@functools.cache
def pydoc_corpus() -> Corpus:
    """The topics text of this Python's pydoc_data, encoded (non-ASCII → one unknown symbol)."""
    from pydoc_data.topics import topics

    text = "\n".join(topics[key] for key in sorted(topics))
    text = "".join(ch if ord(ch) < 128 else UNKNOWN for ch in text)
    vocabulary = "".join(sorted(set(text) | {UNKNOWN}))
    index = {ch: i for i, ch in enumerate(vocabulary)}
    ids = torch.tensor([index[ch] for ch in text], dtype=torch.int64)
    n = ids.numel()
    a, b = int(n * 0.9), int(n * 0.95)
    return Corpus(ids[:a], ids[a:b], ids[b:], vocabulary)


def eval_windows(ids: Tensor, length: int, limit: int) -> Tensor:
    """Non-overlapping windows [N, length + 1] (input and next-character targets), ≤ limit."""
    count = min((ids.numel() - 1) // length, limit)
    starts = torch.arange(count) * length
    return ids[starts.unsqueeze(1) + torch.arange(length + 1)]


class Forward(NamedTuple):
    """What one forward pass keeps for the backward: each time-major input row's index into
    the stacked input table [T·C·N], the LSTM's outputs and inputs [C, T + 1, N, H] (h_{−1}
    = 0 first), next-character log-probabilities [C, T·N, V], and the LSTM's buffers."""

    rows: Tensor
    hidden: Tensor
    log_probs: Tensor
    ws: LSTMWorkspace


def parameter_shapes(vocab: int, embedding: int, hidden: int) -> list[tuple[str, tuple[int, ...]]]:
    """The embedding, the LSTM's weights and bias (nn.LSTM's layout), the output layer."""
    return [
        ("embedding", (vocab, embedding)),
        ("lstm.weight_ih", (4 * hidden, embedding)),
        ("lstm.weight_hh", (4 * hidden, hidden)),
        ("lstm.bias", (4 * hidden,)),
        ("out.weight", (vocab, hidden)),
        ("out.bias", (vocab,)),
    ]


class CharLSTMModel(BatchedModel):
    """C stacked one-layer LSTM language models with a hand-written backward through time.

    All parameters live in one flat buffer [C, P] (one tensor for the optimizer) with views
    per tensor; the LSTM itself is `workers.tasks.lstm`.
    """

    def __init__(
        self,
        task: CharLSTM,
        init: list[Tensor],
        configs: int,
        device: torch.device,
        dtype: torch.dtype,
    ):
        super().__init__(configs)
        self.task = task
        self.corpus = pydoc_corpus()
        self.train_ids = self.corpus.train.to(device)
        self.windows = {
            split: eval_windows(getattr(self.corpus, split), task.seq_len, task.eval_windows).to(
                device
            )
            for split in ("val", "test")
        }
        one = torch.cat([p.flatten() for p in init])
        self.flat = one.to(device=device, dtype=dtype).repeat(configs, 1)
        self.flat.grad = torch.zeros_like(self.flat)
        self.layout = parameter_shapes(len(self.corpus.vocabulary), task.embedding, task.hidden)
        shapes = [shape for _, shape in self.layout]
        self.weights = shaped_views(self.flat, shapes)
        self.grads = shaped_views(self.flat.grad, shapes)
        self.workspaces: dict[int, LSTMWorkspace] = {}
        self._minus_one = self.flat.new_full((1, 1, 1), -1.0)

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return [self.flat]

    def parameter_names(self) -> list[str]:
        """The embedding, the LSTM's weights and bias, the output layer's weight and bias."""
        return [name for name, _ in self.layout]

    def segments(self) -> list[Segment]:
        """Each named tensor's run of the flat buffer."""
        segments, offset = [], 0
        for name, shape in self.layout:
            size = math.prod(shape)
            segments.append(Segment(name, 0, offset, offset + size))
            offset += size
        return segments

    def _workspace(self, batch: int) -> LSTMWorkspace:
        """The reused buffers for minibatches of `batch` windows."""
        if batch not in self.workspaces:
            hidden = self.task.hidden
            self.workspaces[batch] = LSTMWorkspace(
                self.task.seq_len, self.configs, batch, hidden, self.flat
            )
        return self.workspaces[batch]

    def _forward(self, windows: Tensor) -> Forward:
        """The forward pass on windows [N, T + 1] (inputs and next-character targets).

        x_t·W_ihᵀ + b depends on x_t only through its character: each configuration's table
        [V, 4H] of those is computed once, and gathered straight into the time-major gates.
        """
        embedding, w_ih, w_hh, bias, w_out, b_out = self.weights
        c, (batch, steps) = self.configs, (windows.shape[0], windows.shape[1] - 1)
        vocab = embedding.shape[1]
        table = torch.baddbmm(bias.unsqueeze(1), embedding, w_ih.transpose(1, 2))
        config_rows = torch.arange(c, device=windows.device).view(1, c, 1) * vocab
        rows = (windows[:, :-1].t().unsqueeze(1) + config_rows).flatten()
        ws = self._workspace(batch)
        torch.index_select(table.view(c * vocab, -1), 0, rows, out=ws.gates.view(rows.numel(), -1))
        lstm_forward(w_hh, ws)
        hidden = ws.hidden.transpose(0, 1).contiguous()
        states = hidden[:, 1:].reshape(c, steps * batch, -1)
        logits = torch.baddbmm(b_out.unsqueeze(1), states, w_out.transpose(1, 2))
        return Forward(rows, hidden, torch.log_softmax(logits, 2), ws)

    def _targets(self, windows: Tensor) -> Tensor:
        """Next-character ids [C, T·N, 1], time-major like the inputs."""
        return windows[:, 1:].t().reshape(1, -1, 1).expand(self.configs, -1, 1)

    @torch.no_grad()
    def train_step(self, keys: Tensor, weight: Tensor) -> Tensor:
        """Per-config training loss (bits per character) on one minibatch; grads in `.grad`."""
        offsets = keys.unsqueeze(1) + torch.arange(self.task.seq_len + 1, device=keys.device)
        windows = self.train_ids[offsets]
        rows, hidden, log_probs, ws = self._forward(windows)
        targets = self._targets(windows)
        c, count = self.configs, targets.shape[1]
        steps, batch = self.task.seq_len, keys.shape[0]
        nats = log_probs.gather(2, targets).mean((1, 2)).neg_()
        embedding, w_ih, w_hh, _, w_out, _ = self.weights
        g_embedding, g_ih, g_hh, g_bias, g_out, g_b_out = self.grads
        d_logits = log_probs.exp_().scatter_add_(2, targets, self._minus_one.expand_as(targets))
        scale = (weight / count).view(-1, 1, 1)  # d_logits is unscaled: scale what it feeds
        states = hidden[:, 1:].reshape(c, count, -1)
        torch.bmm(d_logits.transpose(1, 2), states, out=g_out).mul_(scale)
        torch.sum(d_logits, 1, out=g_b_out).mul_(scale.view(-1, 1))
        d_states = torch.bmm(d_logits, w_out).view(c, steps, batch, -1).transpose(0, 1)
        torch.mul(d_states, scale.view(1, c, 1, 1), out=ws.d_hidden)  # time-major, scaled
        d_gates, d_w_hh = lstm_backward(w_hh, ws)
        g_hh.copy_(d_w_hh)
        d_table = d_gates.new_zeros(c * embedding.shape[1], d_gates.shape[-1])
        d_table.index_add_(0, rows, d_gates.view(rows.numel(), -1))
        d_table = d_table.view(c, embedding.shape[1], -1)
        torch.sum(d_table, 1, out=g_bias)
        torch.bmm(d_table.transpose(1, 2), embedding, out=g_ih)
        torch.bmm(d_table, w_ih, out=g_embedding)
        return nats / math.log(2)

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric): bits per character on the held-out windows."""
        results = []
        for split in ("val", "test"):
            windows = self.windows[split]
            total = sum(
                self._forward(w).log_probs.gather(2, self._targets(w)).sum((1, 2)).neg_()
                for w in windows.split(self.task.eval_batch)
            )
            results.append(total / windows[:, 1:].numel() / math.log(2))
        return results[0], results[1]


class CharLSTM(Task):
    """Character-level LSTM language model on pydoc_data topics; objective: validation bits/char."""

    name = "charlm-lstm"
    description = "character LSTM LM on the stdlib's pydoc_data topics; validation bits/char"
    default_steps = 1000
    default_batch_size = 32
    objective_name = "validation bits per character"
    test_metric_name = "test bits per character"

    def __init__(
        self,
        embedding: int = 32,
        hidden: int = 128,
        seq_len: int = 64,
        eval_windows: int = 128,
        eval_batch: int = 32,
    ) -> None:
        self.embedding = embedding
        self.hidden = hidden
        self.seq_len = seq_len
        self.eval_windows = eval_windows
        self.eval_batch = eval_batch
        # CPU jobs of 16 configurations (8 above 32 units) keep a step's gates and logits in
        # the core's cache; fewer would leave the job threads waiting on each other's Python
        # (measured with benchmarks/grid_throughput.py --task charlm-lstm: 5-10% faster grids).
        self.cpu_max_batch = 16 if hidden <= 32 else 8

    @property
    def chance(self) -> float:  # type: ignore[override]
        """Bits per character of a uniform guess over the vocabulary."""
        return math.log2(len(pydoc_corpus().vocabulary))

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load the data once before jobs start."""
        pydoc_corpus()

    def step_flops(self, batch_size: int) -> float:
        """Nominal matrix-product FLOPs of one training step of one configuration: input
        projection, recurrence and output layer, forward, weight and input gradients (the
        input gradient of the projection is the embedding's); 3× the forward's."""
        e, h, vocab = self.embedding, self.hidden, len(pydoc_corpus().vocabulary)
        forward = 2 * batch_size * self.seq_len * (4 * h * e + 4 * h * h + h * vocab)
        return 3.0 * forward

    def init(self, seed: int) -> list[Tensor]:
        """Embedding N(0, 1), LSTM and output layers with torch's default uniform init."""
        generator = init_generator(seed)
        vocab, e, h = len(pydoc_corpus().vocabulary), self.embedding, self.hidden
        return [
            torch.randn(vocab, e, generator=generator, dtype=torch.float64),
            uniform_init((4 * h, e), h, generator),
            uniform_init((4 * h, h), h, generator),
            uniform_init((4 * h,), h, generator),
            uniform_init((vocab, h), h, generator),
            uniform_init((vocab,), h, generator),
        ]

    def build(
        self, seed: int, configs: int, *, device: torch.device, dtype: torch.dtype
    ) -> CharLSTMModel:
        """C copies of the model initialised from `seed`."""
        return CharLSTMModel(self, self.init(seed), configs, device, dtype)

    def batch_keys(self, seed: int, steps: int, batch_size: int, device: torch.device) -> Tensor:
        """Start offsets [steps, batch] of the training windows, uniform over the train text."""
        last = pydoc_corpus().train.numel() - self.seq_len - 1
        return torch.randint(0, last, (steps, batch_size), generator=data_generator(seed)).to(
            device
        )

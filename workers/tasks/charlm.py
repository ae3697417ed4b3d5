"""`charlm-lstm`: a character-level LSTM language model on the Python docs' topic texts.

The corpus is `pydoc_data.topics` from the standard library (about 0.5 M characters in
every Python), split 90/5/5 into contiguous train/validation/test text. The LSTM is
written with batched matrix products over the config dimension; autograd differentiates
it. Objective: validation bits per character (chance: log2 of the vocabulary size).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from workers.tasks.base import (
    AutogradModel,
    Task,
    data_generator,
    init_generator,
    stacked_leaves,
    uniform_init,
)

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


class CharLSTMModel(AutogradModel):
    """C stacked one-layer LSTM language models."""

    report_scale = 1 / math.log(2)  # curves in bits per character, like the objective

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
        self.params = stacked_leaves(init, configs, device, dtype)

    @property
    def parameters(self) -> list[Tensor]:
        """The stacked tensors the optimizer steps."""
        return self.params

    def logits(self, inputs: Tensor) -> Tensor:
        """Next-character logits [C, N, T, V] for input ids [N, T]."""
        embedding, w_ih, w_hh, bias, w_out, b_out = self.params
        c, (n, t) = self.configs, inputs.shape
        hidden = w_hh.shape[2]
        x = embedding[:, inputs.flatten()]  # [C, N·T, E]
        projected = torch.baddbmm(bias.unsqueeze(1), x, w_ih.transpose(1, 2)).view(c, n, t, -1)
        h = x.new_zeros(c, n, hidden)
        cell = x.new_zeros(c, n, hidden)
        outputs = []
        for step in range(t):
            gates = torch.baddbmm(projected[:, :, step], h, w_hh.transpose(1, 2))
            i, f, g, o = gates.chunk(4, dim=2)
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(cell)
            outputs.append(h)
        states = torch.stack(outputs, 2).view(c, n * t, hidden)
        return torch.baddbmm(b_out.unsqueeze(1), states, w_out.transpose(1, 2)).view(c, n, t, -1)

    def _nats(self, windows: Tensor) -> Tensor:
        """Mean cross-entropy (nats per character) per config on windows [N, T + 1]."""
        logits = self.logits(windows[:, :-1])
        targets = windows[:, 1:].flatten().expand(self.configs, -1)
        return F.cross_entropy(
            logits.flatten(1, 2).transpose(1, 2), targets, reduction="none"
        ).mean(1)

    def loss(self, keys: Tensor) -> Tensor:
        """Per-config mean training loss (nats) on one minibatch."""
        offsets = keys.unsqueeze(1) + torch.arange(self.task.seq_len + 1, device=keys.device)
        return self._nats(self.train_ids[offsets])

    @torch.no_grad()
    def evaluate(self) -> tuple[Tensor, Tensor]:
        """Per-config (objective, test metric)."""
        results = []
        for split in ("val", "test"):
            windows = self.windows[split]
            chunks = windows.split(self.task.eval_batch)
            total = sum(self._nats(w) * w.shape[0] for w in chunks)
            results.append(total / windows.shape[0] / math.log(2))
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

    @property
    def chance(self) -> float:  # type: ignore[override]
        """Bits per character of a uniform guess over the vocabulary."""
        return math.log2(len(pydoc_corpus().vocabulary))

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        """Load the data once before jobs start."""
        pydoc_corpus()

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

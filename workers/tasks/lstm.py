"""A one-layer LSTM over C stacked configurations, forward and backward through time by hand.

Autograd on a step loop allocates a full-size gradient for every time-step slice it
selects (quadratic in the sequence length) and records a dozen nodes per step; written
out, a step is one batched matrix product and a few in-place elementwise operations on
buffers (and views of them) made once per minibatch shape. The recurrent state is kept
time-major ([T, C, N, ·]), so each step's block is contiguous; gates are in torch's order
(i, f, g, o), so the weights have nn.LSTM's layout (w_hh [C, 4H, H]).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def shaped_views(flat: Tensor, shapes: Sequence[tuple[int, ...]]) -> list[Tensor]:
    """Views [C, *shape] into consecutive slices of a flat buffer [C, P]."""
    views, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        views.append(flat[:, offset : offset + size].view(flat.shape[0], *shape))
        offset += size
    if offset != flat.shape[1]:
        raise ValueError(f"shapes cover {offset} of {flat.shape[1]} parameters")
    return views


class LSTMWorkspace:
    """Buffers for one (T, C, N, H) shape and their per-step views, reused by every minibatch.

    Before `lstm_forward`, the caller writes each step's input projection x_t·W_ihᵀ + b
    into `gates`; after `lstm_backward`, `dgates` holds ∂loss/∂(x_t·W_ihᵀ + b) and `g_hh`
    the gradient of w_hh.
    """

    def __init__(self, steps: int, configs: int, batch: int, hidden: int, like: Tensor) -> None:
        t, c, n, h = steps, configs, batch, hidden
        self.shape = (t, c, n, h)
        #: pre-activations a_t, turned in place into the gate activations (i, f, g, o)
        self.gates = like.new_empty(t, c, n, 4 * h)
        #: c_{t−1} at index t (index 0: the zero initial state); h likewise
        self.cells = like.new_zeros(t + 1, c, n, h)
        self.hidden = like.new_zeros(t + 1, c, n, h)
        #: tanh(c_t); the backward pass overwrites it with ∂h_t/∂c_t = o_t·(1 − tanh²c_t)
        self.tanh_cells = like.new_empty(t, c, n, h)
        #: ∂loss/∂a_t (the backward pass first fills it with the local gate derivatives)
        self.dgates = like.new_empty(t, c, n, 4 * h)
        #: ∂loss/∂h_t from the layer above (the caller fills it), then through time as well
        self.d_hidden = like.new_empty(t, c, n, h)
        self.dc = like.new_empty(c, n, h)
        self.carry = like.new_empty(c, n, h)
        self.g_hh = like.new_empty(c, 4 * h, h)
        act = self.gates.view(t, c, n, 4, h)
        local = self.dgates.view(t, c, n, 4, h)
        #: views of the whole sequence, per gate: i, f, g, o (activations) and their locals
        self.act = act.unbind(3)
        self.local = local.unbind(3)
        # Python-side view creation costs as much as a small kernel: make them once.
        self.steps_views = [
            (
                act[k, :, :, :2],
                act[k, :, :, 2],
                act[k, :, :, 3],
                act[k, :, :, 0],
                act[k, :, :, 1],
                self.cells[k],
                self.cells[k + 1],
                self.tanh_cells[k],
                self.hidden[k],
                self.hidden[k + 1],
                self.gates[k],
            )
            for k in range(t)
        ]
        self.back_views = [
            (
                self.d_hidden[k],
                self.dgates[k + 1] if k + 1 < t else None,
                self.tanh_cells[k],
                local[k, :, :, :3],
                local[k, :, :, 3],
                act[k, :, :, 1],
                self.dgates[k].transpose(1, 2),
                self.hidden[k],
            )
            for k in range(t)
        ]


def lstm_forward(w_hh: Tensor, ws: LSTMWorkspace) -> None:
    """Run the recurrence over `ws.gates` (holding the input projections); fills `ws`."""
    w_hh_t = w_hh.transpose(1, 2)
    for t, views in enumerate(ws.steps_views):
        sig_if, tanh_g, sig_o, i, f, c_prev, cell, tanh_cell, h_prev, h, gates = views
        if t:  # h_{−1} = 0
            gates.baddbmm_(h_prev, w_hh_t)
        sig_if.sigmoid_()
        tanh_g.tanh_()
        sig_o.sigmoid_()
        torch.mul(f, c_prev, out=cell)
        cell.addcmul_(i, tanh_g)
        torch.mul(sig_o, torch.tanh(cell, out=tanh_cell), out=h)


def _local_derivatives(ws: LSTMWorkspace) -> None:
    """dgates ← each gate's local derivative (∂c/∂a: i, f, g; ∂h/∂a: o); tanh_cells ← ∂h/∂c."""
    i, _, g, o = ws.act
    d_i, d_f, d_g, d_o = ws.local
    torch.addcmul(ws.gates, ws.gates, ws.gates, value=-1.0, out=ws.dgates)  # σ' = s − s²
    d_g.fill_(1.0).addcmul_(g, g, value=-1.0)  # tanh' = 1 − g² (g's slot is not a sigmoid)
    d_i.mul_(g)  # ∂c/∂a_i = g·σ'(i)
    d_f.mul_(ws.cells[:-1])  # ∂c/∂a_f = c_{t−1}·σ'(f)
    d_g.mul_(i)  # ∂c/∂a_g = i·tanh'(g)
    d_o.mul_(ws.tanh_cells)  # ∂h/∂a_o = tanh(c)·σ'(o)
    tc = ws.tanh_cells  # ∂h/∂c = o·(1 − tanh²c) = o − h·tanh(c)
    torch.addcmul(o, ws.hidden[1:], tc, value=-1.0, out=tc)


def lstm_backward(w_hh: Tensor, ws: LSTMWorkspace) -> tuple[Tensor, Tensor]:
    """(∂loss/∂a_t [T, C, N, 4H], ∂loss/∂w_hh) from `ws.d_hidden` (∂loss/∂h_t [T, C, N, H]
    through the layer above only).

    w_hh's gradient Σ_t ∂a_tᵀ·h_{t−1} accumulates step by step, while ∂a_t is in cache
    (twice as fast as one product over a config-major copy). Overwrites the forward's gate
    buffers: run `lstm_forward` again before another backward.
    """
    _local_derivatives(ws)
    dc, carry, g_hh = ws.dc, ws.carry, ws.g_hh
    g_hh.zero_()
    last = len(ws.back_views) - 1
    for t in range(last, -1, -1):
        dh, d_next, dh_dc, d_cell_gates, d_out_gate, f, d_gates_t, h_prev = ws.back_views[t]
        if d_next is None:
            torch.mul(dh, dh_dc, out=dc)
        else:  # h_t also feeds a_{t+1}; c_t also feeds c_{t+1} (carry = dc_{t+1}·f_{t+1})
            dh.baddbmm_(d_next, w_hh)
            torch.addcmul(carry, dh, dh_dc, out=dc)
        d_cell_gates.mul_(dc.unsqueeze(2))
        d_out_gate.mul_(dh)
        if t:  # h_{−1} = 0 adds nothing
            torch.mul(dc, f, out=carry)
            g_hh.baddbmm_(d_gates_t, h_prev)
    return ws.dgates, g_hh

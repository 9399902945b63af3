"""PyTorch layers that follow Keras's conventions where the two frameworks differ, so a
twin can use them instead of silently computing another function."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class KerasBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with Keras's moving-statistics update.

    Two traps: momentum is defined oppositely (Keras 0.99 keeps 99% of the old value;
    torch's momentum=0.01 does), and torch updates running_var with the *unbiased* batch
    variance (n / (n - 1)) where Keras uses the biased one. Construct it with the Keras
    momentum and epsilon (Keras defaults: 0.99 and 1e-3; torch's: 0.1 and 1e-5).
    """

    def __init__(self, num_features: int, keras_momentum: float = 0.99,
                 epsilon: float = 1e-3, affine: bool = True) -> None:
        super().__init__(num_features, eps=epsilon, momentum=1.0 - keras_momentum,
                         affine=affine)

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2D input, got {x.dim()}D")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, ...)
        if not self.training:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                self.bias, False, 0.0, self.eps)
        dims = [d for d in range(x.dim()) if d != 1]
        with torch.no_grad():
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)  # Keras: the biased variance
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var, self.momentum)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


def freeze_second_bias(rnn: nn.RNNBase) -> None:
    """torch's LSTM has two bias vectors (input and hidden) where Keras has one. Hold the
    hidden one at zero and keep it out of training, so the twins have one bias each."""
    for name, p in rnn.named_parameters():
        if name.startswith("bias_hh"):
            with torch.no_grad():
                p.zero_()
            p.requires_grad_(False)


def pad_same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Keras's asymmetric `padding="same"` for a 2D conv on (B, C, H, W)."""
    return keras_same_pad(x, (kernel, kernel), (stride, stride))


def keras_same_pad(x: torch.Tensor, kernel: tuple[int, ...], stride: tuple[int, ...],
                   dilation: tuple[int, ...] | None = None, value: float = 0.0
                   ) -> torch.Tensor:
    """Keras's `padding="same"` on the trailing spatial axes of (B, C, *spatial): the
    extra pixel goes after (see layout.same_padding); a dilated kernel pads for its
    effective size (k - 1) * d + 1. `value`: -inf in front of a max pool."""
    from twinbench.models.layout import same_padding

    dilation = dilation or (1,) * len(kernel)
    pads: list[int] = []
    for axis in reversed(range(len(kernel))):  # F.pad lists the last axis first
        size = x.shape[x.dim() - len(kernel) + axis]
        k = (kernel[axis] - 1) * dilation[axis] + 1
        pads.extend(same_padding(size, k, stride[axis]))
    return F.pad(x, pads, value=value)


def keras_avg_pool_same(x: torch.Tensor, size: tuple[int, ...], stride: tuple[int, ...]
                        ) -> torch.Tensor:
    """Keras's average pool with padding "same" on (B, C, *spatial): the padded cells are
    left out of each window's count (torch's count_include_pad=False pads symmetrically,
    Keras after), so sum the padded input and divide by the padded count of ones."""
    pool = F.avg_pool1d if len(size) == 1 else F.avg_pool2d
    ones = torch.ones_like(x[:1, :1])
    total = pool(keras_same_pad(x, size, stride), size, stride)
    count = pool(keras_same_pad(ones, size, stride), size, stride)
    return total / count


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Keras GlobalAveragePooling1D under a mask: x (B, L, C), mask (B, L) -> (B, C)."""
    keep = mask.to(x.dtype)[..., None]
    return (x * keep).sum(dim=1) / keep.sum(dim=1)


RNN_CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "simple": nn.RNN}


class KerasRNN(nn.Module):
    """A Keras LSTM, GRU or SimpleRNN (optionally in a Bidirectional) on (B, L, F) with
    Keras's masking: a masked step leaves the state as it was, wherever it sits in the
    sequence, and outputs zeros (`zero_output`, as Bidirectional sets it when returning
    sequences) or the previous output. The weights live in `self.rnn`, a plain nn.LSTM /
    nn.GRU / nn.RNN; unmasked, it runs as one fused call. LSTM and SimpleRNN hold their
    second bias at zero (`freeze_second_bias`): Keras has one."""

    def __init__(self, cell: str, features: int, units: int, bidirectional: bool = False,
                 merge_mode: str | None = None, return_sequences: bool = False,
                 go_backwards: bool = False, zero_output: bool = False,
                 activation: str = "tanh") -> None:
        super().__init__()
        kwargs = {"nonlinearity": activation} if cell == "simple" else {}
        self.rnn = RNN_CELLS[cell](features, units, batch_first=True,
                                   bidirectional=bidirectional, **kwargs)
        if cell != "gru":
            freeze_second_bias(self.rnn)
        self.cell, self.merge_mode, self.return_sequences = cell, merge_mode, return_sequences
        self.go_backwards, self.zero_output = go_backwards, zero_output

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        dirs = [("", self.go_backwards)] + ([("_reverse", True)] if self.rnn.bidirectional
                                            else [])
        if mask is None:
            seqs, lasts = self._fused(x)
        else:
            runs = [self._masked(x, mask, sfx, rev) for sfx, rev in dirs]
            seqs, lasts = [r[0] for r in runs], [r[1] for r in runs]
        if not self.rnn.bidirectional:
            return seqs[0] if self.return_sequences else lasts[0]
        parts = seqs if self.return_sequences else lasts
        return merge(parts[0], parts[1], self.merge_mode)

    def _fused(self, x: torch.Tensor) -> tuple[list, list]:
        """Sequences (B, L, H) in Keras's order and final states (B, H), per direction."""
        x = x.flip(1) if self.go_backwards else x
        out, h = self.rnn(x)  # out: (B, L, dirs * H); h (or (h, c)): (dirs, B, H)
        h = h[0] if self.cell == "lstm" else h
        units = self.rnn.hidden_size
        seqs = [out[..., :units]] + ([out[..., units:]] if self.rnn.bidirectional else [])
        return seqs, [h[0]] + ([h[1]] if self.rnn.bidirectional else [])

    def _masked(self, x: torch.Tensor, mask: torch.Tensor, sfx: str, reverse: bool
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """One direction, step by step; the sequence comes back in position order for a
        Bidirectional's backward half, in processing order for a go_backwards RNN."""
        w = [getattr(self.rnn, f"{n}_l0{sfx}") for n in ("weight_ih", "weight_hh",
                                                           "bias_ih", "bias_hh")]
        h = x.new_zeros(x.shape[0], self.rnn.hidden_size)
        state = (h, h) if self.cell == "lstm" else h
        out, outs = h, []
        steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
        for t in steps:
            new = self._step(x[:, t], state, w)
            keep = mask[:, t, None]  # (B, 1)
            state = tuple(torch.where(keep, n, o) for n, o in zip(new, state)) \
                if self.cell == "lstm" else torch.where(keep, new, state)
            h_new = new[0] if self.cell == "lstm" else new
            out = torch.where(keep, h_new, torch.zeros_like(out) if self.zero_output else out)
            outs.append(out)
        if reverse and self.rnn.bidirectional:
            outs.reverse()
        return torch.stack(outs, dim=1), out

    def _step(self, x_t, state, w):
        if self.cell == "lstm":
            return torch.lstm_cell(x_t, state, *w)
        if self.cell == "gru":
            return torch.gru_cell(x_t, state, *w)
        fn = torch.rnn_tanh_cell if self.rnn.nonlinearity == "tanh" else torch.rnn_relu_cell
        return fn(x_t, state, *w)


def merge(a: torch.Tensor, b: torch.Tensor, mode: str | None) -> torch.Tensor:
    """Keras Bidirectional's merge_mode."""
    if mode == "concat":
        return torch.cat([a, b], dim=-1)
    if mode == "sum":
        return a + b
    if mode == "ave":
        return (a + b) / 2
    if mode == "mul":
        return a * b
    raise ValueError(f"merge_mode {mode!r}; valid: concat, sum, ave, mul")


class KerasMultiHeadAttention(nn.Module):
    """Keras's MultiHeadAttention(num_heads, key_dim) on (B, T, E) queries and (B, S, E)
    values: per-head projections (Keras keeps them as (E, heads, key_dim) kernels, here
    Linear(E, heads * key_dim)), the query scaled by 1/sqrt(key_dim) *before* the dot
    product, and Keras's masking: scores of masked (query, key) pairs set to -1e9 before
    the softmax and their weights zeroed after it."""

    def __init__(self, embed: int, heads: int, key_dim: int, bias: bool = True,
                 dropout: float = 0.0, value_embed: int | None = None) -> None:
        super().__init__()
        self.heads, self.key_dim = heads, key_dim
        value_embed = value_embed or embed
        self.query = nn.Linear(embed, heads * key_dim, bias=bias)
        self.key = nn.Linear(value_embed, heads * key_dim, bias=bias)
        self.value = nn.Linear(value_embed, heads * key_dim, bias=bias)
        self.output = nn.Linear(heads * key_dim, embed, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, N * D) -> (B, N, T, D)
        return x.unflatten(-1, (self.heads, self.key_dim)).transpose(1, 2)

    def forward(self, query: torch.Tensor, value: torch.Tensor,
                query_mask: torch.Tensor | None = None,
                value_mask: torch.Tensor | None = None) -> torch.Tensor:
        q = self._split(self.query(query)) * self.key_dim ** -0.5
        k, v = self._split(self.key(value)), self._split(self.value(value))
        scores = q @ k.transpose(-1, -2)  # (B, N, T, S)
        mask = None
        if query_mask is not None:
            mask = query_mask[:, None, :, None]  # (B, 1, T, 1)
        if value_mask is not None:
            vm = value_mask[:, None, None, :]  # (B, 1, 1, S)
            mask = vm if mask is None else mask & vm
        if mask is not None:
            scores = torch.where(mask, scores, torch.full_like(scores, -1e9))
        weights = F.softmax(scores, dim=-1)
        if mask is not None:
            weights = torch.where(mask, weights, torch.zeros_like(weights))
        out = self.dropout(weights) @ v  # (B, N, T, D)
        return self.output(out.transpose(1, 2).flatten(2))  # (B, T, E)

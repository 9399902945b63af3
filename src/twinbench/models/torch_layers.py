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
                 epsilon: float = 1e-3) -> None:
        super().__init__(num_features, eps=epsilon, momentum=1.0 - keras_momentum)

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
    from twinbench.models.layout import same_padding

    top, bottom = same_padding(x.shape[2], kernel, stride)
    left, right = same_padding(x.shape[3], kernel, stride)
    return F.pad(x, (left, right, top, bottom))

"""PyTorch adapter (`torch` and `torch-compile`). Imported only in a cell's process.

A training step (`StepTimer.begin` .. `end`): numpy batch -> tensor, zero_grad, forward,
cross-entropy, backward, optimizer step, `loss.item()` (the host read that ends it).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from importlib import import_module
from types import ModuleType

import numpy as np
import torch
from torch.nn import functional as F

from twinbench.config import OptimizerConfig
from twinbench.recipe import LossConfig
from twinbench.data.dataset import batches
from twinbench.measure.timing import StepTimer
from twinbench.stacks import StackInfo
from twinbench.stacks.base import InferFn, Probe
from twinbench.stacks.torch_optim import KerasEpsilonAdam, Stepper, recipe_loss

__all__ = ["KerasEpsilonAdam", "TorchStack", "head_loss", "make_optimizer", "loss_for"]


def head_loss(head: str):
    """The training loss a model's output implies, as Keras computes it (keras_stack's
    `head_loss`): logits -> cross-entropy; log_softmax -> F.nll_loss (the PyTorch MNIST
    example's); softmax -> Keras's sparse categorical cross-entropy on probabilities
    (renormalised, clipped to [1e-7, 1 - 1e-7], then the log)."""
    if head == "log_softmax":
        return F.nll_loss
    if head == "softmax":
        def probabilities_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            p = (p / p.sum(dim=1, keepdim=True)).clamp(1e-7, 1.0 - 1e-7)
            return F.nll_loss(torch.log(p), y)

        return probabilities_loss
    return F.cross_entropy


FIRST_LOSSES = 10  # training steps whose loss each stack keeps (recipe agreement)


def loss_for(head: str, cfg: LossConfig | None):
    """The recipe's loss; plain cross-entropy keeps the head's own (`head_loss`)."""
    if cfg is None or cfg == LossConfig():
        return head_loss(head)
    return recipe_loss(cfg, head)


def make_optimizer(params, cfg: OptimizerConfig) -> Stepper:
    """Keras's update rule, schedule, clipping and weight decay (see torch_optim)."""
    return Stepper(params, cfg)


class TorchStack:
    def __init__(self, info: StackInfo, family: ModuleType, spec: object,
                 opt_cfg: OptimizerConfig, seed: int, batch_size: int,
                 loss_cfg: LossConfig | None = None) -> None:
        self.info, self.family, self.spec = info, family, spec
        # A family's weight-layout converters sit beside its twin (torch_weights.py); a
        # user's model carries its own (twinbench.byo.twins).
        self.weights = family if hasattr(family, "to_torch") else import_module(
            family.__name__.rsplit(".", 1)[0] + ".torch_weights")
        self.opt_cfg, self.seed, self.batch_size = opt_cfg, seed, batch_size
        self.device = torch.device("cpu")
        self.head = getattr(spec, "head", "logits")
        self.loss_fn = loss_for(self.head, loss_cfg)

    def set_device(self, device: str) -> dict[str, object]:
        """Timed training and inference run on `device`; parity probes stay on the CPU."""
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda: torch sees no CUDA device")
        self.device = torch.device(device)
        return {"device": str(self.device),
                "allocator": {"PYTORCH_CUDA_ALLOC_CONF":
                              os.environ.get("PYTORCH_CUDA_ALLOC_CONF", "(default)")}}

    def peak_device_memory_mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return torch.cuda.max_memory_allocated(self.device) / 2**20

    @property
    def channels_last(self) -> bool:
        """The stack option channels_last=1: image model and batches in channels-last
        (NHWC) memory, shapes unchanged (N, C, H, W)."""
        return self.info.option("channels_last") == "1"

    def _fmt(self, t: torch.Tensor) -> torch.Tensor:
        """An input batch in the stack's memory format (channels-last for 4-D images)."""
        if self.channels_last and t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    def _t(self, x: np.ndarray) -> torch.Tensor:
        return self._fmt(torch.from_numpy(x).to(self.device))

    def configure_threads(self, threads: int) -> dict[str, object]:
        torch.set_num_threads(threads)
        # Settable once per process, before any parallel work: a second cell in the same
        # process (parity probes run one after another) finds it set already.
        if torch.get_num_interop_threads() != threads:
            torch.set_num_interop_threads(threads)
        return {"torch.num_threads": torch.get_num_threads(),
                "torch.num_interop_threads": torch.get_num_interop_threads()}

    def to_native(self, x: np.ndarray) -> np.ndarray:
        if x.ndim == 4:  # images: NHWC -> NCHW, (N, H, W, C) -> (N, C, H, W)
            # copy(), not ascontiguousarray: with C = 1 numpy calls the transposed view
            # contiguous and keeps its strides, which torch reads as channels-last and
            # convolves with another kernel (about 3e-7 apart, measured).
            return x.transpose(0, 3, 1, 2).copy(order="C")
        return x

    def _new_model(self, weights: dict[str, np.ndarray], spec: object = None
                   ) -> tuple[torch.nn.Module, object]:
        torch.manual_seed(self.seed)  # dropout masks
        model = self.family.build(spec or self.spec, self.seed)
        self._load(model, weights)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)  # in place for a Module
        mode = self.info.option("mode", "default")
        fwd = torch.compile(model, mode=mode) if self.info.torch_compile else model
        return model, fwd

    def _load(self, model: torch.nn.Module, weights: dict[str, np.ndarray]) -> None:
        """In place (`copy_`), so a compiled module keeps its graphs."""
        state = self.weights.to_torch(self.spec, weights)
        model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})

    def _parity_model(self, weights: dict[str, np.ndarray]) -> tuple[torch.nn.Module, object]:
        """One dropout-free twin for every parity check, reloaded in place each time (so
        `torch-compile` compiles it once per mode, not once per check)."""
        if not hasattr(self, "_parity"):
            self._parity = self._new_model(weights, self.spec.without_dropout())
        self._load(self._parity[0], weights)
        return self._parity

    def build(self, weights: dict[str, np.ndarray]) -> None:
        self.model, self.fwd = self._new_model(weights)
        self.model.to(self.device)  # in place: the compiled wrapper follows
        self.opt = make_optimizer(self.model.parameters(), self.opt_cfg)
        self._first_losses: list[float] = []

    def export_weights(self) -> dict[str, np.ndarray]:
        state = {k: v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        return self.weights.from_torch(self.spec, state)

    def param_count(self) -> int:
        # trainable only: a frozen parameter (LSTM's second bias) is not a parameter in Keras
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def train_epoch(self, x: np.ndarray, y: np.ndarray, timer: StepTimer) -> float:
        pairs = ((x[sl], y[sl]) for sl in batches(len(y), self.batch_size))  # views
        return self.train_batches(pairs, len(y), timer)

    def train_batches(self, source: Iterable, n: int, timer: StepTimer) -> float:
        """One epoch over (x, y) batches from any source (numpy or tensors, e.g. a
        DataLoader; `n` samples in all); return the mean training loss."""
        self.model.train()
        total = 0.0
        for xb, yb in source:
            timer.begin()
            xb = self._fmt(torch.as_tensor(xb).to(self.device))
            yb = torch.as_tensor(yb).to(self.device)
            self.opt.zero_grad(set_to_none=True)
            loss = self.loss_fn(self.fwd(xb), yb)
            loss.backward()
            self.opt.step()
            value = loss.item()  # host copy: synchronises a CUDA step before the clock
            timer.end(len(yb))
            total += value * len(yb)
            if len(self._first_losses) < FIRST_LOSSES:
                self._first_losses.append(value)
        return total / n

    def learning_rates(self) -> list[float]:
        """The learning rate of every training step so far (the Stepper's)."""
        return list(self.opt.lrs)

    def first_losses(self) -> list[float]:
        """The training loss of each of the first FIRST_LOSSES steps."""
        return list(self._first_losses)

    def predict(self, x: np.ndarray) -> np.ndarray:
        self.model.eval()
        with torch.inference_mode():
            return np.concatenate([self.fwd(self._t(x[i:i + 256])).cpu().numpy()
                                   for i in range(0, len(x), 256)])

    def inference_paths(self) -> tuple[str, dict[str, InferFn]]:
        self.model.eval()
        model, fwd, to = self.model, self.fwd, self._t

        def no_grad(xb: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return model(to(xb)).cpu().numpy()  # .cpu(): syncs

        def inference_mode(xb: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return model(to(xb)).cpu().numpy()  # .cpu(): syncs

        def compiled(xb: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return fwd(to(xb)).cpu().numpy()  # .cpu(): syncs

        if self.info.torch_compile:
            return "compiled", {"compiled": compiled, "inference_mode": inference_mode}
        return "no_grad", {"no_grad": no_grad, "inference_mode": inference_mode}

    def probe(self, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Probe:
        model, fwd = self._parity_model(weights)
        model.eval()  # inference mode: dropout off, BatchNorm on moving statistics
        model.zero_grad(set_to_none=True)
        logits = fwd(self._fmt(torch.from_numpy(x)))
        loss = self.loss_fn(logits, torch.from_numpy(y))
        loss.backward()
        grads = {k: p.grad.numpy() for k, p in model.named_parameters() if p.requires_grad}
        return Probe(logits.detach().numpy(), float(loss.item()),
                     self.weights.from_torch(self.spec, grads))

    def forward(self, weights: dict[str, np.ndarray], xs: list[np.ndarray]
                ) -> list[np.ndarray]:
        model, fwd = self._parity_model(weights)
        model.eval()
        with torch.no_grad():
            return [fwd(self._fmt(torch.from_numpy(x))).numpy() for x in xs]

    def train_steps(self, weights: dict[str, np.ndarray], batches: list, cfg: OptimizerConfig,
                    loss_cfg: LossConfig | None = None
                    ) -> tuple[list[float], list[dict[str, np.ndarray]], list[float]]:
        """Training steps on the dropout-free twin: loss of each, weights after each, and
        each step's learning rate."""
        model, fwd = self._parity_model(weights)
        model.train()
        opt = make_optimizer(model.parameters(), cfg)
        loss_fn = self.loss_fn if loss_cfg is None else loss_for(self.head, loss_cfg)
        losses, snapshots = [], []
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(fwd(self._fmt(torch.from_numpy(xb))), torch.from_numpy(yb))
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
            state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
            snapshots.append(self.weights.from_torch(self.spec, state))
        return losses, snapshots, opt.lrs

    def export(self, fmt: str, path, x: np.ndarray) -> dict:
        """Write the trained twin as `fmt` (see `twinbench.export.formats`)."""
        from twinbench.stacks.torch_export import export

        return export(self, fmt, path, x)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}

"""Keras 3's optimizer semantics in PyTorch, one class or function per formula difference,
each derivation in its docstring. `Stepper` runs a step as Keras's `Optimizer.apply`
does: learning rate from the step counter, clip, coupled L2, decoupled decay, update.
Imported only in a torch cell's process (and by the trap tests)."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from twinbench.recipe import LossConfig, OptimizerConfig, lr_at


class _KerasEpsilon:
    """Sets torch Adam's eps to Keras's epsilon / sqrt(1 - beta2^t) before step t."""

    keras_eps: float
    beta_2: float
    t: int
    param_groups: list

    def step(self, closure=None):
        self.t += 1
        for group in self.param_groups:
            group["eps"] = self.keras_eps / math.sqrt(1.0 - self.beta_2**self.t)
        return super().step(closure)  # type: ignore[misc]


class KerasEpsilonAdam(_KerasEpsilon, torch.optim.Adam):
    """torch Adam with Keras's epsilon placement, exactly.

    Keras: w -= lr*sqrt(bc2)/bc1 * m / (sqrt(v) + eps)
    torch: w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps_t)
    They are equal when eps_t = eps / sqrt(bc2), bc2 = 1 - beta2^t; set before each step.
    Coupled weight decay is torch Adam's own (wd * w added to the clipped gradient).
    """

    def __init__(self, params, cfg: OptimizerConfig) -> None:
        wd = cfg.weight_decay if cfg.weight_decay_mode == "coupled" else 0.0
        super().__init__(params, lr=cfg.learning_rate, betas=(cfg.beta_1, cfg.beta_2),
                         eps=cfg.epsilon, weight_decay=wd)
        self.keras_eps, self.beta_2, self.t = cfg.epsilon, cfg.beta_2, 0


class KerasEpsilonAdamW(_KerasEpsilon, torch.optim.AdamW):
    """Keras AdamW (= Adam with decoupled weight decay) in torch: torch AdamW decays
    w *= 1 - lr*wd before its Adam step, as Keras's `_apply_weight_decay` does (w - w*wd*lr)
    before `update_step`; the epsilon is reconciled as in KerasEpsilonAdam."""

    def __init__(self, params, cfg: OptimizerConfig) -> None:
        super().__init__(params, lr=cfg.learning_rate, betas=(cfg.beta_1, cfg.beta_2),
                         eps=cfg.epsilon, weight_decay=cfg.weight_decay)
        self.keras_eps, self.beta_2, self.t = cfg.epsilon, cfg.beta_2, 0


class _KerasRule(torch.optim.Optimizer):
    """A Keras update rule written out in torch ops; `rule(p, g, state, lr)` per tensor.
    Decoupled weight decay (w -= w*wd*lr, Keras's form) is applied first, coupled L2 is
    added to the gradient first, as `Stepper` documents."""

    def __init__(self, params, cfg: OptimizerConfig) -> None:
        super().__init__(params, {"lr": cfg.learning_rate})
        self.cfg = cfg

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        cfg = self.cfg
        for group in self.param_groups:
            lr = group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if cfg.weight_decay and cfg.weight_decay_mode == "coupled":
                    g = g + cfg.weight_decay * p
                if cfg.weight_decay and cfg.weight_decay_mode == "decoupled":
                    p.sub_(p * (cfg.weight_decay * lr))
                self.rule(p, g, self.state[p], lr)
        return None

    def rule(self, p, g, state, lr) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class KerasSGD(_KerasRule):
    """Keras SGD: m = mu*m - lr_t*g; w += m, or with Nesterov w += mu*m - lr_t*g.

    torch SGD keeps b = mu*b + g and steps w -= lr_t*b (Nesterov: w -= lr_t*(g + mu*b)).
    Unrolled, Keras's w moves by -sum_k mu^(t-k) lr_k g_k and torch's by
    -lr_t sum_k mu^(t-k) g_k: equal at a constant lr (m = -lr*b), not once a schedule
    changes lr (the buffer keeps the old lr in Keras). So the buffer here is Keras's."""

    def rule(self, p, g, state, lr) -> None:
        mu = self.cfg.momentum
        if mu == 0:
            p.sub_(g * lr)
            return
        m = state.setdefault("m", torch.zeros_like(p))
        m.mul_(mu).sub_(g * lr)
        p.add_(m * mu - g * lr if self.cfg.nesterov else m)


class KerasRMSprop(_KerasRule):
    """Keras RMSprop: v = rho*v + (1-rho)*g^2; centered: a = rho*a + (1-rho)*g,
    d = v - a^2 + eps, else d = v + eps; inc = lr*g / sqrt(d); with momentum
    m = mu*m + inc, w -= m, else w -= inc.

    torch RMSprop divides by sqrt(v) + eps (epsilon outside the root: for v << eps^2 the
    two differ by orders of magnitude), defaults alpha 0.99 and eps 1e-8, and keeps
    b = mu*b + g/denom, w -= lr*b (lr outside the buffer, as for SGD)."""

    def rule(self, p, g, state, lr) -> None:
        c = self.cfg
        v = state.setdefault("v", torch.zeros_like(p))
        v.mul_(c.rho).add_(g * g * (1 - c.rho))
        if c.centered:
            a = state.setdefault("a", torch.zeros_like(p))
            a.mul_(c.rho).add_(g * (1 - c.rho))
            denom = v - a * a + c.epsilon
        else:
            denom = v + c.epsilon
        inc = g * lr / torch.sqrt(denom)
        if c.momentum > 0:
            m = state.setdefault("m", torch.zeros_like(p))
            m.mul_(c.momentum).add_(inc)
            p.sub_(m)
        else:
            p.sub_(inc)


class KerasAdagrad(_KerasRule):
    """Keras Adagrad: acc starts at initial_accumulator_value (0.1), acc += g^2,
    w -= lr*g / sqrt(acc + eps). torch Adagrad starts at 0 and divides by sqrt(acc) + eps
    (eps 1e-10): its first step is lr*sign(g), Keras's lr*g/sqrt(g^2 + 0.1)."""

    def rule(self, p, g, state, lr) -> None:
        c = self.cfg
        acc = state.setdefault("acc", torch.full_like(p, c.initial_accumulator_value))
        acc.add_(g * g)
        p.sub_(g * lr / torch.sqrt(acc + c.epsilon))


OPTIMIZERS = {"adam": KerasEpsilonAdam, "adamw": KerasEpsilonAdamW, "sgd": KerasSGD,
              "rmsprop": KerasRMSprop, "adagrad": KerasAdagrad}


def clip_(grads: list[torch.Tensor], cfg: OptimizerConfig) -> None:
    """Keras's `_clip_gradients`, in place. clipnorm: each g *= c / max(||g||, c) (Keras
    `clip_by_norm`, per variable). global_clipnorm: every g *= c / max(||G||, c), ||G|| over
    all gradients (Keras `clip_by_global_norm`; torch's `clip_grad_norm_` divides by
    ||G|| + 1e-6 instead, 1e-6/||G|| relative apart). clip_value: clamp to [-v, v]."""
    if cfg.clip_value:
        for g in grads:
            g.clamp_(-cfg.clip_value, cfg.clip_value)
    elif cfg.clipnorm:
        for g in grads:
            g.mul_(cfg.clipnorm / max(float(torch.linalg.vector_norm(g)), cfg.clipnorm))
    elif cfg.global_clipnorm:
        total = math.sqrt(sum(float(torch.sum(g * g)) for g in grads))
        for g in grads:
            g.mul_(cfg.global_clipnorm / max(total, cfg.global_clipnorm))


class Stepper:
    """One training step's optimizer work, Keras's order: lr_t = schedule(t) (t = steps
    taken), clip the gradients, then the optimizer (coupled L2 and decoupled decay inside
    it, before its update). `lrs` records every step's learning rate."""

    def __init__(self, params, cfg: OptimizerConfig) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.cfg, self.t, self.lrs = cfg, 0, []
        self.opt = OPTIMIZERS[cfg.name](self.params, cfg)

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        lr = lr_at(self.cfg, self.t)
        for group in self.opt.param_groups:
            group["lr"] = lr
        clip_([p.grad for p in self.params if p.grad is not None], self.cfg)
        self.opt.step()
        self.lrs.append(lr)
        self.t += 1


def probabilities(out: torch.Tensor, head: str) -> torch.Tensor:
    """Class probabilities from a model's output (logits, softmax or log_softmax)."""
    if head == "softmax":
        return out
    return out.exp() if head == "log_softmax" else F.softmax(out, dim=1)


def log_probabilities(out: torch.Tensor, head: str) -> torch.Tensor:
    """As Keras's cross-entropy takes them: log_softmax of logits (and of log-probabilities,
    which it leaves alone); probabilities renormalised and clipped to [1e-7, 1 - 1e-7]."""
    if head == "softmax":
        return torch.log((out / out.sum(dim=1, keepdim=True)).clamp(1e-7, 1.0 - 1e-7))
    return F.log_softmax(out, dim=1)


def recipe_loss(cfg: LossConfig, head: str):
    """The loss `cfg` names, as Keras computes it (keras_stack.RecipeLoss)."""
    def loss(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        classes = out.shape[1]
        if cfg.kind == "cross_entropy":
            target = F.one_hot(y, classes).to(out.dtype)
            target = target * (1 - cfg.label_smoothing) + cfg.label_smoothing / classes
            return -(target * log_probabilities(out, head)).sum(dim=1).mean()
        p, target = probabilities(out, head), F.one_hot(y, classes).to(out.dtype)
        if cfg.kind == "mse":
            return F.mse_loss(p, target)
        return F.huber_loss(p, target, delta=cfg.huber_delta)

    return loss

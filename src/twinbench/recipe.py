"""Training recipes as data: optimizer (with its schedule, weight decay and clipping), loss
and augmentation. Framework-free: every stack reads the same frozen records, and the
learning rate of step t comes from one formula (`lr_at`), Keras's own.

The semantics are Keras 3's, stated once here and reproduced in every stack:
- A step's learning rate is the schedule at the number of optimizer steps already taken
  (Keras calls its schedule with `optimizer.iterations`, 0 at the first step). Torch has
  no per-step schedule of its own here: its twin sets each param group's lr from
  `lr_at(schedule, t)` before step t (an LRScheduler steps per `scheduler.step()` call).
- Order inside a step: clip the raw gradients, add coupled L2 (wd * w) to them, apply
  decoupled decay (w -= lr * wd * w), then the optimizer's update.
- Weight decay "coupled" is L2 added to the gradient (torch's `weight_decay=` on SGD,
  Adam, RMSprop, Adagrad; Caffe's, He et al.'s); "decoupled" multiplies the weights by
  (1 - lr * wd) before the update (Keras's `weight_decay=` on every optimizer; torch's
  AdamW). The name must be chosen: neither framework's default carries over.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ScheduleConfig(BaseModel):
    """A learning-rate schedule, with its step positions as fractions of the run's
    optimizer steps (`total_steps`, filled in by the cell before training), so a recipe
    scales with epochs. Keras classes: constant (a float), step (PiecewiseConstantDecay),
    cosine (CosineDecay, warmup_target = the peak), exponential (ExponentialDecay)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["constant", "step", "cosine", "exponential"] = "constant"
    boundaries: tuple[float, ...] = ()  # step: fractions of total_steps, ascending
    factor: float = Field(0.1, gt=0)  # step: lr multiplied by this at each boundary
    warmup: float = Field(0.0, ge=0, lt=1)  # cosine: fraction of steps of linear warmup
    warmup_start: float = Field(0.0, ge=0)  # cosine: warmup starts at lr * this
    alpha: float = Field(0.0, ge=0, le=1)  # cosine: final lr = lr * alpha
    decay_rate: float = Field(0.5, gt=0)  # exponential: lr * rate^(t / decay_steps)
    decay_every: float = Field(0.5, gt=0)  # exponential: decay_steps as fraction of total
    staircase: bool = False  # exponential: floor(t / decay_steps)
    total_steps: int | None = Field(None, ge=1)  # the run's optimizer steps (resolved)

    @model_validator(mode="after")
    def _ordered(self) -> ScheduleConfig:
        b = self.boundaries
        if self.kind == "step" and (not b or list(b) != sorted(set(b)) or b[0] <= 0
                                    or b[-1] >= 1):
            raise ValueError("step schedule: boundaries must be ascending fractions in (0, 1)")
        return self

    def resolved_steps(self) -> dict[str, object]:
        """`steps()` of a schedule that is not constant, which needs the run's total steps
        (both the torch twins' `lr_at` and Keras's schedule objects start from these)."""
        if self.total_steps is None:
            raise ValueError(f"{self.kind} schedule needs total_steps (OptimizerConfig.for_steps)")
        return self.steps()

    def steps(self) -> dict[str, object]:
        """The schedule's positions in optimizer steps (recorded in each cell)."""
        n = self.total_steps
        if n is None or self.kind == "constant":
            return {}
        if self.kind == "step":
            return {"boundaries": [int(round(f * n)) for f in self.boundaries]}
        if self.kind == "cosine":
            warm = int(round(self.warmup * n))
            return {"warmup_steps": warm, "decay_steps": max(n - warm, 1)}
        return {"decay_steps": max(int(round(self.decay_every * n)), 1)}


class OptimizerConfig(BaseModel):
    """An optimizer with Keras 3's update rule in every stack; torch twins reconcile each
    formula difference (see twinbench.stacks.torch_optim, one class per difference).

    Defaults are Keras's and stated here, since the frameworks' differ:
    - Adam/AdamW: epsilon 1e-7, added to sqrt(v) *before* bias correction (torch: 1e-8,
      after). AdamW's weight decay: Keras 0.004, torch 0.01 (give `weight_decay`).
    - SGD momentum: Keras keeps m = mu*m - lr*g (the lr inside the buffer), torch keeps
      b = mu*b + g and multiplies by the current lr: equal only at a constant lr.
    - RMSprop: Keras rho 0.9, epsilon 1e-7 *inside* the square root, centered False, lr
      inside the momentum buffer; torch alpha 0.99, eps 1e-8 outside the root.
    - Adagrad: Keras initial accumulator 0.1, epsilon 1e-7 inside the root; torch 0 and
      1e-10 outside.
    - Clipping (at most one): clip_value per element, clipnorm per variable (Keras
      `clipnorm`), global_clipnorm over all gradients together (Keras `global_clipnorm`,
      torch `clip_grad_norm_` but without torch's +1e-6 in the divisor).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: Literal["adam", "adamw", "sgd", "rmsprop", "adagrad"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)  # the peak (schedules scale it)
    momentum: float = Field(0.0, ge=0, lt=1)  # SGD and RMSprop
    nesterov: bool = False  # SGD
    beta_1: float = Field(0.9, ge=0, lt=1)
    beta_2: float = Field(0.999, ge=0, lt=1)
    epsilon: float = Field(1e-7, gt=0)
    epsilon_placement: str = "keras: added to sqrt(v) before bias correction (both stacks)"
    rho: float = Field(0.9, ge=0, lt=1)  # RMSprop
    centered: bool = False  # RMSprop
    initial_accumulator_value: float = Field(0.1, ge=0)  # Adagrad
    weight_decay: float = Field(0.0, ge=0)
    weight_decay_mode: Literal["coupled", "decoupled"] = "coupled"
    clip_value: float | None = Field(None, gt=0)
    clipnorm: float | None = Field(None, gt=0)  # per variable
    global_clipnorm: float | None = Field(None, gt=0)
    schedule: ScheduleConfig = ScheduleConfig()

    @model_validator(mode="after")
    def _consistent(self) -> OptimizerConfig:
        clips = [c for c in (self.clip_value, self.clipnorm, self.global_clipnorm) if c]
        if len(clips) > 1:
            raise ValueError("at most one of clip_value, clipnorm, global_clipnorm")
        if self.name == "adamw" and self.weight_decay_mode != "decoupled":
            raise ValueError("adamw is decoupled weight decay; valid weight_decay_mode: "
                             "decoupled (use adam for coupled L2)")
        return self

    def for_steps(self, total_steps: int) -> OptimizerConfig:
        """This optimizer with its schedule resolved against a run's optimizer steps."""
        return self.model_copy(update={"schedule": self.schedule.model_copy(
            update={"total_steps": max(int(total_steps), 1)})})


def lr_at(cfg: OptimizerConfig, step: int) -> float:
    """The learning rate of optimizer step `step` (0 = the first), as Keras's schedule
    classes compute it from `optimizer.iterations` (keras/src/optimizers/schedules)."""
    s, lr = cfg.schedule, cfg.learning_rate
    if s.kind == "constant":
        return lr
    at = s.resolved_steps()
    if s.kind == "step":  # PiecewiseConstantDecay: values[i] while step <= boundaries[i]
        passed = sum(1 for b in at["boundaries"] if step > b)
        return lr * s.factor**passed
    if s.kind == "exponential":
        p = step / at["decay_steps"]
        return lr * s.decay_rate ** (math.floor(p) if s.staircase else p)
    warm, decay = at["warmup_steps"], at["decay_steps"]
    if warm and step < warm:  # linear from lr * warmup_start to lr
        start = lr * s.warmup_start
        return (lr - start) * step / warm + start
    t = min(step - warm, decay)
    return lr * ((1 - s.alpha) * 0.5 * (1 + math.cos(math.pi * t / decay)) + s.alpha)


class LossConfig(BaseModel):
    """The training loss. cross_entropy (sparse labels; label smoothing mixes the one-hot
    target with the uniform one, y*(1-s) + s/C, in both stacks); mse and huber compare the
    model's class probabilities (softmax of logits) with the one-hot label, averaged over
    classes and batch (Keras's MeanSquaredError / Huber(delta) on one-hot labels; torch's
    F.mse_loss / F.huber_loss(delta), not SmoothL1Loss, which divides by its beta)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: Literal["cross_entropy", "mse", "huber"] = "cross_entropy"
    label_smoothing: float = Field(0.0, ge=0, lt=1)  # cross_entropy only
    huber_delta: float = Field(1.0, gt=0)  # huber only (both frameworks default to 1.0)

    @model_validator(mode="after")
    def _applies(self) -> LossConfig:
        if self.label_smoothing and self.kind != "cross_entropy":
            raise ValueError("label_smoothing applies to kind cross_entropy only")
        return self


class AugmentConfig(BaseModel):
    """Image augmentation from one seeded plan (twinbench.data.augment): zero-pad by
    `crop_padding` pixels and crop back at a random offset, flip left-right with p = 1/2;
    then optionally normalise each channel with the training split's mean and std."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    crop_padding: int = Field(0, ge=0, le=16)
    horizontal_flip: bool = False
    normalize: bool = False

    @property
    def active(self) -> bool:
        return bool(self.crop_padding or self.horizontal_flip or self.normalize)


class Recipe(BaseModel):
    """Everything a task's training does beyond the model and the data."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = "custom"
    source: str = ""
    optimizer: OptimizerConfig = OptimizerConfig()
    loss: LossConfig = LossConfig()
    augment: AugmentConfig = AugmentConfig()


HE_RESNET = Recipe(
    name="he-resnet",
    source="He et al. 2016 (Deep Residual Learning, CVPR), sec. 4.2: SGD momentum 0.9, "
           "weight decay 1e-4 (L2, coupled), lr 0.1 divided by 10 at 32k and 48k of 64k "
           "iterations (here at 50% and 75% of the run's steps), 4-pixel padding with "
           "random crops and horizontal flips",
    optimizer=OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=1e-4,
                              weight_decay_mode="coupled",
                              schedule=ScheduleConfig(kind="step", boundaries=(0.5, 0.75))),
    augment=AugmentConfig(crop_padding=4, horizontal_flip=True))

# Shipped recipes. Besides He et al.'s, each parity recipe switches on a different set of
# the differences the frameworks hide, so `verify --recipes all` covers every one. Their
# weight decays are large (1.0, 0.1, 0.05) so a decay that one stack ignores
# or applies the other way moves the updates well past the parity tolerance.
RECIPES: dict[str, Recipe] = {r.name: r for r in (
    HE_RESNET,
    Recipe(name="adamw-cosine", source="parity: AdamW (decoupled), cosine with warmup, "
           "global clipnorm, label smoothing, normalisation",
           optimizer=OptimizerConfig(name="adamw", learning_rate=2e-3, weight_decay=1.0,
                                     weight_decay_mode="decoupled", global_clipnorm=1.0,
                                     schedule=ScheduleConfig(kind="cosine", warmup=0.3,
                                                             alpha=0.1)),
           loss=LossConfig(label_smoothing=0.1),
           augment=AugmentConfig(horizontal_flip=True, normalize=True)),
    Recipe(name="sgd-nesterov", source="parity: Nesterov SGD, decoupled weight decay, "
           "exponential decay, per-variable clipnorm, Huber loss",
           optimizer=OptimizerConfig(name="sgd", learning_rate=0.05, momentum=0.9,
                                     nesterov=True, weight_decay=0.1,
                                     weight_decay_mode="decoupled", clipnorm=0.5,
                                     schedule=ScheduleConfig(kind="exponential",
                                                             decay_rate=0.3)),
           loss=LossConfig(kind="huber", huber_delta=0.3),
           augment=AugmentConfig(crop_padding=2)),
    Recipe(name="rmsprop-centered", source="parity: centered RMSprop with momentum, "
           "coupled weight decay, clip by value, step schedule, MSE loss",
           # epsilon 1e-4: centered RMSprop divides by sqrt(v - a^2 + eps), and v - a^2
           # (the gradient's variance) is a cancelling difference for a gradient that
           # hardly changes between steps (a conv bias): with eps 1e-7 two builds of the
           # same torch twin differed by 1e-2 in its update at step 10 (measured). 1e-4
           # bounds that, and makes the placement (inside the root) matter more.
           optimizer=OptimizerConfig(name="rmsprop", learning_rate=1e-3, momentum=0.5,
                                     centered=True, epsilon=1e-4, weight_decay=1e-3,
                                     clip_value=0.05,
                                     schedule=ScheduleConfig(kind="step", boundaries=(0.4,))),
           loss=LossConfig(kind="mse"), augment=AugmentConfig(crop_padding=2,
                                                              horizontal_flip=True)),
    Recipe(name="adagrad", source="parity: Adagrad (Keras accumulator 0.1), coupled L2, "
           "global clipnorm, step schedule",
           optimizer=OptimizerConfig(name="adagrad", learning_rate=0.05, weight_decay=0.05,
                                     global_clipnorm=2.0,
                                     schedule=ScheduleConfig(kind="step", boundaries=(0.5,))),
           augment=AugmentConfig(horizontal_flip=True)),
)}


def resolve_recipes(names: list[str]) -> list[Recipe]:
    """Shipped recipes by name; "all" is every one."""
    if names == ["all"]:
        return list(RECIPES.values())
    bad = [n for n in names if n not in RECIPES]
    if bad:
        raise ValueError(f"unknown recipe {bad[0]!r}; valid: all, {', '.join(RECIPES)}")
    return [RECIPES[n] for n in names]

"""Recipe traps against the real framework optimizers, losses and schedules, run inside
layer_twins.py's child (one process per Keras backend). Each check returns
{name: relative difference}; "naive_*" is the port that ignores the trap (it must differ),
the rest is twinbench's reconciliation (it must agree). Tiny tensors, a few steps.
"""

from __future__ import annotations

import keras
import numpy as np
import torch
from torch.nn import functional as F

from twinbench.recipe import LossConfig, OptimizerConfig, ScheduleConfig, lr_at
from twinbench.stacks import keras_optim, torch_optim

RNG = np.random.default_rng(1)
W0 = [RNG.standard_normal((3, 4)).astype(np.float32), RNG.standard_normal(4).astype(np.float32)]
# Four steps of fixed gradients per variable; the second variable's are 10x larger, so
# per-variable and global clipping scale them differently.
GRADS = [[RNG.standard_normal((3, 4)).astype(np.float32),
          10 * RNG.standard_normal(4).astype(np.float32)] for _ in range(4)]
STEP = ScheduleConfig(kind="step", boundaries=(0.5,), total_steps=4)  # lr / 10 from step 3


def rel(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    return max(float(np.max(np.abs(x - y)) / np.max(np.abs(y))) for x, y in zip(a, b))


def backend_module():
    from importlib import import_module

    return import_module(f"twinbench.stacks.keras_backends.{keras.backend.backend()}")


def keras_steps(opt, grads=GRADS) -> tuple[list[np.ndarray], list[float]]:
    """Real Keras optimizer `opt` applied to the fixed gradients: weights after, each
    step's learning rate (Keras's schedule at optimizer.iterations)."""
    vs = [keras.Variable(w) for w in W0]
    lrs = []
    for gs in grads:
        lrs.append(float(keras.ops.convert_to_numpy(opt.learning_rate)))
        opt.apply([keras.ops.convert_to_tensor(g) for g in gs], vs)
    return [keras.ops.convert_to_numpy(v) for v in vs], lrs


def torch_steps(make, lr_of=None, clip=None, grads=GRADS) -> list[np.ndarray]:
    """A torch optimizer `make(params)` on the same gradients; `lr_of(t)` sets each step's
    lr, `clip(params)` runs between backward and step (as a training loop does)."""
    ps = [torch.nn.Parameter(torch.from_numpy(w.copy())) for w in W0]
    opt = make(ps)
    for t, gs in enumerate(grads):
        for p, g in zip(ps, gs):
            p.grad = torch.from_numpy(g.copy())
        if lr_of is not None:
            for group in opt.param_groups:
                group["lr"] = lr_of(t)
        if clip is not None:
            clip(ps)
        opt.step()
    return [p.detach().numpy() for p in ps]


def ours(cfg: OptimizerConfig) -> list[np.ndarray]:
    """twinbench's torch twin: Stepper (schedule per step, Keras clipping, Keras rule)."""
    return torch_steps(lambda ps: torch_optim.Stepper(ps, cfg))


def keras_of(cfg: OptimizerConfig) -> tuple[list[np.ndarray], list[float]]:
    return keras_steps(keras_optim.make_optimizer(cfg, backend_module()))


def weight_decay() -> dict[str, float]:
    """Keras's weight_decay= is decoupled (w -= lr*wd*w); torch's SGD/Adam weight_decay=
    is coupled L2 (g += wd*w). Large wd so the difference is plain."""
    dec = OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9, weight_decay=0.5,
                          weight_decay_mode="decoupled")
    cou = dec.model_copy(update={"weight_decay_mode": "coupled"})
    real_keras_dec, _ = keras_steps(keras.optimizers.SGD(0.1, momentum=0.9, weight_decay=0.5))
    real_torch_cou = torch_steps(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                            weight_decay=0.5))
    adamw = OptimizerConfig(name="adamw", weight_decay=0.5, weight_decay_mode="decoupled")
    real_keras_adamw, _ = keras_steps(keras.optimizers.AdamW(1e-3, weight_decay=0.5))
    return {
        "recipe_wd_decoupled_sgd": rel(ours(dec), real_keras_dec),
        "recipe_wd_coupled_sgd": rel(keras_of(cou)[0], real_torch_cou),
        "recipe_wd_adamw": rel(ours(adamw), real_keras_adamw),
        "naive_recipe_wd_torch_sgd_for_keras": rel(real_torch_cou, real_keras_dec),
        "naive_recipe_wd_torch_adam_for_keras_adamw": rel(torch_steps(
            lambda ps: torch.optim.Adam(ps, lr=1e-3, eps=1e-7, weight_decay=0.5)),
            real_keras_adamw),
    }


def clipping() -> dict[str, float]:
    """Keras clipnorm clips each variable; torch clip_grad_norm_ and Keras global_clipnorm
    clip all gradients together."""
    per = OptimizerConfig(name="sgd", learning_rate=0.1, clipnorm=1.0)
    glob = per.model_copy(update={"clipnorm": None, "global_clipnorm": 1.0})
    value = per.model_copy(update={"clipnorm": None, "clip_value": 0.5})
    keras_per, _ = keras_steps(keras.optimizers.SGD(0.1, clipnorm=1.0))
    keras_glob, _ = keras_steps(keras.optimizers.SGD(0.1, global_clipnorm=1.0))
    keras_value, _ = keras_steps(keras.optimizers.SGD(0.1, clipvalue=0.5))
    naive = torch_steps(lambda ps: torch.optim.SGD(ps, lr=0.1),
                        clip=lambda ps: torch.nn.utils.clip_grad_norm_(ps, 1.0))
    return {"recipe_clipnorm_per_variable": rel(ours(per), keras_per),
            "recipe_clipnorm_global": rel(ours(glob), keras_glob),
            "recipe_clip_value": rel(ours(value), keras_value),
            "naive_recipe_clip_grad_norm_for_keras_clipnorm": rel(naive, keras_per)}


def nesterov_and_schedule() -> dict[str, float]:
    """Nesterov SGD under a step schedule: Keras keeps lr inside its momentum buffer, torch
    multiplies its buffer by the current lr (equal only at a constant lr). And the
    schedule: Keras steps it per optimizer step; torch's LRScheduler per .step() call."""
    cfg = OptimizerConfig(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True,
                          schedule=STEP)
    keras_w, keras_lrs = keras_of(cfg)
    naive = torch_steps(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
                        lr_of=lambda t: lr_at(cfg, t))  # right lrs, torch's buffer
    ps = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.SGD(ps, lr=0.1)  # naive: MultiStepLR stepped once per epoch
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2], gamma=0.1)
    per_call = []
    for epoch in range(2):  # 2 steps per epoch, scheduler.step() at each epoch's end
        for _ in range(2):
            per_call.append(opt.param_groups[0]["lr"])
            ps[0].grad = torch.zeros(1)
            opt.step()
        sched.step()
    stepper = torch_optim.Stepper([torch.nn.Parameter(torch.zeros(1))], cfg)
    for _ in range(4):
        stepper.params[0].grad = torch.zeros(1)
        stepper.step()
    lr_rel = lambda a: float(np.max(np.abs(np.subtract(a, keras_lrs))) / max(keras_lrs))  # noqa: E731
    return {"recipe_nesterov_scheduled": rel(ours(cfg), keras_w),
            "naive_recipe_torch_nesterov_scheduled": rel(naive, keras_w),
            "recipe_schedule_per_step": lr_rel(stepper.lrs),
            "naive_recipe_schedule_per_call": lr_rel(per_call)}


def rmsprop_adagrad() -> dict[str, float]:
    """RMSprop: Keras puts epsilon inside the root (and lr inside the momentum buffer);
    torch outside. Adagrad: Keras's accumulator starts at 0.1, torch's at 0. Gradients
    scaled to 1e-4 so epsilon placement shows."""
    small = [[g * 1e-4 for g in gs] for gs in GRADS]
    out = {}
    for centered in (False, True):
        cfg = OptimizerConfig(name="rmsprop", learning_rate=0.01, momentum=0.5,
                              centered=centered, epsilon=1e-7, schedule=STEP)
        keras_w, _ = keras_steps(keras_optim.make_optimizer(cfg, backend_module()), small)
        mine = torch_steps(lambda ps, c=cfg: torch_optim.Stepper(ps, c), grads=small)
        naive = torch_steps(lambda ps, c=centered: torch.optim.RMSprop(
            ps, lr=0.01, alpha=0.9, eps=1e-7, momentum=0.5, centered=c),
            lr_of=lambda t, c=cfg: lr_at(c, t), grads=small)
        tag = "centered" if centered else "plain"
        out[f"recipe_rmsprop_{tag}"] = rel(mine, keras_w)
        out[f"naive_recipe_torch_rmsprop_{tag}"] = rel(naive, keras_w)
    ada = OptimizerConfig(name="adagrad", learning_rate=0.1)
    keras_ada, _ = keras_steps(keras.optimizers.Adagrad(0.1))
    out["recipe_adagrad"] = rel(ours(ada), keras_ada)
    out["naive_recipe_torch_adagrad"] = rel(torch_steps(
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-7)), keras_ada)
    return out


def schedules() -> dict[str, float]:
    """Every schedule kind: Keras's schedule object against lr_at, each of 10 steps (and
    one past the end). Eager calls: JAX compiles CosineDecay's cond per call, so few."""
    worst = 0.0
    for s in (ScheduleConfig(kind="step", boundaries=(0.3, 0.6), total_steps=10),
              ScheduleConfig(kind="cosine", warmup=0.3, warmup_start=0.1, alpha=0.05,
                             total_steps=10),
              ScheduleConfig(kind="cosine", total_steps=10),
              ScheduleConfig(kind="exponential", decay_rate=0.3, staircase=True,
                             total_steps=10),
              ScheduleConfig(kind="exponential", decay_rate=0.3, total_steps=10)):
        cfg = OptimizerConfig(learning_rate=0.1, schedule=s)
        sched = keras_optim.keras_schedule(cfg)
        k = [float(keras.ops.convert_to_numpy(sched(t))) for t in range(11)]
        worst = max(worst, max(abs(a - lr_at(cfg, t)) for t, a in enumerate(k)) / 0.1)
    return {"recipe_schedules_vs_keras": worst}


def losses() -> dict[str, float]:
    """Label smoothing and Huber's delta, Keras's losses against the torch twin's. Naive:
    Keras's sparse cross-entropy has no label_smoothing (dropped silently), and torch's
    SmoothL1Loss(beta) is Huber(delta) / delta."""
    logits = RNG.standard_normal((6, 5)).astype(np.float32)
    y = RNG.integers(0, 5, 6)
    t_logits, t_y = torch.from_numpy(logits), torch.from_numpy(y)
    out, keras_value = {}, {}
    for cfg in (LossConfig(label_smoothing=0.1), LossConfig(kind="huber", huber_delta=0.3),
                LossConfig(kind="mse")):
        k = float(keras.ops.convert_to_numpy(keras_optim.RecipeLoss(cfg, "logits")(y, logits)))
        t = float(torch_optim.recipe_loss(cfg, "logits")(t_logits, t_y))
        out[f"recipe_loss_{cfg.kind}"] = abs(k - t) / abs(k)
        keras_value[cfg.kind] = k
    smooth, huber = keras_value["cross_entropy"], keras_value["huber"]
    sparse = float(keras.ops.convert_to_numpy(
        keras.losses.SparseCategoricalCrossentropy(from_logits=True)(y, logits)))
    out["naive_recipe_sparse_ce_drops_smoothing"] = abs(sparse - smooth) / smooth
    p, onehot = F.softmax(t_logits, 1), F.one_hot(t_y, 5).float()
    out["naive_recipe_smooth_l1_for_huber"] = abs(
        float(F.smooth_l1_loss(p, onehot, beta=0.3)) - huber) / huber
    return out


CHECKS = (weight_decay, clipping, nesterov_and_schedule, rmsprop_adagrad, schedules, losses)

"""A recipe's optimizer, schedule and loss as real Keras 3 objects, on any backend.
Imported only in a Keras cell's process (after KERAS_BACKEND is set) and by trap tests.

Keras's own classes carry everything the recipe names except two things, added here:
- coupled weight decay (L2 added to the clipped gradient, torch's `weight_decay=`): Keras's
  `weight_decay=` is decoupled on every optimizer. `coupled_l2` adds wd * w to each
  gradient in `_backend_update_step`, after Keras's `_clip_gradients` (every backend runs
  that method: JAX and TensorFlow call `update_step` from it, the torch backend its
  `_parallel_update_step`);
- label smoothing, MSE and Huber from sparse labels (`RecipeLoss`): Keras's
  SparseCategoricalCrossentropy has no label smoothing, and MSE/Huber need one-hot
  targets and probabilities.
"""

from __future__ import annotations

from types import ModuleType

import keras
from keras import ops

from twinbench.recipe import LossConfig, OptimizerConfig


def keras_schedule(cfg: OptimizerConfig):
    """The learning rate or LearningRateSchedule Keras steps with `optimizer.iterations`;
    the same formula as twinbench.recipe.lr_at (which the torch twins use)."""
    s, lr = cfg.schedule, cfg.learning_rate
    if s.kind == "constant":
        return lr
    at = s.resolved_steps()
    sched = keras.optimizers.schedules
    if s.kind == "step":
        values = [lr * s.factor**i for i in range(len(at["boundaries"]) + 1)]
        return sched.PiecewiseConstantDecay(at["boundaries"], values)
    if s.kind == "exponential":
        return sched.ExponentialDecay(lr, at["decay_steps"], s.decay_rate, s.staircase)
    if at["warmup_steps"]:
        return sched.CosineDecay(lr * s.warmup_start, at["decay_steps"], alpha=s.alpha,
                                 warmup_target=lr, warmup_steps=at["warmup_steps"])
    return sched.CosineDecay(lr, at["decay_steps"], alpha=s.alpha)


def coupled_l2(optimizer_cls: type, wd: float) -> type:
    """`optimizer_cls` with L2 weight decay coupled into the gradient: g + wd * w, after
    clipping and before the update rule (torch's `weight_decay=` on SGD/Adam/RMSprop)."""

    class CoupledL2(optimizer_cls):  # type: ignore[misc, valid-type]
        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            grads = [ops.add(g, ops.multiply(ops.cast(wd, g.dtype), ops.convert_to_tensor(v)))
                     for g, v in zip(grads, trainable_variables)]
            return super()._backend_update_step(grads, trainable_variables, learning_rate)

    CoupledL2.__name__ = f"{optimizer_cls.__name__}CoupledL2"
    return CoupledL2


def make_optimizer(cfg: OptimizerConfig, backend: ModuleType) -> keras.optimizers.Optimizer:
    lr = keras_schedule(cfg)
    opts = keras.optimizers
    kinds = {
        "sgd": (opts.SGD, dict(momentum=cfg.momentum, nesterov=cfg.nesterov)),
        "adam": (opts.Adam, dict(beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon)),
        "adamw": (opts.AdamW, dict(beta_1=cfg.beta_1, beta_2=cfg.beta_2, epsilon=cfg.epsilon)),
        "rmsprop": (opts.RMSprop, dict(rho=cfg.rho, momentum=cfg.momentum,
                                       epsilon=cfg.epsilon, centered=cfg.centered)),
        "adagrad": (opts.Adagrad, dict(initial_accumulator_value=cfg.initial_accumulator_value,
                                       epsilon=cfg.epsilon)),
    }
    cls, kw = kinds[cfg.name]
    cls = backend.dense_gradients(cls)
    if cfg.weight_decay and cfg.weight_decay_mode == "coupled":
        cls = coupled_l2(cls, cfg.weight_decay)
    elif cfg.weight_decay or cfg.name == "adamw":  # AdamW: 0 must be said, not its 0.004
        kw["weight_decay"] = cfg.weight_decay
    clip = {"clipvalue": cfg.clip_value, "clipnorm": cfg.clipnorm,
            "global_clipnorm": cfg.global_clipnorm}
    return cls(learning_rate=lr, **kw, **{k: v for k, v in clip.items() if v})


class RecipeLoss(keras.losses.Loss):
    """A recipe's loss from sparse labels (twinbench.recipe.LossConfig): cross-entropy
    with label smoothing (Keras's categorical_crossentropy on the one-hot label), MSE or
    Huber(delta) between the one-hot label and the class probabilities."""

    def __init__(self, cfg: LossConfig, head: str) -> None:
        super().__init__(name=f"recipe_{cfg.kind}")
        self.cfg, self.head = cfg, head

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1]
        target = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes,
                             dtype=y_pred.dtype)
        c = self.cfg
        if c.kind == "cross_entropy":
            return keras.losses.categorical_crossentropy(
                target, y_pred, from_logits=self.head != "softmax",
                label_smoothing=c.label_smoothing)
        if self.head == "softmax":
            p = y_pred
        else:
            p = ops.exp(y_pred) if self.head == "log_softmax" else ops.softmax(y_pred, axis=-1)
        if c.kind == "mse":
            return keras.losses.mean_squared_error(target, p)
        return keras.losses.huber(target, p, delta=c.huber_delta)

"""Keras 3 adapter for every backend. Imported only in a cell's process, after the cell
has set KERAS_BACKEND. Backend-specific parts live in `keras_backends/<backend>.py`.

Training is idiomatic: `model.fit`, one call per epoch on arrays already put in the
shared epoch order, with `shuffle=False`. A training step is the interval between
Keras's `on_train_batch_begin` and `on_train_batch_end` callbacks, ended by a host read
of the loss (which blocks on JAX's asynchronous dispatch). It includes Keras's own
per-step work: fetching the batch from its data adapter and the compiled train step.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from types import ModuleType
from typing import Any

import keras
import numpy as np

from twinbench.config import OptimizerConfig
from twinbench.recipe import LossConfig
from twinbench.measure.timing import StepTimer
from twinbench.stacks import StackInfo
from twinbench.stacks.base import InferFn, Probe
from twinbench.stacks.keras_optim import RecipeLoss, make_optimizer
from twinbench.stacks.keras_weights import load_canonical, variables_by_name

__all__ = ["KerasStack", "head_loss", "loss_for", "make_optimizer"]


def head_loss(head: str) -> keras.losses.Loss:
    """The training loss a model's output implies (torch_stack's `head_loss`): from logits,
    from probabilities (a softmax head), or, for log-probabilities, cross-entropy from
    them as logits, which is their negative log-likelihood (log_softmax of log-
    probabilities is themselves)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=head != "softmax")


def loss_for(head: str, cfg: LossConfig | None) -> keras.losses.Loss:
    """The recipe's loss; plain cross-entropy keeps the head's own (`head_loss`)."""
    if cfg is None or cfg == LossConfig():
        return head_loss(head)
    return RecipeLoss(cfg, head)


def current_lr(model: keras.Model) -> float:
    """The learning rate the optimizer's next step uses: Keras's schedule evaluated at
    `optimizer.iterations`, by Keras."""
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


FIRST_LOSSES = 10  # training steps whose loss each stack keeps (recipe agreement)


class _StepClock(keras.callbacks.Callback):
    """Times each compiled call of fit: one step, or `steps_per_execution` steps, when
    Keras calls back with the first and last step index of the call. Keeps the running
    mean loss after each of the first FIRST_LOSSES steps when each call is one step."""

    def __init__(self, timer: StepTimer, batch_size: int, n: int,
                 means: list[float] | None = None) -> None:
        super().__init__()
        self.timer, self.batch_size, self.n, self.first = timer, batch_size, n, 0
        self.means = means if means is not None else []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self.first = batch
        self.timer.begin()

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        mean = keras.ops.convert_to_numpy(logs["loss"])  # host read: the step is done
        end = min(self.n, (batch + 1) * self.batch_size)  # steps first..batch, inclusive
        self.timer.end(end - self.first * self.batch_size)
        # the first epoch's first steps, one step a call (k steps a call: not recoverable)
        if len(self.means) < FIRST_LOSSES and batch == self.first == len(self.means):
            self.means.append(float(mean))


def losses_from_means(means: list[float]) -> list[float]:
    """Each step's loss from fit's running mean of equal batches: l_i = (i+1) m_i - i m_(i-1)
    (float64; the float32 mean's rounding grows by a factor i, ~1e-6 at step 10)."""
    return [means[0]] + [(i + 1) * means[i] - i * means[i - 1] for i in range(1, len(means))]


class KerasStack:
    def __init__(self, info: StackInfo, family: ModuleType, spec: object,
                 opt_cfg: OptimizerConfig, seed: int, batch_size: int,
                 loss_cfg: LossConfig | None = None) -> None:
        if keras.backend.backend() != info.backend:
            raise RuntimeError(f"Keras backend is {keras.backend.backend()}, "
                               f"stack {info.name} needs {info.backend}")
        self.info, self.family, self.spec = info, family, spec
        self.opt_cfg, self.seed, self.batch_size = opt_cfg, seed, batch_size
        self.backend: ModuleType = import_module(
            f"twinbench.stacks.keras_backends.{info.backend}")
        self.head = getattr(spec, "head", "logits")
        self.loss_fn = loss_for(self.head, loss_cfg)
        # A user's model names its variables its own way (twinbench.byo.twins).
        self.names = getattr(family, "variables_by_name", variables_by_name)
        # Set before build() to put layers around the twin after its weights are loaded
        # (twinbench.pipelines: Keras preprocessing layers inside the model).
        self.wrap: Callable[[keras.Model], keras.Model] | None = None

    def configure_threads(self, threads: int) -> dict[str, object]:
        return self.backend.configure_threads(threads)

    def set_device(self, device: str) -> dict[str, object]:
        """Check the framework sees the device; Keras places the model there itself."""
        return self.backend.device_info(device)

    def peak_device_memory_mb(self) -> float | None:
        return self.backend.peak_device_memory_mb()

    def to_native(self, x: np.ndarray) -> np.ndarray:
        return x  # the canonical layout is Keras's

    def _new_model(self, weights: dict[str, np.ndarray], cfg: OptimizerConfig,
                   spec: object = None, loss: keras.losses.Loss | None = None) -> keras.Model:
        model = self.family.build(spec or self.spec, self.seed)
        load_canonical(model, weights, self.names)
        if self.wrap is not None:
            model = self.wrap(model)
        model.compile(optimizer=make_optimizer(cfg, self.backend), loss=loss or self.loss_fn,
                      jit_compile=self.info.jit_compile,  # explicit: "auto" differs per backend
                      steps_per_execution=self.steps_per_execution)
        return model

    @property
    def steps_per_execution(self) -> int:
        """Training steps per compiled call (the stack option; 1 by default): one timed
        step of fit is this many batches."""
        return int(self.info.option("steps_per_execution", "1"))

    def build(self, weights: dict[str, np.ndarray]) -> None:
        self.model = self._new_model(weights, self.opt_cfg)
        self._loss_means: list[float] = []

    @property
    def resolved_jit_compile(self) -> bool:
        return bool(self.model.jit_compile)

    def export_weights(self) -> dict[str, np.ndarray]:
        return {k: keras.ops.convert_to_numpy(v.value)
                for k, v in self.names(self.model).items()}

    def param_count(self) -> int:
        # trainable only: count_params() also counts BatchNorm's moving statistics
        return int(sum(np.prod(v.shape) for v in self.model.trainable_weights))

    def learning_rates(self) -> list[float]:
        """The learning rate of every step so far: Keras's own schedule object (or the
        constant) evaluated at each value 0..iterations-1 its optimizer called it with."""
        opt = self.model.optimizer
        n = int(keras.ops.convert_to_numpy(opt.iterations))
        sched = opt._learning_rate  # the LearningRateSchedule or the constant Variable
        if not isinstance(sched, keras.optimizers.schedules.LearningRateSchedule):
            return [float(keras.ops.convert_to_numpy(opt.learning_rate))] * n
        try:  # vectorised where the schedule allows it (not CosineDecay's warmup cond)
            return [float(v) for v in keras.ops.convert_to_numpy(
                sched(keras.ops.arange(n, dtype="int64")))] if n else []
        except Exception:
            return [float(keras.ops.convert_to_numpy(sched(i))) for i in range(n)]

    def first_losses(self) -> list[float]:
        """The training loss of each of the first FIRST_LOSSES steps (first epoch)."""
        return losses_from_means(self._loss_means) if self._loss_means else []

    def train_epoch(self, x: np.ndarray, y: np.ndarray, timer: StepTimer) -> float:
        clock = _StepClock(timer, self.batch_size, len(y), self._loss_means)
        hist = self.model.fit(x, y, batch_size=self.batch_size, epochs=1, shuffle=False,
                              verbose=0, callbacks=[clock])
        return float(hist.history["loss"][-1])

    def prepare_fit(self, x: np.ndarray, y: np.ndarray) -> None:
        """Build the compiled loss and metrics from one batch (test_on_batch: no weight
        changes). Otherwise fit's first call peeks one batch of its input to build them,
        and from a PyDataset with workers that batch is trained last in the epoch
        (Keras 3.15, measured: order 1..n-1, 0)."""
        self.model.test_on_batch(x, y)

    def fit_epoch(self, data: Any, n: int, timer: StepTimer) -> float:
        """One epoch from an input pipeline that batches itself (tf.data, PyDataset, torch
        DataLoader; `n` samples), timed as `train_epoch`. shuffle=False: fit's default
        reorders a PyDataset's batches (with Python's `random`)."""
        clock = _StepClock(timer, self.batch_size, n)
        hist = self.model.fit(data, epochs=1, shuffle=False, verbose=0, callbacks=[clock])
        return float(hist.history["loss"][-1])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(x, batch_size=256, verbose=0)

    def inference_paths(self) -> tuple[str, dict[str, InferFn]]:
        m = self.model
        return "predict", {
            "predict": lambda xb: m.predict(xb, verbose=0),
            "__call__": lambda xb: keras.ops.convert_to_numpy(m(xb, training=False)),
            "predict_on_batch": m.predict_on_batch,
            "compiled": self.backend.compiled_predict(m, bool(self.info.jit_compile)),
        }

    def probe(self, weights: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> Probe:
        model = self._new_model(weights, self.opt_cfg, self.spec.without_dropout())
        _, loss, grads = self.backend.grads(model, self.loss_fn, x, y)
        # Logits from the stack's own compiled predict function (XLA on the -xla stack).
        logits = np.asarray(model.predict_on_batch(x))
        by_id = {id(v): k for k, v in self.names(model).items()}
        names = [by_id[id(v)] for v in model.trainable_variables]
        return Probe(logits, loss, dict(zip(names, grads)))

    def forward(self, weights: dict[str, np.ndarray], xs: list[np.ndarray]
                ) -> list[np.ndarray]:
        # The stack's own compiled predict function, as in `probe`: one model, a trace
        # per input shape, no gradient function traced.
        model = self._new_model(weights, self.opt_cfg, self.spec.without_dropout())
        return [np.asarray(model.predict_on_batch(x)) for x in xs]

    def train_steps(self, weights: dict[str, np.ndarray], batches: list, cfg: OptimizerConfig,
                    loss_cfg: LossConfig | None = None
                    ) -> tuple[list[float], list[dict[str, np.ndarray]], list[float]]:
        """`train_on_batch` on the dropout-free twin: loss of each step, weights after,
        and the learning rate Keras's optimizer used for each step."""
        loss = None if loss_cfg is None else loss_for(self.head, loss_cfg)
        model = self._new_model(weights, cfg, self.spec.without_dropout(), loss)
        losses, snapshots, lrs = [], [], []
        for xb, yb in batches:
            lrs.append(current_lr(model))
            losses.append(float(model.train_on_batch(xb, yb)))
            snapshots.append({k: keras.ops.convert_to_numpy(v.value)
                              for k, v in self.names(model).items()})
        return losses, snapshots, lrs

    def export(self, fmt: str, path, x: np.ndarray) -> dict:
        """Write the trained twin as `fmt` (see `twinbench.export.formats`)."""
        from twinbench.stacks.keras_export import export

        return export(self, fmt, path, x)

    def versions(self) -> dict[str, str]:
        return {"keras": keras.__version__, **self.backend.versions()}

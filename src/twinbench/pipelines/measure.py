"""What one pipeline measurement does, in its own process (`twinbench.pipelines.child`).

- `pipeline`: the pipeline alone, `epochs` passes over the training split, every batch
  consumed and nothing else done; then one more pass checked against the numpy reference.
- `train`: a stack's adapter (`twinbench.stacks`, built from the canonical weights) trained
  for `epochs` epochs, fed by the pipeline. A step's end-to-end time is the interval
  between consecutive step ends (the loss read on the host), so it includes waiting for
  the pipeline; the adapter's own begin..end interval is recorded beside it.
- `batches`: the first epoch's batches as canonical numpy, for the equivalence tests.

CPU time is user + system time of this process and of its reaped children
(`resource.getrusage`: DataLoader workers are joined at the end of each epoch, so each
epoch's workers are counted in it; psutil would add nothing for reaped processes).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

import numpy as np

from twinbench.measure.stats import median_iqr
from twinbench.measure.timing import StepTimer, now
from twinbench.models.spec_base import DataShape
from twinbench.pipelines import PIPELINES
from twinbench.pipelines.job import PipelineJob
from twinbench.pipelines.spec import (
    PipelineData,
    plan_epoch,
    reference,
    support_ulps,
    ulps,
)
from twinbench.stacks import stack_info


def cpu_seconds() -> float:
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class EndClock(StepTimer):
    """A StepTimer that also keeps when each step ended (`now()`)."""

    ends: list[float] = field(default_factory=list)

    def end(self, batch_samples: int) -> None:
        super().end(batch_samples)
        self.ends.append(now())


def make_pipeline(job: PipelineJob, data: PipelineData, threads: int | None, layout: str):
    info = PIPELINES[job.pipeline]
    t0 = time.perf_counter()
    module = import_module(f"twinbench.pipelines.{info.module}")
    t1 = time.perf_counter()
    pipe = module.make(info, data, job.batch_size, threads, layout, job.seed)
    return pipe, {"import_s": t1 - t0, "build_s": time.perf_counter() - t1}


def epoch_record(wall: float, cpu: float, samples: int, steps: int) -> dict[str, float]:
    return {"wall_s": wall, "cpu_s": cpu, "samples": samples, "steps": steps,
            "samples_per_s": samples / wall, "cores_busy": cpu / wall}


def summarise(epochs: list[dict], warmup: int) -> dict[str, Any]:
    """Medians over the epochs after warm-up (the first one traces, compiles, allocates)."""
    timed = epochs[warmup:]  # the driver ensures there is at least one
    rates = [e["samples_per_s"] for e in timed]
    cpu_per_k = [1e3 * e["cpu_s"] / e["samples"] for e in timed]
    return {"samples_per_s": median_iqr(rates), "cpu_s_per_1k_samples": float(np.median(cpu_per_k)),
            "cores_busy": float(np.median([e["cores_busy"] for e in timed])),
            "first_epoch_s": epochs[0]["wall_s"], "epochs_timed": len(timed)}


def batch_ulps(x: np.ndarray, ref: np.ndarray) -> int:
    """Largest ulp distance of a batch from its reference; -1 if shape or dtype differ."""
    if x.shape != ref.shape or x.dtype != ref.dtype:
        return -1
    return int(ulps(x, ref).max(initial=0))


def tolerance_ulps(job: PipelineJob, data: PipelineData) -> int:
    """0 (bit for bit) wherever the pipeline itself computes the transforms (numpy, torch,
    TensorFlow, and Keras layers in tf.data, which run on TensorFlow). Keras layers inside
    the model run on the stack's backend, whose float32 division (XLA:CPU) or sqrt
    (torch) is not always correctly rounded. Measured on digits: TensorFlow 0, JAX 1,
    torch 2 ulps (a 1-ulp sqrt, then the quotient rounds again); 2 are allowed."""
    return 2 if job.pipeline == "keras-layers-inside" and data.kind == "image" else 0


def check_equivalence(pipe, data: PipelineData, job: PipelineJob) -> dict[str, Any]:
    """Every batch of epoch 0 against the numpy reference. A pipeline with its own
    randomness (Keras layers in the model, augmenting) must give, per sample, one of the
    transforms' allowed outputs instead of the plan's."""
    plan = plan_epoch(data, job.seed, 0)
    own_random = job.pipeline == "keras-layers-inside" and data.kind == "image" and data.augment
    tol, seen, worst, ok = tolerance_ulps(job, data), 0, 0, True
    for batch in pipe.iterate(plan):
        x, y = pipe.to_numpy(batch)
        ids = plan.order[seen:seen + len(y)]
        ok &= bool(np.array_equal(y, data.y[ids]))
        if own_random:
            u = int(support_ulps(x, data, ids).max(initial=0))
        else:
            u = batch_ulps(x, reference(data, ids, plan))
        ok &= 0 <= u <= tol
        worst = max(worst, u) if u >= 0 else worst
        seen += len(y)
    return {"pass": ok and seen == len(data.y), "samples": seen,
            "against": "allowed shifts per sample" if own_random else "numpy reference",
            "max_ulps": worst, "tolerance_ulps": tol, "bit_identical": ok and worst == 0}


def layout_for(job: PipelineJob) -> str:
    """Images reach a PyTorch twin as NCHW, a Keras twin as NHWC; a torch pipeline alone
    yields NCHW, as torchvision does."""
    if job.stack:
        return "nchw" if stack_info(job.stack).framework == "torch" else "nhwc"
    return "nchw" if PIPELINES[job.pipeline].module == "torch_pipe" else "nhwc"


def measure_pipeline(job: PipelineJob, data: PipelineData) -> dict[str, Any]:
    pipe, costs = make_pipeline(job, data, job.threads, layout_for(job))
    epochs = []
    for e in range(job.epochs):
        plan = plan_epoch(data, job.seed, e)
        c0, t0 = cpu_seconds(), now()
        samples = steps = 0
        for batch in pipe.iterate(plan):  # consume only: nothing else runs
            samples += int(batch[1].shape[0])
            steps += 1
        epochs.append(epoch_record(now() - t0, cpu_seconds() - c0, samples, steps))
    metrics = {**summarise(epochs, job.warmup_epochs), **costs, "epochs": epochs}
    return {"metrics": metrics, "settings": settings(job, data, pipe),
            "equivalence": check_equivalence(pipe, data, job)}


def build_stack(job: PipelineJob, data: PipelineData):
    """The stack's own adapter and twin, as `twinbench run` builds them."""
    from twinbench.models import spec_for as model_spec_for, twin_module

    info = stack_info(job.stack)
    family = twin_module(job.model, info.framework)
    if info.framework == "torch":
        from twinbench.stacks.torch_stack import TorchStack as Adapter
    else:
        from twinbench.stacks.keras_stack import KerasStack as Adapter
    shape = (1, data.length) if data.kind == "text" else (1, *data.x.shape[1:])
    vocab = data.vocab.size if data.kind == "text" else None
    like = DataShape(x_train=np.zeros(shape), classes=data.classes,
                     provenance={"vocab_size": vocab})  # what spec_for reads
    spec = model_spec_for(job.model, like)
    stack = Adapter(info, family, spec, job.optimizer, job.seed, job.batch_size)
    return stack, spec, stack.configure_threads(job.threads)


def step_stats(clock: EndClock, spans: list[tuple[int, int]], batch: int) -> dict[str, Any]:
    """End-to-end step time (interval since the previous step ended) and the adapter's
    own step time, over full batches of the timed epochs; each epoch's first step is left
    out (its interval starts before the epoch: see epoch `wall_s`)."""
    e2e, own = [], []
    for start, stop in spans:
        for k in range(start + 1, stop):
            if clock.samples[k] == batch:
                e2e.append(1e3 * (clock.ends[k] - clock.ends[k - 1]))
                own.append(1e3 * clock.durations_s[k])
    if not e2e:
        return {}
    wait = [a - b for a, b in zip(e2e, own)]
    return {"step_ms": median_iqr(e2e), "adapter_step_ms": median_iqr(own),
            "between_steps_ms": median_iqr(wait)}


def measure_train(job: PipelineJob, data: PipelineData) -> dict[str, Any]:
    stack, spec, threads = build_stack(job, data)
    pipe, costs = make_pipeline(job, data, None, layout_for(job))
    equivalence = None
    if hasattr(pipe, "wrap"):  # Keras layers inside the model: check the front first
        equivalence = check_equivalence(pipe, data, job)
        stack.wrap = pipe.wrap
    stack.build(spec.init_weights(job.seed))
    clock, epochs, spans = EndClock(), [], []
    for e in range(job.epochs):
        plan = plan_epoch(data, job.seed, e)
        start, c0, t0 = len(clock.ends), cpu_seconds(), now()
        loss = pipe.train(stack, plan, clock)
        record = epoch_record(now() - t0, cpu_seconds() - c0, len(plan.order),
                              len(clock.ends) - start)
        epochs.append({**record, "train_loss": loss})
        if e >= job.warmup_epochs:
            spans.append((start, len(clock.ends)))
    metrics = {**summarise(epochs, job.warmup_epochs), **costs, "epochs": epochs,
               **step_stats(clock, spans, job.batch_size)}
    metrics["ms_per_step_epoch"] = float(np.median(
        [1e3 * e["wall_s"] / e["steps"] for e in epochs[job.warmup_epochs:]]))
    out = {"params": stack.param_count(), "metrics": metrics,
           "settings": {**settings(job, data, pipe), **stack_settings(stack, threads, spec)}}
    if equivalence is not None:
        out["equivalence"] = equivalence
    return out


def framework_versions() -> dict[str, str]:
    import sys

    return {m: getattr(sys.modules[m], "__version__", "?")
            for m in ("numpy", "torch", "tensorflow", "jax", "keras") if m in sys.modules}


def settings(job: PipelineJob, data: PipelineData, pipe) -> dict[str, Any]:
    """Every knob of this measurement, as applied."""
    return {"pipeline": job.pipeline, "pipeline_settings": pipe.settings,
            "transforms": data.transforms(), "augment": data.augment,
            "randomness": "numpy epoch plan: default_rng([seed, epoch]) order, "
                          "default_rng([seed, epoch, 1]) shifts and flips",
            "threads": job.threads, "affinity": sorted(os.sched_getaffinity(0)),
            "batch_size": job.batch_size, "epochs": job.epochs,
            "warmup_epochs": job.warmup_epochs, "seed": job.seed,
            "keras_backend": os.environ.get("KERAS_BACKEND"),
            "versions": framework_versions()}


def stack_settings(stack, threads: dict, spec) -> dict[str, Any]:
    info = stack.info
    return {"stack": info.name, "compile_mode": info.compile_mode,
            "jit_compile": info.jit_compile,
            "jit_compile_resolved": getattr(stack, "resolved_jit_compile", None),
            "torch_compile": info.torch_compile, "thread_settings": threads,
            "optimizer": stack.opt_cfg.model_dump(), "model_spec": repr(spec),
            "loss": "mean sparse categorical cross-entropy from logits"}


def dump_batches(job: PipelineJob, data: PipelineData) -> dict[str, Any]:
    """Epoch 0's batches, canonical numpy, to `batches_path` (x0, y0, x1, ...); for Keras
    layers inside a model also the front's compiled inference output (`c0`, ...)."""
    pipe, _ = make_pipeline(job, data, None, layout_for(job))  # threads: the defaults
    plan = plan_epoch(data, job.seed, 0)
    arrays: dict[str, np.ndarray] = {}
    for k, batch in enumerate(pipe.iterate(plan)):
        arrays[f"x{k}"], arrays[f"y{k}"] = pipe.to_numpy(batch)
    if hasattr(pipe, "front_model"):
        front, b = pipe.front_model(), job.batch_size
        for k in range(len(arrays) // 2):
            raw = data.x[plan.order[k * b:(k + 1) * b]]
            arrays[f"c{k}"] = np.asarray(front.predict_on_batch(raw))
    np.savez(job.batches_path, **arrays)
    return {"metrics": {"batches": len(arrays) // 2}, "settings": settings(job, data, pipe)}


def run_job(job: PipelineJob) -> dict[str, Any]:
    data = PipelineData.load(job.data_path)
    if job.mode == "train":
        return measure_train(job, data)
    if job.mode == "batches":
        return dump_batches(job, data)
    return measure_pipeline(job, data)

"""What one cell measures, in its own process. Stack-agnostic: the framework lives behind
the adapter (`twinbench.stacks.base.Stack`)."""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np

from twinbench.config import CellJob, RunConfig
from twinbench.data import augment
from twinbench.data.dataset import Dataset, epoch_order
from twinbench.measure.contention import ContentionMeter, wait_quiet
from twinbench.measure.peak import best_peak, efficiency, matmul_peak_gflops
from twinbench.measure.stats import median_iqr, percentiles
from twinbench.measure.timing import StepTimer, time_calls
from twinbench.models import spec_for as model_spec_for, twin_module
from twinbench.parity.probe import roundtrip_max_abs, save_probe
from twinbench.process import progress
from twinbench.recipe import Recipe
from twinbench.stacks import StackInfo
from twinbench.stacks.base import InferFn, Stack
from twinbench import variants

def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def import_adapter(job: CellJob, info: StackInfo) -> tuple[type, ModuleType]:
    """Import the framework (this is where its import time is spent) and the twin."""
    if getattr(job, "byo", None) is not None:  # a user's model: its own code or twin
        from twinbench.byo.twins import family_for

        family = family_for(job.byo, info.framework)
    else:
        family = twin_module(job.model, info.framework)
    if info.framework == "torch":
        from twinbench.stacks.torch_stack import TorchStack as Adapter
    else:
        from twinbench.stacks.keras_stack import KerasStack as Adapter
    return Adapter, family


def log_softmax_loss_acc(logits: np.ndarray, y: np.ndarray, head: str = "logits"
                        ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy, computed the same way (numpy) for every stack.
    A softmax head's probabilities enter as their (clipped) logs: log_softmax leaves
    log-probabilities as they are."""
    if head == "softmax":
        logits = np.log(np.clip(logits.astype(np.float64), 1e-7, 1.0))
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-logp[np.arange(len(y)), y].mean()), float((logits.argmax(1) == y).mean())


@dataclass(frozen=True)
class TrainView:
    """What `train`, `latency_b1` and `cell_settings` read of a job: a CellJob has these
    fields; an export child, which trains a twin before exporting it, builds one."""

    run: RunConfig
    result_path: Path
    model: str = ""  # the family or sweep point (`cnn[width=2]`: its knobs are recorded)
    target_accuracy: float | None = None
    target_source: str | None = None
    cpus: tuple[int, ...] = ()
    byo: Path | None = None  # an export is of a built-in family


class Diverged(Exception):
    """Training produced a non-finite or exploding loss; the cell stops early."""


def divergence(train_loss: float, classes: int, factor: float) -> str | None:
    """Why this epoch's loss counts as diverged, or None. The bound is `factor` times the
    loss of a uniform guess, ln(classes), which any sane start is near."""
    limit = factor * float(np.log(classes))
    if not np.isfinite(train_loss):
        return f"training loss is {train_loss}"
    if train_loss > limit:
        return f"training loss {train_loss:.3g} > {factor:g} x ln({classes}) = {limit:.3g}"
    return None


class PhaseClock:
    """Wall seconds per phase of this cell (import, train, latency, throughput, loadgen,
    probe, ...): where a cell's time goes, recorded as `metrics.phase_s`. A phase's clock
    runs from its report to the next one; `stop` closes the last."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._open: tuple[str, float] | None = None

    def reset(self) -> None:
        self.seconds, self._open = {}, None

    def enter(self, phase: str) -> None:
        """Close the open phase and start `phase` (a phase already open keeps running)."""
        if self._open is not None and self._open[0] == phase:
            return
        self.stop()
        self._open = (phase, time.perf_counter())

    def stop(self) -> dict[str, float]:
        if self._open is not None:
            phase, t0 = self._open
            self.seconds[phase] = self.seconds.get(phase, 0.0) + time.perf_counter() - t0
            self._open = None
        return {k: round(v, 3) for k, v in self.seconds.items()}


PHASES = PhaseClock()  # one cell per process (a probe batch starts a fresh clock per job)


def report(job: CellJob, phase: str, **fields: object) -> None:
    """The phase for the driver's display (process/progress.py), between timed sections,
    and for this cell's phase clock. A job-like without a result path (another process's
    helper call) reports nothing."""
    path = getattr(job, "result_path", None)
    if path is not None:
        PHASES.enter(phase)
        progress.report(progress.cell_file(path), phase, **fields)


def cell_recipe(job) -> Recipe:
    """The recipe this cell trains with: the job's (a suite task's or the run's), else the
    run's optimizer with cross-entropy and no augmentation."""
    return getattr(job.run, "recipe", None) or Recipe(name="run", optimizer=job.run.optimizer)


def total_steps(job, n_train: int) -> int:
    """Optimizer steps of the whole training run: the schedules' time axis."""
    return job.run.epochs * -(-n_train // job.run.batch_size)


def channel_stats(recipe: Recipe, data) -> tuple[np.ndarray, np.ndarray] | None:
    if recipe.augment.normalize and data.x_train.ndim == 4:
        return augment.channel_stats(data.x_train)
    return None


def epoch_images(stack: Stack, job, data, x_train, order: np.ndarray, epoch: int
                 ) -> np.ndarray:
    """The epoch's training images in order; augmented by the recipe's plan for this
    (seed, epoch) in the canonical layout (the same pixels for every stack), then put in
    the stack's layout."""
    recipe = cell_recipe(job)
    if not recipe.augment.active or data.x_train.ndim != 4:
        return x_train[order]
    return stack.to_native(augment.augmented_epoch(
        data.x_train, order, recipe.augment, job.run.seed, epoch, channel_stats(recipe, data)))


def train(stack: Stack, job: CellJob, data, x_train, x_test, timer: StepTimer) -> list[dict]:
    curve: list[dict] = []
    t0 = time.perf_counter()
    classes = int(max(data.y_train.max(), data.y_test.max())) + 1
    for epoch in range(job.run.epochs):
        so_far = time.perf_counter() - t0  # ETA: the mean epoch so far, times those left
        report(job, "train", detail="epoch", step=epoch + 1, steps=job.run.epochs,
               eta_s=so_far / epoch * (job.run.epochs - epoch) if epoch else None)
        order = epoch_order(len(data.y_train), job.run.seed, epoch)
        xe = epoch_images(stack, job, data, x_train, order, epoch)
        train_loss = stack.train_epoch(xe, data.y_train[order], timer)
        why = divergence(train_loss, classes, job.run.divergence_factor)
        if why:
            curve.append({"epoch": epoch + 1, "train_loss": train_loss,
                          "elapsed_s": time.perf_counter() - t0})
            raise Diverged(f"{why} at epoch {epoch + 1}; stopped early", curve)
        test_loss, acc = log_softmax_loss_acc(stack.predict(x_test), data.y_test,
                                              getattr(getattr(stack, "spec", None), "head",
                                                      "logits"))
        curve.append({"epoch": epoch + 1, "train_loss": train_loss, "test_loss": test_loss,
                      "test_accuracy": acc, "elapsed_s": time.perf_counter() - t0})
    return curve


def _first_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".strip()
    return text.splitlines()[0][:300]


def latency_b1(idiomatic: str, paths: dict[str, InferFn], x_test: np.ndarray,
               job: CellJob) -> dict:
    """Batch-1 latency of every documented inference path; the fastest by p50 headlines."""
    x1 = x_test[:1]
    by_path: dict[str, dict] = {}
    raw: dict[str, list[float]] = {}
    for name, fn in paths.items():
        try:
            ms = time_calls(lambda: fn(x1), job.run.latency_calls, job.run.latency_warmup,
                            job.run.latency_budget_s)
            raw[name] = [round(float(v), 5) for v in ms]
            by_path[name] = {**percentiles(ms), "calls": len(ms), "idiomatic": name == idiomatic,
                             "budget_hit": len(ms) < job.run.latency_calls}
        except Exception as e:  # a path that fails is a finding, not a crash
            by_path[name] = {"error": _first_line(e), "idiomatic": name == idiomatic}
    timed = {k: v for k, v in by_path.items() if "p50" in v}
    if not timed:
        raise RuntimeError("no inference path ran")
    fastest = min(timed, key=lambda k: timed[k]["p50"])
    best = {k: timed[fastest][k] for k in ("p50", "p90", "p99")}
    return {"latency_b1_ms": {**best, "path": fastest}, "latency_b1_by_path": by_path,
            "latency_b1_idiomatic": idiomatic, "samples": {"latency_b1_ms": raw[fastest]}}


def throughput_b256(paths: dict[str, InferFn], x_test: np.ndarray, job: CellJob,
                    b1: dict) -> dict:
    """Samples/s at batch 256 (median call time) for the idiomatic path and the fastest
    batch-1 path; the better headlines. (Every path at 256 too would cost a recompile per
    compiled path: 20 s for torch.compile of a Keras LSTM, measured.)"""
    keep = {b1["latency_b1_idiomatic"], b1["latency_b1_ms"]["path"]}
    xb = x_test[:256]
    by_path: dict[str, float | str] = {}
    for name, fn in ((k, v) for k, v in paths.items() if k in keep):
        try:
            ms = time_calls(lambda: fn(xb), job.run.throughput_calls, 2,
                            job.run.latency_budget_s)
            by_path[name] = len(xb) / (float(np.median(ms)) / 1e3)
        except Exception as e:
            by_path[name] = _first_line(e)
    rates = {k: v for k, v in by_path.items() if isinstance(v, float)}
    best = max(rates, key=rates.get)
    return {"infer_samples_per_s_b256": rates[best], "infer_b256_path": best,
            "infer_b256_by_path": by_path, "infer_batch": len(xb)}


def throughput_by_batch(fn: InferFn, x_test: np.ndarray, job: CellJob) -> dict[str, float]:
    """Samples/s (median call) at each of --infer-batches on the path that won batch 256,
    in this cell's process (a sweep's batch axis costs no extra cells). A batch larger
    than the test set repeats its rows."""
    out: dict[str, float] = {}
    for b in job.run.infer_batches:
        xb = x_test[np.arange(b) % len(x_test)]
        ms = time_calls(lambda: fn(xb), job.run.throughput_calls, 2, job.run.latency_budget_s)
        out[str(b)] = b / (float(np.median(ms)) / 1e3)
    return out


def measure(job: CellJob, info: StackInfo, fault: Callable[[str], None]) -> dict:
    # The first matmul-peak reading, before any framework starts a thread pool. Its time
    # is not start-up: first_step_s counts from spawn_wall, moved past the reading.
    PHASES.reset()  # this job's clock (a probe batch measures several in one process)
    PHASES.enter("start")  # the quiet wait and the first peak reading
    quiet = wait_for_quiet(job)
    job = job.model_copy(update={"spawn_wall": job.spawn_wall + quiet.get("waited_s", 0.0)})
    t_peak = time.time()
    peak_start = matmul_peak_gflops() if job.mode == "full" else None
    peak_reading_s = time.time() - t_peak
    job = job.model_copy(update={"spawn_wall": job.spawn_wall + peak_reading_s})
    report(job, "import")
    t_import = time.time()
    adapter, family = import_adapter(job, info)
    import_s = time.time() - t_import
    report(job, "build")
    data = Dataset.load(job.data_path)
    spec = cell_spec(job, data)
    recipe = cell_recipe(job)
    stack = adapter(info, family, spec, recipe.optimizer.for_steps(
        total_steps(job, len(data.y_train))), job.run.seed, job.run.batch_size,
        loss_cfg=recipe.loss)
    thread_settings = stack.configure_threads(job.run.threads)
    device = stack.set_device(job.run.device)
    weights = spec.init_weights(job.run.seed)
    x_train = stack.to_native(data.x_train)
    x_test = stack.to_native(augment.normalized(data.x_test, recipe.augment,
                                                channel_stats(recipe, data)))
    t_build = time.time()
    stack.build(weights)
    parity = {"weights_roundtrip_max_abs": roundtrip_max_abs(stack, weights)}
    metrics: dict = {"import_s": import_s}
    status, reason = "ok", None
    if job.mode == "full":
        fault("train")
        meter = ContentionMeter(job.cpus, job.run.contended_share)
        meter.start()
        try:
            timed = train_and_time(stack, job, data, x_train, x_test, t_build)
            metrics.update(timed.metrics)
            paths = timed.paths
            metrics["flops"] = compute_efficiency(spec, data, metrics, peak_start)
            metrics["flops"]["start_reading_s"] = peak_reading_s  # left out of first_step_s
            if job.run.loadgen:
                report(job, "loadgen")
                metrics["loadgen"] = run_loadgen(paths[metrics["latency_b1_ms"]["path"]],
                                                 x_test, job, metrics)
        except Diverged as e:
            status, reason = "diverged", e.args[0]
            metrics["epochs"] = e.args[1]
        metrics["contention"] = {**meter.result(), "wait_quiet": quiet}
    else:
        fault("probe")
        report(job, "probe")
        parity.update(save_probe(stack, job, weights, data, x_train, x_test, PHASES.enter))
    metrics["peak_rss_mb"] = peak_rss_mb()
    metrics["peak_device_memory_mb"] = stack.peak_device_memory_mb()  # allocator's own
    metrics["phase_s"] = PHASES.stop()
    settings = cell_settings(job, info, stack, thread_settings, spec, data)
    settings["device"] = device
    return {"status": status, "reason": reason, "params": stack.param_count(),
            "metrics": metrics, "settings": settings, "parity": parity,
            "data": data.summary()}


def cell_spec(job: CellJob, data: Dataset):
    if getattr(job, "byo", None) is not None:
        from twinbench.byo.twins import ByoSpec

        return ByoSpec(str(job.byo))
    return model_spec_for(job.model, data)


def wait_for_quiet(job: CellJob) -> dict:
    """--wait-quiet: before a timed cell starts its clocks, wait for its CPUs to be quiet
    (the wait is moved out of first_step_s, like the peak reading)."""
    if job.mode != "full" or job.run.wait_quiet_s <= 0:
        return {"waited_s": 0.0, "quiet": None}
    return wait_quiet(job.cpus, job.run.wait_quiet_s, job.run.contended_share)


def time_to_accuracy(curve: list[dict], target: float | None) -> dict | None:
    """Wall time (training + per-epoch evaluation, from the first step) to the first epoch
    whose test accuracy reaches `target`, as MLPerf and DAWNBench time it. `s` is None
    when no epoch reached it."""
    if target is None:
        return None
    hit = next((e for e in curve if e.get("test_accuracy", 0.0) >= target), None)
    return {"target": target, "s": hit["elapsed_s"] if hit else None,
            "epoch": hit["epoch"] if hit else None, "epochs_run": len(curve)}


def run_loadgen(infer: InferFn, x_test: np.ndarray, job: CellJob, metrics: dict) -> dict:
    """MLPerf LoadGen SingleStream, Server (bisected QPS) and Offline on the fastest
    batch-1 path, with the expected-latency hints from this cell's own pilot timings."""
    from twinbench.measure import loadgen

    out, d = job.result_path.parent / "loadgen", job.run.loadgen_duration_s
    lat = metrics["latency_b1_ms"]
    try:
        return {"path": lat["path"], "min_duration_s": d,
                "single_stream": loadgen.single_stream(infer, x_test, out, d, lat["p50"]),
                "server": loadgen.server(infer, x_test, out, d, job.run.latency_bound_ms,
                                         lat["p50"], job.run.loadgen_server_steps),
                "offline": loadgen.offline(infer, x_test, out, d,
                                           metrics["infer_samples_per_s_b256"])}
    except Exception as e:  # a LoadGen failure is a finding, not a lost cell
        return {"path": lat["path"], "error": _first_line(e)}


def compute_efficiency(spec, data, metrics: dict, peak_start: dict) -> dict:
    """Analytic FLOPs per sample (from the spec) against this process's measured peak:
    the higher of the reading at the cell's start and one now."""
    peak = best_peak(peak_start, matmul_peak_gflops())
    out = efficiency(spec.data_forward_flops(data.x_test),
                     metrics["train_samples_per_s"]["median"],
                     metrics.get("infer_samples_per_s_b256"), peak)
    out["peak_readings_gflops_s"] = peak["readings_gflops_s"]
    return out


@dataclass
class Timed:
    """What the timed training and inference phases return: the metrics, and the inference
    functions they timed (LoadGen drives the fastest of them next; a function is not a
    metric, so it never travels in the metrics dict)."""

    metrics: dict
    idiomatic: str
    paths: dict[str, InferFn]


def train_and_time(stack: Stack, job: CellJob, data, x_train, x_test, t_build: float
                   ) -> Timed:
    timer = StepTimer()
    curve = train(stack, job, data, x_train, x_test, timer)
    trace = recipe_trace(stack)
    # One set of paths for both measurements: a compiled function built twice would
    # trace and compile twice (their building counts to the latency phase).
    report(job, "latency")
    idiomatic, paths = stack.inference_paths()
    b1 = latency_b1(idiomatic, paths, x_test, job)
    # A Keras stack with steps_per_execution k times k batches per call of fit: each timed
    # "step" is one call, and the warm-up skips the calls that hold the first steps.
    per_call = getattr(stack, "steps_per_execution", 1)
    steps = timer.throughputs(-(-job.run.warmup_steps // per_call), job.run.batch_size * per_call)
    if not len(steps):
        raise RuntimeError(f"no full timed training call after {job.run.warmup_steps} warm-up "
                           f"steps (steps_per_execution {per_call}); train more epochs")
    b1["samples"]["train_samples_per_s"] = [round(float(v), 2) for v in steps]
    report(job, "throughput")
    b256 = throughput_b256(paths, x_test, job, b1)
    if job.run.infer_batches:
        report(job, "throughput", detail="batch sizes")
        b256["infer_samples_per_s_by_batch"] = throughput_by_batch(
            paths[b256["infer_b256_path"]], x_test, job)
    return Timed({
        "accuracy": curve[-1]["test_accuracy"],
        "train_samples_per_s": median_iqr(steps),
        "first_step_s": timer.first_end_wall - job.spawn_wall,
        "first_step_from_build_s": timer.first_end_wall - t_build,
        "first_step_compute_s": timer.durations_s[0],
        "epochs": curve,
        "time_to_accuracy": time_to_accuracy(curve, job.target_accuracy),
        "recipe_trace": trace,
        **b1,
        **b256,
    }, idiomatic, paths)


LOSSES = {  # what each stack minimises, by what the model outputs (see stacks' head_loss)
    "logits": "mean sparse categorical cross-entropy from logits",
    "softmax": "mean sparse categorical cross-entropy of softmax probabilities (Keras: "
               "from_logits=False; torch: nll_loss of the log of the renormalised "
               "probabilities clipped to [1e-7, 1 - 1e-7])",
    "log_softmax": "mean negative log-likelihood of log_softmax outputs (torch: F.nll_loss; "
                   "Keras: cross-entropy from_logits=True, equal as log_softmax is "
                   "idempotent)",
}


def run_lengths(values: list[float]) -> list[list[float]]:
    """[[first step, value], ...] at every step whose value differs from the previous."""
    return [[i, v] for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def recipe_trace(stack: Stack) -> dict:
    """Each step's learning rate, as the stack's optimizer used it (run lengths), and the
    first steps' training losses (untimed reads of what the steps computed)."""
    lrs = [float(v) for v in stack.learning_rates()]
    return {"count": len(lrs), "learning_rate": run_lengths(lrs),
            "first_losses": [float(v) for v in stack.first_losses()]}


def recipe_settings(job, data, spec) -> dict:
    """The recipe in full, its schedule's positions in steps and the loss it names."""
    recipe = cell_recipe(job)
    n = total_steps(job, len(data.y_train)) if data is not None else None
    opt = recipe.optimizer.for_steps(n) if n else recipe.optimizer
    stats = channel_stats(recipe, data) if data is not None else None
    return {"recipe": {**recipe.model_dump(), "optimizer": opt.model_dump()},
            "schedule_steps": opt.schedule.steps(), "total_steps": n,
            "normalization": None if stats is None else
            {"mean": stats[0].tolist(), "std": stats[1].tolist(), "from": "training split"},
            "loss": LOSSES[getattr(spec, "head", "logits")] if recipe.loss.kind ==
            "cross_entropy" and not recipe.loss.label_smoothing else
            f"recipe loss {recipe.loss.model_dump()} (twinbench.recipe.LossConfig)"}


def cell_settings(job: CellJob, info: StackInfo, stack: Stack, threads: dict, spec,
                  data=None) -> dict:
    """Every knob that can change this cell's numbers, as it was actually applied."""
    return {
        "threads": job.run.threads, "thread_settings": threads,
        "affinity": sorted(os.sched_getaffinity(0)),
        "compile_mode": info.compile_mode,
        "jit_compile": info.jit_compile,
        "jit_compile_resolved": getattr(stack, "resolved_jit_compile", None),
        "torch_compile": info.torch_compile,
        "stack_options": dict(info.options),  # a variant's (`torch[channels_last=1]`)
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        # a sweep point's knobs (`cnn[width=2]`) and the extra inference batch sizes
        "sweep_point": {**variants.parts(job.model)[1],
                        "infer_batches": list(job.run.infer_batches)},
        "keras_backend": info.keras_backend,
        "dtype": job.run.dtype, "batch_size": job.run.batch_size, "epochs": job.run.epochs,
        "seed": job.run.seed, "optimizer": cell_recipe(job).optimizer.model_dump(),
        "determinism": "framework defaults (non-deterministic kernels allowed)",
        **recipe_settings(job, data, spec),
        "warmup_steps": job.run.warmup_steps, "model_spec": repr(spec),
        "divergence": f"loss not finite or > {job.run.divergence_factor:g} x ln(classes)",
        "target_accuracy": job.target_accuracy, "target_source": job.target_source,
        "versions": stack.versions(),
        **byo_settings(job, info),
    }


def byo_settings(job: CellJob, info: StackInfo) -> dict:
    if getattr(job, "byo", None) is None:
        return {}
    from twinbench.byo.record import cell_settings as byo_cell_settings

    return byo_cell_settings(job, info.framework)

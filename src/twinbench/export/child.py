"""Entry point of one twin's export process: `python -m twinbench.export.child JOB.json`.

Builds the twin from the canonical weights, trains it `export_epochs` epochs, saves the
test batch and the twin's logits on it (.npy), times the stack's own batch-1 inference
(the baseline the runtimes are compared with), then exports every requested format.
`manifest.json` is rewritten before and after each format, so a crash inside an exporter
still leaves every earlier result and names the format that killed the process.

The import guard keeps foreign frameworks out while the twin trains and is timed, as in a
run's cell; it is lifted before exporting, because exporters cross frameworks (jax2tf,
tf2onnx, OpenVINO's converters).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from twinbench.hooks import testing_hook
from twinbench.process.child import start, write_json_atomic


def _folder_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def prepare(job, info, manifest: dict):
    """Train the twin, save the test batch and its logits, time its own inference."""
    import numpy as np

    from twinbench.data.dataset import Dataset
    from twinbench.measure.timing import StepTimer
    from twinbench.models import spec_for as model_spec_for
    from twinbench.cell.measure import (
        TrainView,
        cell_settings,
        import_adapter,
        latency_b1,
        log_softmax_loss_acc,
        train,
    )

    adapter, family = import_adapter(job, info)
    data = Dataset.load(job.data_path)
    spec = model_spec_for(job.model, data)
    stack = adapter(info, family, spec, job.run.optimizer, job.run.seed, job.run.batch_size)
    threads = stack.configure_threads(job.run.threads)
    stack.build(spec.init_weights(job.run.seed))
    run = job.run.model_copy(update={"epochs": job.run.export_epochs})
    x_train, x_test = stack.to_native(data.x_train), stack.to_native(data.x_test)
    # The cell's helpers read these fields of a job; an export has no target accuracy.
    # result_path: where train() reports its epochs (progress.json beside it).
    like = TrainView(run=run, result_path=job.cell_dir / "manifest.json", model=job.model)
    train(stack, like, data, x_train, x_test, StepTimer())
    _, acc = log_softmax_loss_acc(stack.predict(x_test), data.y_test)
    x = np.ascontiguousarray(x_test[: job.test_batch])
    np.save(job.cell_dir / "input.npy", x)
    np.save(job.cell_dir / "source.npy", np.asarray(stack.predict(x)))
    idiomatic, paths = stack.inference_paths()
    manifest.update(accuracy=acc, params=stack.param_count(),
                    source=latency_b1(idiomatic, paths, x_test, like),
                    settings=cell_settings(like, info, stack, threads, spec))
    return stack, x


def export_all(job, stack, x, manifest: dict, path: Path) -> None:
    from twinbench.export.formats import selected, versions
    from twinbench.export.jobs import error_text, first_line
    from twinbench.process import progress

    base = stack.versions()
    chosen = selected(job.stack, list(job.formats))
    for k, fmt in enumerate(chosen, 1):
        progress.report(job.cell_dir / progress.FILE, "export", detail=fmt.name, step=k,
                        steps=len(chosen))
        folder = job.cell_dir / fmt.name
        folder.mkdir(exist_ok=True)
        artifact = folder / fmt.artifact
        manifest["in_progress"] = fmt.name
        write_json_atomic(path, manifest)
        if testing_hook("TWINBENCH_EXPORT_FAULT") == fmt.name:  # test hook: crash here
            os.abort()
        entry: dict = {"versions": {**base, **versions(fmt.packages)}}
        t0 = time.perf_counter()
        try:
            entry.update(stack.export(fmt.name, artifact, x))
            entry.update(status="exported", artifact=str(artifact),
                         size_bytes=_folder_bytes(folder))
        except Exception as e:  # noqa: BLE001 (a format that fails to export is a result)
            entry.update(status="failed", reason=first_line(e), error=error_text(e))
            if fmt.install_note and isinstance(e, ImportError):
                entry["reason"] += f" ({fmt.install_note})"
        entry["export_s"] = time.perf_counter() - t0
        manifest["formats"][fmt.name] = entry
    manifest["in_progress"] = None


def _refused(raw: dict) -> tuple[str, ...]:
    from twinbench.stacks import stack_info

    return stack_info(raw["stack"]).foreign_modules


def main(job_path: str) -> int:
    raw, blocker = start(job_path, _refused)
    from twinbench.stacks import stack_info

    info = stack_info(raw["stack"])
    from twinbench.export.jobs import ExportJob

    job = ExportJob.model_validate(raw)
    path = job.cell_dir / "manifest.json"
    manifest: dict = {"status": "training", "formats": {}, "in_progress": None}
    write_json_atomic(path, manifest)
    stack, x = prepare(job, info, manifest)
    manifest["settings"]["foreign_imports_refused"] = list(blocker.attempts)
    sys.meta_path.remove(blocker)  # exporters cross frameworks; nothing is timed from here
    manifest["status"] = "exporting"
    export_all(job, stack, x, manifest, path)
    manifest["status"] = "done"
    write_json_atomic(path, manifest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

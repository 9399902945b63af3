"""Run by test_pipelines.py in a subprocess (KERAS_BACKEND set by the test): writes the
first epoch's batches of each named pipeline for each data file, as `dump_batches` does.

argv: OUT_DIR DATA_DIR PIPELINE[@STACK] ...   (STACK picks the layout, e.g. keras-torch)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from twinbench.pipelines.job import PipelineJob
from twinbench.pipelines.measure import dump_batches
from twinbench.pipelines.spec import PipelineData


def main(out: Path, data_dir: Path, specs: list[str]) -> None:
    written = []
    for data_path in sorted(data_dir.glob("*.npz")):
        data = PipelineData.load(data_path)
        for spec in specs:
            pipeline, _, stack = spec.partition("@")
            if (pipeline == "keras-layers-inside" and data.kind == "text"
                    and os.environ.get("KERAS_BACKEND") != "tensorflow"):
                continue  # TextVectorization in a model: TensorFlow only
            name = f"{data_path.stem}__{pipeline}__{stack or 'alone'}.npz"
            job = PipelineJob(mode="batches", task="test", pipeline=pipeline,
                              stack=stack or None, data_path=data_path,
                              result_path=out / "unused.json", batches_path=out / name,
                              cpus=(0,), threads=1, seed=3, batch_size=5, epochs=1,
                              warmup_epochs=0, spawn_wall=0.0)
            dump_batches(job, data)
            written.append(name)
    print(json.dumps(written))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])

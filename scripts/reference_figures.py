"""Print estimate.REFERENCE from a measured run folder (results.json, verify.json): per
(phase, stack, kind), the fixed seconds and the seconds per epoch, as estimate.py uses
them. Run it on the folder of a `make run` taken alone on the reference machine.

    python scripts/reference_figures.py runs/<run id>
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from twinbench.models import spec_module


def per_epoch(cell: dict) -> float:
    """One epoch's training and evaluation: the last epoch's elapsed over the epochs."""
    curve = cell["metrics"]["epochs"]
    return curve[-1]["elapsed_s"] / len(curve)


def main(folder: Path) -> None:
    results = json.loads((folder / "results.json").read_text())
    probes = json.loads((folder / "verify.json").read_text())["cells"]
    probe_s = sum(c["wall_s"] for c in probes) / len(probes)
    print(f"probe: {len(probes)} probes, mean {probe_s:.1f} s of own work each")
    for c in results["cells"]:
        if c["status"] != "ok":
            continue
        kind = spec_module(c["model"]).KIND
        e = per_epoch(c)
        fixed = c["wall_s"] - e * len(c["metrics"]["epochs"])
        print(f'    ("full", "{c["stack"]}", "{kind}"): ({fixed:.1f}, {e:.2f}),'
              f'  # phases {c["metrics"].get("phase_s")}')


if __name__ == "__main__":
    main(Path(sys.argv[1]))

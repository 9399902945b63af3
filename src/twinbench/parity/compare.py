"""Compare each stack's probe (forward, loss, gradients on the canonical weights and one
fixed batch, dropout off) with a reference stack's.

Tolerances for float32 (machine epsilon 1.2e-7):
- forward, max abs diff <= 1e-5: logits here are O(1) and a few thousand multiply-adds
  feed each one; reordered float32 sums differ by ~1e-6, far below 1e-5, while any real
  twin difference (a flipped flatten order, a missing bias) moves logits by >= 1e-2.
- gradients, relative diff <= 1e-4, taken per tensor as max|a - b| / max|b| (norm-wise, so
  near-zero entries cannot blow it up): backward passes sum over the batch and over
  spatial positions, which costs about one more order of magnitude of rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TOLERANCES = {"forward_max_abs": 1e-5, "forward_max_rel": 1e-4, "loss_abs": 1e-5,
              "grad_max_rel": 1e-4}


def load_probe(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    return diff / scale if scale > 0 else diff


def compare(probe: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> dict[str, dict]:
    """check -> {value, tolerance, pass, worst (for gradients)}."""
    grads = sorted(k for k in ref if k.startswith("grad:"))
    missing = [k for k in grads if k not in probe]
    if missing:
        raise ValueError(f"probe lacks gradients {missing}")
    grad_rel = {k[5:]: rel(probe[k], ref[k]) for k in grads}
    worst = max(grad_rel, key=grad_rel.get)
    values = {
        "forward_max_abs": float(np.max(np.abs(probe["logits"] - ref["logits"]))),
        "forward_max_rel": rel(probe["logits"], ref["logits"]),
        "loss_abs": float(abs(probe["loss"] - ref["loss"])),
        "grad_max_rel": grad_rel[worst],
    }
    out = {k: {"value": v, "tolerance": TOLERANCES[k], "pass": bool(v <= TOLERANCES[k])}
           for k, v in values.items()}
    out["grad_max_rel"]["worst"] = worst
    return out

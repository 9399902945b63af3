"""Compare each stack's probe with a reference stack's probe. A probe is what a twin
computes from the canonical initial weights (see cell/measure.py:save_probe).

Tolerances for float32 (machine epsilon 1.2e-7):
- forward, max abs diff <= 1e-5: logits are O(1) and a few thousand multiply-adds feed
  each one; reordered float32 sums differ by ~1e-6 at most, while a real twin difference
  (a flipped flatten order, a missing bias, another epsilon) moves logits by >= 1e-3.
  Larger logits widen it (and the loss's) by their size: see `magnitudes`.
- gradients, relative diff <= 1e-4, per tensor as max|a - b| / max|b| (norm-wise, so
  near-zero entries cannot blow it up): backward passes sum over the batch and over
  positions, which costs about one more order of magnitude of rounding.
- weights after SGD steps 1 and 3 and Adam step 1 (see SNAPSHOT_STEPS in
  cell/measure.py for why not Adam step 3), as the relative error of each tensor's
  *update* (w_after - w_init), norm-wise: ||upd_a - upd_b|| / ||upd_b|| <= 1e-3. Adam
  normalises every element, so an element whose gradient is mostly rounding noise (a
  cancelling sum, a max-pool tie) can move by a fraction of lr in one stack and not in
  the other: element-wise bounds would flag noise. A semantic difference (learning rate,
  betas, momentum convention, bias correction) changes every element's update by several
  percent, far above 1e-3.
- BatchNorm moving statistics (families that have them): the norm-wise relative error
  of their change from the initial values after SGD steps 1 and 3 and Adam step 1,
  <= 1e-3. They are state, not parameters, so they are checked here and left out of the
  two update checks above. A momentum in the other framework's convention (torch 0.1 is
  Keras 0.9) changes them by O(1) after one step; forward and gradients cannot see it
  (inference uses the initial statistics, training the batch's), nor can the losses.
  Training steps through BatchNorm are ill-conditioned in float32 on large inputs: a
  bias that the next conv -> BatchNorm nearly cancels gets a gradient that is a small sum
  of large terms, and on 28x28 digits the torch ResNet-20's own float32 and float64 runs
  differ by 1.6e-2 after three SGD steps (measured). On the 8x8 digits that `verify`
  probes ResNet with, twins agree to ~1e-5, within every tolerance here.
- padding invariance (text), max abs <= 1e-5: logits of short texts with and without
  padding appended, in the same stack; masking makes them equal up to rounding.
- loss over 10 training steps, relative <= 1e-3 per step: rounding differences compound
  through the updates (each step's weights feed the next), so this bound is looser; any
  semantic difference grows past it within a few steps.
- recipes (`verify --recipes`): 10 steps with a recipe's schedule, weight decay, clipping,
  loss and augmentation. The learning rate of every step, relative <= 1e-6 (Keras
  computes its schedule in float32, torch's twin in float64: 1e-7 apart at most; each
  step's difference is measured against the run's largest, as a warmup starts at 0); the
  weights after every step, as the norm-wise relative error of the update from the
  initial weights (as for SGD and Adam above), <= 1e-3; the loss of every step, relative
  <= 1e-3. A missed boundary, a coupled/decoupled swap or the other clipping moves a
  step's update by percents.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from twinbench.models.spec_base import trainable

# A parameter whose true gradient is identically zero (the attention key bias: softmax
# is invariant to adding the same q.b to every score of a query) gets a gradient of pure
# rounding noise, ~1e-11 of the largest one. Relative error of noise against noise is
# meaningless, and Adam turns it into full-size random-signed updates in every framework.
# Such tensors (largest |grad| below NOISE_FLOOR x the largest of all) are compared
# absolutely for the gradient, left out of the optimizer checks, and listed.
NOISE_FLOOR = 1e-8
# The same in training mode: a conv bias right before a BatchNorm is cancelled by the
# batch mean, so its training gradient is rounding noise although its inference-mode
# gradient (the probe's) is not. Measured (a Keras residual model, twinbench.byo): such
# biases' first SGD update is 2.6e-8 of the largest update, the smallest real one 1.2e-2.
# Tensors whose reference SGD step-1 update is below UPDATE_NOISE_FLOOR x the largest are
# left out of the optimizer checks too (and listed).
UPDATE_NOISE_FLOOR = 1e-6

TOLERANCES = {"forward_max_abs": 1e-5, "forward_max_rel": 1e-4, "loss_abs": 1e-5,
              "grad_max_rel": 1e-4, "sgd_update_rel": 1e-3, "adam_update_rel": 1e-3,
              "loss_10_steps_max_rel": 1e-3, "padding_invariance_max_abs": 1e-5,
              "moving_stats_rel": 1e-3, "recipe_lr_max_rel": 1e-6,
              "recipe_update_rel": 1e-3, "recipe_loss_max_rel": 1e-3}
QUICK_CHECKS = ("forward_max_abs", "forward_max_rel", "loss_abs", "grad_max_rel")


def load_probe(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


def noise_only(ref: dict) -> set[str]:
    """Parameter names whose reference gradient is rounding noise (see NOISE_FLOOR)."""
    grads = {k[5:]: float(np.max(np.abs(v))) for k, v in ref.items() if k.startswith("grad:")}
    top = max(grads.values(), default=0.0)
    return {k for k, v in grads.items() if v < NOISE_FLOOR * top}


def update_noise_only(ref: dict) -> set[str]:
    """Trained parameters whose reference SGD step-1 update is rounding noise (see
    UPDATE_NOISE_FLOOR), plus those of `noise_only`."""
    ups = {k[6:]: float(np.linalg.norm(v - ref["init:" + k[6:]])) for k, v in ref.items()
           if k.startswith("sgd@1:") and trainable(k[6:]) and "init:" + k[6:] in ref}
    top = max(ups.values(), default=0.0)
    return noise_only(ref) | {k for k, v in ups.items() if v < UPDATE_NOISE_FLOOR * top}


def worst_rel(probe: dict, ref: dict, prefix: str) -> tuple[float, str] | None:
    """Largest per-tensor relative diff over the keys starting with `prefix`; a
    noise-only gradient is measured against the largest gradient instead of itself."""
    keys = sorted(k for k in ref if k.startswith(prefix))
    if not keys:
        return None
    missing = [k for k in keys if k not in probe]
    if missing:
        raise ValueError(f"probe lacks {missing[:3]}")
    noise = noise_only(ref)
    top = max(float(np.max(np.abs(ref[k]))) for k in keys)
    diffs = {k: (float(np.max(np.abs(probe[k] - ref[k]))) / top if k[5:] in noise
                 else rel(probe[k], ref[k])) for k in keys}
    worst = max(diffs, key=diffs.get)
    return diffs[worst], worst


def worst_update_rel(probe: dict, ref: dict, prefix: str | tuple[str, ...],
                     keep: Callable[[str], bool] = trainable) -> tuple[float, str] | None:
    """Largest norm-wise relative error of a tensor's update from the initial weights,
    over the keys `prefix...:name` whose variable name `keep` accepts (by default the
    trained parameters, not BatchNorm's moving statistics)."""
    noise = update_noise_only(ref)
    keys = sorted(k for k in ref if k.startswith(prefix) and k.split(":", 1)[1] not in noise
                  and keep(k.split(":", 1)[1]))
    if not keys:
        return None
    diffs = {}
    for k in keys:
        init = ref["init:" + k.split(":", 1)[1]]
        upd_ref, upd = ref[k] - init, probe[k] - init
        scale = float(np.linalg.norm(upd_ref))
        diffs[k] = float(np.linalg.norm(upd - upd_ref)) / scale if scale > 0 else 0.0
    worst = max(diffs, key=diffs.get)
    return diffs[worst], worst


def values(probe: dict, ref: dict) -> dict[str, tuple[float, str | None]]:
    out: dict[str, tuple[float, str | None]] = {
        "forward_max_abs": (float(np.max(np.abs(probe["logits"] - ref["logits"]))), None),
        "forward_max_rel": (rel(probe["logits"], ref["logits"]), None),
        "loss_abs": (float(abs(probe["loss"] - ref["loss"])), None),
        "grad_max_rel": worst_rel(probe, ref, "grad:"),
    }
    for opt in ("sgd", "adam"):
        found = worst_update_rel(probe, ref, f"{opt}@")
        if found:
            out[f"{opt}_update_rel"] = found
    moving = worst_update_rel(probe, ref, ("sgd@", "adam@"), keep=lambda n: not trainable(n))
    if moving:
        out["moving_stats_rel"] = moving
    if "pad:padded" in probe:  # a property of this twin alone, not a comparison
        out["padding_invariance_max_abs"] = (
            float(np.max(np.abs(probe["pad:padded"] - probe["pad:trimmed"]))), None)
    if "adam:loss" in ref:
        steps = np.abs(probe["adam:loss"] - ref["adam:loss"]) / np.abs(ref["adam:loss"])
        out["loss_10_steps_max_rel"] = (float(steps.max()), f"step {int(steps.argmax()) + 1}")
    out.update(recipe_values(probe, ref))
    return out


def _worst_step(per_step: dict[str, float]) -> tuple[float, str]:
    worst = max(per_step, key=per_step.get)
    return per_step[worst], worst


def recipe_values(probe: dict, ref: dict) -> dict[str, tuple[float, str | None]]:
    """Per recipe probed (keys `recipe:<name>:...`): the worst step's learning rate and
    loss, relative, and the worst step's update from the initial weights."""
    names = sorted(k.split(":")[1] for k in ref if k.startswith("recipe:") and
                   k.endswith(":lr"))
    if not names:
        return {}
    lr, loss, upd = {}, {}, {}
    for name in names:
        key = f"recipe:{name}"
        for arrays, out in ((f"{key}:lr", lr), (f"{key}:loss", loss)):
            # against the largest of the run: a warmup's first lr is 0
            r = np.abs(probe[arrays] - ref[arrays]) / np.max(np.abs(ref[arrays]))
            out[f"{name} step {int(r.argmax()) + 1}"] = float(r.max())
        steps = len(ref[f"{key}:lr"])
        for s in range(1, steps + 1):
            found = worst_update_rel(probe, ref, f"recipe@{name}@{s}:")
            if found:
                upd[f"{name} step {s} {found[1].split(':', 1)[1]}"] = found[0]
    out = {"recipe_lr_max_rel": _worst_step(lr), "recipe_loss_max_rel": _worst_step(loss)}
    if upd:
        out["recipe_update_rel"] = _worst_step(upd)
    return out


def magnitudes(ref: dict[str, np.ndarray]) -> dict[str, float]:
    """The absolute checks' tolerances are for O(1) values: float32 rounds relative to a
    value's size, so logits (and the loss, which grows with them) larger than 1 widen
    them by that size. A BatchNorm'd ResNet at its initial weights, probed in inference
    mode (BatchNorm the identity), gives logits of about 80 on 32x32 images: measured,
    the twins' logits differ by up to 7.6e-5 there, at a relative 9.5e-7."""
    out = {"forward_max_abs": max(1.0, float(np.max(np.abs(ref["logits"]))))}
    out["loss_abs"] = max(1.0, float(abs(ref["loss"])))
    return out


def compare(probe: dict[str, np.ndarray], ref: dict[str, np.ndarray],
            tolerances: dict[str, float] | None = None) -> dict[str, dict]:
    """check -> {value, tolerance, pass[, worst]}; `tolerances` overrides some of
    TOLERANCES for one family (a spec module's PARITY_TOLERANCES, justified there)."""
    out = {}
    noise = sorted(update_noise_only(ref))
    limits = {**TOLERANCES, **(tolerances or {})}
    scale = magnitudes(ref)
    for check, (value, worst) in values(probe, ref).items():
        tol = limits[check] * scale.get(check, 1.0)
        out[check] = {"value": value, "tolerance": tol, "pass": bool(value <= tol)}
        if scale.get(check, 1.0) > 1.0:
            out[check]["scaled_by"] = scale[check]
        if worst:
            out[check]["worst"] = worst
        if noise and check != "loss_10_steps_max_rel" and "update" in check:
            out[check]["noise_only_excluded"] = noise
    return out


def first_failure(checks: dict[str, dict]) -> str | None:
    """'check: value > tolerance (worst)' for the first failing check, else None."""
    for name, c in checks.items():
        if not c["pass"]:
            where = f" at {c['worst']}" if "worst" in c else ""
            return f"{name} {c['value']:.3g} > {c['tolerance']:g}{where}"
    return None

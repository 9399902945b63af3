"""The parity probe, in a cell's process: everything the driver's parity checks compare,
computed from the canonical initial weights on a fixed batch (forward, loss, gradients;
with level "full" also SGD and Adam steps, a 10-step loss trajectory and the padding
check). Written to a numpy file the driver reads (`parity.compare`)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinbench.config import CellJob, OptimizerConfig
from twinbench.data import augment
from twinbench.data.dataset import batches, epoch_order
from twinbench.recipe import Recipe
from twinbench.stacks.base import Stack

PROBE_BATCH = 32  # samples in the fixed parity batch (the first of the test split)
PADDING_BATCH = 16  # shortest test texts, for the padding-invariance check
TRAJECTORY_STEPS = 10  # parity training steps (the first batches of epoch 0)
# Weights compared after these steps. SGD: steps 1 and 3, since one step alone cannot
# show a momentum convention (the first buffer equals the gradient). Adam: step 1 only.
# Adam divides each element by its own gradient scale, so an element whose gradient is
# mostly rounding noise (a frequent token's embedding row: thousands of cancelling terms)
# gets a random-signed update of ~lr, and by step 3 two correct twins differ there by
# more than lr (measured: textcnn, JAX vs torch). Adam's later steps are checked through
# the 10-step loss trajectory instead.
SNAPSHOT_STEPS = {"sgd": (1, 3), "adam": (1,)}
# A recipe's probe caps its peak learning rate here; every other knob is the recipe's.
# At He et al.'s 0.1 with momentum 0.9 the 10-step probe is chaotic on a 32-sample batch
# (loss swinging 3.3 to 5.8 from 4.75; measured): two builds of the *same* torch twin,
# eager and torch.compile'd, were 1.4e-2 apart in loss by step 10 and Keras-TensorFlow
# 0.26, growing from 1e-7 at step 1, so no tolerance could tell rounding from semantics.
# The schedule's shape, weight decay (decoupled decay scales with lr), clipping, loss and
# augmentation are unchanged, and each step's lr is still compared.
PROBE_MAX_LR = 0.01
# And its crop padding at a quarter of the probe image's side: 4 pixels on the 8x8 digits
# that ResNet is probed on leaves crops of mostly zeros, whose near-constant channels make
# training-mode BatchNorm ill-conditioned (measured, Keras-TensorFlow against torch: the
# update 6e-3 apart at step 1 and 0.3 by step 10 with padding 4, 4e-4 with padding 2, the
# same code). The 28x28 digits keep the recipe's 4.
PROBE_PAD_FRACTION = 4
PARITY_SGD = OptimizerConfig(name="sgd", learning_rate=0.01, momentum=0.9)


def save_probe(stack: Stack, job: CellJob, weights, data, x_train, x_test,
               phase: Callable[[str], None] = lambda name: None) -> dict:
    """Everything the driver's parity checks compare, on the canonical weights: forward,
    loss and gradients on a fixed batch; with parity_level "full" also the weights after
    SGD-with-momentum and Adam steps and the loss of 10 Adam steps, dropout off. `phase`
    names each part as it starts (the cell's phase clock: where a probe's time goes)."""
    phase("probe:gradients")
    probe = stack.probe(weights, x_test[:PROBE_BATCH], data.y_test[:PROBE_BATCH])
    arrays = {"logits": probe.logits, "loss": np.float64(probe.loss)}
    arrays.update({f"grad:{k}": v for k, v in probe.grads.items()})
    if x_test.ndim == 2 and job.parity_level == "full" and \
            getattr(stack.spec, "padding_invariant", True):  # ids: padding changes nothing
        phase("probe:padding")
        arrays.update(padding_probe(stack, weights, x_test))
    if job.parity_level == "full":
        order = epoch_order(len(data.y_train), job.run.seed, 0)
        steps = batches(len(order), job.run.batch_size)[:TRAJECTORY_STEPS]
        pairs = [(x_train[order[sl]], data.y_train[order[sl]]) for sl in steps]
        arrays.update({f"init:{k}": v for k, v in weights.items()})
        for name, cfg in (("sgd", PARITY_SGD), ("adam", job.run.optimizer)):
            phase(f"probe:{name}")
            losses, snaps, _ = stack.train_steps(weights, pairs, cfg)
            arrays[f"{name}:loss"] = np.asarray(losses)
            for step in SNAPSHOT_STEPS[name]:
                arrays.update({f"{name}@{step}:{k}": v for k, v in snaps[step - 1].items()})
    if job.run.parity_recipes:
        arrays.update({f"init:{k}": v for k, v in weights.items()})
        for recipe in job.run.parity_recipes:
            arrays.update(recipe_probe(stack, job, weights, data, recipe))
    np.savez(job.parity_path, **arrays)
    return {"probe_batch": PROBE_BATCH, "probe_path": str(job.parity_path),
            "parity_level": job.parity_level}


def recipe_batches(stack: Stack, job: CellJob, data, recipe: Recipe) -> list:
    """The first TRAJECTORY_STEPS batches of epoch 0, augmented by the recipe's plan in
    the canonical layout (numpy; crop padding capped, see PROBE_PAD_FRACTION), then put
    in the stack's own layout."""
    order = epoch_order(len(data.y_train), job.run.seed, 0)
    steps = batches(len(order), job.run.batch_size)[:TRAJECTORY_STEPS]
    order = order[: steps[-1].stop]
    aug = recipe.augment
    if aug.active and data.x_train.ndim == 4:
        side = min(data.x_train.shape[1:3])
        aug = aug.model_copy(update={"crop_padding": min(aug.crop_padding,
                                                         side // PROBE_PAD_FRACTION)})
        stats = augment.channel_stats(data.x_train) if aug.normalize else None
        x = augment.augmented_epoch(data.x_train, order, aug, job.run.seed, 0, stats)
    else:
        x = data.x_train[order]
    return [(stack.to_native(x[sl]), data.y_train[order][sl]) for sl in steps]


def recipe_probe(stack: Stack, job: CellJob, weights, data, recipe: Recipe) -> dict:
    """TRAJECTORY_STEPS steps of a recipe with its schedule resolved over those steps (so
    its boundaries, warmup and decay fall inside them), its peak learning rate capped at
    PROBE_MAX_LR, its weight decay, clipping, loss and augmentation: each step's loss,
    learning rate and weights after it."""
    cfg = recipe.optimizer.for_steps(TRAJECTORY_STEPS)
    cfg = cfg.model_copy(update={"learning_rate": min(cfg.learning_rate, PROBE_MAX_LR)})
    losses, snaps, lrs = stack.train_steps(weights, recipe_batches(stack, job, data, recipe),
                                           cfg, recipe.loss)
    key = f"recipe:{recipe.name}"
    out = {f"{key}:loss": np.asarray(losses), f"{key}:lr": np.asarray(lrs, np.float64)}
    for step, snap in enumerate(snaps, start=1):
        out.update({f"recipe@{recipe.name}@{step}:{k}": v for k, v in snap.items()})
    return out


def padding_probe(stack: Stack, weights, ids: np.ndarray) -> dict:
    """Logits of the PADDING_BATCH shortest texts, trimmed to their longest length and
    then with padding appended up to the full sequence length."""
    from twinbench.data.text import lengths

    n = lengths(ids)
    pick = np.argsort(n, kind="stable")[:PADDING_BATCH]
    trimmed = np.ascontiguousarray(ids[pick, : int(n[pick].max())])
    short, padded = stack.forward(weights, [trimmed, np.ascontiguousarray(ids[pick])])
    return {"pad:trimmed": short, "pad:padded": padded}


def roundtrip_max_abs(stack: Stack, weights: dict[str, np.ndarray]) -> float:
    back = stack.export_weights()
    if set(back) != set(weights):
        raise RuntimeError(f"canonical names differ after round trip: {sorted(back)}")
    return max(float(np.max(np.abs(back[k] - weights[k]))) for k in weights)

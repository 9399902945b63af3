"""One test per recipe trap between Keras and PyTorch, against the real framework
optimizers, schedules and losses on every Keras backend (recipe_twins.py, run inside the
shared per-backend child of conftest's `layer_results`). Each test asserts that the naive
port differs by far more than rounding, and that twinbench's reconciliation agrees.
Plus the framework-free parts: Keras's schedule formulas and the augmentation plan."""

import numpy as np
import pytest

from twinbench.data import augment
from twinbench.recipe import (RECIPES, AugmentConfig, OptimizerConfig, ScheduleConfig, lr_at,
                              resolve_recipes)

AGREE = 1e-6  # relative, float32 (one rounding per step at most, a few steps)
DIFFER = 1e-3  # a trap ignored moves the result by percents


def check(results: dict, ours: list[str], naive: list[str]) -> None:
    bad = {k: results[k] for k in ours if results[k] > AGREE}
    assert not bad, f"reconciliation disagrees with the real framework: {bad}"
    same = {k: results[k] for k in naive if results[k] <= DIFFER}
    assert not same, f"the naive port does not differ, so the test proves nothing: {same}"


def test_weight_decay_coupled_vs_decoupled(layer_results):
    check(layer_results, ["recipe_wd_decoupled_sgd", "recipe_wd_coupled_sgd", "recipe_wd_adamw"],
          ["naive_recipe_wd_torch_sgd_for_keras", "naive_recipe_wd_torch_adam_for_keras_adamw"])


def test_clipnorm_per_variable_vs_global(layer_results):
    check(layer_results, ["recipe_clipnorm_per_variable", "recipe_clipnorm_global",
                          "recipe_clip_value"],
          ["naive_recipe_clip_grad_norm_for_keras_clipnorm"])


def test_nesterov_momentum_formula_under_a_schedule(layer_results):
    check(layer_results, ["recipe_nesterov_scheduled"],
          ["naive_recipe_torch_nesterov_scheduled"])


def test_schedule_steps_per_optimizer_step_not_per_call(layer_results):
    check(layer_results, ["recipe_schedule_per_step", "recipe_schedules_vs_keras"],
          ["naive_recipe_schedule_per_call"])


def test_rmsprop_epsilon_placement_and_centered(layer_results):
    check(layer_results, ["recipe_rmsprop_plain", "recipe_rmsprop_centered", "recipe_adagrad"],
          ["naive_recipe_torch_rmsprop_plain", "naive_recipe_torch_rmsprop_centered",
           "naive_recipe_torch_adagrad"])


def test_label_smoothing_and_huber_delta_equal_both_sides(layer_results):
    check(layer_results, ["recipe_loss_cross_entropy", "recipe_loss_huber", "recipe_loss_mse"],
          ["naive_recipe_sparse_ce_drops_smoothing", "naive_recipe_smooth_l1_for_huber"])


def test_step_schedule_follows_keras_boundaries():
    """PiecewiseConstantDecay keeps values[i] while step <= boundary: the boundary step
    itself still has the old lr (He et al.'s recipe over 100 steps: 50 and 75)."""
    cfg = RECIPES["he-resnet"].optimizer.for_steps(100)
    lrs = [lr_at(cfg, t) for t in range(100)]
    assert lrs[50] == pytest.approx(0.1) and lrs[51] == pytest.approx(0.01)
    assert lrs[75] == pytest.approx(0.01) and lrs[76] == pytest.approx(0.001)
    warm = OptimizerConfig(learning_rate=1.0, schedule=ScheduleConfig(
        kind="cosine", warmup=0.5, total_steps=10))
    assert [lr_at(warm, t) for t in (0, 5, 10)] == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)


def test_recipe_validation_names_the_allowed_values():
    with pytest.raises(ValueError, match="valid: all, he-resnet"):
        resolve_recipes(["he"])
    with pytest.raises(ValueError, match="at most one"):
        OptimizerConfig(clipnorm=1.0, global_clipnorm=1.0)
    with pytest.raises(ValueError, match="decoupled"):
        OptimizerConfig(name="adamw", weight_decay_mode="coupled")
    with pytest.raises(ValueError, match="needs total_steps"):
        lr_at(RECIPES["he-resnet"].optimizer, 0)


def test_augmentation_plan_is_seeded_and_exact():
    """Crop offsets and flips come from (seed, epoch) alone; a crop at offset (p, p) with
    no flip is the image itself, and the padded border is zeros."""
    x = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)
    cfg = AugmentConfig(crop_padding=2, horizontal_flip=True)
    a, b = augment.plan(2, cfg, 0, 3), augment.plan(2, cfg, 0, 3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, augment.plan(2, cfg, 0, 4)))
    fixed = augment.AugmentPlan(np.array([2, 0]), np.array([2, 4]), np.array([False, True]))
    out = augment.apply(x, fixed, cfg)
    assert np.array_equal(out[0], x[0])
    # second: rows shifted down by 2 (top two rows zero), columns left by 2, then flipped
    want = np.zeros_like(x[1])
    want[2:, :2] = x[1][:2, 2:]
    assert np.array_equal(out[1], want[:, ::-1])
    norm = AugmentConfig(normalize=True)
    stats = augment.channel_stats(x)
    z = augment.apply(x, augment.plan(2, norm, 0, 0), norm, stats)
    assert np.allclose(z.mean(axis=(0, 1, 2)), 0, atol=1e-5)


def _traced(stack: str, model: str, lrs: list, count: int, losses: list) -> dict:
    return {"task": "t", "model": model, "stack": stack, "settings": {"recipe": {"name": "r"}},
            "metrics": {"recipe_trace": {"learning_rate": lrs, "count": count,
                                         "first_losses": losses}}}


def test_recipe_check_compares_every_steps_lr_and_the_first_losses_by_hand(tmp_path):
    """lr as run lengths [[first step, value], ...]; losses relative to torch's. The cnn
    is held to 1e-3, the resnet to its family's parity tolerance (5e-2)."""
    import json

    from typer.testing import CliRunner

    from twinbench.analysis.recipes import agreement
    from twinbench.cli import app

    lrs = [[0, 0.1], [4, 0.01]]  # 0.1 for steps 0-3, 0.01 for 4-5
    cells = [_traced("torch", "cnn", lrs, 6, [2.0, 1.5, 1.2]),
             _traced("keras-jax", "cnn", [[0, 0.1], [5, 0.01]], 6, [2.0, 1.5, 1.2]),  # late
             _traced("keras-tensorflow", "cnn", lrs, 6, [2.0, 1.5, 1.2018]),  # 1.5e-3 off
             _traced("torch", "resnet", lrs, 6, [2.0, 1.5, 1.2]),
             _traced("keras-jax", "resnet", lrs, 6, [2.0, 1.5, 1.224])]  # 2e-2 off
    rows = {(r.model, r.stack): r for r in agreement(cells)}
    late = rows[("cnn", "keras-jax")]  # step 4: 0.1 against 0.01 -> 0.09 / 0.1
    assert late.lr_max_rel == pytest.approx(0.9) and not late.ok and late.lr_changes == 1
    off = rows[("cnn", "keras-tensorflow")]
    assert off.loss_max_rel == pytest.approx(0.0018 / 1.2) and off.loss_tolerance == 1e-3
    assert not off.ok and rows[("cnn", "torch")].ok
    res = rows[("resnet", "keras-jax")]
    assert res.loss_max_rel == pytest.approx(0.02) and res.loss_tolerance == 5e-2 and res.ok
    (tmp_path / "results.json").write_text(json.dumps({"cells": cells}))
    out = CliRunner().invoke(app, ["recipe-check", str(tmp_path)])
    assert out.exit_code == 1 and "differs" in out.output and "0.05" in out.output

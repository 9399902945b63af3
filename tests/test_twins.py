"""The twins in every installed stack: same parameter count, weights that round-trip
through each framework bit for bit, and forward/gradient parity on the same weights."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import probe_stacks
from twinbench.stacks import STACKS


def test_every_stack_builds_the_same_twin(probe_run):
    assert [(c.model, c.stack) for c in probe_run.cells] == [
        (m, s) for m in ("cnn", "bilstm", "textcnn", "transformer", "resnet")
        for s in probe_stacks(m)]
    for c in probe_run.cells:
        assert c.status == "ok", (c.stack, c.reason, getattr(c, "stderr_tail", ""))
    assert {c.params for c in probe_run.cells if c.model == "cnn"} == {34_826}
    # ResNet-20 on the 8x8x1 probe digits: 269,722 on CIFAR's 32x32x3, less 2 x 144
    # weights of the first conv's two missing input channels
    assert {c.params for c in probe_run.cells if c.model == "resnet"} == {269_434}
    for model in ("bilstm", "textcnn", "transformer"):
        assert len({c.params for c in probe_run.cells if c.model == model}) == 1


def test_appending_padding_never_changes_a_text_output_in_any_stack(probe_run):
    text = [c for c in probe_run.cells if c.model in ("bilstm", "textcnn", "transformer")]
    assert len(text) == sum(len(probe_stacks(m)) for m in ("bilstm", "textcnn", "transformer"))
    for c in text:
        check = c.parity["checks"]["padding_invariance_max_abs"]
        assert check["pass"] and check["value"] <= 1e-5, (c.model, c.stack, check)
        # the probe's time, part by part (the padding check is forward-only)
        assert list(c.metrics["phase_s"])[-4:] == ["probe:gradients", "probe:padding",
                                                   "probe:sgd", "probe:adam"], c.metrics


def test_canonical_weights_round_trip_exactly_in_each_stack(probe_run):
    for c in probe_run.cells:
        assert c.parity["weights_roundtrip_max_abs"] == 0.0, c.stack


@pytest.mark.parametrize("check", ["param_count", "forward_max_abs", "forward_max_rel",
                                   "loss_abs", "grad_max_rel", "sgd_update_rel",
                                   "adam_update_rel", "loss_10_steps_max_rel"])
def test_twins_agree_on_the_same_weights(probe_run, check):
    for c in probe_run.cells:
        assert c.parity["reference"] == "torch"
        result = c.parity["checks"][check]
        assert result["pass"] and result["value"] <= result["tolerance"], (c.model, c.stack,
                                                                           result)
    assert probe_run.cell("digits", "keras-jax").parity["checks"]["forward_max_abs"][
        "tolerance"] == 1e-5


def test_batchnorm_moving_statistics_agree_after_training_steps(probe_run):
    """Only families with BatchNorm have the check; in every stack the moving mean and
    variance after SGD steps 1, 3 and Adam step 1 match the torch twin's."""
    for c in probe_run.cells:
        check = c.parity["checks"].get("moving_stats_rel")
        if c.model != "resnet":
            assert check is None, c.model
            continue
        assert check["pass"] and check["value"] <= 1e-3, (c.stack, check)
        assert check["worst"].split(":")[1].endswith(("moving_mean", "moving_variance"))
    resnet = [c for c in probe_run.cells if c.model == "resnet"]
    assert {c.data["input_shape"][0] for c in resnet} == {8}  # the small probe input


def test_verify_catches_a_batchnorm_momentum_copied_across_conventions(tmp_path):
    """Fixture: torch's nn.BatchNorm2d given Keras's momentum 0.9. Only the moving
    statistics show it: every other check passes."""
    env = {**os.environ, "TWINBENCH_FIXTURES": "1"}
    r = subprocess.run([sys.executable, "-m", "twinbench.cli", "verify", "--models",
                        "resnet-broken-momentum", "--stacks", "torch,keras-torch", "--out",
                        str(tmp_path)], env=env, capture_output=True, text=True, timeout=600,
                       check=False)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "FAIL resnet-broken-momentum keras-torch: moving_stats_rel" in r.stderr
    checks = json.loads((tmp_path / "verify.json").read_text())["cells"][1]["parity"]["checks"]
    assert [k for k, v in checks.items() if not v["pass"]] == ["moving_stats_rel"]
    assert checks["moving_stats_rel"]["value"] > 0.1


def test_no_foreign_framework_enters_a_cell_process(probe_run):
    """Trap: `import keras` imports jax on every backend unless kept out."""
    for c in probe_run.cells:
        assert c.settings["foreign_modules_loaded"] == [], c.stack
    assert "jax" in probe_run.cell("digits", "keras-torch").settings["foreign_imports_refused"]


def test_lstm_second_bias_is_frozen_so_parameter_counts_match(probe_run):
    """torch counts 4H more parameters per LSTM direction unless bias_hh is frozen."""
    from twinbench.models.bilstm.spec import BiLSTMSpec

    cells = [c for c in probe_run.cells if c.model == "bilstm"]
    spec = BiLSTMSpec(vocab=cells[0].data["vocab_size"], length=24)
    assert {c.params for c in cells} == {spec.param_count()}


def test_jit_compile_is_explicit_and_recorded(probe_run):
    for c in probe_run.cells:
        info = STACKS[c.stack]
        assert c.settings["jit_compile"] == info.jit_compile
        if info.framework == "keras":
            assert c.settings["jit_compile_resolved"] == info.jit_compile, c.stack


def test_thread_count_is_applied_in_each_cell(probe_run):
    threads = probe_run.config["threads"]
    for c in probe_run.cells:
        assert len(c.settings["affinity"]) == threads, c.stack
        applied = c.settings["thread_settings"]
        for key in ("torch.num_threads", "tf.intra_op"):
            if key in applied:
                assert applied[key] == threads, (c.stack, applied)


def test_verify_json_matches_the_returned_object(probe_run):
    out_dir = Path(probe_run.cells[0].parity["probe_path"]).parents[2]
    on_disk = json.loads((out_dir / "verify.json").read_text())
    assert on_disk["schema_version"] == 2
    written = [c for c in probe_run.cells if Path(c.parity["probe_path"]).parents[2] == out_dir]
    assert [(c["model"], c["stack"]) for c in on_disk["cells"]] == [
        (c.model, c.stack) for c in written]
    assert on_disk["environment"]["cpu_model"]


def test_verify_catches_the_broken_twin_and_names_the_check(tmp_path):
    """Fixture: a torch twin that loads the Dense kernel without the flatten-order fix."""
    env = {**os.environ, "TWINBENCH_FIXTURES": "1"}
    r = subprocess.run([sys.executable, "-m", "twinbench.cli", "verify", "--models",
                        "cnn-broken-flatten", "--stacks", "torch,keras-torch", "--out",
                        str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr[-2000:]
    assert "FAIL cnn-broken-flatten keras-torch: forward_max_abs" in r.stderr
    stored = json.loads((tmp_path / "verify.json").read_text())
    cell = stored["cells"][1]
    assert cell["parity"]["pass"] is False
    assert cell["parity"]["checks"]["param_count"]["pass"] is True  # counts cannot see it
    assert cell["parity"]["checks"]["forward_max_abs"]["value"] > 1e-2


def test_a_cell_failing_parity_is_marked_unverified():
    from twinbench.api import attach_parity
    from twinbench.results import Cell

    probe = Cell(task="digits", model="cnn", stack="keras-jax", status="ok",
                 parity={"pass": False, "failure": "forward_max_abs 0.3 > 1e-05"})
    timed = Cell(task="digits", model="cnn", stack="keras-jax", status="ok")
    attach_parity(timed, [probe])
    assert timed.status == "unverified" and timed.reason == "forward_max_abs 0.3 > 1e-05"


def test_a_compiled_twin_failing_where_its_eager_stack_passes_names_the_compiler(tmp_path):
    """The PyTorch MNIST example on torch 2.13's inductor (measured: zero conv gradients
    from the compiled module, while eager torch and every Keras twin agree): the failure
    says the compiler changed the function, so nobody debugs a correct twin."""
    from twinbench.parity.verdict import check_parity
    from twinbench.results import Cell

    rng = np.random.default_rng(0)
    good = {"logits": rng.normal(size=(4, 3)), "loss": np.float64(1.0),
            "grad:dense/kernel": rng.normal(size=(5, 3))}
    cells = []
    for stack, grad_scale in (("torch", 1), ("torch-compile[mode=reduce-overhead]", 0),
                              ("keras-jax", 1), ("keras-tensorflow", 1),
                              ("keras-tensorflow-xla", 0)):
        probe = {**good, "grad:dense/kernel": good["grad:dense/kernel"] * grad_scale}
        np.savez(tmp_path / f"{stack}.npz", **probe)
        cells.append(Cell(task="t", dataset="d", model="mine", stack=stack, status="ok",
                          params=15, parity={"probe_path": str(tmp_path / f"{stack}.npz")}))
    check_parity(cells)
    by = {c.stack: c.parity for c in cells}
    assert by["torch"]["pass"] and by["keras-jax"]["pass"]
    for compiled, eager in (("torch-compile[mode=reduce-overhead]", "torch"),
                            ("keras-tensorflow-xla", "keras-tensorflow")):
        assert not by[compiled]["pass"] and by[compiled]["compiler_fault"]
        assert by[compiled]["failure"].startswith("grad_max_rel")
        assert f"{eager} passes with the same twin, so {compiled}'s compiler changed" in \
            by[compiled]["failure"]
    # the eager twin failing too: nothing to blame on the compiler
    from twinbench.parity.verdict import _name_a_compiler_fault

    tc = cells[1].model_copy(deep=True)
    tc.parity = {"pass": False, "failure": "grad_max_rel 1 > 0.0001"}
    _name_a_compiler_fault(tc, {"torch": cells[1]})  # (torch-compile's own verdict: failed)
    assert "compiler_fault" not in tc.parity and tc.parity["failure"].endswith("0.0001")


def test_absolute_checks_scale_with_the_logits_and_still_catch_a_twin_difference():
    """Logits of ~80 (a BatchNorm'd ResNet at init on 32x32 images) round 80x coarser than
    O(1) ones: rounding passes, a 1e-3 relative difference (a twin fault) still fails."""
    from twinbench.parity.compare import compare

    rng = np.random.default_rng(0)
    ref = {"logits": 80 * rng.normal(size=(8, 10)).astype(np.float32),
           "loss": np.float64(40.0), "grad:w": rng.normal(size=(3, 3))}
    rounding = {**ref, "logits": ref["logits"] * (1 + 9.5e-7), "loss": np.float64(40.00004)}
    checks = compare(rounding, ref)
    assert checks["forward_max_abs"]["pass"] and checks["loss_abs"]["pass"], checks
    assert checks["forward_max_abs"]["scaled_by"] > 80
    wrong = {**ref, "logits": ref["logits"] * (1 + 1e-3)}
    assert not compare(wrong, ref)["forward_max_abs"]["pass"]
    # O(1) logits: the tolerance is as written
    small = {**ref, "logits": ref["logits"] / 1000, "loss": np.float64(0.5)}
    assert "scaled_by" not in compare(small, small)["forward_max_abs"]

"""Suites: the shipped TOML files, their validation (one line naming the file, the field
and the allowed values), and how a suite becomes the run's tasks, stacks and targets."""

import subprocess
import sys
from pathlib import Path

import pytest

from twinbench.api import TwinbenchError, plan, submission
from twinbench.config import CellJob, RunConfig
from twinbench.data.registry import TASKS
from twinbench.suite import SuiteError, load_suite, shipped

GOOD = '''
name = "mine"
stacks = ["torch", "keras-jax"]

[[tasks]]
name = "m"
dataset = "mnist"
model = "cnn"
epochs = 2
batch_size = 64
target_accuracy = 0.97
target_source = "a test"
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.toml"
    path.write_text(text)
    return path


def test_shipped_suites_load_and_quick_is_the_built_in_tasks():
    assert shipped() == ["quick", "standard"]
    quick = load_suite("quick")
    assert {t.name: t.info() for t in quick.tasks} == {k: TASKS[k] for k in ("digits", "text")}


def test_standard_suite_names_literature_targets_with_sources():
    s = load_suite("standard")
    got = {t.name: (t.dataset, t.model, t.target_accuracy) for t in s.tasks}
    assert got == {"mnist": ("mnist", "cnn", 0.99),
                   "fashion-mnist": ("fashion-mnist", "cnn", 0.90),
                   "cifar10": ("cifar10", "resnet", 0.91),
                   "imdb": ("imdb", "bilstm", 0.85),
                   "ag-news": ("ag-news", "textcnn", 0.90)}
    assert "He et al. 2016" in s.task("cifar10").target_source
    assert all(t.target_source for t in s.tasks) and s.stacks == ()


@pytest.mark.parametrize("edit, message", [
    (('dataset = "mnist"', 'dataset = "cifar"'),
     r"\[\[tasks\]\] #1 \(m\): dataset: unknown data set 'cifar'; valid: digits, "),
    (('model = "cnn"', 'model = "bilstm"'),
     r"model 'bilstm' does not fit data set 'mnist' \(image\); valid: cnn, resnet"),
    (("epochs = 2", "epochs = 0"), r"#1 \(m\): epochs: Input should be greater than or equal"),
    (("epochs = 2", "epoch = 2"), r"#1 \(m\): epoch: unknown field; valid: name, dataset, model,"),
    (('target_source = "a test"', ""), "target_accuracy needs a target_source"),
    (('"keras-jax"', '"keras-jaxx"'), "stacks: unknown stack 'keras-jaxx'; valid: torch, "),
    (('name = "mine"', 'name = "mine"\nowner = "me"'), "owner: unknown field; valid: name, "),
    (("batch_size = 64", ("batch_size = 64\n[[tasks]]\nname = \"m\"\ndataset = \"mnist\"\n"
                          "model = \"cnn\"\nepochs = 1\nbatch_size = 1")),
     "task name 'm' appears twice"),
    (("batch_size = 64", "batch_size = "), r"not valid TOML \(Invalid value"),
])
def test_a_bad_suite_is_one_line_naming_file_field_and_valid_values(tmp_path, edit, message):
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(SuiteError, match=f"^suite {path}: .*{message}") as e:
        load_suite(path)
    assert "\n" not in str(e.value)


def test_an_unknown_suite_lists_the_shipped_ones():
    with pytest.raises(SuiteError, match="unknown suite 'nope'; valid: quick, standard, or the "
                                         "path of a .toml file"):
        load_suite("nope")


def test_a_suite_gives_the_run_its_tasks_stacks_and_targets(tmp_path, monkeypatch):
    config = RunConfig(suite=write(tmp_path, GOOD), out=tmp_path / "out")
    assert config.tasks == ("m",) and config.stacks == ("torch", "keras-jax")
    p = plan(config)
    assert p.cells == [("m", "mnist", "cnn", "torch", 0), ("m", "mnist", "cnn", "keras-jax", 0)]
    job = submission(p, p.cells[0], {"mnist": tmp_path / "mnist.npz"}, "full", "quick",
                     "cells").job
    assert (job.run.epochs, job.run.batch_size) == (2, 64)
    assert (job.target_accuracy, job.target_source) == (0.97, "a test")
    # the cell's process re-validates its job from JSON, suite included
    again = CellJob.model_validate_json(job.model_dump_json())
    assert again.run.suite == config.suite and again.target_accuracy == 0.97
    assert config.model_dump(mode="json")["suite"]["tasks"][0]["target_source"] == "a test"


def test_tasks_select_within_the_suite_and_flags_override_it(tmp_path):
    config = RunConfig(suite="standard", tasks=("imdb", "mnist"), stacks=("torch",), epochs=1,
                       repeats=1)
    assert [c[:3] for c in plan(config).cells] == [("imdb", "imdb", "bilstm"),
                                                   ("mnist", "mnist", "cnn")]
    with pytest.raises(TwinbenchError, match="unknown task 'digits' in suite 'standard'; "
                                             "valid: mnist, fashion-mnist, cifar10, imdb"):
        plan(RunConfig(suite="standard", tasks=("digits",)))
    with pytest.raises(TwinbenchError, match="does not fit task 'cifar10'"):
        plan(RunConfig(suite="standard", tasks=("cifar10",), dataset="imdb"))


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "twinbench.cli", *args],
                          capture_output=True, text=True, timeout=60, check=False)


def test_cli_bad_suite_exits_2_with_one_line(tmp_path):
    bad = write(tmp_path, GOOD.replace('model = "cnn"', 'model = "lenet"'))
    r = cli("run", "--suite", str(bad), "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "Traceback" not in r.stderr + r.stdout
    assert "model: unknown model 'lenet'; valid: cnn, bilstm, textcnn, transformer, resnet" in (
        " ".join(r.stderr.split()))
    r = cli("run", "--suite", "standard", "--tasks", "nope", "--out", str(tmp_path / "o2"))
    assert r.returncode == 2 and "valid: mnist, fashion-mnist, cifar10" in r.stderr


def test_suites_carry_their_repeats_and_the_flag_overrides():
    assert RunConfig(suite="standard").repeats == 3  # CIs across processes, 3 seeds
    assert RunConfig(suite="quick").repeats == 1  # fast
    assert RunConfig(suite="standard", repeats=1).repeats == 1


def test_the_default_run_is_the_quick_suite_with_its_settings_and_options_win():
    default = RunConfig()  # what `make run` and a bare `twinbench.run()` plan
    assert default.suite is not None and default.suite.name == "quick"
    assert default.tasks == ("digits", "text")
    fixed = default.suite.settings.given()
    assert fixed == {"latency_budget_s": 1.0, "loadgen_duration_s": 0.25, "probe_jobs": 2}
    assert (default.latency_budget_s, default.loadgen_duration_s) == (1.0, 0.25)
    # an option given to the run wins; a suite without settings keeps the run's defaults
    assert RunConfig(latency_budget_s=3.0).latency_budget_s == 3.0
    assert RunConfig(suite="standard").latency_budget_s == 2.0
    assert RunConfig(tasks=("digits",)).suite is None  # a task named alone: no suite
    # the report's first lines state what the suite fixed, and an override
    from twinbench.analysis.verdicts import _suite_line

    cfg = RunConfig(latency_budget_s=3.0).model_dump(mode="json")
    assert _suite_line(cfg) == ["suite: quick; its file sets latency_budget_s 1.0 (this run: "
                                "3.0), loadgen_duration_s 0.25, probe_jobs 2"]


def test_a_suite_setting_that_is_not_a_run_setting_is_one_line(tmp_path):
    bad = write(tmp_path, GOOD + "\n[settings]\nlatency_budget = 1\n")
    with pytest.raises(SuiteError, match="latency_budget: unknown field; valid: latency_calls"):
        load_suite(bad)


def test_the_cli_leaves_the_suite_settings_unless_the_option_is_given():
    from twinbench.cli.run_commands import run_config_kwargs

    base = dict(models=None, cell_timeout=900.0, wait_quiet=0.0, tasks=None, stacks=None,
                threads=None, repeats=None, latency_calls=None, latency_budget=None,
                probe_jobs=None,
                suite=None, **{k: None for k in (
                    "dataset", "data_dir", "holdout", "epochs", "batch_size", "seed",
                    "target_accuracy", "out", "cell_memory_mb",
                    "latency_bound_ms", "loadgen", "device", "executor", "ray_address",
                    "export", "model", "data", "image_size")})
    kw = {k: v for k, v in run_config_kwargs(base).items() if v is not None}
    assert RunConfig(**kw).latency_budget_s == 1.0
    kw = run_config_kwargs({**base, "latency_budget": 0.5, "latency_calls": 50})
    got = RunConfig(**{k: v for k, v in kw.items() if v is not None})
    assert (got.latency_budget_s, got.latency_calls) == (0.5, 50)


def test_a_task_names_a_recipe_and_the_cell_job_carries_it(tmp_path):
    """A shipped recipe by name or a table; the job's run carries it (and its optimizer),
    the standard suite's CIFAR-10 task has He et al.'s, and --recipe overrides a task's."""
    table = GOOD + '''[tasks.recipe]
name = "mine"
optimizer = { name = "sgd", learning_rate = 0.1, momentum = 0.9, weight_decay = 1e-4, schedule = { kind = "step", boundaries = [0.5, 0.75] } }
loss = { label_smoothing = 0.1 }
augment = { crop_padding = 4, horizontal_flip = true }
'''
    config = RunConfig(suite=write(tmp_path, table), out=tmp_path / "out")
    p = plan(config)
    job = submission(p, p.cells[0], {"mnist": tmp_path / "m.npz"}, "full", "quick", "cells").job
    assert job.run.recipe.name == "mine" and job.run.optimizer == job.run.recipe.optimizer
    assert job.run.recipe.optimizer.schedule.boundaries == (0.5, 0.75)
    again = CellJob.model_validate_json(job.model_dump_json())
    assert again.run.recipe == job.run.recipe
    cifar = load_suite("standard").task("cifar10").recipe
    assert cifar.name == "he-resnet" and cifar.optimizer.weight_decay_mode == "coupled"
    assert cifar.augment.crop_padding == 4 and cifar.augment.horizontal_flip
    from twinbench.recipe import RECIPES

    forced = RunConfig(suite=write(tmp_path, table), out=tmp_path / "o2",
                       recipe=RECIPES["adagrad"])
    p2 = plan(forced)
    job2 = submission(p2, p2.cells[0], {"mnist": tmp_path / "m.npz"}, "full", "quick",
                      "cells").job
    assert job2.run.recipe.name == "adagrad"
    with pytest.raises(SuiteError, match="unknown recipe 'he'; valid: he-resnet"):
        load_suite(write(tmp_path, GOOD + 'recipe = "he"\n'))

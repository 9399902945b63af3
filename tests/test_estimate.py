"""Every long command says what it will run and about how long that takes, before it
starts: from this machine's history where it has one, else the reference figures. And the
pipelines command defaults to its quick plan."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from twinbench.cli import app
from twinbench.config import RunConfig
from twinbench.estimate import estimate, plan_line
from twinbench.pipelines.api import QUICK_PLAN, PipelineConfig
from twinbench.pipelines.api import plan as pipelines_plan
from twinbench.plan import plan
from twinbench.store.db import Store


def _stored(store: Store, phase: str, stack: str, wall: float, epochs: int = 1) -> None:
    store.start_run("r1", "/tmp/x", {}, {})
    cell = {"task": "digits", "dataset": "digits", "model": "cnn", "stack": stack,
            "repeat": 0, "status": "ok", "wall_s": wall,
            "settings": {"epochs": epochs, "batch_size": 32, "threads": 1}}
    store.put_cell("r1", phase, 0, cell)


def test_the_estimate_uses_this_machines_history_for_cells_it_has_seen(tmp_path):
    store = Store(tmp_path / "h.db")
    _stored(store, "full", "torch", 40.0)
    _stored(store, "probe", "torch", 6.0)
    p = plan(RunConfig(tasks=("digits",), stacks=("torch", "keras-jax"), epochs=1,
                       batch_size=32, threads=1))
    e = estimate(p, store, lambda t: 1, lambda t: 32)
    assert e.cells == 4 and e.from_history == 2  # torch's probe and timed cell
    seen = e.seconds - estimate(p, None, lambda t: 1, lambda t: 32).seconds
    unseen = estimate(p, None, lambda t: 1, lambda t: 32)
    assert unseen.from_history == 0 and seen != 0
    line = plan_line(p, store)
    assert line.startswith("plan: 2 timed cells and 2 parity probes (1 task(s) x 2 stack(s)")
    assert "2 of 4 cells from this machine's history" in line
    assert "narrow it with --tasks, --stacks, --repeats or --epochs" in line
    assert "no figure at all" not in line  # every built-in stack has a reference figure
    _stored(store, "full", "keras-jax", 20.0)
    _stored(store, "probe", "keras-jax", 4.0)
    assert "(all 4 cells from this machine's history)" in plan_line(p, store)


def test_a_dry_run_prints_the_plan_and_estimate_and_creates_no_history(tmp_path, monkeypatch):
    db = tmp_path / "none.db"
    res = CliRunner().invoke(app, ["run", "--dry-run", "--tasks", "digits", "--stacks",
                                   "torch,torch", "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("plan: 2 timed cells and 2 parity probes")
    assert "estimate about" in res.output and "no history yet" in res.output
    assert not db.exists()


def test_pipelines_default_to_the_quick_plan_and_full_gives_every_measurement():
    quick, _ = pipelines_plan(PipelineConfig())
    assert {m.task for m in quick} == set(QUICK_PLAN["tasks"])
    assert {m.pipeline for m in quick} == set(QUICK_PLAN["pipelines"])
    assert {m.stack for m in quick} - {None} <= set(QUICK_PLAN["stacks"])
    full, _ = pipelines_plan(PipelineConfig(full=True))
    assert len(full) > 60 > len(quick)
    # a name given overrides the plan's default for that axis only
    one, _ = pipelines_plan(PipelineConfig(pipelines=("numpy",)))
    assert {m.pipeline for m in one} == {"numpy"} and {m.task for m in one} == {"digits"}


@pytest.mark.parametrize("args, expect", [([], "--full runs every task"),
                                          (["--full"], "narrow it with --tasks")])
def test_pipelines_print_their_plan_before_they_start(args, expect, monkeypatch):
    import twinbench.pipelines.api as api

    def stop(*a, **k):
        raise KeyboardInterrupt  # the plan line is printed before anything runs

    monkeypatch.setattr(api, "run", stop)
    res = CliRunner().invoke(app, ["pipelines", *args])
    assert res.output.startswith("plan: ") and expect in res.output

"""The CLI's edges (issue 15.3): help texts, --version, completion, --format, results.csv,
and the one-line refusal off Linux. In process, on constructed files: nothing trains."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import sys

import pytest
import typer
from typer.testing import CliRunner

from report_fixtures import results as synthetic, slowed, write_run
from twinbench.cli import app, main
from twinbench.results import Results
from twinbench.store import Store


def call(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


def rendered_help(*args: str) -> str:
    """--help as a user sees it, on a terminal wide enough that no line wraps."""
    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "3000"})
    assert r.exit_code == 0, r.output
    return r.output


def test_every_default_written_in_a_help_text_is_shown():
    # Rich reads a bare "[default: x]" as a markup tag and drops it ("Threads per cell .").
    commands = typer.main.get_command(app).commands
    written = 0
    for name, command in commands.items():
        out = rendered_help(name)
        for param in command.params:
            for text in re.findall(r"\\?\[default: [^\]]*\]", getattr(param, "help", "") or ""):
                written += 1
                assert text.replace("\\", "") in out, (name, param.name, text)
    assert written >= 25  # the count when this test was written: the scan found them
    assert "Threads per cell [default: all CPUs]." in rendered_help("run")


def test_version_and_shell_completion(capsys):
    from twinbench import __version__

    assert call(["--version"], capsys)[:2] == (0, f"twinbench {__version__}\n")
    top = rendered_help()
    assert "--install-completion" in top and "--show-completion" in top


def test_rows_tell_repeats_apart_and_csv_is_written_beside_results_json(tmp_path):
    res = synthetic({"torch": (1000.0, 1.0)}, repeats=2)
    rows = res.rows()
    assert [(r["dataset"], r["repeat"]) for r in rows] == [("digits", 0), ("digits", 1)]
    assert rows[0]["threads"] == 2 and rows[0]["wall_s"] == 5.0
    assert "batch_size" in rows[0] and rows[0]["latency_b1_ms.p50"] > 0
    res.write(tmp_path)
    table = list(csv.DictReader(io.StringIO((tmp_path / "results.csv").read_text())))
    assert [r["repeat"] for r in table] == ["0", "1"]
    assert float(table[1]["latency_b1_ms.p50"]) == rows[1]["latency_b1_ms.p50"]
    assert json.loads(table[0]["epochs"]) == rows[0]["epochs"]  # a list is one JSON cell
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "results.json"]
    pd = pytest.importorskip("pandas")
    assert pd.DataFrame(rows).columns.tolist() == res.to_dataframe().columns.tolist()


@pytest.fixture
def stored_run(tmp_path):
    res = synthetic({"torch": (1000.0, 1.0), "keras-jax": (700.0, 2.0)})
    store = Store(tmp_path / "h.db")
    store.start_run("r1", tmp_path, res.config, res.environment)
    for c in res.cells:
        store.put_cell("r1", "full", c.repeat, c.model_dump(mode="json"))
    store.finish_run("r1", "complete")
    return str(tmp_path / "h.db"), res


def test_history_and_show_print_json_and_csv(stored_run, capsys):
    db, res = stored_run
    code, out, _ = call(["history", "--db", db, "--format", "json"], capsys)
    (run,) = json.loads(out)
    assert code == 0 and run["run_id"] == "r1" and run["config"] == res.config
    code, out, _ = call(["history", "--db", db, "--format", "csv"], capsys)
    assert code == 0 and next(csv.DictReader(io.StringIO(out)))["n_cells"] == "2"
    code, out, _ = call(["show", "r1", "--db", db, "--format", "json"], capsys)
    shown = json.loads(out)
    assert shown["status"] == "complete" and len(Results.model_validate(shown).cells) == 2
    code, out, _ = call(["show", "r1", "--db", db, "--format", "csv"], capsys)
    assert [r["stack"] for r in csv.DictReader(io.StringIO(out))] == ["torch", "keras-jax"]
    code, _, err = call(["history", "--db", db, "--format", "xml"], capsys)
    assert code == 2 and err.count("\n") == 1 and "xml" in err


def test_stacks_and_compare_print_json_and_csv(tmp_path, capsys):
    code, out, _ = call(["stacks", "--format", "json"], capsys)
    assert code == 0 and "torch" in {s["stack"] for s in json.loads(out)}
    code, out, _ = call(["stacks", "--format", "csv"], capsys)
    assert code == 0 and out.startswith("stack,installed,")
    base = synthetic({"torch": (1000.0, 1.0)}, repeats=3)
    a, b = write_run(tmp_path / "a", base), write_run(tmp_path / "b", slowed(base, 1.5))
    code, out, _ = call(["compare", str(a), str(b), "--format", "json"], capsys)
    assert code == 1 and json.loads(out)["regressions"]  # still exit 1 on a regression
    code, out, _ = call(["compare", str(a), str(b), "--format", "csv"], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 1 and {"metric", "ratio", "verdict"} <= set(rows[0])


@pytest.mark.parametrize("command", [["run", "--dry-run"], ["verify"], ["latency"],
                                     ["export"], ["pipelines"]])
def test_off_linux_the_cell_commands_refuse_in_one_line(command, monkeypatch, capsys):
    monkeypatch.delattr(os, "sched_getaffinity")
    monkeypatch.setattr(sys, "platform", "darwin")
    code, out, err = call(command, capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in out + err
    assert "Linux only" in err and "os.sched_getaffinity" in err and "prctl" in err


def test_extras_are_ranges_that_keep_the_installed_torch():
    from pathlib import Path

    from packaging.requirements import Requirement  # pytest depends on packaging

    try:
        import tomllib
    except ImportError:  # Python 3.10: twinbench depends on tomli there
        import tomli as tomllib

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for extra in project["optional-dependencies"].values()
            for r in extra]
    assert not [str(r) for r in reqs if any(s.operator == "==" for s in r.specifier)]
    (torch,) = [r for r in reqs if r.name == "torch"]
    assert "2.13.0" in torch.specifier and "2.14.0" not in torch.specifier
    assert project["license"] == "MIT" and "the twinbench authors" in (
        root / "LICENSE").read_text()

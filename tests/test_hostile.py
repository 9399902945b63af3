"""Hostile input (issue 18, classes 5-7): local data folders read as safely as downloads,
user strings shown literally by rich and inert in report.md, odd or unwritable paths and
malformed files as one line, never a traceback, and the fault hook off outside tests.
Every case is built here from small files; nothing trains."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.progress import Progress

from report_fixtures import cell, results, write_run
from twinbench import cli
from twinbench.data import text_sets
from twinbench.data.download import DataError, Remote, locate, read_local, safe_extract
from twinbench.report import console as tables
from twinbench.report.export_table import export_table
from twinbench.results import SCHEMA_VERSION, Cell, Results
from twinbench.store import Store

FAST = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.too_slow,
                                       HealthCheck.function_scoped_fixture])


def call(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return e.value.code or 0, out, err


def one_line_error(code: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error:"), (code, err)
    for n in needles:
        assert n in lines[0], (n, lines[0])


# --- class 5: local data folders ----------------------------------------------------------
def imdb_folder(root: Path) -> Path:
    """A minimal extracted IMDB: one review per split and label."""
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            folder = root / "aclImdb" / split / label
            folder.mkdir(parents=True)
            (folder / f"0_{label}.txt").write_text(f"{split} {label}")
    return root


def _fifo(p: Path, outside: Path) -> None:
    os.mkfifo(p)  # reading it would block forever


HOSTILE_FILES = {
    "fifo": (_fifo, "not a regular file"),
    "dev-zero": (lambda p, o: p.symlink_to("/dev/zero"), "outside"),
    "link-out": (lambda p, o: p.symlink_to(o), "outside"),
    "loop": (lambda p, o: p.symlink_to(p), "cannot be read"),
    "folder": (lambda p, o: p.mkdir(), "not a regular file"),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE_FILES))
def test_imdb_folder_reads_regular_files_under_it_only(tmp_path, kind):
    root = imdb_folder(tmp_path / "data")
    secret = tmp_path / "secret.txt"
    secret.write_text("not a review")
    make, message = HOSTILE_FILES[kind]
    make(root / "aclImdb" / "train" / "pos" / "9_hostile.txt", secret)
    with pytest.raises(DataError, match=message):
        text_sets.load_imdb(root, None)


def test_imdb_links_inside_the_folder_and_size_limit(tmp_path, monkeypatch):
    root = imdb_folder(tmp_path / "data")
    pos = root / "aclImdb" / "train" / "pos"
    (pos / "1_link.txt").symlink_to(pos / "0_pos.txt")  # stays inside: read as a review
    assert text_sets.load_imdb(root, None).train_texts.count("train pos") == 2
    monkeypatch.setattr(text_sets, "REVIEW_BYTES", 4)
    with pytest.raises(DataError, match="over the 4-byte limit"):
        text_sets.load_imdb(root, None)


def test_a_missing_split_is_one_line_before_any_cell(tmp_path, capsys):
    root = imdb_folder(tmp_path / "data")
    for label in ("neg", "pos"):
        (root / "aclImdb" / "test" / label / f"0_{label}.txt").unlink()
    with pytest.raises(DataError, match="no test reviews"):
        text_sets.load_imdb(root, None)
    out = tmp_path / "out"
    code, _, err = call(["run", "--tasks", "text", "--dataset", "imdb", "--data-dir", root,
                         "--stacks", "torch", "--out", out, "--db", tmp_path / "h.db"], capsys)
    one_line_error(code, err, "no test reviews")
    assert not (out / "cells").exists() and not (out / "verify").exists()


def test_pinned_files_in_a_data_dir_are_regular_files_inside_it(tmp_path):
    body = b"1,hello\n"
    remote = Remote("data.csv", "http://127.0.0.1:9/never", "sha256",
                    hashlib.sha256(body).hexdigest())
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_bytes(body)  # the right bytes, but outside the folder
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "data.csv").symlink_to(elsewhere)
    with pytest.raises(DataError, match="outside"):
        locate(remote, folder, "demo")
    (folder / "data.csv").unlink()
    os.mkfifo(folder / "data.csv")
    with pytest.raises(DataError, match="not a regular file"):
        locate(remote, folder, "demo")
    (folder / "data.csv").unlink()
    (folder / "data.csv").write_bytes(body)
    assert locate(remote, folder, "demo") == folder / "data.csv"
    assert read_local(folder, "data.csv", 8) == body
    with pytest.raises(DataError, match="over the 7-byte limit"):
        read_local(folder, "data.csv", 7)


def test_an_unwritable_cache_folder_is_a_data_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("TWINBENCH_CACHE", str(blocker / "cache"))  # a path under a file
    remote = Remote("x.csv", "http://127.0.0.1:9/never", "sha256", "0" * 64)
    with pytest.raises(DataError, match="not writable.*TWINBENCH_CACHE"):
        locate(remote, None, "demo")
    with pytest.raises(DataError, match="not writable"):
        safe_extract(tmp_path / "none.tar.gz", blocker / "extracted")


# --- class 6: rich markup and other printed user text ----------------------------------------
# Printable, no spaces (a table may wrap there), with the characters markup is made of.
piece = st.text(st.one_of(st.characters(categories=["L", "N", "P", "S"]),
                          st.sampled_from("[]/\\:@#=")), min_size=1, max_size=16)
MARKUP = ["[/x]", "[bold]", "x\\", "\\[/x]", "[/]", ":smile:", "[link=http://e]y[/link]"]


def wide() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, width=4000, emoji=False, color_system=None), buf


def hostile_cells(task: str, model: str, stack: str, reason: str) -> list[Cell]:
    import numpy as np

    rng = np.random.default_rng(0)
    ok = cell(stack, 900.0, 1.0, rng, task=task, model=model)
    ok.dataset, ok.parity["reference"] = reason, reason
    ok.metrics["latency_b1_ms"]["path"] = reason
    ok.metrics["loadgen"] = {"path": reason, "error": reason}
    failed = cell(stack, 0, 0, rng, task=task, model=model, status="failed", reason=reason,
                  repeat=1)
    failed.portability = [{"format": reason, "runtime": stack, "status": "failed",
                           "reason": reason}]
    return [ok, failed]


@FAST
@given(task=piece, model=piece, stack=piece, reason=piece)
@example(task=MARKUP[0], model=MARKUP[1], stack=MARKUP[2], reason=MARKUP[6])
@example(task=MARKUP[3], model=MARKUP[4], stack=MARKUP[5], reason="y\\\\")
def test_every_console_table_shows_user_strings_literally(task, model, stack, reason):
    res = Results(run_id=task, environment={}, config={"repeats": 2},
                  cells=hostile_cells(task, model, stack, reason))
    con, buf = wide()
    for table in (tables.summary_table(res), tables.parity_table(res),
                  tables.repeats_table(res), tables.loadgen_table(res), export_table(res)):
        con.print(table)
    text = buf.getvalue()
    for s in (task, model, stack, reason):
        assert s in text, s
    progress = Progress(console=con)
    events = cli._progress_events(progress)
    events.on_cell_start(task, stack)
    events.on_cell_end(res.cells[1])
    events.on_warning(reason)
    con.print(progress.get_renderable())
    assert f"{task} / {stack}" in buf.getvalue() and reason in buf.getvalue()


@FAST
@given(run_id=piece, status=piece, out_dir=piece, task=piece, reason=piece)
@example(run_id=MARKUP[0], status=MARKUP[1], out_dir=MARKUP[2], task=MARKUP[3],
         reason=MARKUP[4])
def test_history_and_show_print_db_rows_literally(tmp_path_factory, capsys, monkeypatch,
                                                  run_id, status, out_dir, task, reason):
    wide = Console(width=4000, emoji=False, color_system=None)
    for module in (cli.common, cli.results_commands):  # history and show print from these
        monkeypatch.setattr(module, "console", wide)
    db = tmp_path_factory.mktemp("db") / "h.db"
    store = Store(db)
    store.start_run(run_id, out_dir, {"repeats": 1}, {})  # as stored, not a Path
    bad = Cell(task=task, model=reason, stack=task, dataset=reason, status="failed",
               reason=reason)
    store.put_cell(run_id, "full", 0, bad.model_dump(mode="json"))
    store.finish_run(run_id, status)
    store.close()
    stored = str(Path(out_dir).absolute())  # the history keeps run folders absolute
    code, out, _ = call(["history", "--db", db], capsys)
    assert code == 0 and all(s in out for s in (run_id, status, stored))
    code, out, _ = call(["show", "--db", db, "--", run_id], capsys)
    assert code == 0 and all(s in out for s in (run_id, status, stored, task, reason))


def test_odd_out_paths_are_one_line(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for out, needle in ((a_file, "exists and is not a folder"),
                        (a_file / "sub", "is a file, not a folder")):
        code, _, err = call(["run", "--dry-run", "--out", out, "--db", tmp_path / "h.db"],
                            capsys)
        one_line_error(code, err, "--out", needle)


def test_out_lost_mid_run_is_one_line_with_the_resume_command(tmp_path, capsys, monkeypatch):
    import twinbench.api

    def lost(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory", str(tmp_path / "o" / "x"))

    monkeypatch.setattr(twinbench.api, "run", lost)
    code, _, err = call(["run", "--tasks", "digits", "--stacks", "torch", "--out",
                         tmp_path / "o", "--db", tmp_path / "h.db"], capsys)
    one_line_error(code, err, "No such file or directory", "twinbench run --resume")


@pytest.fixture()
def run_dir(tmp_path, monkeypatch) -> Path:
    from twinbench.report import render

    # PNGs would start a browser: these tests are about the files around them
    monkeypatch.setattr(render, "write_pngs", lambda charts, folder: ([], "no PNGs here"))
    return write_run(tmp_path / "run", results({"torch": (1000.0, 1.0)}))


def test_report_and_compare_into_unwritable_places_are_one_line(run_dir, tmp_path, capsys):
    (run_dir / "report.html").mkdir()  # root writes anywhere: a folder blocks the file
    code, _, err = call(["report", run_dir, "--no-markdown"], capsys)
    one_line_error(code, err, "report.html", "cannot write the report")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out, err = call(["compare", run_dir, run_dir, "--json", blocker / "c.json"], capsys)
    one_line_error(code, err, "--json", "cannot write")
    assert "no regression" in out  # the comparison itself was printed


def test_malformed_suite_and_seed_are_one_line(tmp_path, capsys):
    suite = tmp_path / "s.toml"
    suite.write_bytes(b'name = "\xff\xfe"\n')
    code, _, err = call(["run", "--suite", suite, "--dry-run", "--out", tmp_path / "o"],
                        capsys)
    one_line_error(code, err, "not UTF-8")
    for seed in (2**32 - 99, 2**64):
        code, _, err = call(["run", "--seed", seed, "--dry-run", "--out", tmp_path / "o"],
                            capsys)
        one_line_error(code, err, "--seed", str(2**32 - 100))
    code, out, _ = call(["run", "--seed", 2**32 - 100, "--repeats", 100, "--dry-run",
                         "--out", tmp_path / "o"], capsys)
    assert code == 0 and out.startswith("plan:")


def test_malformed_side_files_leave_their_section_out_with_a_warning(run_dir, capsys):
    (run_dir / "verify.json").write_text("{not json")
    (run_dir / "pipelines.json").write_text("[]")
    data = json.loads((run_dir / "results.json").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    (run_dir / "results.json").write_text(json.dumps(data))
    code, out, err = call(["report", run_dir, "--no-markdown"], capsys)
    assert code == 0 and "html:" in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and all(ln.startswith("warning:") for ln in lines), err
    assert "verify.json" in err and "pipelines.json" in err and "newer" in err
    code, _, err = call(["compare", run_dir, run_dir], capsys)
    assert code == 0 and err.count("schema_version") == 2
    (run_dir / "results.json").unlink()
    (run_dir / "verify.json").unlink()
    code, _, err = call(["report", run_dir], capsys)  # nothing readable is left
    one_line_error(code, err, "pipelines.json: not a twinbench pipelines file")


# --- class 7: report.md, the fault hook, the environment variables ---------------------------
LINKS = ["[x](http://evil.example)", "![i](http://evil.example/t.png)",
         "<http://evil.example>", "<img src=x>", "`a|b` [y](z)", "\\[x](http://e)",
         "[r]: http://evil.example", "x](http://e) ![", "[a\\]]( http://e )"]


@settings(max_examples=150, deadline=None)
@given(text=st.one_of(st.sampled_from(LINKS),
                      st.text(st.sampled_from("[]()!<>`|\\*_:/ xhttp"), max_size=30)))
def test_markdown_escaping_leaves_no_live_link_image_or_html(text):
    markdown_it = pytest.importorskip("markdown_it")
    from twinbench.report.render import _md_escape

    md = markdown_it.MarkdownIt("commonmark").enable("table")
    cell_text = _md_escape(text)
    for doc in (f"para {cell_text} end\n", f"| a |\n|---|\n| {cell_text} |\n",
                f"[{cell_text}](report.html)\n"):
        html = md.render(doc)
        assert not re.search(r"<(a|img)\b(?![^>]*report\.html)", html), (text, doc, html)


def test_report_md_shows_a_foreign_results_links_as_text(run_dir):
    markdown_it = pytest.importorskip("markdown_it")
    from twinbench.report import build_report

    res = Results.read(run_dir / "results.json")
    res.cells[0].model, res.cells[0].stack = LINKS[0], LINKS[1]
    res.write(run_dir)
    md = build_report(run_dir, html=False)["md"].read_text()
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "evil.example" in html  # shown, as text
    assert not re.search(r"<(a|img)\b[^>]*evil", html)


def test_the_fault_hook_needs_the_testing_switch_and_is_recorded(monkeypatch):
    from twinbench import environment
    from twinbench.process import child as cell_main

    job = {"stack": "torch", "repeat": 0}
    monkeypatch.setenv("TWINBENCH_FAULT", "torch:crash@train")
    monkeypatch.delenv("TWINBENCH_TESTING", raising=False)
    assert cell_main.faults(job, "train") == []  # left in a shell: a real run ignores it
    assert environment.testing_hooks() == {"TWINBENCH_FAULT": "torch:crash@train"}
    monkeypatch.setenv("TWINBENCH_TESTING", "1")
    assert cell_main.faults(job, "train") == ["crash"]
    assert environment.testing_hooks()["TWINBENCH_TESTING"] == "1"


def test_every_environment_variable_read_is_documented():
    import twinbench

    src = Path(twinbench.__file__).parent
    doc = (src.parents[1] / "docs" / "environment.md").read_text()
    read = set()
    for path in src.rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"environ(?:\.get)?[\[(]\s*\"([A-Z_][A-Z0-9_]*)\"", text))
        read |= set(re.findall(r"\"(TWINBENCH_[A-Z_]+)\"", text))
    assert read and {"TWINBENCH_FAULT", "TWINBENCH_DB", "TWINBENCH_CACHE"} <= read
    missing = sorted(v for v in read if f"`{v}`" not in doc)
    assert not missing, missing

"""Bad input never produces a traceback: a property-based test feeds random and malformed
arguments to the CLI (in process, with --dry-run so nothing runs) and asserts exit 0 for a
valid plan, or one line on stderr and exit 2."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from twinbench.cli import main

NAMES = ["digits", "text", "quick", "image", "torch", "keras-jax", "cnn", "bilstm", "all",
         "sms-spam", "", ",", "torch,nope", "../etc", "<script>"]
NUMBERS = ["0", "1", "-1", "2", "0.5", "1.5", "1e9", "nan", "inf", "-0", "abc", "", "3,4"]
OPTIONS = {
    "--tasks": NAMES, "--stacks": NAMES, "--models": NAMES, "--dataset": NAMES,
    "--epochs": NUMBERS, "--batch-size": NUMBERS, "--seed": NUMBERS, "--repeats": NUMBERS,
    "--threads": NUMBERS, "--holdout": NUMBERS, "--target-accuracy": NUMBERS,
    "--cell-timeout": NUMBERS, "--cell-memory-mb": NUMBERS, "--latency-calls": NUMBERS,
    "--latency-budget": NUMBERS, "--latency-bound-ms": NUMBERS, "--executor": NAMES + ["ray"],
    "--resume": NAMES, "--data-dir": ["/nonexistent", "", "."],
}
FLAGS = ["--loadgen", "--no-loadgen", "--bogus", "-x", "--", "--epochs"]

value = st.one_of(st.text(max_size=12), st.integers(-10**6, 10**6).map(str))
option = st.sampled_from(sorted(OPTIONS)).flatmap(
    lambda k: st.tuples(st.just(k), st.one_of(st.sampled_from(OPTIONS[k]), value)))
argv = st.lists(st.one_of(option.map(list), st.sampled_from(FLAGS).map(lambda f: [f])),
                max_size=5).map(lambda parts: [a for p in parts for a in p])


def call(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    out, err = capsys.readouterr()
    return e.value.code or 0, out, err


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(args=argv)
def test_random_run_arguments_give_a_plan_or_one_line_error(args, capsys, tmp_path):
    code, out, err = call(["run", *args, "--dry-run", "--out", str(tmp_path / "o"),
                           "--db", str(tmp_path / "h.db")], capsys)
    assert "Traceback" not in out + err
    if code == 0:
        assert out.startswith("plan:") and err == ""
    else:
        assert code == 2, (args, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, err)


def test_unknown_command_names_the_valid_ones(capsys):
    code, _, err = call(["nope"], capsys)
    assert code == 2 and "valid: run, latency," in err and " verify," in err


# --- suite files: random TOML, and well-formed TOML with random or wrong field values ---
FIELDS = {"name": st.text(max_size=8), "dataset": st.sampled_from(["mnist", "nope", "", "imdb"]),
          "model": st.sampled_from(["cnn", "bilstm", "resnet", "x"]),
          "epochs": st.one_of(st.integers(-5, 2000), st.text(max_size=3)),
          "batch_size": st.one_of(st.integers(-1, 70000), st.floats(allow_nan=True)),
          "target_accuracy": st.one_of(st.floats(-1, 2), st.just(float("nan")),
                                       st.text(max_size=3)),
          "bogus": st.integers()}


def toml_value(v) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, float) and v != v:
        return "nan"
    return repr(v)


task = st.dictionaries(st.sampled_from(sorted(FIELDS)), st.none(), max_size=7).flatmap(
    lambda keys: st.fixed_dictionaries({k: FIELDS[k] for k in keys}))
suite_text = st.one_of(
    st.text(max_size=200),
    st.builds(lambda name, stacks, tasks: "\n".join(
        [f"name = {toml_value(name)}", f"stacks = {stacks}"]
        + [("[[tasks]]\n" + "\n".join(f"{k} = {toml_value(v)}" for k, v in t.items()))
           for t in tasks]),
        st.text(max_size=6), st.sampled_from(['[]', '["torch"]', '["nope"]', '"torch"']),
        st.lists(task, max_size=3)))


@settings(max_examples=500, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=suite_text)
# CI found this one: "\x85" (NEL) is a line break for str.splitlines, not only "\n".
@example(text='0=""\n1=[]\n[[tasks]]\n0=0\nname="\x85"')
@example(text='name = "a\u2028b"\nstacks = ["nope"]')
def test_random_suite_files_give_a_plan_or_one_line_error(text, capsys, tmp_path):
    path = tmp_path / "suite.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err = call(["run", "--suite", str(path), "--dry-run", "--out",
                           str(tmp_path / "o"), "--db", str(tmp_path / "h.db")], capsys)
    assert "Traceback" not in out + err
    if code != 0:
        assert code == 2, (text, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:"), (text, err)

"""Predictions recorded before the experiment, checks that compare them with what a run observed,
and the ``%%solution`` magic that keeps solutions folded on Run All."""

from __future__ import annotations

import json

import pytest

from appcoup_lib import exercises as ex
from appcoup_lib import solutions
from appcoup_lib.answers import explain, read_notebooks


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A learner of their own, with an empty state directory and nothing predicted in memory."""
    monkeypatch.setenv("APPCOUP_STATE", str(tmp_path))
    monkeypatch.setenv("APPCOUP_LEARNER", "ada")
    monkeypatch.setattr(ex, "_MEMORY", {})
    return tmp_path


def test_a_guess_left_at_dots_records_nothing_and_the_check_says_so(fresh):
    p = ex.predict("03.1", {"generator": ..., "echo": ...})
    assert not p.recorded and "no prediction yet" in str(p)
    assert not (fresh / ex.PREDICTIONS_FILE).exists()
    v = ex.check_pod_generator_killed({"generator": 1, "echo": 0})
    assert v.ok is None and "no prediction recorded for 03.1" in str(v)
    assert "restarts on its own" not in str(v)  # the explanation waits for a prediction


def test_the_record_is_the_documented_format_and_gets_its_verdict(fresh):
    ex.predict("03.1", {"generator": 1, "echo": 1})
    data = json.loads((fresh / "predictions.json").read_text())
    assert data["format"] == 1
    rec = data["predictions"]["03.1"]
    assert {k: rec[k] for k in ("learner", "notebook", "exercise", "guess", "revisions", "verdict")} == {
        "learner": "ada", "notebook": "03-pod-coupling", "exercise": "03.1",
        "guess": {"generator": 1, "echo": 1}, "revisions": 0, "verdict": None}
    assert rec["time"].endswith("Z")

    v = ex.check_pod_generator_killed({"generator": 1, "echo": 0})
    assert v.ok is False
    text = str(v)
    assert "you predicted {'generator': 1, 'echo': 1}" in text
    assert "this run observed {'generator': 1, 'echo': 0}" in text and "restarts on its own" in text
    verdict = json.loads((fresh / "predictions.json").read_text())["predictions"]["03.1"]["verdict"]
    assert verdict["ok"] is False and verdict["observed"] == {"generator": 1, "echo": 0}

    ex.predict("03.1", {"generator": 1, "echo": 0})  # a revision clears the verdict
    rec = json.loads((fresh / "predictions.json").read_text())["predictions"]["03.1"]
    assert rec["revisions"] == 1 and rec["verdict"] is None
    assert ex.check_pod_generator_killed({"generator": 1, "echo": 0}).ok is True


def test_a_restarted_kernel_finds_the_prediction_in_the_file(fresh, monkeypatch):
    ex.predict("07.1", {"service", "volume"})  # a set is kept as a sorted list
    monkeypatch.setattr(ex, "_MEMORY", {})
    assert ex.prediction("07.1") == ["service", "volume"]
    card = [{"scenario": "service", "generator restarts on upgrade": 0, "2 replicas serve": "the same numbers"},
            {"scenario": "volume", "generator restarts on upgrade": 0, "2 replicas serve": "the same numbers"},
            {"scenario": "pod", "generator restarts on upgrade": 1, "2 replicas serve": "different numbers"}]
    assert ex.check_loose_scenarios(card).ok is True


def test_a_right_guess_on_a_run_that_did_not_show_it_is_not_right(fresh):
    v = ex.check_pod_generator_killed({"generator": 0, "echo": 0}, guess={"generator": 1, "echo": 0})
    assert v.ok is False and "did not show it" in str(v)
    assert not (fresh / "predictions.json").exists()  # an explicit guess (a solution) is never recorded


def test_a_solution_passes_the_right_guess_and_leaves_the_learners_prediction(fresh):
    ex.predict("05.1", False)
    shown = ex.solution(ex.check_volume_replicas_share, guess=True, same_numbers=True, extra="only shown")
    assert shown.verdict.ok is True and "extra = 'only shown'" in str(shown)
    assert ex.prediction("05.1") is False
    assert json.loads((fresh / "predictions.json").read_text())["predictions"]["05.1"]["guess"] is False


def test_an_unknown_exercise_is_an_invalid_input(fresh):
    with pytest.raises(ex.InvalidInput, match="no exercise"):
        ex.predict("3.1", 1)


def test_00_asks_what_auto_picks_and_explains_it_from_this_machine(fresh):
    v = ex.check_auto_runtime("docker", ["local", "docker"], guess="docker")
    assert v.ok is True and "usable here: docker, local, so docker" in str(v)
    assert ex.check_auto_runtime("local", ["local"], guess="docker").ok is False


def test_every_exercise_of_the_notebooks_has_its_check_and_the_key_explains_it():
    numbers = {e.number: e.check for nb in read_notebooks() for e in nb.exercises}
    assert numbers == {n: c.__name__ for n, c in ex.CHECKS.items()}
    for check in numbers.values():
        question, why, hint = explain(check)
        assert question and why and hint, check


# -- %%solution ------------------------------------------------------------------------------------------
@pytest.fixture
def shell(monkeypatch):
    from IPython import get_ipython
    from IPython.testing.globalipapp import start_ipython

    ip = start_ipython() or get_ipython()  # one shell per test session: started once
    solutions.load_ipython_extension(ip)
    monkeypatch.delenv(solutions.RUN_SOLUTIONS_ENV, raising=False)
    solutions.reveal(False)
    yield ip
    solutions.reveal(False)


def test_a_solution_cell_is_folded_unless_asked(shell, capsys):
    r = shell.run_cell("%%solution\nran = 'yes'\n41 + 1")
    assert r.success and r.result is None and "ran" not in shell.user_ns
    assert solutions.FOLDED in capsys.readouterr().out

    r = shell.run_cell("%%solution --run\nran = 'yes'\n41 + 1")
    assert r.result == 42 and shell.user_ns["ran"] == "yes"


def test_the_variable_and_reveal_run_every_solution(shell, monkeypatch):
    monkeypatch.setenv(solutions.RUN_SOLUTIONS_ENV, "1")
    assert shell.run_cell("%%solution\n'by the variable'").result == "by the variable"
    monkeypatch.delenv(solutions.RUN_SOLUTIONS_ENV)
    assert shell.run_cell("%%solution\n'folded'").result is None
    ex.reveal()
    assert shell.run_cell("%%solution\n'revealed'").result == "revealed"


def test_a_failing_solution_fails_its_cell(shell):
    r = shell.run_cell("%%solution --run\n1 / 0")
    assert not r.success and isinstance(r.error_in_exec, ZeroDivisionError)
    r = shell.run_cell("%%solution --show\n1")
    assert not r.success

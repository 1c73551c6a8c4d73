"""Every notebook: committed clean, parameterised, in sync with its py:percent twin, and run for
real with papermill on every runtime (a runtime missing here is skipped, or fails under
APPCOUP_REQUIRE)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import appcoup_lib as ac
from appcoup_lib.exercises import CHECKS
from appcoup_lib.solutions import FOLDED, RUN_SOLUTIONS_ENV

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
TWINS = ROOT / "course-src"  # the py:percent twins, out of the learner's file browser
IDS = [p.stem for p in NOTEBOOKS]
# The scenario each notebook runs: on a runtime where it is n/a the notebook falls back to local.
SCENARIO = {"00-setup": "pod", "01-separate-runs": "separate", "02-dockerfile-coupling": "single-image",
            "03-pod-coupling": "pod", "04-service-coupling": "service", "05-volume-coupling": "volume",
            # 06 measures the `service` baseline wherever it runs, and federation where two clusters are.
            "06-federation": "service", "07-choosing-a-coupling": "pod"}


def test_the_course_has_its_eight_notebooks():
    assert IDS == ["00-setup", "01-separate-runs", "02-dockerfile-coupling", "03-pod-coupling",
                   "04-service-coupling", "05-volume-coupling", "06-federation", "07-choosing-a-coupling"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    nb = json.loads(path.read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs") and cell.get("execution_count") is None, \
                f"{path.name}: clear outputs before committing (jupyter nbconvert --clear-output)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_has_a_parameters_cell_with_runtime_interval_duration(path):
    nb = json.loads(path.read_text())
    tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    source = "".join(tagged[0]["source"])
    for name in ("runtime", "interval", "duration"):
        assert f"{name} =" in source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_reads_like_a_course(path):
    nb = json.loads(path.read_text())
    md = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
    text = "".join("".join(c["source"]) for c in md)
    assert len(md) >= 4 and len(text) > 1200, "explain what we do, what to look at, and why"
    assert "## Try it" in text or "## try it" in text.lower()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_py_percent_twin_is_in_sync(path):
    import jupytext

    twin = TWINS / path.with_suffix(".py").name
    assert twin.exists(), (f"missing the py:percent twin course-src/{twin.name}: "
                           f"jupytext --to py:percent -o course-src/{twin.name} notebooks/{path.name}")
    assert not path.with_suffix(".py").exists(), "twins live in course-src/, not beside the notebooks"
    a, b = jupytext.read(path), jupytext.read(twin)
    cells = lambda nb: [(c.cell_type, c.source.strip(), c.metadata.get("jupyter")) for c in nb.cells]  # noqa: E731
    assert cells(a) == cells(b), f"{path.name} and {twin.name} differ: make notebooks (or jupytext --sync)"
    assert a.metadata["jupytext"]["formats"] == "notebooks///ipynb,course-src///py:percent", \
        "pair it like the others, so jupytext --sync finds the twin"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_opens_with_its_goal_and_expected_time(path):
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    assert "**Goal:**" in first and re.search(r"\*\*Time:\*\* about \d+ minutes", first), \
        "the first cell says **Goal:** ... and **Time:** about N minutes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_solutions_are_folded_away(path):
    # An exercise is: predict, try in an empty cell, `answer = ...` + check_...(answer), and a
    # solution cell tagged "solution" whose source and output are collapsed until clicked.
    cells = json.loads(path.read_text())["cells"]
    solutions = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    for c in solutions:
        assert c["metadata"].get("jupyter") == {"outputs_hidden": True, "source_hidden": True}, \
            f"{path.name}: a solution cell must be collapsed (source and outputs hidden)"
        assert "".join(c["source"]).split("\n", 1)[0].strip() == "%%solution", \
            f"{path.name}: a solution cell starts with %%solution, so Run All does not run it"
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    if "check_" in code:
        assert solutions, f"{path.name}: an exercise with a check_...() needs a folded solution cell"


_PREDICT = re.compile(r"""^predict\("(\d\d\.\d+)",\s*(.*)\)""", re.MULTILINE)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_each_exercise_predicts_before_its_experiment(path):
    # predict("NN.k", ...) (committed with every guess left at ...), the experiment, the check
    # cell of that exercise's check, then its %%solution cell.
    cells = [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("tags", []))
             for c in json.loads(path.read_text())["cells"]]
    at = [i for i, (_, _, tags) in enumerate(cells) if "solution" in tags]
    assert at, f"{path.name} has an exercise"
    for k, i in enumerate(at, 1):
        number = f"{path.name[:2]}.{k}"
        kind, check_cell, _ = cells[i - 1]
        assert kind == "code" and f"{CHECKS[number].__name__}(" in check_cell, \
            f"{path.name}: the cell before solution {number} calls {CHECKS[number].__name__}"
        found = [(j, m) for j in range(i - 1) for m in _PREDICT.finditer(cells[j][1]) if m.group(1) == number]
        assert len(found) == 1, f"{path.name}: one predict(\"{number}\", ...) cell before the experiment"
        j, m = found[0]
        assert "..." in m.group(2) and not re.search(r":\s*(True|False|\d)", m.group(2)), \
            f"{path.name}: commit predict(\"{number}\", ...) with the guess left at ..."
        between = [src for kind, src, _ in cells[j + 1:i - 1] if kind == "code"]
        assert between, f"{path.name}: the experiment comes between predict(\"{number}\") and its check"


def _outputs(cell: dict) -> str:
    texts = []
    for o in cell.get("outputs", []):
        texts.append(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", [])))
        texts.append("".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


def _execute(path: Path, runtime: str, tmp_path: Path, *, solutions: bool = True) -> list[dict]:
    """The cells of ``path`` run by papermill; ``solutions``: with APPCOUP_RUN_SOLUTIONS=1 (the
    %%solution cells run, as in ``appcoup course``), else as a learner's Run All (they stay folded)."""
    import os

    import papermill as pm

    out = tmp_path / path.name
    # The kernel inherits these: dashboards are snapshots, and solutions run only when asked.
    env = {"APPCOUP_HEADLESS": "1", RUN_SOLUTIONS_ENV: "1" if solutions else None}
    before = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        pm.execute_notebook(str(path), str(out), cwd=str(path.parent), progress_bar=False,
                            parameters={"runtime": runtime, "interval": 0.2, "duration": 2.0})
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return json.loads(out.read_text())["cells"]


def _run(path: Path, runtime: str, tmp_path: Path) -> str:
    return "\n".join(_outputs(c) for c in _execute(path, runtime, tmp_path))


@pytest.mark.notebook
@pytest.mark.parametrize("runtime", [pytest.param(r, marks=getattr(pytest.mark, r))
                                     for r in ("local", "docker", "kubernetes")])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom(path, runtime, tmp_path):
    text = _run(path, runtime, tmp_path)
    expected = runtime if runtime in ac.scenario(SCENARIO[path.stem]).runtimes else "local"
    assert f"runtime: {expected}" in text
    assert "Traceback" not in text
    assert "✘ not quite" not in text, "a solution cell must pass its own check"
    assert ac.running() == [], "a notebook must leave nothing running"


@pytest.mark.notebook
@pytest.mark.local
def test_run_all_without_the_variable_folds_every_solution(tmp_path):
    """A learner's Run All (no APPCOUP_RUN_SOLUTIONS): each %%solution cell prints the folded line,
    and its body does not run (no solution(...) result anywhere); the checks say no prediction."""
    path = next(p for p in NOTEBOOKS if p.stem == "00-setup")
    cells = _execute(path, "local", tmp_path, solutions=False)
    folded = [c for c in cells if "solution" in c.get("metadata", {}).get("tags", [])]
    assert folded
    for c in folded:
        assert _outputs(c).strip() == FOLDED
    text = "\n".join(_outputs(c) for c in cells)
    assert "solution: " not in text and "auto's order:" not in text, "a solution ran on Run All"
    assert "no prediction recorded for 00.1" in text
    assert "✘ not quite" not in text and "Traceback" not in text
    assert ac.running() == []

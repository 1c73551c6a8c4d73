"""Every notebook: committed clean, parameterised, in sync with its py:percent twin, and run for
real with papermill on every runtime (a runtime missing here is skipped, or fails under
APPCOUP_REQUIRE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import appcoup_lib as ac

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb"))
IDS = [p.stem for p in NOTEBOOKS]
# The scenario each notebook runs: on a runtime where it is n/a the notebook falls back to local.
SCENARIO = {"00-setup": "pod", "01-separate-runs": "separate", "02-dockerfile-coupling": "single-image",
            "03-pod-coupling": "pod"}


def test_the_course_has_its_first_four_notebooks():
    assert IDS[:4] == ["00-setup", "01-separate-runs", "02-dockerfile-coupling", "03-pod-coupling"]


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

    twin = path.with_suffix(".py")
    assert twin.exists(), f"missing the py:percent twin: jupytext --to py:percent {path.name}"
    a, b = jupytext.read(path), jupytext.read(twin)
    cells = lambda nb: [(c.cell_type, c.source.strip()) for c in nb.cells]  # noqa: E731
    assert cells(a) == cells(b), f"{path.name} and {twin.name} differ: jupytext --sync {path.name}"


def _run(path: Path, runtime: str, tmp_path: Path) -> str:
    import papermill as pm

    out = tmp_path / path.name
    pm.execute_notebook(str(path), str(out), cwd=str(path.parent), progress_bar=False,
                        parameters={"runtime": runtime, "interval": 0.2, "duration": 2.0})
    nb = json.loads(out.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            texts.append(o.get("text", "") if isinstance(o.get("text"), str) else "".join(o.get("text", [])))
            texts.append("".join(o.get("data", {}).get("text/plain", "")))
    return "\n".join(texts)


@pytest.mark.notebook
@pytest.mark.parametrize("runtime", [pytest.param(r, marks=getattr(pytest.mark, r))
                                     for r in ("local", "docker", "kubernetes")])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom(path, runtime, tmp_path):
    text = _run(path, runtime, tmp_path)
    expected = runtime if runtime in ac.scenario(SCENARIO[path.stem]).runtimes else "local"
    assert f"runtime: {expected}" in text
    assert "Traceback" not in text
    assert ac.running() == [], "a notebook must leave nothing running"

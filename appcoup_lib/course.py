"""Run the course headless: every notebook through papermill, into ``build/course``, with its
solution cells run (``APPCOUP_RUN_SOLUTIONS=1``): the teacher's dry run."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from .paths import notebooks_dir
from .solutions import RUN_SOLUTIONS_ENV


@dataclass
class Result:
    notebook: str
    output: Path
    seconds: float
    error: str = ""


def notebooks() -> list[Path]:
    return sorted(notebooks_dir().glob("[0-9][0-9]-*.ipynb"))


def _failed_solution(executed: Path) -> str:
    """Empty when every solution cell of the executed notebook passed its check, else what failed."""
    import json

    for cell in json.loads(executed.read_text()).get("cells", []):
        if "solution" not in cell.get("metadata", {}).get("tags", []):
            continue
        for o in cell.get("outputs", []):
            text = "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            if "✘ not quite" in text:
                return f"a solution did not pass its own check: {text.strip().splitlines()[-1][:200]}"
    return ""


def run_course(*, runtime: str = "local", interval: float = 0.2, duration: float = 3.0,
               out: str | Path = "build/course", only: list[str] | None = None,
               kernel: str | None = None, progress: bool = True) -> list[Result]:
    """Execute each notebook with ``runtime``, ``interval`` and ``duration`` as parameters."""
    import papermill as pm

    # The kernel papermill starts cannot tell it has no front end: dashboards become snapshots.
    os.environ.setdefault("APPCOUP_HEADLESS", "1")
    # The teacher's dry run: every %%solution cell runs too (a learner's Run All folds them), and
    # each must pass its own check on this runtime.
    os.environ.setdefault(RUN_SOLUTIONS_ENV, "1")
    out = Path(out) / runtime
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for nb in notebooks():
        if only and not any(nb.stem.startswith(o) for o in only):
            continue
        target = out / nb.name
        t0 = time.monotonic()
        error = ""
        try:
            pm.execute_notebook(str(nb), str(target), cwd=str(nb.parent), kernel_name=kernel,
                                parameters={"runtime": runtime, "interval": interval, "duration": duration},
                                progress_bar=False)
        except pm.PapermillExecutionError as e:
            error = f"cell {e.exec_count}: {e.ename}: {e.evalue}"
        else:
            error = _failed_solution(target)
        r = Result(nb.name, target, time.monotonic() - t0, error)
        results.append(r)
        if progress:
            print(f"{'FAIL' if error else 'ok':<5} {nb.name:<36} {r.seconds:6.1f} s  {error}", flush=True)
    if progress:
        print(f"executed notebooks are in {out.resolve()}")
    return results

"""Binder: the environment in binder/ builds from scratch and opens the course on the local runtime.

repo2docker reads only ``binder/`` when it exists, so ``binder/requirements.txt`` is a lock of
``pyproject.toml``'s runtime dependencies with every version exact (``make binder-lock`` writes
it): a Binder build next year gets what this test installed. The quick tests keep the lock in
step with ``pyproject.toml``. The slow test does what Binder does, in a fresh virtual environment:
install the lock (from pip's cache when it has the wheels), run ``postBuild``, then run
``00-setup`` with papermill while Docker and Kubernetes are out of reach, so ``runtime("auto")``
must pick ``local``, and its dashboard shows a static snapshot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest itself depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
SETUP_NOTEBOOK = ROOT / "notebooks" / "00-setup.ipynb"
KERNEL = "appcoup-binder"


def _lock() -> dict[str, str]:
    """binder/requirements.txt as {normalised name: exact version}."""
    pins = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)(\s*;.*)?", line)
            assert m, f"binder/requirements.txt must pin exact versions (name==version), not {line!r}"
            pins[_norm(m.group(1))] = m.group(2)
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _project_dependencies() -> dict[str, str]:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    out = {}
    for dep in deps:
        name, spec = re.match(r"([A-Za-z0-9_.\-\[\]]+)\s*(.*)", dep).groups()
        out[_norm(name)] = spec.replace(" ", "")
    return out


def test_lock_pins_every_project_dependency_within_its_bounds():
    from packaging.specifiers import SpecifierSet

    lock = _lock()
    for name, spec in _project_dependencies().items():
        assert name in lock, f"{name} is a dependency in pyproject.toml but not in the lock: make binder-lock"
        assert lock[name] in SpecifierSet(spec), (
            f"the lock pins {name}=={lock[name]}, outside pyproject.toml's {spec!r}: make binder-lock")


def test_lock_says_how_to_regenerate_it():
    text = (BINDER / "requirements.txt").read_text()
    assert "make binder-lock" in text.splitlines()[1], "the lock's header names the command that wrote it"
    assert "binder-lock:" in (ROOT / "Makefile").read_text()
    assert "make binder-lock" in (BINDER / "README.md").read_text()


def test_runtime_pins_a_python_the_project_supports():
    text = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-3\.(\d+)", text)
    assert m, f"runtime.txt must read like python-3.11, not {text!r}"
    floor = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert int(m.group(1)) >= int(re.search(r">=\s*3\.(\d+)", floor).group(1))


def test_post_build_is_an_executable_bash_script_that_stops_on_errors():
    post = BINDER / "postBuild"
    assert os.access(post, os.X_OK), "repo2docker runs postBuild only when it is executable"
    text = post.read_text()
    assert text.startswith("#!/bin/bash") or text.startswith("#!/usr/bin/env bash")
    assert re.search(r"^set -e", text, re.M), "a failed install must fail the Binder build"
    assert re.search(r"pip install .*(-e \.|\s\.$)", text, re.M), "postBuild installs the package"


def test_no_start_script_the_badge_opens_the_first_notebook():
    # A start script would run on every launch; the badge's urlpath already opens 00-setup.
    assert not (BINDER / "start").exists()
    assert "urlpath=lab/tree/notebooks/00-setup.ipynb" in (BINDER / "README.md").read_text()


def _python_for_binder() -> str:
    want = (BINDER / "runtime.txt").read_text().strip().removeprefix("python-")
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == want:
        return sys.executable
    found = shutil.which(f"python{want}")
    if not found:
        pytest.skip(f"binder/runtime.txt asks for Python {want}, which is not installed here")
    return found


def _run(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float) -> None:
    proc = subprocess.run(cmd, env=env, cwd=cwd, timeout=timeout, capture_output=True, text=True)
    assert proc.returncode == 0, (f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                                  f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.timeout(1800)
def test_binder_environment_runs_the_setup_notebook_on_local(tmp_path):
    if not SETUP_NOTEBOOK.exists():
        pytest.skip("notebooks/00-setup.ipynb does not exist yet: nothing for Binder to open")

    venv = tmp_path / "venv"
    subprocess.run([_python_for_binder(), "-m", "venv", str(venv)], check=True, timeout=120)
    bin_dir = venv / "bin"
    python = str(bin_dir / "python")

    # What Binder's image has: this venv first on PATH, nothing of the developer's venv, and
    # neither a Docker engine nor a cluster it could reach.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "KUBERNETES_SERVICE_HOST",
                        "KUBERNETES_SERVICE_PORT", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR")}
    env.update({
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        "DOCKER_HOST": "unix:///nonexistent/docker.sock",
        "KUBECONFIG": "/nonexistent/kubeconfig",
        "APPCOUP_STATE": str(tmp_path / "state"),
        "APPCOUP_PROGRESS": "0",
        "APPCOUP_HEADLESS": "1",  # papermill: the dashboard is a snapshot
        "PYTHONDONTWRITEBYTECODE": "1",
    })

    # pip's own cache (not --no-cache-dir): a second run installs the same wheels without downloading.
    _run([python, "-m", "pip", "install", "-q", "-r", str(BINDER / "requirements.txt")],
         env=env, cwd=ROOT, timeout=1200)
    frozen = subprocess.run([python, "-m", "pip", "freeze"], env=env, capture_output=True, text=True,
                            timeout=120).stdout
    installed = {_norm(n): v for n, v in re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+)$", frozen, re.M)}
    drift = {n: (v, installed.get(n)) for n, v in _lock().items() if installed.get(n) != v}
    assert not drift, f"what Binder would install differs from the lock (locked, installed): {drift}"
    _run([str(BINDER / "postBuild")], env=env, cwd=ROOT, timeout=600)
    _run([python, "-m", "ipykernel", "install", "--prefix", str(venv), "--name", KERNEL],
         env=env, cwd=ROOT, timeout=120)

    # The kernel papermill starts (-k, found under the venv's prefix) must be the fresh venv's
    # Python, and that Python must import the library from this checkout, as postBuild installed it.
    spec = json.loads((venv / "share" / "jupyter" / "kernels" / KERNEL / "kernel.json").read_text())
    assert Path(spec["argv"][0]).parent == bin_dir, spec["argv"]
    where = subprocess.run([python, "-c", "import appcoup_lib; print(appcoup_lib.__file__)"], env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).resolve().is_relative_to(ROOT / "appcoup_lib")

    out = tmp_path / "00-setup.out.ipynb"
    _run([python, "-m", "papermill", str(SETUP_NOTEBOOK), str(out), "-k", KERNEL,
          "--cwd", str(SETUP_NOTEBOOK.parent), "--no-progress-bar",
          "-p", "runtime", "auto", "-p", "interval", "0.2", "-p", "duration", "2.0"],
         env=env, cwd=ROOT, timeout=600)

    nb = json.loads(out.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                texts.append(f"{o.get('ename')}: {o.get('evalue')}")
            texts.append("".join(o.get("text", "")))
            texts.append("".join(o.get("data", {}).get("text/plain", "")))
    text = "\n".join(texts)
    assert "runtime: local" in text, f"on Binder, runtime('auto') must pick local; the notebook said:\n{text}"
    assert "Traceback" not in text
    assert "dashboard of pod on local" in text, "the play-with-it dashboard shows a snapshot headless"
    assert "✘ not quite" not in text

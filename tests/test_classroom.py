"""A classroom on one machine: two learners run `pod` side by side; each sees only their own,
and one learner's `clean` removes only theirs.

Two learners are two processes with ``APPCOUP_LEARNER`` set (as JupyterHub's per-user servers set
``JUPYTERHUB_USER``), sharing this session's state directory and the machine's Docker engine.
`clean --all` (the teacher's) is tried on local only: on the shared engine it would remove other
people's apps, which is exactly what a test must never do.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request

import pytest

from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes.base import learner
from appcoup_lib.runtimes.local import strays


def as_learner(who: str, *args: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True, timeout=180, check=False,
                       env={**os.environ, "APPCOUP_LEARNER": who})
    assert "Traceback" not in p.stderr, p.stderr
    return p


def answers(url: str) -> bool:
    try:
        return urllib.request.urlopen(url, timeout=3).status == 200
    except OSError:
        return False


def _docker_labels(who: str) -> list[dict]:
    from appcoup_lib.runtimes.docker import connect

    return [c["Labels"] for c in connect().api.containers(all=True, filters={"label": f"appcoup.learner={who}"})]


@pytest.mark.parametrize("rt", [pytest.param("local", marks=pytest.mark.local),
                                pytest.param("docker", marks=pytest.mark.docker)])
def test_two_learners_side_by_side_and_one_cleans_only_hers(rt: str) -> None:
    alice, bob = f"{learner()}-alice", f"{learner()}-bob"
    urls = {}
    try:
        for who in (alice, bob):
            p = as_learner(who, "up", "pod", "--runtime", rt, "--port", "0", "--interval", "0.3")
            assert p.returncode == 0, p.stderr
            urls[who] = next(w for w in p.stdout.split() if w.startswith("http://"))
        assert urls[alice] != urls[bob] and all(answers(u) for u in urls.values())
        for who, other in ((alice, bob), (bob, alice)):
            st = as_learner(who, "status").stdout
            assert urls[who] in st and urls[other] not in st, st
        if rt == "docker":
            labels = _docker_labels(alice)
            assert labels and all(lab["appcoup.app"] == f"appcoup-{alice}-pod" for lab in labels)
        out = as_learner(alice, "clean")
        assert out.returncode == 0 and f"appcoup-{alice}-pod" in out.stdout
        assert f"appcoup-{bob}-pod" not in out.stdout and bob not in out.stdout.replace(alice, "")
        assert not answers(urls[alice]) and answers(urls[bob]), "alice's clean touched bob's app"
        assert urls[bob] in as_learner(bob, "status").stdout
        assert "runs nothing" in as_learner(alice, "status").stdout
    finally:
        for who in (alice, bob):
            as_learner(who, "clean", "--runtime", rt)
    assert not any(answers(u) for u in urls.values())
    if rt == "docker":
        assert _docker_labels(alice) == [] and _docker_labels(bob) == []


@pytest.mark.local
def test_the_teachers_clean_all_removes_every_learners_app_local() -> None:
    alice, bob = f"{learner()}-alice", f"{learner()}-bob"
    for who in (alice, bob):
        assert as_learner(who, "up", "volume", "--runtime", "local", "--port", "0", "--interval", "0.3").returncode == 0
    assert len(strays(under=state_dir())) >= 4
    out = as_learner(f"{learner()}-teacher", "clean", "--all", "--runtime", "local")
    assert out.returncode == 0 and alice in out.stdout and bob in out.stdout
    assert not strays(under=state_dir())

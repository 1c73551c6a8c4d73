"""Every input validated: a bad name, port, interval, program, supervisor or address is a clear
error (CLI exit 2), never a traceback, and nothing starts. Ctrl-C during `appcoup up` leaves nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import appcoup_lib as ac
from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes.base import default_name
from appcoup_lib.runtimes.local import strays

pytestmark = pytest.mark.local

BAD_CLI = [
    ["up", "pod", "--runtime", "local", "--name", "../../x"],
    ["up", "pod", "--runtime", "local", "--name", "UPPER"],
    ["up", "pod", "--runtime", "local", "--name", ""],
    ["up", "pod", "--runtime", "local", "--name", "a" * 41],
    ["up", "pod", "--runtime", "local", "--name", "-x"],
    ["up", "pod", "--runtime", "local", "--port", "70000"],
    ["up", "pod", "--runtime", "local", "--port", "-1"],
    ["up", "pod", "--runtime", "local", "--port", "abc"],
    ["up", "pod", "--runtime", "local", "--interval", "nan"],
    ["up", "pod", "--runtime", "local", "--interval", "inf"],
    ["up", "pod", "--runtime", "local", "--interval", "0"],
    ["up", "pod", "--runtime", "local", "--interval", "-1"],
    ["up", "pod", "--runtime", "local", "--interval", "1e9"],
    ["up", "pod", "--runtime", "local", "--interval", "two"],
    ["up", "single-image", "--runtime", "local", "--supervisor", "tini"],
    ["up", "pod", "--runtime", "local", "--address", "everywhere"],
    ["up", "pod", "--runtime", "local", "--address", "::1:x"],
    ["up", "pods", "--runtime", "local"],
    ["up", "pod", "--runtime", "podman"],
    ["down", "pod", "--runtime", "local", "--name", "../etc"],
    ["kill", "pod", "echo", "--runtime", "local", "--name", "x/y"],
    ["course", "--runtime", "local", "--interval", "nan"],
    ["course", "--runtime", "local", "--duration", "-3"],
    ["clean", "--runtime", "kubernetes-ish"],
    ["nonsense"],
    [],
]


def appcoup(*args: str, **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True, check=False,
                          timeout=120, env=dict(os.environ), **kw)


def _nothing_started() -> None:
    assert not strays(under=state_dir()), "a bad input started processes"
    local_root = state_dir() / "local"
    assert not local_root.exists() or not list(local_root.iterdir()), list(local_root.iterdir())


@pytest.mark.parametrize("args", BAD_CLI, ids=[" ".join(a) or "(none)" for a in BAD_CLI])
def test_bad_cli_input_exits_2_without_a_traceback(args: list[str]) -> None:
    p = appcoup(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr and p.stderr.strip()
    _nothing_started()


@pytest.mark.parametrize("kwargs", [
    {"name": "../../x"}, {"name": "a/b"}, {"name": 3}, {"port": 70000}, {"port": -1}, {"port": 1.5},
    {"port": "8000"}, {"port": True}, {"interval": float("nan")}, {"interval": float("inf")}, {"interval": 0},
    {"interval": -2}, {"interval": "x"}, {"interval": None}, {"supervisor": "tini"}, {"address": "x"},
    {"address": 1}])
def test_bad_api_input_raises_invalid_input_and_starts_nothing(local, kwargs: dict) -> None:
    with pytest.raises(ac.InvalidInput) as e:
        local.up("single-image", **kwargs)
    assert e.value.fix, "every error says what to do"
    _nothing_started()


def test_unknown_program_and_scenario_are_clear(local) -> None:
    with pytest.raises(ac.UnknownScenario):
        local.up("databases")
    up = appcoup("up", "pod", "--runtime", "local", "--port", "0", "--interval", "0.2", "--name", "appcoup-inputs")
    assert up.returncode == 0, up.stderr
    try:
        k = appcoup("kill", "pod", "database", "--runtime", "local", "--name", "appcoup-inputs")
        assert k.returncode == 2 and "echo, generator" in k.stderr and "Traceback" not in k.stderr
        assert "appcoup down pod --runtime local --name appcoup-inputs" in up.stdout
        assert appcoup("data", "pod", "--name", "appcoup-inputs").stdout.split()
        with pytest.raises(ac.InvalidInput):
            local.attach("pod", "appcoup-inputs").kill("database")
    finally:
        down = appcoup("down", "pod", "--runtime", "local", "--name", "appcoup-inputs")
    assert down.returncode == 0, down.stderr
    _nothing_started()


def _interrupt_up(args: list[str], started: callable, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `appcoup up ...` and press Ctrl-C (SIGINT to its process group, as a terminal does) the
    moment ``started()`` says the up is half-way."""
    p = subprocess.Popen([sys.executable, "-m", "appcoup_lib", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + timeout
    while not started() and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.killpg(p.pid, signal.SIGINT)
    out, err = p.communicate(timeout=120)
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


def test_ctrl_c_during_local_up_leaves_nothing() -> None:
    home = state_dir() / "local" / default_name("service")
    moments = [
        lambda: home.exists(),                                  # state directory being written
        lambda: (home / "supervisord.conf").exists(),           # supervisord being launched
        lambda: (home / "app.json").exists(),                   # waiting for the first number
    ]
    for started in moments:
        p = _interrupt_up(["up", "service", "--runtime", "local", "--port", "0", "--interval", "0.2"], started)
        if p.returncode == 0:  # too late to interrupt: it is up, which is fine; take it down
            assert appcoup("down", "service", "--runtime", "local").returncode == 0
        else:
            assert p.returncode in (130, -signal.SIGINT), (p.returncode, p.stderr)
            assert "Traceback" not in p.stderr, p.stderr
        time.sleep(0.2)
        _nothing_started()


@pytest.mark.docker
def test_ctrl_c_during_docker_up_leaves_nothing() -> None:
    from appcoup_lib.runtimes.docker import connect

    client = connect()
    name = default_name("service")

    def objects() -> list[str]:
        flt = {"label": f"appcoup.app={name}"}
        return ([c["Names"][0] for c in client.api.containers(all=True, filters=flt)]
                + [n.name for n in client.networks.list(filters=flt)]
                + [v.name for v in client.volumes.list(filters=flt)])

    for started in (lambda: bool(client.networks.list(filters={"label": f"appcoup.app={name}"})),
                    lambda: len(client.api.containers(all=True, filters={"label": f"appcoup.app={name}"})) >= 2):
        p = _interrupt_up(["up", "service", "--runtime", "docker", "--port", "0", "--interval", "0.3"], started)
        if p.returncode == 0:
            assert appcoup("down", "service", "--runtime", "docker").returncode == 0
        else:
            assert p.returncode in (130, -signal.SIGINT), (p.returncode, p.stderr)
            assert "Traceback" not in p.stderr, p.stderr
        assert objects() == [], "an interrupted up left containers, networks or volumes"

"""Faults injected for real, and what is left after each: nothing.

- the Jupyter kernel running a notebook is SIGKILLed half-way, then `appcoup clean` runs;
- the chosen port is taken between choosing it and binding it;
- the generator's volume fills up (Docker: a 4 KiB tmpfs volume; local: a file size limit on
  the generator, since a small filesystem would need root to mount).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import appcoup_lib as ac
from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes.base import default_name, learner
from appcoup_lib.runtimes.local import strays

NOTEBOOK_CELLS = [
    "import os, time\nimport appcoup_lib as ac",
    "runtime = 'local'",  # papermill parameters
    "app = ac.runtime(runtime).up('pod', interval=0.2, port=0, progress=False)\napp.wait_ready(timeout=60)",
    "open(os.environ['KERNEL_PID_FILE'], 'w').write(str(os.getpid()))\ntime.sleep(600)",
    "app.down()",
]


def _docker_objects(who: str) -> list[str]:
    from appcoup_lib.runtimes.docker import connect

    client = connect()
    flt = {"label": [f"appcoup.learner={who}", "app.kubernetes.io/part-of=appcoup"]}
    return ([c["Names"][0] for c in client.api.containers(all=True, filters=flt)]
            + [n.name for n in client.networks.list(filters=flt)]
            + [v.name for v in client.volumes.list(filters=flt)])


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))


@pytest.mark.slow
@pytest.mark.parametrize("rt", [pytest.param("local", marks=pytest.mark.local),
                                pytest.param("docker", marks=pytest.mark.docker)])
def test_sigkill_the_kernel_mid_notebook_then_clean_leaves_nothing(rt: str, tmp_path: Path) -> None:
    who = f"{learner()}-k{rt[0]}"
    env = {**os.environ, "APPCOUP_LEARNER": who, "KERNEL_PID_FILE": str(tmp_path / "kernel.pid")}
    nb = tmp_path / "crash.ipynb"
    _write_notebook(nb)
    runner = subprocess.Popen([sys.executable, "-m", "papermill", str(nb), str(tmp_path / "out.ipynb"),
                               "-p", "runtime", rt, "--no-progress-bar"], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pid_file = tmp_path / "kernel.pid"
    deadline = time.monotonic() + 120
    while not pid_file.exists() and runner.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert pid_file.exists(), runner.communicate(timeout=30)[0][-3000:] if runner.poll() is not None else "timeout"
    time.sleep(0.2)
    os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the kernel dies: no atexit, no finally
    runner.communicate(timeout=120)
    assert runner.returncode != 0, "papermill must report the dead kernel"

    mine = (lambda: strays(under=state_dir(), learner_only=who)) if rt == "local" else (lambda: _docker_objects(who))
    assert mine(), "the killed kernel's app outlives it (else this test proves nothing)"
    clean = subprocess.run([sys.executable, "-m", "appcoup_lib", "clean"], env=env, capture_output=True, text=True, check=False,
                           timeout=120)
    assert clean.returncode == 0, clean.stderr
    assert not mine(), f"left after clean: {mine()}"
    if rt == "local":
        assert not (state_dir() / "local" / default_name("pod").replace(learner(), who)).exists()


class _Thief:
    """Takes a port the moment appcoup has chosen it (a real listening socket of another program)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None

    def steal(self, port: int) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen()
        return port

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


@pytest.mark.local
def test_port_stolen_between_choosing_and_binding_local(local, monkeypatch: pytest.MonkeyPatch) -> None:
    """The theft is placed exactly after the check (a wrapper around the real check), by a real socket."""
    from appcoup_lib.runtimes.local import runtime as mod  # where up() looks check_port up

    thief = _Thief()
    real = mod.check_port
    entry_checked: list[int] = []

    def check_then_steal(port: int, address: str = "127.0.0.1") -> int:
        chosen = real(port, address)
        if not entry_checked:  # the first check is the entry port's
            entry_checked.append(thief.steal(chosen))
        return chosen

    monkeypatch.setattr(mod, "check_port", check_then_steal)
    try:
        with pytest.raises(ac.PortInUse, match=r"Port \d+ is already in use by process " + str(os.getpid())):
            local.up("pod", interval=0.2, port=0).wait_ready(timeout=30)
    finally:
        thief.close()
    assert not strays(under=state_dir())
    assert not (state_dir() / "local" / default_name("pod")).exists()
    assert local.running() == []


@pytest.mark.docker
def test_port_stolen_between_choosing_and_binding_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    import appcoup_lib.runtimes.docker.objects as mod

    rt = ac.runtime("docker")
    thief = _Thief()
    real = mod.free_port
    monkeypatch.setattr(mod, "free_port", lambda client: thief.steal(real(client)))
    try:
        with pytest.raises(ac.PortInUse):
            rt.up("pod", interval=0.3, port=0, progress=False)
    finally:
        thief.close()
    assert _docker_objects(learner()) == []


@pytest.mark.docker
@pytest.mark.slow
def test_full_volume_stops_the_generator_with_a_reason_echo_keeps_serving_docker() -> None:
    from appcoup_lib.runtimes.docker import connect, labels

    name = default_name("volume")
    client = connect()
    # The volume the app will use, made small: a 4 KiB tmpfs (created first; `up` reuses it).
    client.volumes.create(f"{name}-data", driver="local", labels=labels(name, "volume"),
                          driver_opts={"type": "tmpfs", "device": "tmpfs", "o": "size=4k"})
    with ac.runtime("docker").up("volume", interval=0.005, port=0, progress=False) as app:
        app.wait_ready(timeout=60)
        app.wait_until(lambda: any(e.container == "generator" and e.kind == "exited" for e in app.events()),
                       60, "the generator to stop on a full volume")
        exits = [e for e in app.events() if e.container == "generator" and e.kind == "exited"]
        assert "No space left on device" in exits[0].detail and "generator: cannot write" in exits[0].detail, exits
        served = app.data()
        assert len(served) > 300, "what was written before the volume filled is still served"
        time.sleep(1)
        assert app.data()[: len(served)] == served and app.status()["echo"]["running"]


@pytest.mark.local
@pytest.mark.slow
def test_write_failure_stops_the_generator_with_a_reason_echo_keeps_serving_local(local) -> None:
    """Local: no small filesystem without root, so the write fails on a file size limit instead,
    set on the running generator with prlimit (as any user may for their own processes). The limit
    dies with that process: supervisord's restart brings a generator that can write again."""
    import psutil

    with local.up("volume", interval=0.01, port=0) as app:
        app.wait_ready()
        app.wait_until(lambda: len(app.data()) > 30, 30, "some numbers")
        before = app.data()
        size = (app.home / "volumes" / "data" / "data").stat().st_size
        psutil.Process(app.status()["generator"]["pid"]).rlimit(psutil.RLIMIT_FSIZE, (size + 64, size + 64))
        app.wait_until(lambda: any(e.container == "generator" and e.kind == "exited" for e in app.events()),
                       30, "the generator to stop on the failed write")
        exits = [e for e in app.events() if e.container == "generator" and e.kind == "exited"]
        assert "exit status 3" in exits[0].detail and "generator: cannot write" in exits[0].detail, exits
        served = app.data()
        assert served[: len(before)] == before and app.status()["echo"]["running"], "echo keeps serving"
        assert app.status()["echo"]["restarts"] == 0
    assert not strays(under=state_dir())

"""Safe on a learner's machine: appcoup signals and removes only what it started itself.

A pid is a number: after a reboot, or once a process is gone, the same number names someone
else's process. These tests put a real unrelated process behind such a number and check it
survives every verb.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

import appcoup_lib as ac
from appcoup_lib.runtimes.local import LocalApp, LocalRuntime, strays

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from relay import Relay


def _sleeper(**env: str) -> subprocess.Popen:
    """An unrelated process (a user's), optionally wearing appcoup's marks in its environment."""
    return subprocess.Popen(["sleep", "120"], env={**os.environ, **env})


def _cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True, check=False,
                          timeout=120, env={**os.environ, **env})


# -- local ----------------------------------------------------------------------------------------
@pytest.mark.local
def test_a_reused_pid_is_never_signalled_nor_reported(local: LocalRuntime) -> None:
    app = local.up("pod", interval=0.2, port=0, detach=True)
    app.wait_ready()
    home, meta = app.home, dict(app.meta)
    app.down()
    # Later (after a reboot, say) the recorded pid names someone else's process.
    user = _sleeper()
    try:
        home.mkdir(parents=True)
        (home / "app.json").write_text(json.dumps({**meta, "supervisord": user.pid}))
        assert local.running() == [], "a ghost must not be reported as running"
        with pytest.raises(ac.NotFound, match="not running any more"):
            local.attach("pod")
        LocalApp(local, app.scenario, app.name, interval=0.2, home=home, meta={**meta, "supervisord": user.pid}).down()
        assert user.poll() is None, "teardown signalled a process that is not ours"
        home.mkdir(parents=True)
        (home / "app.json").write_text(json.dumps({**meta, "supervisord": user.pid}))
        with local.up("pod", interval=0.2, port=0) as again:  # not AlreadyUp: the old one is gone
            again.wait_ready()
        assert user.poll() is None
        home.mkdir(parents=True, exist_ok=True)
        (home / "app.json").write_text(json.dumps({**meta, "supervisord": user.pid}))
        LocalRuntime.clean()
        assert user.poll() is None, "clean signalled a process that is not ours"
    finally:
        user.kill()
        user.wait()


@pytest.mark.local
def test_clean_leaves_another_state_directory_alone(local: LocalRuntime, tmp_path: Path) -> None:
    """Another user (or another test session) has its own state directory: our clean is not theirs."""
    other = {"APPCOUP_STATE": str(tmp_path / "other-state")}
    up = _cli("up", "pod", "--runtime", "local", "--port", "0", "--interval", "0.2", **other)
    assert up.returncode == 0, up.stderr
    url = next(w for w in up.stdout.split() if w.startswith("http://"))
    # A process wearing the marks of an app of the same name, but in the other directory.
    lookalike = _sleeper(APPCOUP_APP=ac.runtimes.base.default_name("pod"),
                         APPCOUP_HOME=str(tmp_path / "other-state" / "local" / "x"))
    try:
        with local.up("pod", interval=0.2, port=0) as mine:  # same default name, our directory
            mine.wait_ready()
        removed = LocalRuntime.clean()
        assert not any("process" in r for r in removed)
        assert urllib.request.urlopen(url, timeout=5).status == 200, "the other directory's app was stopped"
        assert lookalike.poll() is None
    finally:
        lookalike.kill()
        lookalike.wait()
        out = _cli("clean", "--runtime", "local", **other)
    assert out.returncode == 0 and "local: process" in out.stdout
    assert not strays(under=tmp_path)


# -- docker ---------------------------------------------------------------------------------------
@pytest.mark.docker
def test_docker_crash_never_signals_an_unrelated_process_with_that_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine reports a main pid that, here, is someone else's process.

    A mock is needed here only to make the engine report such a pid: that is what an engine in a
    VM (Docker Desktop, Colima) does, and this machine's engine cannot be made to. Everything
    else is real: the container, the unrelated process, the helper container that checks the
    pid in the engine's PID namespace before signalling.
    """
    import docker.models.containers

    user = _sleeper()
    rt = ac.runtime("docker")
    try:
        with rt.up("pod", interval=0.3, port=0, progress=False) as app:
            app.wait_ready(timeout=60)
            real_reload = docker.models.containers.Container.reload

            def reload_reporting_a_foreign_pid(self):  # type: ignore[no-untyped-def]
                real_reload(self)
                self.attrs["State"]["Pid"] = user.pid

            monkeypatch.setattr(docker.models.containers.Container, "reload", reload_reporting_a_foreign_pid)
            with pytest.raises(ac.AppcoupError, match="not its process"):
                app.kill("echo")
            monkeypatch.undo()
            assert user.poll() is None, "an unrelated process with the reported pid was signalled"
            assert app.status()["echo"]["restarts"] == 0 and app.answers()
    finally:
        user.kill()
        user.wait()


@pytest.mark.docker
def test_docker_engine_behind_a_vm_socket_crashes_through_the_helper(monkeypatch, tmp_path: Path) -> None:
    """Through a socket where Docker Desktop or Colima put theirs, pids are the VM's: never signal them here."""
    home = tmp_path / "home"
    with Relay(home / ".colima" / "default" / "docker.sock") as relay:
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.setenv("DOCKER_HOST", relay.url)
        from appcoup_lib.runtimes.docker import engine_on_this_host

        assert not engine_on_this_host()
        import signal

        # (os.kill is left alone: subprocess needs it. The direct path signals through a pidfd.)
        signalled: list[object] = []
        monkeypatch.setattr(signal, "pidfd_send_signal", lambda *a: signalled.append(a))
        with ac.runtime("docker").up("pod", interval=0.3, port=0, progress=False) as app:
            app.wait_ready(timeout=60)
            app.kill("echo")
            app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 20, "echo to restart")
            app.wait_until(app.answers, 20, "/data again")
            ours = [e.detail for e in app.events() if e.kind == "killed" and e.detail.startswith("SIGKILL")]
            assert ours and all("engine's host" in d for d in ours), ours
        assert signalled == []

"""The Docker engine disappearing mid-run: every verb says so (an AppcoupError naming the engine),
never a urllib3/requests traceback; when it comes back, down and clean finish the job.

The engine "goes away" for appcoup alone: DOCKER_HOST points at a unix-socket relay to the real
engine (tests/relay.py), which the test stops and starts again. The real dockerd keeps serving
everyone else on the machine. The real restart of dockerd is opt-in (APPCOUP_TEST_DISRUPTIVE=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import appcoup_lib as ac
from appcoup_lib.runtimes.base import default_name

sys.path.insert(0, str(Path(__file__).resolve().parent))
from relay import Relay

pytestmark = pytest.mark.docker


def _objects(name: str) -> list[str]:
    import docker

    client = docker.DockerClient(base_url="unix:///var/run/docker.sock")
    flt = {"label": f"appcoup.app={name}"}
    try:
        return ([c["Names"][0] for c in client.api.containers(all=True, filters=flt)]
                + [n.name for n in client.networks.list(filters=flt)]
                + [v.name for v in client.volumes.list(filters=flt)])
    finally:
        client.close()


def _cli(*args: str, docker_host: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "DOCKER_HOST": docker_host})


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if not os.path.exists("/var/run/docker.sock"):
        pytest.skip("the relay needs the engine's default socket")
    r = Relay(tmp_path / "docker.sock").start()
    monkeypatch.setenv("DOCKER_HOST", r.url)
    yield r
    r.stop()


def test_every_verb_names_the_gone_engine_then_down_and_clean_finish(relay: Relay) -> None:
    rt = ac.runtime("docker")
    app = rt.up("service", interval=0.3, port=0, progress=False, detach=True)
    name = app.name
    try:
        app.wait_ready(timeout=60)
        relay.stop()  # the engine is gone (for this process)
        verbs = {
            "status": app.status, "events": app.events, "logs": lambda: app.logs("echo"),
            "processes": app.processes, "kill": lambda: app.kill("echo"), "down": app.down,
            "attach": lambda: rt.attach("service"), "running": rt.running,
            "clean": lambda: type(rt).clean(), "runtime": lambda: ac.runtime("docker"),
        }
        for verb, call in verbs.items():
            with pytest.raises(ac.AppcoupError) as e:
                call()
            text = str(e.value)
            assert "Docker" in text and "What to do" in text, (verb, text)
            assert "urllib3" not in text and "HTTPConnectionPool" not in text, (verb, text)
        for args in (["status"], ["events", "service", "--runtime", "docker"],
                     ["down", "service", "--runtime", "docker"], ["clean", "--runtime", "docker"]):
            p = _cli(*args, docker_host=relay.url)
            assert "Traceback" not in p.stderr, (args, p.stderr)
            assert "docker" in (p.stdout + p.stderr).lower(), (args, p.stdout, p.stderr)
            if args[0] != "status":
                assert p.returncode == 1, (args, p.returncode)
        assert _objects(name), "nothing may be half-removed while the engine was gone"
        relay.start()  # it is back: the same app object finishes the job
        app.down()
        assert _objects(name) == []
    finally:
        if relay.proc is None:
            relay.start()
        type(rt).clean()


def test_clean_finishes_after_the_engine_comes_back(relay: Relay) -> None:
    rt = ac.runtime("docker")
    app = rt.up("pod", interval=0.3, port=0, progress=False, detach=True)
    app.wait_ready(timeout=60)
    relay.stop()
    p = _cli("clean", "--runtime", "docker", docker_host=relay.url)
    assert p.returncode == 1 and "Traceback" not in p.stderr and "Docker" in p.stderr
    relay.start()
    p = _cli("clean", "--runtime", "docker", docker_host=relay.url)
    assert p.returncode == 0 and f"container {default_name('pod')}-echo" in p.stdout, p.stdout + p.stderr
    assert _objects(app.name) == []
    app.down()  # nothing left to remove: this kernel's handle is done too


@pytest.mark.serial  # every docker test beside it would see the engine go
@pytest.mark.skipif(os.environ.get("APPCOUP_TEST_DISRUPTIVE") != "1",
                    reason="restarts the machine's dockerd (others' containers stop for a moment): "
                           "set APPCOUP_TEST_DISRUPTIVE=1 to run it (.ci/run does)")
def test_real_dockerd_restart_while_an_app_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real thing, kept under a minute: dockerd restarts; appcoup says so, then the app is
    controllable (Docker's restart policy brings the containers back) or removable."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    rt = ac.runtime("docker")
    app = rt.up("pod", interval=0.3, port=0, progress=False, detach=True)
    try:
        app.wait_ready(timeout=60)
        pid = int(Path("/var/run/docker.pid").read_text())
        os.kill(pid, 15)  # what `systemctl stop docker` does
        deadline = time.monotonic() + 30
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        with pytest.raises(ac.AppcoupError, match="Docker"):
            app.status()
        up = subprocess.run(["bash", str(Path(__file__).resolve().parent.parent / ".ci" / "docker-up")],
                            capture_output=True, text=True, timeout=90, check=False)
        assert up.returncode == 0, up.stderr
        st = app.status()
        assert set(st) == {"generator", "echo"}
    finally:
        app.down()
    assert _objects(app.name) == []

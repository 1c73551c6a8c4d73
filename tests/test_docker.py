"""The Docker runtime on a real engine: every scenario, crashes and restarts, ports, cleanup."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

import appcoup_lib as ac
from appcoup_lib.errors import AlreadyUp, NotReady, PortInUse
from appcoup_lib.runtimes.base import default_name, learner

LABEL = "app.kubernetes.io/part-of=appcoup"
POD = default_name("pod")
DOCKER_SCENARIOS = [s.name for s in ac.SCENARIOS.values() if "docker" in s.runtimes]


@pytest.fixture
def docker_rt():
    return ac.runtime("docker")


def _leftovers(app: str | None = None) -> list[str]:
    """Containers, networks and volumes of this test session's learner (of one app, if given).

    Only ours: other sessions and learners may use the same engine at the same time.
    """
    from appcoup_lib.runtimes.docker import connect

    client = connect()
    flt = {"label": f"appcoup.app={app}" if app else [LABEL, f"appcoup.learner={learner()}"]}
    return ([f"container {c.name}" for c in client.containers.list(all=True, filters=flt)]
            + [f"network {n.name}" for n in client.networks.list(filters=flt)]
            + [f"volume {v.name}" for v in client.volumes.list(filters=flt)])


@pytest.fixture(autouse=True)
def nothing_left_on_docker(request: pytest.FixtureRequest):
    """After every docker test, no new container, network or volume labelled appcoup may remain.

    Only what appeared during the test counts (and is removed): someone else's app on the same
    engine (a notebook run in parallel) is neither blamed nor touched.
    """
    marked = request.node.get_closest_marker("docker") is not None
    before = set(_leftovers()) if marked else set()
    yield
    if not marked:
        return
    left = sorted(set(_leftovers()) - before)
    if left:
        from appcoup_lib.runtimes.docker import connect, remove_app

        client = connect()
        for kind_name in left:
            kind, name = kind_name.split(" ", 1)
            obj = getattr(client, kind + "s").get(name)
            app = obj.attrs.get("Labels", obj.attrs.get("Config", {}).get("Labels")) or {}
            remove_app(client, app.get("appcoup.app"))
        pytest.fail(f"left behind on Docker: {left}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


@pytest.mark.docker
@pytest.mark.parametrize("name", DOCKER_SCENARIOS)
def test_every_scenario_serves_numbers(docker_rt, name: str) -> None:
    with docker_rt.up(name, interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        first = app.data()
        assert first and all(0 <= n <= 32767 for n in first)
        app.wait_until(lambda: len(app.data()) > len(first), 10, "more numbers")
        st = app.status()
        assert set(st) == {c.name for c in app.scenario.containers}
        assert all(s["running"] for s in st.values()), st
        procs = app.processes()
        assert {r["container"] for r in procs} == set(st)
        kinds = {(e.container, e.kind) for e in app.events()}
        assert any(k == "started" for _, k in kinds), kinds


@pytest.mark.docker
def test_pod_shares_one_network_namespace_and_one_volume(docker_rt) -> None:
    with docker_rt.up("pod", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        gen, echo = app.container("generator"), app.container("echo")
        pause = docker_rt.client.containers.get(app.pause_name("app"))
        assert gen.attrs["HostConfig"]["NetworkMode"] == echo.attrs["HostConfig"]["NetworkMode"] == \
            f"container:{pause.id}"
        # localhost is shared: the generator's container reaches echo on 127.0.0.1:8000.
        res = gen.exec_run(["sh", "-c", "wget -q -O - http://127.0.0.1:8000/data | head -n 1"])
        assert res.exit_code == 0 and res.output.strip().isdigit(), res.output
        vols = {m["Name"] for c in (gen, echo) for m in c.attrs["Mounts"] if m["Type"] == "volume"}
        assert vols == {f"{POD}-data"}
        # What a learner would type by hand, shown by the notebook.
        cmds = app.commands()
        assert [c for c in cmds if not c.startswith("docker build ")][0] == f"docker volume create {POD}-data"
        assert sum(f"--network container:{POD}-app-pause" in c for c in cmds) == 2


@pytest.mark.docker
def test_pod_kill_echo_restarts_echo_alone(docker_rt) -> None:
    with docker_rt.up("pod", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        app.kill("echo")
        took = app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 15, "echo to restart")
        app.wait_until(app.answers, 15, "/data again")
        st = app.status()
        assert st["echo"]["restarts"] == 1 and st["generator"]["restarts"] == 0, st
        assert st["generator"]["running"] and st["echo"]["running"]
        assert app.data()
        kinds = [(e.container, e.kind) for e in app.events()]
        assert ("echo", "killed") in kinds and ("echo", "exited") in kinds and ("echo", "restarted") in kinds
        assert took < 10


@pytest.mark.docker
def test_kill_without_permission_on_the_host_pid_uses_a_helper_container(docker_rt, monkeypatch) -> None:
    """A user in the docker group cannot signal root's processes: the crash comes from a helper container."""
    import appcoup_lib.runtimes.docker.crash as mod

    def denied(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")  # what a non-root user gets; we run as root

    with docker_rt.up("pod", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        monkeypatch.setattr(mod.os, "kill", denied)
        app.kill("echo")
        app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 15, "echo to restart")
        app.wait_until(app.answers, 15, "/data again")
        assert all(e.container != "killer" for e in app.events())


@pytest.mark.docker
def test_single_image_kill_echo_container_stays_up_but_data_fails(docker_rt) -> None:
    with docker_rt.up("single-image", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        commands = " ".join(str(r["command"]) for r in app.processes())
        assert "supervisor.sh" in commands and "echo.py" in commands and "generator.sh" in commands
        app.kill("echo")
        app.wait_until(lambda: not app.answers(), 5, "/data to fail")
        time.sleep(1)
        st = app.status()["app"]
        assert st["running"] and st["restarts"] == 0, st
        assert not app.answers()
        with pytest.raises(NotReady):
            app.data()


@pytest.mark.docker
def test_separate_has_no_restart_policy(docker_rt) -> None:
    with docker_rt.up("separate", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        assert app.container("echo").attrs["HostConfig"]["RestartPolicy"]["Name"] in ("", "no")
        app.kill("echo")
        app.wait_until(lambda: not app.status()["echo"]["running"], 10, "echo to stop")
        time.sleep(1)
        assert app.status()["echo"]["restarts"] == 0 and not app.status()["echo"]["running"]
        assert app.status()["generator"]["running"]


@pytest.mark.docker
def test_service_finds_the_adapter_by_name(docker_rt) -> None:
    with docker_rt.up("service", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        env = app.container("echo").attrs["Config"]["Env"]
        assert "SOURCE_URL=http://adapter:8080/data" in env
        res = app.container("echo").exec_run(
            ["python3", "-c", "import socket; print(socket.gethostbyname('adapter'))"])
        assert res.exit_code == 0, res.output


@pytest.mark.docker
def test_port_held_by_a_container_is_named(docker_rt) -> None:
    port = _free_port()
    with docker_rt.up("pod", interval=0.5, port=port, progress=False):
        with pytest.raises(PortInUse) as info:
            docker_rt.up("separate", interval=0.5, port=port, progress=False)
        assert info.value.port == port
        assert f"{POD}-app-pause" in str(info.value)
        assert "appcoup down pod --runtime docker" in str(info.value)


@pytest.mark.docker
def test_port_held_by_a_process_is_named(docker_rt) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            docker_rt.up("separate", interval=0.5, port=port, progress=False)
        assert f"process {os.getpid()}" in str(info.value)


@pytest.mark.docker
def test_port_zero_picks_a_free_port(docker_rt) -> None:
    with docker_rt.up("volume", interval=0.5, port=0, progress=False) as app:
        assert not app.url.endswith(":0")
        app.wait_ready(timeout=30)


@pytest.mark.docker
def test_picked_port_survives_a_restart(docker_rt) -> None:
    with docker_rt.up("volume", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=30)
        url = app.url
        app.kill("echo")
        app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 15, "echo to restart")
        app.wait_until(app.answers, 15, "/data again")
        assert type(app)(app.runtime, app.scenario, app.name, interval=0.3, client=app.client,
                         started=app.started).url == url


@pytest.mark.docker
def test_already_up(docker_rt) -> None:
    with docker_rt.up("volume", interval=0.5, port=0, progress=False), pytest.raises(AlreadyUp):
        docker_rt.up("volume", interval=0.5, port=0, progress=False)


@pytest.mark.docker
def test_exception_inside_with_leaves_nothing(docker_rt) -> None:
    with pytest.raises(RuntimeError), docker_rt.up("service", interval=0.5, port=0, progress=False):
        assert _leftovers(default_name("service"))
        raise RuntimeError("a cell failed")
    assert _leftovers(default_name("service")) == []


@pytest.mark.docker
def test_attach_and_down_from_another_process(docker_rt) -> None:
    app = docker_rt.up("pod", interval=0.5, port=0, progress=False, detach=True)
    try:
        app.wait_ready(timeout=30)
        code = ("import appcoup_lib as ac; a = ac.runtime('docker').attach('pod'); "
                "assert a.data(); print(a.url); a.down()")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == app.url
        assert _leftovers(POD) == []
    finally:
        app.down()


@pytest.mark.docker
def test_clean_removes_everything_labelled(docker_rt) -> None:
    docker_rt.up("service", interval=0.5, port=0, progress=False, detach=True)
    docker_rt.up("separate", interval=0.5, port=0, progress=False, detach=True)
    assert {r["scenario"] for r in docker_rt.running()} >= {"service", "separate"}
    removed = type(docker_rt).clean()
    assert any(r.startswith("network ") for r in removed) and any(r.startswith("volume ") for r in removed)
    assert _leftovers() == []
    assert docker_rt.running() == []


@pytest.mark.docker
def test_lesson_rebuild_after_change(docker_rt) -> None:
    from appcoup_lib import lessons

    pod = lessons.rebuild_after_change(docker_rt, "pod", progress=False)
    assert pod["images_rebuilt"] == ["echo"]
    assert pod["containers_restarted"] == ["echo"]
    single = lessons.rebuild_after_change(docker_rt, "single-image", progress=False)
    assert single["images_rebuilt"] == ["combined"]
    assert single["containers_restarted"] == ["app"]
    for r in (pod, single):
        assert r["rebuild_seconds"] > 0 and r["changed_bytes"] > 0 and r["no_data_seconds"] >= 0


@pytest.mark.docker
def test_lesson_health_blind_spot(docker_rt) -> None:
    from appcoup_lib import lessons

    seen = lessons.health_blind_spot(docker_rt, 0.5, progress=False)
    assert seen["container_state"] == "running" and seen["health"] == "healthy"
    assert seen["restarts"] == 0 and seen["data_answers"] is False and seen["echo_running"] is False


@pytest.mark.docker
@pytest.mark.slow
def test_lesson_stop_time_naive_waits_out_the_grace_period(docker_rt) -> None:
    from appcoup_lib import lessons

    assert lessons.stop_time("init", docker_rt) < 2
    assert lessons.stop_time("naive", docker_rt, timeout=6) >= 5


def test_importing_the_library_does_not_import_the_docker_sdk() -> None:
    code = ("import sys, appcoup_lib, appcoup_lib.runtimes.docker, appcoup_lib.images, appcoup_lib.lessons; "
            "import appcoup_lib.runtimes.local; assert 'docker' not in sys.modules, 'docker imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr


def test_availability_without_the_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from appcoup_lib.runtimes.docker import DockerRuntime

    monkeypatch.setitem(sys.modules, "docker", None)  # the only way to make the SDK vanish
    av = DockerRuntime.availability()
    assert not av.ok and "appcoup[docker]" in av.fix


def test_availability_with_no_socket_says_start_docker(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from appcoup_lib.runtimes.docker import DockerRuntime

    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    t0 = time.monotonic()
    av = DockerRuntime.availability()
    assert not av.ok and "does not exist" in av.detail and "dockerd" in av.fix
    assert time.monotonic() - t0 < 5


def test_availability_with_nothing_listening_says_start_docker(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from appcoup_lib.runtimes.docker import DockerRuntime

    sock_path = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))  # a socket file that nobody accepts on: a daemon that is not running
        monkeypatch.setenv("DOCKER_HOST", f"unix://{sock_path}")
        av = DockerRuntime.availability()
    assert not av.ok and "dockerd" in av.fix, av


@pytest.mark.docker
@pytest.mark.serial  # removes the pause image every docker pod beside it needs
def test_up_builds_a_missing_image_first(docker_rt) -> None:
    from appcoup_lib import images

    tag = images.tag_for("pause")
    docker_rt.client.images.remove(tag, force=True)
    with docker_rt.up("pod", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=60)
        assert docker_rt.client.images.get(tag).labels["app.kubernetes.io/part-of"] == "appcoup"


# -- Docker and Podman: the named differences (no engine needed) -------------------------------------
class _Ping:
    """What `GET /_ping` answers: the engine names itself in `Server`."""

    def __init__(self, server: str) -> None:
        self.headers = {"Server": server, "Api-Version": "1.41"}

    def raise_for_status(self) -> None:
        pass


class _Client:
    def __init__(self, server: str) -> None:
        self.api = self
        self.base_url = "http+docker://localhost"
        self.server = server

    def get(self, url: str) -> _Ping:
        assert url.endswith("/_ping")
        return _Ping(self.server)


def test_the_engine_is_named_from_its_ping() -> None:
    from appcoup_lib.runtimes.docker.engine import flavour

    podman, docker = flavour(_Client("Libpod/4.3.1 (linux)")), flavour(_Client("Docker/20.10.24+dfsg1 (linux)"))
    assert (podman.kind, podman.name) == ("podman", "Podman 4.3.1 (Docker-compatible API)")
    assert (docker.kind, docker.name) == ("docker", "Docker Engine 20.10.24+dfsg1")
    assert podman.health_checks_may_stall and not docker.health_checks_may_stall
    assert podman.past_events_without_until and not docker.past_events_without_until


def test_podman_mount_options_are_not_given_back_to_run() -> None:
    from appcoup_lib.runtimes.docker.objects import recreate_kwargs

    attrs = {"Name": "/a", "Config": {"Cmd": ["sh"], "Labels": {}, "Env": []},
             "HostConfig": {"Binds": ["v:/data:rw,rprivate,nosuid,nodev,rbind", "/h:/in:ro,rprivate,rbind", "v2:/x"]}}
    assert recreate_kwargs(attrs)["volumes"] == ["v:/data:rw", "/h:/in:ro", "v2:/x"]


def test_a_health_check_is_overdue_only_when_none_ran_for_its_interval() -> None:
    from appcoup_lib.runtimes.docker.health import overdue

    ctr = {"State": {"Running": True, "StartedAt": "2026-01-01T00:00:00Z",
                     "Health": {"Log": [{"End": "2026-01-01T00:00:10.5Z"}]}},
           "Config": {"Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000}}}
    t = 1767225610.5  # 2026-01-01T00:00:10.5Z
    assert not overdue(ctr, now=t + 2.5) and overdue(ctr, now=t + 3.5)
    assert not overdue({**ctr, "Config": {}}, now=t + 100)  # no check at all

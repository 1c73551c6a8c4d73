"""The local runtime with real processes: the semantics the course teaches."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import pytest

import appcoup_lib as ac
from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes.base import default_name
from appcoup_lib.runtimes.local import strays

pytestmark = pytest.mark.local
INTERVAL = 0.2


def grows(app: ac.App, seconds: float = 1.0) -> bool:
    before = len(app.data())
    time.sleep(seconds)
    return len(app.data()) > before


@pytest.mark.parametrize("scenario", ["separate", "single-image", "pod", "service", "volume"])
def test_every_scenario_serves_growing_numbers(local, scenario):
    with local.up(scenario, interval=INTERVAL, port=0) as app:
        app.wait_ready(timeout=30)
        nums = app.data()
        assert nums and all(0 <= n <= 32767 for n in nums)
        assert grows(app), "the generator must keep adding numbers"
        assert app.url.startswith("http://127.0.0.1:")
        assert set(app.status()) == {c.name for c in app.scenario.containers}


def test_pod_echo_restarts_alone_and_no_number_is_lost(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        time.sleep(1.2)
        before = app.data()
        app.kill("echo")
        app.wait_until(lambda: app.status()["echo"]["restarts"] == 1, 10, "echo to restart")
        app.wait_ready(timeout=10)
        after = app.data()
        st = app.status()
        assert st["echo"]["running"] and st["generator"]["running"]
        assert st["generator"]["restarts"] == 0, "the generator must not be touched"
        assert after[: len(before)] == before, "the file survived: the old numbers are still served"
        kinds = [(e.container, e.kind) for e in app.events()]
        assert kinds.index(("echo", "killed")) < kinds.index(("echo", "exited")) < kinds.index(("echo", "restarted"))
        assert ("generator", "restarted") not in kinds


def test_single_image_naive_hides_a_dead_echo(local):
    with local.up("single-image", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        cmds = " ".join(r["command"] for r in app.processes())
        assert "app.sh" in cmds and "generator.sh" in cmds and "echo.py" in cmds
        app.kill("echo")
        time.sleep(1.5)
        st = app.status()["app"]
        assert st["running"] and st["restarts"] == 0, "the container still looks fine"
        assert not app.answers(), "while /data no longer answers"
        with pytest.raises(ac.NotReady, match="does not answer"):
            app.data()
        assert "echo.py" not in " ".join(r["command"] for r in app.processes())


def test_single_image_init_restarts_the_whole_container(local):
    with local.up("single-image", supervisor="init", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        time.sleep(1.2)
        app.kill("echo")
        app.wait_until(lambda: app.status()["app"]["restarts"] == 1, 10, "the container to restart")
        app.wait_ready(timeout=10)
        assert "app-init.sh" in " ".join(r["command"] for r in app.processes())


def test_separate_nothing_restarts_a_crash(local):
    with local.up("separate", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        app.kill("echo")
        time.sleep(1.5)
        st = app.status()
        assert not st["echo"]["running"] and st["echo"]["restarts"] == 0
        assert st["generator"]["running"]
        assert not app.answers()


def test_service_reads_through_the_adapter(local):
    with local.up("service", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        assert set(app.names) == {"adapter"}
        assert "SOURCE_URL" not in app.logs("echo") and "remote mode" in app.logs("echo")
        app.kill("adapter")
        app.wait_until(lambda: app.status()["adapter"]["restarts"] == 1, 10, "the adapter to restart")
        app.wait_ready(timeout=10)
        assert app.status()["echo"]["restarts"] == 0


def test_volume_echo_keeps_serving_when_the_generator_dies(local):
    with local.up("volume", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        time.sleep(1.2)
        app.kill("generator")
        assert app.answers(), "echo reads the volume, not the generator"


def test_kill_unknown_program_lists_valid_ones(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        with pytest.raises(ac.NotFound, match="adapter|echo, generator"):
            app.kill("database")


def test_port_in_use_names_the_holder_and_leaves_nothing(local):
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ac.PortInUse) as e:
            local.up("pod", interval=INTERVAL, port=port)
    msg = str(e.value)
    assert str(port) in msg and "pytest" in msg.lower() or sys.executable in msg
    assert "port=0" in msg
    assert not list((state_dir() / "local").iterdir())


def test_port_held_by_another_app_says_how_to_stop_it(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        port = int(app.url.rsplit(":", 1)[1])
        with pytest.raises(ac.PortInUse, match="appcoup down pod"):
            local.up("single-image", interval=INTERVAL, port=port)


def test_a_second_up_of_the_same_app_is_refused(local):
    with local.up("pod", interval=INTERVAL, port=0):
        with pytest.raises(ac.AlreadyUp, match="appcoup down pod"):
            local.up("pod", interval=INTERVAL, port=0)


def test_re_running_a_notebook_cell_replaces_the_app_it_started(local, capsys):
    # `app = rt.up(...)` outside a `with`, run twice (a learner re-runs the cell): the second run
    # stops the first app and starts a fresh one, instead of failing with AlreadyUp.
    first = local.up("pod", interval=INTERVAL, port=0)
    first.wait_ready()
    second = ac.runtime("local").up("pod", interval=INTERVAL, port=0)
    try:
        second.wait_ready()
        assert first._down and not first.answers()
        assert second.answers()
        assert "which this kernel started earlier" in capsys.readouterr().out
    finally:
        second.down()


def test_exception_inside_with_still_tears_down(local):
    with pytest.raises(RuntimeError):
        with local.up("pod", interval=INTERVAL, port=0) as app:
            app.wait_ready()
            raise RuntimeError("a failing cell")
    assert not strays(under=state_dir())
    assert not (state_dir() / "local" / default_name("pod")).exists()


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], **kw)


def test_interpreter_exit_tears_down_through_atexit():
    p = _python("""
        import appcoup_lib as ac
        app = ac.runtime("local").up("pod", interval=0.2, port=0)
        app.wait_ready()
        print(app.url, flush=True)
    """, stdout=subprocess.PIPE, text=True)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and out.startswith("http://")
    assert not strays(under=state_dir()), "atexit must stop what an ended kernel started"


def test_clean_removes_what_a_killed_kernel_left():
    p = _python("""
        import appcoup_lib as ac, os, signal
        app = ac.runtime("local").up("single-image", interval=0.2, port=0)
        app.wait_ready()
        os.kill(os.getpid(), signal.SIGKILL)   # the kernel dies: no atexit, no finally
    """)
    p.wait(timeout=60)
    assert strays(under=state_dir()), "the processes outlive the killed kernel"
    removed = ac.clean()
    assert any("process" in r for r in removed)
    assert not strays(under=state_dir())
    assert not list((state_dir() / "local").iterdir())


def test_detached_up_is_found_by_attach(local):
    app = local.up("pod", interval=INTERVAL, port=0, detach=True)
    try:
        app.wait_ready()
        other = local.attach("pod")
        assert other.url == app.url and other.data()
        assert [r["scenario"] for r in local.running()] == ["pod"]
    finally:
        local.attach("pod").down()
    with pytest.raises(ac.NotFound, match="appcoup up pod"):
        local.attach("pod")


def test_processes_and_logs_show_each_container(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        rows = app.processes()
        assert {r["container"] for r in rows} == {"generator", "echo"}
        assert "generator.sh" in str(rows) and "echo.py" in str(rows)
        assert "listening on port" in app.logs("echo")
        with pytest.raises(ac.NotFound):
            app.logs("nope")


def test_interval_is_respected(local):
    with local.up("pod", interval=0.5, port=0) as app:
        app.wait_ready()
        n0 = len(app.data())
        time.sleep(2.0)
        added = len(app.data()) - n0
        assert 2 <= added <= 6, f"about 4 numbers in 2 s at interval 0.5, got {added}"

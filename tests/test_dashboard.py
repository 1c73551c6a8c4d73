"""app.dashboard(): the live panel, driven headless against real apps (no browser here; the browser
test, tests/test_browser.py, clicks the same panel in JupyterLab).

The widgets are real ipywidgets objects; without a front end their values are still what a browser
would be sent, so the tests read those values.
"""

from __future__ import annotations

import re
import time

import pytest

import appcoup_lib as ac
from appcoup_lib.dashboard import MAX_POINTS, Dashboard

INTERVAL = 0.1


def _until(predicate, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _restarts_in_table(d: Dashboard, container: str) -> int:
    m = re.search(rf"class='appcoup-restarts' data-container='{container}'[^>]*>(\d+)<", d._w_table.value)
    assert m, d._w_table.value
    return int(m.group(1))


def _count_in_plot(d: Dashboard) -> int:
    return int(re.search(r"data-count='(\d+)'", d._w_plot.value).group(1))


@pytest.mark.parametrize("runtime", [pytest.param("local", marks=pytest.mark.local),
                                     pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow])])
def test_kill_echo_button_shows_the_restart_and_the_plot_keeps_growing(runtime):
    rt = ac.runtime(runtime)
    with rt.up("pod", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=60, progress=False)
        d = app.dashboard(live=True, period=0.2)
        d.widget()
        assert d.alive
        _until(lambda: _count_in_plot(d) > 0, what="numbers on the plot")
        assert _restarts_in_table(d, "echo") == 0
        kill_echo = next(b for b in d._buttons if b.description == "kill echo")
        kill_echo.click()  # what a click in the browser runs, in the kernel
        _until(lambda: _restarts_in_table(d, "echo") == 1, timeout=60, what="echo's restart in the table")
        assert _restarts_in_table(d, "generator") == 0
        assert "killed" in d._w_events.value or "exited" in d._w_events.value
        assert "class='mark'" in d._w_plot.value, "the crash is marked on the plot"
        before = _count_in_plot(d)
        _until(lambda: _count_in_plot(d) > before, timeout=30, what="the plot to keep growing")
        assert "kill echo: done" in d._w_message.value
    # Leaving the with block took the app down: the updates stop by themselves.
    _until(lambda: not d.alive, timeout=10, what="the dashboard thread to stop")
    assert "stopped" in d._w_header.value
    assert all(b.disabled for b in d._buttons)


@pytest.mark.local
def test_down_button_re_run_and_buttons_that_cannot_apply(local):
    app = local.up("pod", interval=INTERVAL, port=0)
    try:
        app.wait_ready()
        first = app.dashboard(live=True, period=0.2)
        first.widget()
        second = ac.dashboard(app, live=True, period=0.2)  # the cell is run again
        second.widget()
        assert not first.alive and second.alive, "a new panel for the same app stops the old one"
        for label, ability in (("scale", "scale"), ("upgrade", "rollout")):
            b = next(b for b in second._buttons if b.description.startswith(label))
            assert b.disabled == (not app.can(ability))
            if b.disabled:
                assert "cannot" in b.tooltip and "runtime" in b.tooltip, b.tooltip
        next(b for b in second._buttons if b.description == "down").click()
        assert app._down and not app.answers()
        _until(lambda: not second.alive, timeout=10, what="the thread to stop after down")
    finally:
        app.down()


@pytest.mark.local
def test_headless_is_a_static_snapshot_without_a_thread(local, capsys):
    from IPython.display import display

    with local.up("single-image", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        d = app.dashboard()  # no front end here: a snapshot
        assert not d.live
        display(d)
        out = capsys.readouterr().out
        assert "dashboard of single-image on local" in out and "app" in out
        assert not d.alive
        html = d.snapshot_html()
        assert "<table class='appcoup-status'>" in html and "<svg" in html


@pytest.mark.local
def test_the_plot_keeps_a_rolling_window(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        d = Dashboard(app, live=False)
        # Far more numbers than the window holds: memory stays flat.
        for t in range(MAX_POINTS * 3):
            d.points.append((time.time(), t))
        d.poll()
        assert len(d.points) == MAX_POINTS
        assert d.plot_svg().count("<circle") <= 60


@pytest.mark.local
def test_scale_button_runs_two_copies_where_the_runtime_can(local):
    with local.up("pod", interval=INTERVAL, port=0) as app:
        app.wait_ready()
        if not app.can("scale"):
            pytest.skip("the local runtime cannot scale in this version")
        d = app.dashboard(live=True, period=0.2)
        d.widget()
        scale = next(b for b in d._buttons if b.description.startswith("scale"))
        scale.click()
        assert "replicas 2" in d._w_message.value and app.replicas() == 2
        scale.click()  # again: back to one copy
        assert "replicas 1" in d._w_message.value and app.replicas() == 1
        d.stop()

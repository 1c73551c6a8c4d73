"""The course as a learner meets it: `make lab`, then JupyterLab in a real browser.

Starts JupyterLab through the Makefile's ``lab`` target (the project's venv, the course's
settings from jupyter-config/) on a free port with a token, drives Debian's ``chromium`` with
Playwright (no browser download: ``executable_path``), and checks what a learner sees:

* 03-pod-coupling, Run All: the dashboard renders as widgets (no "Loading widget..."), echo's
  restart count goes 0 -> 1 after a click on "kill echo", and the plot keeps growing;
* 00-setup, first cells: the doctor's report renders as a table;
* Notebook 7 (``jupyter notebook``): 00-setup's playground dashboard renders and its "kill echo" works.

Screenshots land in build/screenshots/ for a person to look at. Without chromium or playwright
the test is skipped with the reason; with ``browser`` in APPCOUP_REQUIRE (CI) it fails instead.
Autosave is off for this JupyterLab (a test must not write outputs into the committed notebooks),
and the test checks the notebooks were not touched.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "build" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.local]


def _require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).exists():
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[dev]')")
    if missing:
        required = {r.strip() for r in os.environ.get("APPCOUP_REQUIRE", "").split(",")}
        why = f"no browser test without {' and '.join(missing)}"
        if "browser" in required:
            pytest.fail(f"the browser test is required here (APPCOUP_REQUIRE) but: {why}", pytrace=False)
        pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(cfg: Path, command: list[str]):
    """Start a Jupyter server with ``command`` (headless, on a free port, token auth) and wait for it."""
    port, token = _free_port(), "appcoup-browser-test"
    # Our own config dir: the learner's ~/.jupyter stays out, and autosave is off (the course's
    # settings still come from the venv's etc/jupyter, as with `make lab`).
    (cfg / "labconfig").mkdir(exist_ok=True)
    (cfg / "labconfig" / "default_setting_overrides.json").write_text(json.dumps(
        {"@jupyterlab/docmanager-extension:plugin": {"autosave": False}}))
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(cfg), "APPCOUP_HEADLESS": "0", "APPCOUP_PROGRESS": "0",
           "JUPYTER_RUNTIME_DIR": str(cfg / "runtime")}
    args = f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.token={token}"
    log = open(cfg / "server.log", "w")
    argv = [w for a in command for w in (args.split() if a == "{args}" else [a.replace("{args}", args)])]
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    proc.apps_before = _app_names()  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2).read()
            break
        except OSError:
            assert proc.poll() is None, f"{command} exited: {(cfg / 'server.log').read_text()[-3000:]}"
            assert time.monotonic() < deadline, \
                f"no answer from {command}: {(cfg / 'server.log').read_text()[-3000:]}"
            time.sleep(0.5)
    return proc, log, url, token


def _stop(proc, log) -> None:
    # SIGTERM: the server shuts its kernels down, and each kernel's exit takes its apps down.
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    log.close()
    # The kernels ran under this session's learner name: their exit took their apps down
    # (and stopped the dashboards polling them). Apps of another server still up are not ours.
    deadline = time.monotonic() + 30
    while (_app_names() - proc.apps_before) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _app_names() - proc.apps_before
    if left:
        pytest.fail(f"shutting the Jupyter server down left apps running: {sorted(left)}", pytrace=False)


def _app_names() -> set[str]:
    import appcoup_lib as ac

    return {f"{a['runtime']}/{a['name']}" for a in ac.running()}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab from `make lab`, headless, on a free port; yields (base url, token)."""
    _require_browser()
    proc, log, url, token = _serve(tmp_path_factory.mktemp("jupyter-config"),
                                   ["make", "-s", "lab", "LAB_ARGS={args}"])
    try:
        yield url, token
    finally:
        _stop(proc, log)


@pytest.fixture
def page(lab, request):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield pg
        except BaseException:
            raise
        finally:
            # A picture of the page as the test left it: what went wrong is usually visible.
            pg.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"))
            browser.close()


def _open(page, lab, notebook: str) -> None:
    url, token = lab
    # `make lab` opens notebooks/00-setup.ipynb, which makes notebooks/ the root of the file browser.
    for attempt in range(3):
        page.goto(f"{url}/lab/tree/{notebook}?token={token}")
        try:
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=60_000)
            # The kernel is up when the status bar says "Python 3 (ipykernel) | Idle" (before
            # that, a Run All runs nothing).
            idle = page.locator(".jp-StatusBar-Widget", has_text=re.compile(r"\|\s*Idle"))
            idle.first.wait_for(timeout=60_000)
            break
        except Exception:  # noqa: BLE001 - a loaded machine can drop a stylesheet: load the page again
            if attempt == 2:
                raise
    assert page.get_by_text("official Jupyter news").count() == 0, \
        "the news pop-up must be off for the course"


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{menu}$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(item)).first.click()


def _run_all(page) -> None:
    # The first code cell gets an execution count once the kernel took the work. Right after a
    # notebook opens, a loaded machine can still drop the command: then ask again.
    for attempt in range(3):
        _menu(page, "Run", r"^Run All Cells$")
        try:
            started = page.locator(".jp-InputPrompt", has_text=re.compile(r"\[(\*|\d+)\]"))
            started.first.wait_for(timeout=30_000)
            return
        except Exception:  # noqa: BLE001
            if attempt == 2:
                raise


def _restarts(page, container: str) -> str:
    cell = page.locator(f"table.appcoup-status td.appcoup-restarts[data-container='{container}']")
    return cell.last.inner_text()


def _plot_count(page) -> int:
    return int(page.locator("svg.appcoup-plot").last.get_attribute("data-count"))


def _dashboard_url(page) -> str:
    headers = page.locator(".widget-html-content", has_text="/data ·")
    if not headers.count():
        return ""
    m = re.search(r"http://\S+/data", headers.last.inner_text())
    return m.group(0) if m else ""


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.25)


@pytest.mark.timeout(1800)  # two Run Alls of 03 on the machine's best runtime (kubernetes: minutes each)
def test_pod_dashboard_kill_echo_in_the_browser(lab, page):
    nb = ROOT / "notebooks" / "03-pod-coupling.ipynb"
    before = nb.stat().st_mtime_ns
    _open(page, lab, nb.name)
    _run_all(page)
    # The dashboard is the last cell: Run All ends with it live.
    # Run All measures everything 03 teaches first (on kubernetes the back-off alone takes a minute).
    page.wait_for_selector("table.appcoup-status td.appcoup-restarts[data-container='echo']", timeout=720_000)
    assert page.get_by_text("Loading widget").count() == 0, "the widgets must render"
    assert page.get_by_text("Error displaying widget").count() == 0
    panel = page.locator(".widget-vbox", has=page.locator("svg.appcoup-plot")).last
    panel.scroll_into_view_if_needed()
    _wait(lambda: _plot_count(page) > 2, 30, "numbers on the plot")
    assert _restarts(page, "echo") == "0"
    panel.screenshot(path=str(SHOTS / "03-dashboard-before-kill.png"))

    page.get_by_role("button", name="kill echo").last.click()
    _wait(lambda: _restarts(page, "echo") == "1", 60, "echo's restart count to go from 0 to 1")
    assert _restarts(page, "generator") == "0"
    count = _plot_count(page)
    _wait(lambda: _plot_count(page) > count, 30, "the plot to keep growing after the restart")
    time.sleep(1.5)  # let the plot scroll on a little, for the picture
    panel.screenshot(path=str(SHOTS / "03-dashboard-after-kill-echo.png"))
    page.screenshot(path=str(SHOTS / "03-notebook.png"))
    assert "kill echo: done" in panel.inner_text()

    # Run All a second time, as learners do: every cell must run again (Run All stops at the first
    # error), ending with a fresh app on a new port, and a fresh panel with no restarts.
    first_url = _dashboard_url(page)
    _run_all(page)
    _wait(lambda: _dashboard_url(page) not in ("", first_url), 720, "a new dashboard from the second Run All")
    _wait(lambda: _restarts(page, "echo") == "0", 30, "the new app's table")
    time.sleep(3)  # a few numbers on the plot, for the picture
    assert "live" in page.locator(".widget-html-content", has_text="/data ·").last.inner_text()
    page.locator(".widget-vbox", has=page.locator("svg.appcoup-plot")).last.screenshot(
        path=str(SHOTS / "03-dashboard-after-run-all-again.png"))
    assert nb.stat().st_mtime_ns == before, "the browser test must not save the notebook"


def test_pod_diagram_and_what_was_applied(lab, page):
    """03 up to its "same by hand" cells: the live diagram of the pod, and the YAML (on kubernetes;
    the Dockerfile and `docker run` settings on docker, supervisord's programs on local) as applied."""
    nb = ROOT / "notebooks" / "03-pod-coupling.ipynb"
    _open(page, lab, nb.name)
    page.locator(".jp-NotebookPanel:visible .jp-CodeCell", has_text="app.commands()").first.click()
    _menu(page, "Run", r"^Run All Above Selected Cell$")
    _menu(page, "Run", r"^Run Selected Cell")
    diagram = page.locator(".appcoup-diagram-view svg").first
    diagram.wait_for(timeout=300_000)
    _wait(lambda: "container echo" in diagram.inner_html() or ">echo<" in diagram.inner_html(), 60,
          "the diagram to name echo's container")
    diagram.scroll_into_view_if_needed()
    diagram.screenshot(path=str(SHOTS / "03-diagram.png"))
    spec = page.locator(".jp-RenderedMarkdown pre", has_text=re.compile(r"apiVersion:|\[program:echo\]|docker run")).first
    spec.wait_for(timeout=120_000)
    spec.scroll_into_view_if_needed()
    text = spec.inner_text()
    assert ("kind: Pod" in text and "shareProcessNamespace" in text) or "[program:echo]" in text or "docker run" in text
    spec.screenshot(path=str(SHOTS / "03-what-was-applied.png"))
    commands = page.locator(".jp-RenderedMarkdown pre", has_text=re.compile(r"kubectl|docker (ps|run)|supervisorctl")).first
    commands.wait_for(timeout=60_000)
    page.screenshot(path=str(SHOTS / "03-diagram-and-spec.png"))
    # Only the first part ran, so its app is still up in that kernel: take it down from here (as
    # `appcoup down pod` would), so the next test's notebook (another server, the same learner) can
    # start its own `pod`.
    import appcoup_lib as ac

    for a in ac.running():
        if a["scenario"] == "pod" and a["name"].endswith("-pod"):
            ac.runtime(a["runtime"]).attach("pod", a["name"]).down()
    assert not any(n.endswith("-pod") for n in _app_names())


def test_setup_notebook_doctor_renders_as_a_table(lab, page):
    _open(page, lab, "00-setup.ipynb")
    # Select the doctor's cell, then run everything above it and the cell itself, from the menu.
    page.locator(".jp-NotebookPanel:visible .jp-CodeCell", has_text="ac.doctor()").first.click()
    _menu(page, "Run", r"^Run All Above Selected Cell$")
    _menu(page, "Run", r"^Run Selected Cell")
    table = page.locator(".jp-OutputArea-output table.appcoup-doctor")
    table.wait_for(timeout=120_000)
    assert table.locator("tr").count() >= 4  # a header and one row per runtime
    assert "local" in table.inner_text() and "usable" in table.inner_text()
    table.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "00-setup-doctor.png"))


def test_notebook7_runs_the_setup_dashboard(tmp_path, request):
    """The same panel in Notebook 7 (the classic interface's successor), on 00-setup's playground."""
    _require_browser()
    try:
        import notebook  # noqa: F401
    except ImportError:
        pytest.skip("Notebook 7 is not installed here (pip install -e '.[dev]')")
    from playwright.sync_api import sync_playwright

    proc, log, url, token = _serve(tmp_path, [str(ROOT / ".venv" / "bin" / "jupyter"), "notebook",
                                              "--allow-root", "--ServerApp.root_dir=notebooks", "{args}"])
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            nb = ROOT / "notebooks" / "00-setup.ipynb"
            before = nb.stat().st_mtime_ns
            try:
                page.goto(f"{url}/notebooks/00-setup.ipynb?token={token}")
                page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
                page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(timeout=90_000)
                time.sleep(2)  # the kernel's first status can be idle before it is connected
                _run_all(page)
                page.wait_for_selector("table.appcoup-status td.appcoup-restarts[data-container='echo']",
                                       timeout=240_000)
                assert page.get_by_text("Loading widget").count() == 0, "the widgets must render"
                assert _restarts(page, "echo") == "0"
                page.get_by_role("button", name="kill echo").last.click()
                _wait(lambda: _restarts(page, "echo") == "1", 60, "echo's restart count to go from 0 to 1")
                panel = page.locator(".widget-vbox", has=page.locator("svg.appcoup-plot")).last
                panel.scroll_into_view_if_needed()
                panel.screenshot(path=str(SHOTS / "00-notebook7-dashboard.png"))
                assert nb.stat().st_mtime_ns == before, "the browser test must not save the notebook"
            finally:
                SHOTS.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(SHOTS / f"last-{request.node.name}.png"))
                browser.close()
    finally:
        _stop(proc, log)

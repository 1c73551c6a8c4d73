"""Shared test set-up: a private state dir, runtime requirements, and a leak check after each test.

``APPCOUP_REQUIRE=local,docker`` (set by ``.ci/run``) turns a missing runtime into a failure;
without it, tests of a runtime this machine lacks are skipped and listed in the summary.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# With pytest-xdist (`-n 2`, as .ci/run runs it) each worker is a session of its own: what this file
# set in the controller (and the workers inherited) is set again per worker, so one worker's
# leak check or clean never takes the other's processes or apps for its own.
_SET_HERE = "APPCOUP_TEST_SET_BY_CONFTEST"
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _key in filter(None, os.environ.pop(_SET_HERE, "").split(",")):
        os.environ.pop(_key, None)
_set = [k for k in ("APPCOUP_STATE", "APPCOUP_LEARNER") if k not in os.environ]
# Everything the tests start lives in its own state dir, apart from a learner's own.
os.environ.setdefault("APPCOUP_STATE", tempfile.mkdtemp(prefix="appcoup-test-state-"))
os.environ.setdefault("APPCOUP_PROGRESS", "0")
# ... and under its own learner name: a learner's `clean` and `running()` only see their own things,
# so a test session never touches (nor is confused by) another session's or a learner's apps
# on the same Docker engine or cluster.
_OWN_LEARNER = "APPCOUP_LEARNER" not in os.environ
os.environ.setdefault("APPCOUP_LEARNER", f"t{os.getpid() % 100000}")
os.environ[_SET_HERE] = ",".join(_set)

import appcoup_lib as ac
from appcoup_lib.paths import state_dir
from appcoup_lib.runtimes import availability
from appcoup_lib.runtimes.local import kill_all, strays

ROOT = Path(__file__).resolve().parent.parent
RUNTIMES = ("local", "docker", "kubernetes")
_skipped: dict[str, tuple[int, str]] = {}


def required() -> set[str]:
    return {r.strip() for r in os.environ.get("APPCOUP_REQUIRE", "").split(",") if r.strip()}


_availability: dict[str, ac.runtimes.Availability] = {}
_engine_checked: list[bool] = []


def runtime_available(name: str):  # -> Availability
    if name not in _availability:
        _availability[name] = availability(name)
    return _availability[name]


def expected_engine() -> None:
    """``APPCOUP_ENGINE_EXPECT=podman`` (or ``docker``): the docker runtime's tests must really run on
    that engine (``.ci/run``'s Podman step), so a DOCKER_HOST that led elsewhere cannot pass silently."""
    want = os.environ.get("APPCOUP_ENGINE_EXPECT", "").strip().lower()
    if not want:
        return
    from appcoup_lib.runtimes.docker.engine import connect, flavour

    client = connect(timeout=10)
    try:
        engine = flavour(client)
    finally:
        client.close()
    if engine.kind != want:
        pytest.fail(f"APPCOUP_ENGINE_EXPECT={want}, but the engine at DOCKER_HOST="
                    f"{os.environ.get('DOCKER_HOST', '(unset)')} is {engine.name}", pytrace=False)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for name in RUNTIMES:
        if item.get_closest_marker(name) is None:
            continue
        av = runtime_available(name)
        if av.ok:
            if name == "docker" and not _engine_checked:
                expected_engine()  # fails every docker test while the engine is the wrong one
                _engine_checked.append(True)
            continue
        if name in required():
            pytest.fail(f"runtime {name} is required here (APPCOUP_REQUIRE) but not usable: {av.detail}. "
                        f"Fix: {av.fix}", pytrace=False)
        n, _ = _skipped.get(name, (0, ""))
        _skipped[name] = (n + 1, f"{av.detail} -- fix: {av.fix}")
        pytest.skip(f"runtime {name} is not usable here: {av.detail}")


def pytest_sessionfinish(session, exitstatus) -> None:  # type: ignore[no-untyped-def]
    """A safety net: whatever a failed test left on the Docker engine under this session's own
    learner name goes (a learner-scoped clean: nobody else's things are touched)."""
    if not _OWN_LEARNER or not _availability.get("docker") or not _availability["docker"].ok:
        return
    try:
        from appcoup_lib.runtimes.docker import DockerRuntime

        DockerRuntime.clean()
    except ac.AppcoupError:
        pass


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not _skipped:
        return
    terminalreporter.section("runtimes missing on this machine (their tests were skipped)")
    for name, (n, why) in sorted(_skipped.items()):
        terminalreporter.write_line(f"{name}: {n} tests skipped; {why}")


@pytest.fixture(autouse=True)
def nothing_left_behind(request: pytest.FixtureRequest):
    """After every test, nothing appcoup started locally may still run."""
    yield
    # Only what this test session started (its own state dir): other sessions may run beside us.
    left = strays(under=state_dir())
    if left:
        kill_all(left)
        pytest.fail(f"left behind: {len(left)} local process(es): {[p.pid for p in left]}", pytrace=False)


@pytest.fixture
def local():
    return ac.runtime("local")

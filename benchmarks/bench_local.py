"""Local rows of the benchmark: each scenario through the library, and the same two programs
started by hand (a shell loop and ``python -m http.server``) as the baseline, interleaved so both
see the same machine load."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable

import appcoup_lib as ac
from appcoup_lib.measure import recovery

SCENARIOS = ("separate", "single-image", "pod", "service", "volume")
INTERVAL = 0.2
# The generator loop a learner would type, with the same random source as generator.sh.
LOOP = ('touch data; while true; do echo $(( $(od -An -N2 -tu2 /dev/urandom) % 32768 )) >> data; '
        'sleep {interval}; done')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.read().split())
    except OSError:
        return False


def _wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.01)


def by_hand() -> dict[str, float]:
    """first_number / recovery / down for the two programs started by hand."""
    with tempfile.TemporaryDirectory(prefix="appcoup-bench-") as d:
        port = _free_port()
        url = f"http://127.0.0.1:{port}/data"
        echo_cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": d}
        t0 = time.monotonic()
        gen = subprocess.Popen(["sh", "-c", LOOP.format(interval=INTERVAL)], start_new_session=True, **quiet)
        echo = subprocess.Popen(echo_cmd, **quiet)
        _wait(url)
        first = time.monotonic() - t0
        time.sleep(1.2)
        t0 = time.monotonic()  # "recovery" by hand: notice nothing, just type the command again
        echo.kill()
        echo.wait()
        echo = subprocess.Popen(echo_cmd, **quiet)
        _wait(url)
        rec = time.monotonic() - t0
        t0 = time.monotonic()
        os.killpg(gen.pid, signal.SIGTERM)
        echo.terminate()
        gen.wait()
        echo.wait()
        down = time.monotonic() - t0
    return {"first_number": first, "recovery": rec, "down": down}


def through_library(rt: ac.Runtime, scenario: str, supervisor: str = "naive") -> dict[str, float | None]:
    """first_number / recovery / down for ``scenario`` through the library, on any runtime."""
    t0 = time.monotonic()
    app = rt.up(scenario, interval=INTERVAL, port=0, progress=False, supervisor=supervisor)  # type: ignore[arg-type]
    try:
        app.wait_ready(timeout=60, progress=False)
        first = time.monotonic() - t0
        time.sleep(1.2)  # past the start-up window, as a crash in a running app would be
        rec = recovery(app, "echo", timeout=5)  # None: /data never came back
    finally:
        t0 = time.monotonic()
        app.down()
        down = time.monotonic() - t0
    return {"first_number": first, "recovery": rec, "down": down}


def _median(values: list[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals and len(vals) == len(values) else None


def interleaved(library: Callable[[], dict], by_hand: Callable[[], dict], repeat: int) -> tuple[dict, dict]:
    """Measure both ways ``repeat`` times, alternating which goes first, so both see the same machine."""
    lib: dict[str, list] = {}
    hand: dict[str, list] = {}
    pair = [(library, lib), (by_hand, hand)]
    for i in range(repeat):
        for measure, into in (pair if i % 2 == 0 else pair[::-1]):
            for k, v in measure().items():
                into.setdefault(k, []).append(v)
    return lib, hand


def comparison_rows(runtime: str, baseline: str, scenario: str, lib: dict, hand: dict) -> list[dict]:
    """first_number, recovery and down for the library and the by-hand baseline, and their ratio."""
    rows = []
    for metric in ("first_number", "recovery", "down"):
        rows.append({"runtime": runtime, "scenario": scenario, "metric": metric, "seconds": _median(lib[metric])})
        rows.append({"runtime": baseline, "scenario": scenario, "metric": metric, "seconds": _median(hand[metric])})
    lf, hf = _median(lib["first_number"]), _median(hand["first_number"])
    rows.append({"runtime": runtime, "scenario": scenario, "metric": "ratio_first_number",
                 "seconds": lf / hf if lf and hf else None})
    return rows


def run(rows: list[dict], repeat: int = 5) -> None:
    rt = ac.runtime("local")
    # One discarded round: the first `up` of a Python session also waits for supervisord's one-off
    # import (about 0.1 s); the rows are about every `up` after that.
    through_library(rt, "pod")
    by_hand()
    for scenario in SCENARIOS:
        lib: dict[str, list] = {}
        hand: dict[str, list] = {}
        for _ in range(repeat):
            for k, v in through_library(rt, scenario).items():
                lib.setdefault(k, []).append(v)
            for k, v in by_hand().items():
                hand.setdefault(k, []).append(v)
        rows += comparison_rows("local", "local-cli", scenario, lib, hand)


def run_course(rows: list[dict]) -> None:
    from appcoup_lib.course import run_course as course

    with tempfile.TemporaryDirectory(prefix="appcoup-course-") as d:
        t0 = time.monotonic()
        results = course(runtime="local", interval=INTERVAL, duration=3.0, out=d, progress=False)
        seconds = time.monotonic() - t0
    failed = [r.notebook for r in results if r.error]
    rows.append({"runtime": "local", "scenario": "course", "metric": "course",
                 "seconds": None if failed else seconds})

"""Local rows of the benchmark: each scenario through the library, and the same two programs
started by hand (a shell loop and ``python -m http.server``) as the baseline, interleaved so both
see the same machine load."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

from common import INTERVAL, comparison_rows, free_port, interleaved, through_library, wait

import appcoup_lib as ac

SCENARIOS = ("separate", "single-image", "pod", "service", "volume")
# The generator loop a learner would type, with the same random source as generator.sh.
LOOP = ('touch data; while true; do echo $(( $(od -An -N2 -tu2 /dev/urandom) % 32768 )) >> data; '
        'sleep {interval}; done')


def by_hand() -> dict[str, float]:
    """first_number / recovery / down for the two programs started by hand."""
    with tempfile.TemporaryDirectory(prefix="appcoup-bench-") as d:
        port = free_port()
        url = f"http://127.0.0.1:{port}/data"
        echo_cmd = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": d}
        t0 = time.monotonic()
        gen = subprocess.Popen(["sh", "-c", LOOP.format(interval=INTERVAL)], start_new_session=True, **quiet)
        echo = subprocess.Popen(echo_cmd, **quiet)
        wait(url)
        first = time.monotonic() - t0
        time.sleep(1.2)
        t0 = time.monotonic()  # "recovery" by hand: notice nothing, just type the command again
        echo.kill()
        echo.wait()
        echo = subprocess.Popen(echo_cmd, **quiet)
        wait(url)
        rec = time.monotonic() - t0
        t0 = time.monotonic()
        os.killpg(gen.pid, signal.SIGTERM)
        echo.terminate()
        gen.wait()
        echo.wait()
        down = time.monotonic() - t0
    return {"first_number": first, "recovery": rec, "down": down}


def run(rows: list[dict], repeat: int = 5) -> None:
    rt = ac.runtime("local")
    # One discarded round: the first `up` of a Python session also waits for supervisord's one-off
    # import (about 0.1 s); the rows are about every `up` after that.
    through_library(rt, "pod")
    by_hand()
    for scenario in SCENARIOS:
        lib, hand = interleaved(lambda: through_library(rt, scenario), by_hand, repeat)  # noqa: B023
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

"""What every benchmark shares: ports and waits for the by-hand baselines, the library's own
measurement of a scenario, the interleaved library-vs-by-hand loop, the rows, the targets and the table.

The runtime benchmarks (``bench_local``, ``bench_docker``, ``bench_kubernetes``, ``bench_loose``)
import this module and nothing of each other; ``bench.py`` runs them all.
"""

from __future__ import annotations

import socket
import statistics
import time
import urllib.request
from collections.abc import Callable

import appcoup_lib as ac
from appcoup_lib.measure import recovery

INTERVAL = 0.2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]

def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.read().split())
    except OSError:
        return False

def wait(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not answers(url):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.01)

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

def median(values: list[float | None]) -> float | None:
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
        rows.append({"runtime": runtime, "scenario": scenario, "metric": metric, "seconds": median(lib[metric])})
        rows.append({"runtime": baseline, "scenario": scenario, "metric": metric, "seconds": median(hand[metric])})
    for metric in ("first_number", "recovery"):
        lv, hv = median(lib[metric]), median(hand[metric])
        if metric == "recovery" and lv is None and hv is None:
            continue  # nothing comes back either way (a naive supervisor): no ratio to read
        rows.append({"runtime": runtime, "scenario": scenario, "metric": f"ratio_{metric}",
                     "seconds": lv / hv if lv and hv else None})
    return rows

# (runtime, metric, limit, scenarios): the value must be below the limit (or above, with ">=").
# Issue 14 section 1b: the library's own overhead must vanish from the figures a learner reads, so
# each figure is held against the same thing done by hand in the same run (ratio = library / by hand).
TARGETS = [
    ("local", "first_number", "<", 1.0, None),
    # An idle machine's figure: with 2 cores shared by many, hand-started processes themselves took
    # 0.11-0.26 s (ratio_recovery, in the table, is the load-independent comparison).
    ("local", "recovery", "<=", 0.15, ("pod", "service", "volume")),
    ("local", "ratio_first_number", "<=", 1.1, None),
    ("local", "course", "<", 180.0, None),  # all eight notebooks, interval 0.2: under 3 minutes
    ("docker", "first_number", "<", 2.0, None),
    ("docker", "ratio_first_number", "<=", 1.1, None),
    ("docker", "stop_naive", ">=", 5.0, None),
    ("docker", "stop_forwarding", "<", 1.0, None),
    ("kubernetes", "first_number", "<", 5.0, ("pod",)),
    ("kubernetes", "recovery", "<", 3.0, ("pod", "service", "volume")),
    ("kubernetes", "ratio_recovery", "<=", 1.1, ("pod", "service", "volume")),
    ("kubernetes", "ratio_first_number", "<=", 1.1, None),
    # GET /data through the library's port-forward vs `kubectl port-forward` to the same pod, interleaved
    # (bench_kubernetes.forward_latency): no slower at the median.
    ("kubernetes", "ratio_data_p50", "<=", 1.0, None),
    # Loose coupling (bench_loose.py): a rolling update of 2 replicas behind a front or a Service
    # fails no request, and never restarts the generator.
    ("local", "upgrade_failed_2", "<", 1.0, None),
    ("docker", "upgrade_failed_2", "<", 1.0, None),
    ("kubernetes", "upgrade_failed_2", "<", 1.0, None),
    ("local", "upgrade_generator_restarts", "<", 1.0, None),
    ("docker", "upgrade_generator_restarts", "<", 1.0, None),
    ("kubernetes", "upgrade_generator_restarts", "<", 1.0, None),
]


def table(rows: list[dict]) -> str:
    lines = [f"{'runtime':<11} {'scenario':<13} {'metric':<26} {'value':>9}"]
    for r in rows:
        s = r["seconds"]
        m = r["metric"]
        val = ("never" if s is None else f"{s:9.2f}x" if m.startswith("ratio")
               else f"{s:9.1f}" if m.endswith(("_ms", "_mb_s")) else f"{int(s):9d}" if "upgrade" in m else f"{s:9.3f}")
        lines.append(f"{r['runtime']:<11} {r['scenario']:<13} {r['metric']:<26} {val:>9}")
    return "\n".join(lines)


def check(rows: list[dict]) -> list[str]:
    misses = []
    for runtime, metric, op, limit, scenarios in TARGETS:
        for r in rows:
            if r["runtime"] != runtime or r["metric"] != metric:
                continue
            if scenarios and r["scenario"] not in scenarios:
                continue
            s = r["seconds"]
            ok = s is not None and {"<": s < limit, "<=": s <= limit, ">=": s >= limit}[op]
            if not ok:
                misses.append(f"{runtime} {r['scenario']} {metric}: {s} (target {op} {limit})")
    return misses

"""Loose-coupling rows of the benchmark, per runtime usable here (notebooks 04 and 05 measure the same):

- ``upgrade_failed_1`` / ``upgrade_failed_2``: failed ``GET /data`` while echo of `service` is rolled
  out with one copy, then with two behind the front (local, docker) or the Service (kubernetes,
  counted from inside the cluster); ``upgrade_generator_restarts``: the generator's restarts meanwhile;
- ``data_p50_ms`` / ``data_p99_ms``: latency of ``GET /data`` through the adapter (`service`) and
  with echo reading the file (`pod`); on kubernetes both through the library's port-forward;
- ``bulk_mb_s``: MB/s of a bulk append read back at ``/data``: through the volume (`volume`) and
  through the HTTP adapter (`service`).

Each row keeps the key ``seconds`` for the value (the table prints counts, ms and MB/s as such).
"""

from __future__ import annotations

import appcoup_lib as ac
from appcoup_lib import loose
from appcoup_lib.runtimes import availability

INTERVAL = 0.2
REQUESTS = 300
MEGABYTES = 5.0


def _row(rows: list[dict], runtime: str, scenario: str, metric: str, value: float | None) -> None:
    rows.append({"runtime": runtime, "scenario": scenario, "metric": metric,
                 "seconds": None if value is None else round(value, 3)})


def run_one(rows: list[dict], name: str) -> None:
    rt = ac.runtime(name)
    with rt.up("service", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=120, progress=False)
        one = app.rollout("echo")
        app.scale("echo", 2)
        two = app.rollout("echo")
    _row(rows, name, "service", "upgrade_failed_1", one["failed_requests"])
    _row(rows, name, "service", "upgrade_failed_2", two["failed_requests"])
    _row(rows, name, "service", "upgrade_generator_restarts", one["generator_restarts"] + two["generator_restarts"])
    for scenario in ("service", "pod"):
        with rt.up(scenario, interval=INTERVAL, port=0, progress=False) as app:
            app.wait_ready(timeout=120, progress=False)
            loose.latencies(app, 20)  # warm-up, not counted
            xs = loose.latencies(app, REQUESTS)
        _row(rows, name, scenario, "data_p50_ms", loose.percentile(xs, 50) * 1000)
        _row(rows, name, scenario, "data_p99_ms", loose.percentile(xs, 99) * 1000)
    for scenario in ("volume", "service"):
        with rt.up(scenario, interval=INTERVAL, port=0, progress=False) as app:
            app.wait_ready(timeout=120, progress=False)
            _row(rows, name, scenario, "bulk_mb_s", loose.bulk(app, MEGABYTES)["mb_per_s"])


def run(rows: list[dict], runtimes: tuple[str, ...] = ("local", "docker", "kubernetes")) -> None:
    for name in runtimes:
        if not availability(name).ok:
            print(f"{name} loose-coupling rows skipped: {availability(name).detail}")
            continue
        try:
            run_one(rows, name)
        except ac.AppcoupError as e:
            print(f"{name} loose-coupling rows not measured: {e.what}")


if __name__ == "__main__":
    import json
    import sys

    out: list[dict] = []
    run(out, tuple(sys.argv[1:]) or ("local", "docker", "kubernetes"))
    print(json.dumps(out, indent=1))

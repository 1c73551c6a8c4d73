"""Kubernetes rows of the benchmark: each scenario through the library, and the same manifests
driven with ``kubectl`` the way a learner would type it (the ``kubectl`` baseline: ``apply``,
``wait``, ``port-forward`` and a GET loop), interleaved so both see the same machine load.

The cluster is the one ``KUBECONFIG`` names; images are built and loaded before anything is timed.
``first_number`` is up -> first number served on this machine; ``recovery`` is kill echo -> /data
answers again (the first crash: the kubelet restarts at once, later ones back off); ``down`` is
until the app's namespace is gone. ``rebuild_one_change`` changes one line of echo and rolls the new
image out in place (a bare pod's container image is mutable): the whole container in `single-image`,
only echo's in `pod`.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import time
import urllib.request

from common import (
    INTERVAL,
    answers,
    check,
    comparison_rows,
    free_port,
    interleaved,
    median,
    table,
    through_library,
)

import appcoup_lib as ac
from appcoup_lib import images, lessons
from appcoup_lib.runtimes.base import learner
from appcoup_lib.runtimes.kubernetes import translate

SCENARIOS = tuple(os.environ.get("APPCOUP_BENCH_SCENARIOS", "single-image,pod,service,volume").split(","))
CLI = "appcoup-benchkubectl"  # the baseline's namespace


def kubectl() -> str:
    for cand in (shutil.which("kubectl"), "/var/cache/appcoup-cluster/kubectl"):
        if cand and os.access(cand, os.X_OK):
            return cand
    raise RuntimeError("the kubectl baseline needs kubectl on PATH")


def _k(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    r = subprocess.run([kubectl(), *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if r.returncode:
        raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def _manifest(scenario: str, tags: dict[str, str]) -> str:
    """The same objects the library applies (namespace included), as one List for `kubectl apply -f -`."""
    sc = ac.scenario(scenario)
    p = translate.plan(sc, scenario, CLI, tags=tags, interval=INTERVAL, learner=learner(), annotations={})
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [p.record, *p.objects]})


class _Forward:
    """`kubectl port-forward` in the background; restarted when it dies (as a learner would)."""

    def __init__(self, target: str, port: int) -> None:
        self.target, self.port = target, port
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen([kubectl(), "-n", CLI, "port-forward", self.target, f"{self.port}:8000"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait()


def _wait_forwarding(fwd: _Forward, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not answers(url):
        if not fwd.alive():
            fwd.start()
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} never answered")
        time.sleep(0.02)


def by_hand(scenario: str, tags: dict[str, str]) -> dict[str, float | None]:
    """first_number / recovery / down with kubectl."""
    unit, container = ac.scenario(scenario).entry
    port = free_port()
    url = f"http://127.0.0.1:{port}/data"
    fwd: _Forward | None = None
    try:
        t0 = time.monotonic()
        _k("-n", CLI, "apply", "-f", "-", stdin=_manifest(scenario, tags))
        selector = f"app.kubernetes.io/name={unit}"
        # Ready is what `kubectl wait` offers; echo's readiness probe is /data (or /healthz in remote mode).
        # A Deployment's pod appears a moment after `apply`: `kubectl wait` finds nothing until then.
        while not _k("-n", CLI, "get", "pod", "-l", selector, "-o", "name").strip():
            time.sleep(0.1)
        _k("-n", CLI, "wait", "--for=condition=Ready", "pod", "-l", selector, "--timeout=120s")
        pod = _k("-n", CLI, "get", "pod", "-l", selector, "-o", "jsonpath={.items[0].metadata.name}")
        fwd = _Forward(f"pod/{pod}", port)
        _wait_forwarding(fwd, url)
        first = time.monotonic() - t0
        time.sleep(1.2)
        rec: float | None = None
        if container == "echo":
            t0 = time.monotonic()
            # `pkill -9 -f echo.py` for an image without pkill ([o]: the pattern must not match this shell).
            # (exit code 137: the exec'd shell goes down with echo's container, as a learner sees it too)
            pkill = "for d in /proc/[0-9]*; do grep -q '/app/ech[o].py' $d/cmdline 2>/dev/null && kill -9 ${d#/proc/}; done"
            subprocess.run([kubectl(), "-n", CLI, "exec", pod, "-c", "echo", "--", "sh", "-c", pkill],
                           capture_output=True, timeout=60, check=False)
            time.sleep(0.01)
            try:
                _wait_forwarding(fwd, url, 10)
                rec = time.monotonic() - t0
            except RuntimeError:
                rec = None
    finally:
        if fwd is not None:
            fwd.stop()
        t0 = time.monotonic()
        _k("delete", "namespace", CLI, "--ignore-not-found", "--wait=true", timeout=300)
        down = time.monotonic() - t0
    return {"first_number": first, "recovery": rec, "down": down}


def _get_ms(url: str) -> float | None:
    """One GET on a new connection (as a learner's request, or a poll, makes one): milliseconds, None if it failed."""
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()
    except OSError:
        return None
    return (time.monotonic() - t0) * 1000


def forward_latency(rt: ac.Runtime, rows: list[dict], samples: int = 60, every: float = 0.1) -> None:
    """GET /data through the library's port-forward and through `kubectl port-forward` to the same pod,
    alternating (``every`` s apart: the course's polling period), so both see the same moments."""
    app = rt.up("pod", interval=INTERVAL, port=0, progress=False)
    fwd: subprocess.Popen | None = None
    try:
        app.wait_ready(timeout=60, progress=False)
        part = app.part(app.scenario.entry[0])  # type: ignore[attr-defined]
        pod = app.pod_of(app.scenario.entry[0])  # type: ignore[attr-defined]
        port = free_port()
        fwd = subprocess.Popen([kubectl(), "-n", part.namespace, "port-forward", f"pod/{pod}", f"{port}:8000"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        urls = {"kubernetes": f"{app.url}/data", "kubectl": f"http://127.0.0.1:{port}/data"}
        deadline = time.monotonic() + 30
        while not answers(urls["kubectl"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        for url in urls.values():  # each path's first connection (kubectl's first stream) is not timed
            _get_ms(url)
        got: dict[str, list[float | None]] = {k: [] for k in urls}
        for i in range(samples):
            for who in (("kubernetes", "kubectl") if i % 2 == 0 else ("kubectl", "kubernetes")):
                got[who].append(_get_ms(urls[who]))
                time.sleep(every)
    finally:
        if fwd is not None:
            fwd.terminate()
            fwd.wait()
        app.down()
    p50 = {who: statistics.median([v for v in vals if v is not None]) if any(v is not None for v in vals) else None
           for who, vals in got.items()}
    for who in ("kubernetes", "kubectl"):
        rows.append({"runtime": who, "scenario": "pod", "metric": "data_p50_ms", "seconds": p50[who]})
    lib, hand = p50["kubernetes"], p50["kubectl"]
    rows.append({"runtime": "kubernetes", "scenario": "pod", "metric": "ratio_data_p50",
                 "seconds": lib / hand if lib and hand else None})


def run(rows: list[dict], repeat: int = 3) -> None:
    rt = ac.runtime("kubernetes")
    names = sorted({c.image for s in SCENARIOS for c in ac.scenario(s).containers})
    tags = images.ensure(names, progress=False)
    _k("delete", "namespace", CLI, "--ignore-not-found", "--wait=true", timeout=300)
    for scenario in SCENARIOS:
        through_library(rt, scenario)  # unmeasured: loads the images into the cluster if needed
        lib, hand = interleaved(lambda s=scenario: through_library(rt, s), lambda s=scenario: by_hand(s, tags), repeat)
        rows += comparison_rows("kubernetes", "kubectl", scenario, lib, hand)
    forward_latency(rt, rows)
    if os.environ.get("APPCOUP_PEER_KUBECONFIG") or os.environ.get("APPCOUP_PEER_CONTEXT"):
        run_federation(rt, rows, repeat)
    for scenario in () if os.environ.get("APPCOUP_BENCH_QUICK") else ("single-image", "pod"):  # quick: no rebuilds
        try:
            r = lessons.rebuild_after_change(rt, scenario, "echo", interval=INTERVAL, progress=False)
        except ac.AppcoupError as e:
            print(f"kubernetes rebuild_one_change ({scenario}) not measured: {e.what}")
            continue
        rows.append({"runtime": "kubernetes", "scenario": scenario, "metric": "rebuild_one_change",
                     "seconds": r["redeploy_seconds"]})
        rows.append({"runtime": "kubernetes", "scenario": scenario, "metric": "rebuild_no_data",
                     "seconds": r["no_data_seconds"]})


def run_federation(rt: ac.Runtime, rows: list[dict], repeat: int = 3) -> None:
    """`federation` across the two clusters (no kubectl baseline: that is two kubeconfigs and a hand-made
    EndpointSlice, see manifests/README.md)."""
    through_library(rt, "federation")  # unmeasured: loads the images into the second cluster if needed
    runs = [through_library(rt, "federation") for _ in range(repeat)]
    for metric in ("first_number", "recovery", "down"):
        rows.append({"runtime": "kubernetes", "scenario": "federation", "metric": metric,
                     "seconds": median([r[metric] for r in runs])})


if __name__ == "__main__":
    os.environ.setdefault("APPCOUP_PROGRESS", "0")
    out: list[dict] = []
    run(out, repeat=int(os.environ.get("APPCOUP_BENCH_REPEAT", "3")))
    print(table(out))
    for m in check(out):
        print(f"MISSED TARGET: {m}")

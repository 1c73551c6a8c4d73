"""Loose coupling, measured: what a Service or a shared volume buys, and what it costs.

Notebooks 04-07 and the benchmark call these; each works on any runtime whose apps can do what
it needs (``app.can("scale")`` ...), and raises :class:`NotSupported` with the reason otherwise.

- :func:`spread`: many requests through ``app.url``: which replica answered each, and whether
  they all serve the same numbers;
- :func:`timed_gets` (and :func:`latencies`, its seconds alone): the time of ``GET /data``, many
  times (through the adapter or not), and where it was taken;
- :func:`bulk`: move N MB from the generator's side to a reader of ``/data``, and time it;
- :func:`scorecard`: every scenario of a runtime, measured the same way, as one table.

Where the numbers are taken: from this machine at ``app.url`` where that URL is the coupling's own
way in (local, docker); inside the cluster where it is a port-forward to one pod (kubernetes,
``app.can("measure_inside")``), which would otherwise be most of every number. Each result says
which (``where``).
"""

from __future__ import annotations

import http.client
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import AppcoupError, InvalidInput, NotReady
from .results import Spread
from .runtimes.base import App, Runtime, Table, parse_numbers


def spread(app: App, requests: int = 30, *, timeout: float = 2.0) -> Spread:
    """Send ``requests`` GET /data to ``app.url``; group the answers by the replica that gave them.

    echo names itself in the ``X-Served-By`` header, so this works through any front: the
    course's, Docker's DNS, or a Kubernetes Service.
    """
    if app.can("spread"):  # a cluster: the Service is reachable from inside only
        return app.spread_inside(requests)  # type: ignore[attr-defined]
    out = Spread()
    for _ in range(requests):
        try:
            with urllib.request.urlopen(app.url + "/data", timeout=timeout) as r:
                who = r.headers.get("X-Served-By") or "?"
                out.served.setdefault(who, []).append(parse_numbers(r.read().decode("utf-8", "replace")))
        except (OSError, http.client.HTTPException):  # refused, reset, or cut half-way
            out.failed += 1
    return out


@dataclass(frozen=True)
class Timings:
    """The seconds each of a run of ``GET`` requests took, the bytes each answered, and ``where``
    they were timed from (this machine via ``app.url``, or inside the cluster: which pod and URL)."""

    seconds: list[float]
    where: str
    bytes: list[int] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        """The ``p``-th percentile of :attr:`seconds`."""
        return percentile(self.seconds, p)


def timed_gets(app: App, n: int = 100, *, path: str = "/data", timeout: float = 5.0,
               via: Literal["auto", "url"] = "auto") -> Timings:
    """Time ``n`` sequential ``GET path`` (a failed request raises), and say where they were timed.

    On a cluster (``app.can("measure_inside")``) they are sent from a container of the app to the
    Service in front of echo, or to echo's ``localhost`` where it has none: ``app.url`` there is a
    port-forward through the API server, which would be most of each number. Elsewhere they go from
    this machine to ``app.url``, the coupling's own way in. ``via="url"``: from this machine to
    ``app.url`` everywhere (to see what the port-forward adds).
    """
    if via not in ("auto", "url"):
        raise InvalidInput(f"There is no way {via!r} to send the requests.", fix='use via="auto" or via="url"')
    if via == "auto" and app.can("measure_inside"):
        r = app.measure_inside(n, path=path, timeout=timeout)  # type: ignore[attr-defined]
        return Timings(r["seconds"], r["where"], r["bytes"])
    seconds, sizes = [], []
    url = app.url + path
    for _ in range(n):
        t0 = time.perf_counter()
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r:
                size = len(r.read())
        except (OSError, http.client.HTTPException) as e:
            raise NotReady(f"{url} failed while measuring latency ({e}).", fix="look at app.status()") from None
        seconds.append(time.perf_counter() - t0)
        sizes.append(size)
    return Timings(seconds, f"from this machine via app.url ({url})", sizes)


def latencies(app: App, n: int = 100, *, path: str = "/data", timeout: float = 5.0) -> list[float]:
    """Seconds each of ``n`` sequential ``GET path`` took: :func:`timed_gets`' ``seconds``."""
    return timed_gets(app, n, path=path, timeout=timeout).seconds


def percentile(values: list[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank), e.g. ``percentile(xs, 99)``."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def plot_latencies(samples: dict[str, list[float] | Timings], ax: Any = None, title: str = "") -> Any:
    """Cumulative distribution of latencies (ms), one curve per label; p50 and p99 in the legend."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    for label, xs in samples.items():
        ms = sorted(x * 1000 for x in (xs.seconds if isinstance(xs, Timings) else xs))
        ax.step(ms, [(i + 1) / len(ms) for i in range(len(ms))], where="post",
                label=f"{label}: p50 {percentile(ms, 50):.1f} ms, p99 {percentile(ms, 99):.1f} ms")
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per GET /data (log scale)")
    ax.set_ylabel("share of requests")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")
    return ax


def bulk(app: App, mb: float = 2.0, *, rounds: int = 3) -> dict[str, Any]:
    """Append ``mb`` MB to the generator's data file, then time reading all of it through ``/data``.

    The bytes go the scenario's way: through the shared volume (echo reads the file), or through
    the adapter's HTTP API (echo fetches it on each request). The best of ``rounds`` reads counts;
    they are timed where :func:`timed_gets` times them (``where`` says: on a cluster, inside it).
    """
    app.require("append", "the generator's data file is out of this runtime's reach here")
    before = len(app.fetch("/data", timeout=10))
    nbytes = int(mb * 1e6)
    app.append_data(nbytes)  # type: ignore[attr-defined]
    reads = timed_gets(app, rounds, timeout=60)
    size = reads.bytes[-1]
    if size < before + nbytes * 0.99:
        raise AppcoupError(f"/data served {size} bytes, fewer than the {before + nbytes} written.",
                           why="the appended data did not reach the reader", fix="look at app.logs('echo')")
    best = min(reads.seconds)
    return {"scenario": app.scenario.name, "bytes": size, "seconds": round(best, 4),
            "mb_per_s": round(size / 1e6 / best, 1), "where": reads.where}


def resolve(app: App, name: str, container: str = "echo") -> dict[str, Any]:
    """How ``name`` is found from ``container``: the addresses, and who answered (DNS or a mapping)."""
    app.require("resolve", f"this runtime cannot show how {name!r} is resolved")
    return app.resolve(name, container=container)  # type: ignore[attr-defined]


# -- the scorecard ------------------------------------------------------------------------------
COLUMNS = ["scenario", "first number (s)", "recovery (s)", "rebuild (s)", "stop (s)",
           "upgrade failures (1 replica)", "upgrade failures (2 replicas)", "generator restarts on upgrade",
           "2 replicas serve", "throughput (MB/s)"]


def _try(fn: Callable[[], Any], notes: list[str], what: str) -> Any:
    try:
        return fn()
    except AppcoupError as e:
        notes.append(f"{what}: {e.what}")
        return None


def score(rt: Runtime, scenario: str, *, interval: float = 0.2, mb: float = 1.0,
          settle: float = 0.2, recovery_timeout: float = 5.0) -> dict[str, Any]:
    """Measure one scenario on ``rt``: one row of the scorecard (None where it cannot be done).

    Recovery is waited for ``recovery_timeout`` s; longer is reported as "not within N s" (where
    nothing restarts echo, it never comes back at all).
    """
    from .measure import recovery

    notes: list[str] = []
    row: dict[str, Any] = {"scenario": scenario}
    t0 = time.monotonic()
    app = rt.up(scenario, interval=interval, port=0, progress=False)
    try:
        app.wait_ready(timeout=60, progress=False)
        row["first number (s)"] = round(time.monotonic() - t0, 3)
        time.sleep(settle)
        if app.can("rollout"):
            up1 = _try(lambda: app.rollout("echo"), notes, "upgrade")
            if up1:
                row["upgrade failures (1 replica)"] = up1["failed_requests"]
                row["rebuild (s)"] = up1["build_seconds"]
                row["generator restarts on upgrade"] = up1["generator_restarts"]
        row["throughput (MB/s)"] = (_try(lambda: bulk(app, mb), notes, "throughput") or {}).get("mb_per_s")
        if app.can("scale"):
            entry_unit = app.scenario.unit_of(app.scenario.entry[1]).name
            if _try(lambda: app.scale(entry_unit, 2), notes, "scale") is not None:
                s = spread(app, 12)
                row["2 replicas serve"] = ("?" if len(s.replicas) < 2 else
                                           "the same numbers" if s.same_numbers else "different numbers")
                if app.can("rollout"):
                    up2 = _try(lambda: app.rollout("echo"), notes, "upgrade with 2 replicas")
                    row["upgrade failures (2 replicas)"] = up2["failed_requests"] if up2 else None
                _try(lambda: app.scale(entry_unit, 1), notes, "scale back")
        rec = _try(lambda: recovery(app, "echo", timeout=recovery_timeout), notes, "recovery")
        row["recovery (s)"] = round(rec, 3) if rec is not None else f"not within {recovery_timeout:g} s"
    finally:
        t1 = time.monotonic()
        app.down()
        row["stop (s)"] = round(time.monotonic() - t1, 3)
    row["notes"] = "; ".join(notes)
    return row


def scorecard(rt: Runtime, scenarios: list[str] | None = None, *, interval: float = 0.2, mb: float = 1.0,
              recovery_timeout: float = 5.0, progress: Callable[[str], None] | None = print) -> Table:
    """Every scenario ``rt`` can run, measured by :func:`score`: one table, no number typed by hand."""
    from .scenarios import SCENARIOS

    names = scenarios or [s.name for s in SCENARIOS.values() if rt.name in s.runtimes]
    rows = []
    for name in names:
        if progress:
            progress(f"measuring {name} on {rt.name} ...")
        rows.append(score(rt, name, interval=interval, mb=mb, recovery_timeout=recovery_timeout))
    return Table(rows, [*COLUMNS, "notes"])


def plot_scorecard(table: Table, title: str = "") -> Any:
    """One figure: a bar chart per numeric column of the scorecard, scenarios side by side."""
    import matplotlib.pyplot as plt

    numeric = [c for c in COLUMNS[1:] if any(isinstance(r.get(c), (int, float)) for r in table)]
    cols = 3
    rows = (len(numeric) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.6 * rows), squeeze=False)
    names = [r["scenario"] for r in table]
    for ax, col in zip(axes.flat, numeric):
        vals = [r.get(col) if isinstance(r.get(col), (int, float)) else 0 for r in table]
        bars = ax.barh(names, vals, color="tab:blue")
        for bar, r in zip(bars, table):
            v = r.get(col)
            ax.annotate("n/a" if v is None else str(v), (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                        va="center", fontsize=7, xytext=(2, 0), textcoords="offset points")
        ax.set_title(col, fontsize=9)
        ax.invert_yaxis()
    for ax in list(axes.flat)[len(numeric):]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


__all__ = ["Spread", "Timings", "bulk", "latencies", "percentile", "plot_latencies", "plot_scorecard", "resolve",
           "score", "scorecard", "spread", "timed_gets"]

"""Measure instead of saying: sample /data over time, time a recovery, plot what happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .errors import AppcoupError, NotReady
from .polling import Poller, Sample, Timeline, sample
from .runtimes.base import App


def watch(app: App, seconds: float, *, every: float = 0.1,
          actions: dict[float, tuple[str, Callable[[], Any]]] | None = None) -> Timeline:
    """Sample /data every ``every`` s for ``seconds`` s; run ``actions`` ({at: (label, fn)}) on the way.

    ``watch(app, 5, actions={1.0: ("kill echo", lambda: app.kill("echo"))})`` shows a crash and
    what follows it.
    """
    return Poller(app, every).run(seconds, actions)


def _restarts(app: App, container: str) -> int | None:
    try:
        return int(app.status().get(container, {}).get("restarts", 0))
    except AppcoupError:
        return None


def recovery(app: App, program: str = "echo", *, timeout: float = 30, every: float = 0.02) -> float | None:
    """Kill ``program`` and return the seconds until /data answers again (None: it never did).

    The clock only counts once the outage is seen to begin: /data stops answering, or the
    container's restart count moves (a restart quicker than one poll). Without that check a
    poll that lands before the kill takes effect would report a recovery of a few milliseconds.
    Raises :class:`NotReady` when no outage is seen at all within ``timeout``.
    """
    container = next((c.name for c in app.scenario.containers if program == c.name or program in c.programs), program)
    before = _restarts(app, container)
    poller = Poller(app, every)
    start = time.monotonic()
    app.kill(program)
    poller.mark(f"kill {program}")
    began = False
    polls = 0
    while time.monotonic() - start < timeout:
        if not poller.sample().answered:
            began = True
            break
        polls += 1
        # Reading the status costs more than a GET: look at the restart count every few polls.
        if polls % 5 == 0 and before is not None and _restarts(app, container) not in (before, None):
            began = True
            break
        time.sleep(every)
    if not began:
        raise NotReady(f"Killing {program!r} did not interrupt /data within {timeout:g} s.",
                       why="no failed request and no restart was seen, so there is no recovery to time",
                       fix="look at app.events(): did the kill reach the program?")
    while time.monotonic() - start < timeout:
        if poller.sample().answered:
            return time.monotonic() - start
        time.sleep(every)
    return None


def time_to_first_number(start_app: Callable[[], App], *, timeout: float = 60) -> tuple[App, float]:
    """Start an app with ``start_app()`` and return it with the seconds until it served a number."""
    t0 = time.monotonic()
    app = start_app()
    app.wait_ready(timeout=timeout, progress=False)
    return app, time.monotonic() - t0


__all__ = ["Poller", "Sample", "Timeline", "recovery", "sample", "time_to_first_number", "watch"]

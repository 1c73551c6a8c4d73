"""Measure instead of saying: sample /data over time, time a recovery, plot what happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import NotReady
from .runtimes.base import App


@dataclass(frozen=True)
class Sample:
    """What GET /data gave at ``t`` seconds after the watch began."""

    t: float
    answered: bool
    count: int  # how many numbers were served (0 when it did not answer)
    last: int | None  # the newest number


class Timeline(list):
    """Samples of /data over time, with the moments something was done to the app."""

    def __init__(self, samples: list[Sample], marks: list[tuple[float, str]]) -> None:
        super().__init__(samples)
        self.marks = marks

    def gaps(self) -> list[tuple[float, float]]:
        """Spans (start, end) in seconds during which /data did not answer."""
        out, start = [], None
        for s in self:
            if not s.answered and start is None:
                start = s.t
            elif s.answered and start is not None:
                out.append((start, s.t))
                start = None
        if start is not None:
            out.append((start, self[-1].t))
        return out

    @property
    def seconds_without_data(self) -> float:
        return sum(b - a for a, b in self.gaps())

    @property
    def answered_at_end(self) -> bool:
        return bool(self) and self[-1].answered

    def plot(self, ax: Any = None, title: str = "") -> Any:
        """Numbers served over time; red spans where /data did not answer; dashed lines for actions."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 3))
        ax.step([s.t for s in self], [s.count if s.answered else float("nan") for s in self],
                where="post", label="numbers served at /data")
        for a, b in self.gaps():
            ax.axvspan(a, max(b, a + 0.05), color="tab:red", alpha=0.25,
                       label="/data not answering" if a == self.gaps()[0][0] else None)
        for t, what in self.marks:
            ax.axvline(t, color="black", linestyle="--", linewidth=1)
            ax.annotate(what, (t, ax.get_ylim()[1]), rotation=90, va="top", ha="right", fontsize=8)
        ax.set_xlabel("seconds")
        ax.set_ylabel("numbers served")
        if title:
            ax.set_title(title)
        ax.legend(loc="upper left", fontsize=8)
        return ax


def sample(app: App) -> tuple[bool, int, int | None]:
    try:
        nums = app.data()
    except NotReady:
        return False, 0, None
    return True, len(nums), nums[-1] if nums else None


def watch(app: App, seconds: float, *, every: float = 0.1,
          actions: dict[float, tuple[str, Callable[[], Any]]] | None = None) -> Timeline:
    """Sample /data every ``every`` s for ``seconds`` s; run ``actions`` ({at: (label, fn)}) on the way.

    ``watch(app, 5, actions={1.0: ("kill echo", lambda: app.kill("echo"))})`` shows a crash and
    what follows it.
    """
    pending = sorted((actions or {}).items())
    samples: list[Sample] = []
    marks: list[tuple[float, str]] = []
    start = time.monotonic()
    while (now := time.monotonic() - start) < seconds:
        while pending and pending[0][0] <= now:
            _, (label, fn) = pending.pop(0)
            marks.append((time.monotonic() - start, label))
            fn()
        answered, count, last = sample(app)
        samples.append(Sample(time.monotonic() - start, answered, count, last))
        time.sleep(max(0.0, every - (time.monotonic() - start - samples[-1].t)))
    return Timeline(samples, marks)


def recovery(app: App, program: str = "echo", *, timeout: float = 30) -> float | None:
    """Kill ``program`` and return the seconds until /data answers again (None: it never did)."""
    start = time.monotonic()
    app.kill(program)
    time.sleep(0.01)
    while time.monotonic() - start < timeout:
        if app.answers():
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def time_to_first_number(start_app: Callable[[], App], *, timeout: float = 60) -> tuple[App, float]:
    """Start an app with ``start_app()`` and return it with the seconds until it served a number."""
    t0 = time.monotonic()
    app = start_app()
    app.wait_ready(timeout=timeout, progress=False)
    return app, time.monotonic() - t0

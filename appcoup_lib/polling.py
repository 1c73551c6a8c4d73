"""Polling primitives: sample GET /data of an app over time, the one way every layer sees an outage.

At the bottom of the library: the runtimes' scaling verbs, :mod:`~appcoup_lib.measure`, the lessons
and the dashboard all use :class:`Poller`, so "failed requests" means the same thing everywhere. An
``app`` here is anything with ``data()`` raising :class:`~appcoup_lib.errors.NotReady` when it
does not answer (every :class:`~appcoup_lib.runtimes.base.App`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import NotReady
from .results import parse_numbers


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


# How long a request counted by a rollout may take before it is a failed one: what a user waits
# before giving up, not a test of speed (a refused or cut request fails at once either way).
PATIENCE = 5.0


def sample(app: Any, timeout: float = 2.0) -> tuple[bool, int, int | None]:
    """GET /data once, waiting at most ``timeout`` s: (answered, how many numbers, the newest)."""
    try:
        nums = parse_numbers(app.fetch("/data", timeout=timeout))
    except NotReady:
        return False, 0, None
    return True, len(nums), nums[-1] if nums else None


class Poller:
    """Samples GET /data of an app every ``every`` seconds: what :func:`watch`, :func:`recovery`
    and the lessons use, so they all see an outage the same way.

    In the foreground, :meth:`run` samples for a while (running actions on the way); as a context
    manager it samples in a background thread while the block does something to the app::

        with Poller(app, every=0.05) as poll:
            app.replace("echo", new_image)
        poll.timeline().seconds_without_data
    """

    def __init__(self, app: Any, every: float = 0.1, *, keep: int | None = None, timeout: float = 2.0) -> None:
        self.app, self.every, self.timeout = app, every, timeout
        # ``keep``: only the newest samples (a rolling window: the dashboard polls for hours).
        self.samples: list[Sample] | deque[Sample] = [] if keep is None else deque(maxlen=keep)
        self.marks: list[tuple[float, str]] = []
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def now(self) -> float:
        """Seconds since this poller began."""
        return time.monotonic() - self._t0

    def sample(self) -> Sample:
        answered, count, last = sample(self.app, self.timeout)
        s = Sample(self.now(), answered, count, last)
        with self._lock:
            self.samples.append(s)
        return s

    def mark(self, label: str) -> None:
        """Note that something was done to the app now (a dashed line in the plot)."""
        with self._lock:
            self.marks.append((self.now(), label))

    def run(self, seconds: float, actions: dict[float, tuple[str, Callable[[], Any]]] | None = None) -> Timeline:
        """Sample for ``seconds``; run ``actions`` ({at: (label, fn)}) at their time."""
        pending = sorted((actions or {}).items())
        end = self.now() + seconds
        while (now := self.now()) < end:
            while pending and pending[0][0] <= now:
                _, (label, fn) = pending.pop(0)
                self.mark(label)
                fn()
            last = self.sample()
            time.sleep(max(0.0, self.every - (self.now() - last.t)))
        return self.timeline()

    def timeline(self) -> Timeline:
        with self._lock:
            return Timeline(list(self.samples), list(self.marks))

    @property
    def dark(self) -> float:
        """Seconds /data did not answer so far."""
        return self.timeline().seconds_without_data

    @property
    def failures(self) -> int:
        """How many samples did not answer."""
        with self._lock:
            return sum(not s.answered for s in self.samples)

    def _background(self) -> None:
        while not self._stop.is_set():
            last = self.sample()
            self._stop.wait(max(0.0, self.every - (self.now() - last.t)))
        self.sample()  # one more, so an outage still going on at the end is counted up to now

    def __enter__(self) -> Poller:
        self._thread = threading.Thread(target=self._background, daemon=True, name="appcoup-poller")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


__all__ = ["Poller", "Sample", "Timeline", "sample"]

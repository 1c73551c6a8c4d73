"""Views that redraw themselves from a running app: the one concurrency idiom of the top layer.

A :class:`LiveView` owns one thread. :meth:`~LiveView.start` starts it, :meth:`~LiveView.stop`
ends it (and so do the app going down, a tick that fails, and the interpreter's exit). A view of
the same kind for the same app started again (a notebook cell run twice) takes over from the old
one, which stops: one thread per kind and app, however often a learner re-runs a cell.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any, ClassVar

_LIVE: dict[tuple[str, str, str], LiveView] = {}  # (kind, runtime, app name) -> the view updating it
_LOCK = threading.Lock()


class LiveView:
    """Calls :meth:`tick` every ``period`` seconds on a thread of its own, until stopped.

    A subclass sets :attr:`kind` and implements :meth:`tick`: it returns False when there is
    nothing more to show (the app is down), and may raise to end the updates quietly (then
    :meth:`ended` hears why).
    """

    kind: ClassVar[str] = "view"
    #: Tick once before the first wait (a panel shows its first picture at once).
    tick_first: ClassVar[bool] = False

    def __init__(self, app: Any, period: float) -> None:
        self.app = app
        self.period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> bool:
        """Read the app and redraw; False ends the updates."""
        raise NotImplementedError

    def ended(self, error: Exception | None) -> None:
        """Called on the thread as it ends (``error``: the exception that ended it, if one did)."""

    @property
    def alive(self) -> bool:
        """True while the updates run."""
        return self._thread is not None and self._thread.is_alive()

    def running(self) -> bool:
        return self.alive and not self._stop.is_set()

    def start(self) -> None:
        """Start the updates (nothing happens when they run already or the app is down)."""
        if self.running() or self.app.is_down:
            return
        key = (self.kind, self.app.runtime.name, self.app.name)
        with _LOCK:
            old = _LIVE.get(key)
            _LIVE[key] = self
        if old is not None and old is not self:
            old.stop()  # a re-run cell: the new view takes over
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"appcoup-{self.kind}-{self.app.name}", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        error: Exception | None = None
        if not self.tick_first:
            self._stop.wait(self.period)
        while not self._stop.is_set():
            try:
                if not self.tick() or self.app.is_down:
                    break
            except Exception as e:  # noqa: BLE001 - the thread must end quietly, never die noisily
                error = e
                break
            self._stop.wait(self.period)
        self._stop.set()
        self.ended(error)

    def stop(self, timeout: float = 5) -> None:
        """Stop the updates (the view keeps its last picture)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        key = (self.kind, self.app.runtime.name, self.app.name)
        with _LOCK:
            if _LIVE.get(key) is self:
                del _LIVE[key]


def live_view(kind: str, app: Any) -> LiveView | None:
    """The view of ``kind`` updating ``app`` now, if any."""
    return _LIVE.get((kind, app.runtime.name, app.name))


@atexit.register
def _stop_all() -> None:
    # At interpreter exit (a kernel restart or shutdown) stop drawing first; registered after the
    # runtimes' own hook (they are imported before the views), so it runs before they take the apps down.
    for view in list(_LIVE.values()):
        view._stop.set()


__all__ = ["LiveView", "live_view"]

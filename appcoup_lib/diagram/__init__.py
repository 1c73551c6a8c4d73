"""``app.diagram()``: what the two programs of an app share, drawn from the running app.

Nested boxes (host or cluster / pod or group / container / process) and, below them, one row per
kind of Linux namespace (network, PID, IPC, mount) with a band over the containers that share one.
Each band says where it comes from: *read* from ``/proc/<pid>/ns/*`` inodes (when the runtime can
see them: ``app.can("namespaces")``) or *inferred* from the spec (the scenario and how the runtime
builds it). The shared volume, the published port (a port-forward on Kubernetes), the Service hop
and the cluster boundary are drawn too.

Two layers, kept apart so the picture never jumps:

* :func:`infer` (pure: a scenario and a runtime name) gives the :class:`Topology` skeleton, and
  the geometry (:func:`layout`) depends on that alone;
* :func:`topology` adds the live state of an app (running, restarts, pids, namespace inodes):
  it changes colours and counters, never positions.

Pure string building (no graphviz, which is not there offline); every label is text in the SVG.
"""

from __future__ import annotations

import os
import weakref
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..dashboard import headless, register_panel
from ..errors import AppcoupError
from ..live import LiveView
from ..results import Table
from ..runtimes.base import App, register_view
from .model import (
    KIND_TITLE,
    KINDS,
    Boundary,
    ContainerBox,
    Hop,
    Namespace,
    Pair,
    Process,
    Topology,
    UnitBox,
    Volume,
)
from .spec import infer, read_namespaces, with_state
from .svg import Layout, layout, render


def topology(app: App) -> Topology:
    """The app as data: its skeleton from the spec, its state and (where readable) its namespaces."""
    topo = infer(app.scenario, app.runtime.name, url=_url(app))
    return _read(app, topo)


def _url(app: App) -> str:
    try:
        return app.url
    except AppcoupError:
        return ""


def _read(app: App, topo: Topology) -> Topology:
    """``topo`` with everything the app says now: status, processes, namespaces where readable."""
    if app.is_down:
        return with_state(topo, {}, message="the app is down: nothing of it runs")
    try:
        status = app.status()
        rows = app.processes()
        inodes = app.namespaces() if app.can("namespaces") else None  # type: ignore[attr-defined]
    except AppcoupError as e:  # the engine or cluster does not answer: state not read, said so
        return with_state(topo, None, message=f"cannot read the app: {e.what}")
    return with_state(topo, status, rows, inodes)


# -- the object a notebook shows --------------------------------------------------------------------------


class Diagram(LiveView):
    """The picture of one app: ``.svg()``, ``.save(path)``, ``.refresh()``; live: ``.widget``, ``.close()``.

    Made by ``app.diagram()``. The layout is computed once, from the spec: an update changes
    colours and counters only.
    """

    kind = "diagram"

    def __init__(self, app: App, *, period: float = 0.5) -> None:
        super().__init__(app, period)
        self._spec = infer(app.scenario, app.runtime.name, url=_url(app))
        self.layout = layout(self._spec)
        self.topology = self._spec
        self._rows: Any = None
        self._inodes: dict[str, dict[str, Any]] | None = None
        self._seen: Any = None
        self._ticks = 0
        self.widget: Any = None
        self.refresh()

    # -- reading ---------------------------------------------------------------------------------------
    def refresh(self) -> Diagram:
        """Read the app again (status; processes and namespaces too); returns itself, to display."""
        self.topology = self._read(full=True)
        return self

    def _read(self, *, full: bool) -> Topology:
        app = self.app
        if app.is_down:
            return with_state(self._spec, {}, message="the app is down: nothing of it runs")
        try:
            status = app.status()
            # ps and /proc are an exec per container on docker and kubernetes: read them again only
            # when a container changed (or every few seconds), not at every tick.
            seen = {c: (s.get("running"), s.get("restarts")) for c, s in status.items()}
            if full or seen != self._seen or self._ticks % 4 == 0:
                self._rows = app.processes()
                if app.can("namespaces"):
                    self._inodes = app.namespaces()  # type: ignore[attr-defined]
            self._seen = seen
        except AppcoupError as e:
            if app.is_down:
                return with_state(self._spec, {}, message="the app is down: nothing of it runs")
            return replace(self.topology, message=f"cannot read the app: {e.what}")
        return with_state(self._spec, status, self._rows, self._inodes)

    # -- output ----------------------------------------------------------------------------------------
    def svg(self) -> str:
        """The SVG text of the last reading."""
        return render(self.topology, self.layout)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the SVG to ``path`` (``.svg``); returns the path."""
        p = Path(path)
        p.write_text(self.svg(), encoding="utf-8")
        return p

    def table(self) -> Table:
        return self.topology.table()

    def html(self) -> str:
        """The picture and, under it, the pairs table (what is shared, read or inferred)."""
        return (f"<div class='appcoup-diagram-view' style='overflow-x:auto'>{self.svg()}"
                f"<details><summary>what each two programs share</summary>{self.table()._repr_html_()}"
                f"</details></div>")

    def _repr_svg_(self) -> str:
        return self.svg()

    def _repr_html_(self) -> str:
        return self.html()

    def __str__(self) -> str:
        t = self.topology
        lines = [t.title + (f" ({t.message})" if t.message else "")]
        for c in t.containers:
            st = "not read" if c.running is None else ("running" if c.running else "not running")
            lines.append(f"  {c.name:<10} {st:<12} restarts={c.restarts}")
        lines.append(str(self.table()))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    # -- live --------------------------------------------------------------------------------------------
    def live_widget(self) -> Any:
        """An ipywidgets ``HTML`` showing the picture, updated by :meth:`start`'s thread."""
        if self.widget is None:
            self.widget = _widget_class()(self)
        return self.widget

    def start(self) -> None:
        """Update the widget every ``period`` seconds until the app is down or :meth:`close`."""
        self.live_widget()
        super().start()

    def tick(self) -> bool:
        self._ticks += 1
        self.topology = self._read(full=False)
        value = self.html()
        if self.widget is not None and self.widget.value != value:
            self.widget.value = value  # only what changed is sent: no flicker
        return True

    def ended(self, error: Exception | None) -> None:
        if error is not None:
            self.topology = replace(self.topology, message=f"stopped: {error!r}")

    def close(self, timeout: float = 5) -> None:
        """Stop the updates (the picture stays as it was last drawn)."""
        self.stop(timeout)


@lru_cache(maxsize=1)
def _widget_class() -> type:
    """An ipywidgets ``HTML`` whose ``close()`` also stops its diagram's thread (ipywidgets imported lazily)."""
    import ipywidgets as w

    class DiagramWidget(w.HTML):  # type: ignore[misc]
        """The live picture; ``.diagram`` is the :class:`Diagram` behind it."""

        def __init__(self, diagram: Diagram) -> None:
            super().__init__(value=diagram.html(), layout=w.Layout(overflow="auto"))
            self.diagram = diagram

        def close(self) -> None:
            self.diagram.close()
            super().close()

    return DiagramWidget


def diagram(app: App, *, live: bool | None = None, period: float = 0.5) -> Any:
    """``app.diagram()``: a live ipywidgets ``HTML`` in a notebook; headless or ``live=False``, a
    :class:`Diagram` snapshot (SVG). The live one's ``.diagram`` is the :class:`Diagram`.
    """
    d = Diagram(app, period=period)
    if (live if live is not None else True) and not headless() and not app.is_down:
        d.start()
        return d.widget
    return d


_PICTURES: weakref.WeakKeyDictionary[App, tuple[Topology, Layout]] = weakref.WeakKeyDictionary()


def picture(app: App, status: dict[str, dict[str, Any]]) -> str:
    """The diagram's SVG coloured by a ``status()`` already read (the dashboard's panel: no extra reads)."""
    if app not in _PICTURES:
        spec = infer(app.scenario, app.runtime.name, url=_url(app))
        _PICTURES[app] = (spec, layout(spec))
    spec, lay = _PICTURES[app]
    if app.is_down:
        return render(with_state(spec, {}, message="the app is down: nothing of it runs"), lay)
    return render(with_state(spec, status), lay)


__all__ = ["KINDS", "KIND_TITLE", "Boundary", "ContainerBox", "Diagram", "Hop", "Layout", "Namespace", "Pair",
           "Process", "Topology", "UnitBox", "Volume", "diagram", "infer", "layout", "picture", "read_namespaces",
           "render", "topology", "with_state"]

register_view("diagram", diagram)
register_panel("what the programs share", picture)

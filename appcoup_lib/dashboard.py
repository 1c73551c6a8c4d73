"""``app.dashboard()``: one live panel for a running app, to play with after the measured parts.

It shows the numbers ``/data`` serves (a rolling window, drawn as SVG: no plotting library,
nothing that grows), each container's state, readiness, restarts and last exit, buttons for what
the notebook teaches (kill generator, kill echo, scale, upgrade, down) and the runtime's timeline.

How it stays safe in a notebook:

* one background thread polls the app and only *sets widget values* (never ``with output:``);
  the buttons run in the kernel, so they work while no cell is busy;
* the thread stops when the app goes down (by the button, ``app.down()``, a ``with`` block's end,
  another process), when a new dashboard is made for the same app (a re-run cell), and at
  interpreter exit (a kernel restart);
* headless (no widget front end: papermill, ``appcoup course``, a plain Python) it shows a static
  snapshot and starts no thread.
"""

from __future__ import annotations

import html
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import AppcoupError
from .live import LiveView
from .polling import Poller
from .runtimes.base import App, Event, register_view

WINDOW = 30.0  # seconds of history on the plot
MAX_POINTS = 400  # numbers kept for the plot: a rolling window, memory stays flat
_CRASH = ("killed", "exited", "gave-up", "probe-failed")


def _own_events(events: list[Event]) -> list[Event]:
    """Drop the ends of containers before they first started: an engine's event stream can still
    show the exit and removal of an earlier app's container of the same name."""
    started: set[str] = set()
    out = []
    for e in events:
        owner = e.container.split("/", 1)[0]
        if e.kind in ("created", "started", "restarted"):
            started.add(owner)
        elif e.kind in (*_CRASH, "stopped", "removed") and owner not in started:
            continue
        out.append(e)
    return out


# Pictures drawn from the last status read, shown under the table: (title, fn(app, status) -> HTML).
# Modules above this one register theirs (the diagram does), so the dashboard imports none of them.
_PANELS: list[tuple[str, Callable[[App, dict[str, dict[str, Any]]], str]]] = []


def register_panel(title: str, fn: Callable[[App, dict[str, dict[str, Any]]], str]) -> None:
    """Add a picture to every dashboard built from now on (``fn`` must be quick: it runs every poll)."""
    _PANELS.append((title, fn))


def headless() -> bool:
    """True where no widget front end will render the panel (papermill, a script, a test).

    ``APPCOUP_HEADLESS=1`` forces it (``appcoup course`` and the notebook tests set it, because
    papermill's kernel cannot tell it has no front end); ``APPCOUP_HEADLESS=0`` forces live.
    """
    forced = os.environ.get("APPCOUP_HEADLESS")
    if forced is not None:
        return forced not in ("", "0", "false", "no")
    try:
        from IPython import get_ipython
    except ImportError:
        return True
    shell = get_ipython()
    return shell is None or type(shell).__name__ != "ZMQInteractiveShell"


@dataclass(frozen=True)
class Row:
    """One container as the panel shows it."""

    container: str
    state: str
    running: bool
    ready: bool
    restarts: int
    last_exit: str


class Dashboard(LiveView):
    """The live panel of one app. Make it with ``app.dashboard()`` or ``ac.dashboard(app)``."""

    kind = "dashboard"
    tick_first = True

    def __init__(self, app: App, *, period: float = 0.4, live: bool | None = None) -> None:
        super().__init__(app, period)
        self.live = (not headless()) if live is None else live
        self.points: deque[tuple[float, int]] = deque(maxlen=MAX_POINTS)  # (epoch, newest number)
        # The one poller the lessons and watch() use too, keeping only the plot's window.
        self._poller = Poller(app, every=period, keep=int(WINDOW / period) + 10)
        self._epoch0 = time.time() - self._poller.now()
        self.count = 0  # numbers /data served at the last answer
        self.answering = False
        self.rows: list[Row] = []
        self.events: list[Event] = []
        self.polls = 0
        self.message = ""
        self._lock = threading.Lock()  # one poll at a time (the thread and a button's refresh)
        self._widget: Any = None
        self._status: dict[str, dict[str, Any]] = {}  # the last status read: the diagram panel's colours
        self.poll()

    # -- reading the app ----------------------------------------------------------------------
    def poll(self) -> bool:
        """Read /data, status and events once; False when the app is gone."""
        with self._lock:
            if self.app.is_down:
                return False
            s = self._poller.sample()
            answered = s.answered
            if answered:
                if s.count < self.count:  # the file started over (a new volume, a new container)
                    self.count = 0
                if s.count > self.count and s.last is not None:
                    self.points.append((self._epoch0 + s.t, s.last))
                self.count = s.count
            self.answering = answered
            try:
                status = self.app.status()
                self.events = _own_events(self.app.events())
            except AppcoupError as e:
                if self.app.is_down:
                    return False
                self.message = f"cannot read the app: {e.what}"
                return not self.app.is_down
            self.rows = self._rows(status, answered)
            self._status = status
            self.polls += 1
            return True

    def _rows(self, status: dict[str, dict[str, Any]], answered: bool) -> list[Row]:
        entry = self.app.scenario.entry[1]
        last_exit: dict[str, str] = {}
        for e in self.events:
            if e.kind in _CRASH:
                owner = e.container.split("/", 1)[0]
                what = e.container.split("/", 1)[1] + " " if "/" in e.container else ""
                last_exit[owner] = f"{what}{e.kind} {e.detail}".strip()
        rows = []
        for name, st in status.items():
            running = bool(st.get("running"))
            serves = answered if name == entry else True  # the entry container is ready when /data answers
            ready = running and st.get("health") != "unhealthy" and serves
            rows.append(Row(name, str(st.get("state", "")), running, ready, int(st.get("restarts", 0)),
                            last_exit.get(name, "")))
        return rows

    def restarts(self) -> dict[str, int]:
        return {r.container: r.restarts for r in self.rows}

    # -- drawing (plain HTML/SVG strings: set as widget values, or shown as a snapshot) ----------
    def plot_svg(self, width: int = 640, height: int = 150) -> str:
        now = time.time()
        t0 = now - WINDOW
        x = lambda t: round((t - t0) / WINDOW * (width - 10) + 5, 1)
        y = lambda v: round(height - 22 - v / 32767 * (height - 40), 1)
        parts = [f"<rect x='0' y='0' width='{width}' height='{height}' fill='#fafafa' stroke='#ddd'/>"]
        # Where /data did not answer: red bands.
        start = None
        for t, ok in [(self._epoch0 + s.t, s.answered) for s in self._poller.timeline()] + [(now, True)]:
            if not ok and start is None:
                start = t
            elif ok and start is not None:
                a = max(start, t0)
                if t > t0:
                    parts.append(f"<rect class='gap' x='{x(a)}' y='0' width='{max(2, x(t) - x(a))}' "
                                 f"height='{height - 18}' fill='#e53935' opacity='0.18'/>")
                start = None
        # Crash moments: red dashed lines, labelled (labels of close marks stack, not overlap);
        # restarts: a short green tick at the bottom.
        placed: list[tuple[float, int]] = []
        for e in self.events:
            if e.time < t0 or e.kind not in (*_CRASH, "restarted"):
                continue
            if e.kind == "restarted":
                parts.append(f"<line class='restart' x1='{x(e.time)}' x2='{x(e.time)}' y1='{height - 30}' "
                             f"y2='{height - 18}' stroke='#2e7d32' stroke-width='2'/>")
                continue
            row = sum(1 for px, _ in placed if abs(px - x(e.time)) < 90) % 4
            placed.append((x(e.time), row))
            # Near the right edge (the newest crash) the label goes to the left of its line.
            left = x(e.time) > width - 90
            parts.append(f"<line class='mark' x1='{x(e.time)}' x2='{x(e.time)}' y1='0' y2='{height - 18}' "
                         f"stroke='#c62828' stroke-dasharray='4 3'/>"
                         f"<text x='{x(e.time) + (-3 if left else 3)}' y='{12 + 11 * row}' font-size='10' "
                         f"fill='#c62828' text-anchor='{'end' if left else 'start'}'>"
                         f"{html.escape(e.container)} {html.escape(e.kind)}</text>")
        # The newest number at each poll: a line through the numbers as they arrive.
        pts = [(t, v) for t, v in self.points if t >= t0]
        if pts:
            poly = " ".join(f"{x(t)},{y(v)}" for t, v in pts)
            parts.append(f"<polyline points='{poly}' fill='none' stroke='#1565c0' stroke-width='1.2'/>")
            parts.extend(f"<circle cx='{x(t)}' cy='{y(v)}' r='1.8' fill='#1565c0'/>" for t, v in pts[-60:])
        parts.append(f"<text x='5' y='{height - 4}' font-size='10' fill='#555'>-{WINDOW:.0f} s</text>"
                     f"<text x='{width - 30}' y='{height - 4}' font-size='10' fill='#555'>now</text>")
        return (f"<svg class='appcoup-plot' data-count='{self.count}' data-points='{len(pts)}' "
                f"width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg'>{''.join(parts)}</svg>")

    def caption_html(self) -> str:
        last = self.points[-1][1] if self.points else "-"
        state = ("<b style='color:#2e7d32'>answering</b>" if self.answering
                 else "<b style='color:#c62828'>not answering</b>")
        return (f"<div class='appcoup-caption'>/data: {state} · numbers served: "
                f"<span class='appcoup-count'>{self.count}</span> · newest: {last}</div>")

    def table_html(self) -> str:
        head = "".join(f"<th style='text-align:left;padding:2px 10px'>{h}</th>"
                       for h in ("container", "state", "running", "ready", "restarts", "last exit"))
        body = []
        yes, no = "<span style='color:#2e7d32'>yes</span>", "<span style='color:#c62828'>no</span>"
        for r in self.rows:
            ok = lambda b: yes if b else no
            body.append(
                f"<tr data-container='{html.escape(r.container)}'>"
                f"<td style='padding:2px 10px'><code>{html.escape(r.container)}</code></td>"
                f"<td style='padding:2px 10px'>{html.escape(r.state)}</td>"
                f"<td style='padding:2px 10px'>{ok(r.running)}</td>"
                f"<td style='padding:2px 10px'>{ok(r.ready)}</td>"
                f"<td class='appcoup-restarts' data-container='{html.escape(r.container)}' "
                f"style='padding:2px 10px'>{r.restarts}</td>"
                f"<td style='padding:2px 10px'>{html.escape(r.last_exit)}</td></tr>")
        return (f"<table class='appcoup-status'><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(body)}</tbody></table>")

    def timeline_html(self, last: int = 40) -> str:
        lines = "\n".join(html.escape(str(e)) for e in self.events[-last:]) or "(nothing yet)"
        return (f"<pre class='appcoup-events' style='max-height:12em;overflow:auto;margin:0;font-size:11px'>"
                f"{lines}</pre>")

    def header_html(self) -> str:
        if self.app.is_down or (self._thread is not None and not self.running()):
            state = "stopped"
        else:
            state = "live" if self.live else "snapshot"
        return (f"<b>{html.escape(self.app.scenario.name)}</b> on "
                f"<b>{html.escape(self.app.runtime.name)}</b> · "
                f"{html.escape(self.app.url)}/data · <span class='appcoup-state'>{state}</span>"
                + (f" · <i>{html.escape(self.message)}</i>" if self.message else ""))

    def snapshot_html(self) -> str:
        """Everything the panel shows, as one static HTML block (what a headless run records)."""
        return (f"<div class='appcoup-dashboard'>{self.header_html()}<br>{self.plot_svg()}"
                f"{self.caption_html()}{self.table_html()}<details><summary>timeline</summary>"
                f"{self.timeline_html()}</details></div>")

    def __str__(self) -> str:
        lines = [f"dashboard of {self.app.scenario.name} on {self.app.runtime.name}: "
                 f"{self.count} numbers served, /data {'answering' if self.answering else 'not answering'}"]
        lines += [f"  {r.container:<10} {r.state:<9} ready={'yes' if r.ready else 'no':<3} "
                  f"restarts={r.restarts} {r.last_exit}" for r in self.rows]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    # -- the live panel ---------------------------------------------------------------------------
    def widget(self) -> Any:
        """The ipywidgets panel (built once); starts the updates."""
        if self._widget is None:
            self._widget = self._build()
            self._render()
        if self.live:
            self.start()
        return self._widget

    def _build(self) -> Any:
        import ipywidgets as w

        self._w_header = w.HTML()
        self._w_plot = w.HTML(layout=w.Layout(min_height="150px"))
        self._w_caption = w.HTML()
        self._w_table = w.HTML()
        self._w_events = w.HTML()
        self._w_message = w.HTML()
        self._w_panels = [(title, fn, w.HTML(layout=w.Layout(overflow="auto"))) for title, fn in _PANELS]
        buttons = []
        programs = {p for c in self.app.scenario.containers for p in (c.name, *c.programs)}
        for prog in ("generator", "echo"):
            b = w.Button(description=f"kill {prog}", icon="bolt", button_style="warning",
                         tooltip=f"SIGKILL {prog}: a crash without warning")
            if prog not in programs:
                b.disabled, b.tooltip = True, f"there is no {prog} in {self.app.scenario.name}"
            b.on_click(lambda _b, p=prog: self._act(f"kill {p}", lambda: self.app.kill(p)))
            buttons.append(b)
        echo_unit = self.app.scenario.unit_of(self.app.scenario.entry[1]).name
        scale = w.Button(description="scale ×2", icon="clone",
                         tooltip=f"run 2 copies of {echo_unit} (again: back to 1)")
        self._replicas = 1
        scale.on_click(lambda _b: self._act("scale", self._scale))
        upgrade = w.Button(description="upgrade echo", icon="arrow-up",
                           tooltip="roll a changed echo out to its own unit only")
        upgrade.on_click(lambda _b: self._act("upgrade echo", lambda: self.app.rollout("echo")))
        for b, ability in ((scale, "scale"), (upgrade, "rollout")):
            if not self.app.can(ability):  # type: ignore[arg-type]
                b.disabled = True
                try:
                    self.app.require(ability)  # type: ignore[arg-type]
                except AppcoupError as e:
                    b.tooltip = f"{e.what} {e.fix}".strip()
        down = w.Button(description="down", icon="stop", button_style="danger",
                        tooltip="stop everything this app started and remove it")
        down.on_click(lambda _b: self._act("down", self.app.down))
        self._buttons = [*buttons, scale, upgrade, down]
        return w.VBox([self._w_header, self._w_plot, self._w_caption, w.HBox(self._buttons), self._w_message,
                       self._w_table, *(x for title, _, wd in self._w_panels
                                        for x in (w.HTML(f"<b>{html.escape(title)}</b>"), wd)),
                       w.HTML("<b>timeline</b>"), self._w_events],
                      layout=w.Layout(border="1px solid #ddd", padding="6px"))

    def _scale(self) -> Any:
        unit = self.app.scenario.unit_of(self.app.scenario.entry[1]).name
        self._replicas = 2 if self._replicas == 1 else 1
        return self.app.scale(unit, self._replicas)  # type: ignore[attr-defined]

    def _act(self, what: str, fn: Any) -> None:
        """A button: do it, say what happened; errors become a line, never a traceback."""
        try:
            result = fn()
            self.message = f"{what}: done at {time.strftime('%H:%M:%S')}"
            if isinstance(result, dict):  # scale and rollout say what they did: show the numbers
                shown = [f"{k.replace('_', ' ')} {v}" for k, v in result.items()
                         if isinstance(v, (int, float, str)) and k != "url"][:6]
                self.message += " · " + ", ".join(shown)
        except AppcoupError as e:
            self.message = f"{what}: {e}"
        except Exception as e:  # noqa: BLE001 - a button must never leave a traceback in the panel
            self.message = f"{what} failed: {e!r}"
        if not self.app.is_down:
            self.poll()
        self._render()

    def _render(self) -> None:
        if self._widget is None:
            return
        values = ((self._w_header, self.header_html()), (self._w_plot, self.plot_svg()),
                  *((wd, fn(self.app, self._status)) for _, fn, wd in self._w_panels),
                  (self._w_caption, self.caption_html()), (self._w_table, self.table_html()),
                  (self._w_events, self.timeline_html()), (self._w_message, html.escape(self.message)))
        for widget, value in values:
            if widget.value != value:  # set only what changed: less traffic, no flicker
                widget.value = value
        if self.app.is_down:
            for b in self._buttons:
                b.disabled = True

    def tick(self) -> bool:
        try:
            alive = self.poll()
        except Exception as e:  # noqa: BLE001 - the updates end cleanly, with the reason on the panel
            self.message, alive = f"stopped: {e!r}", False
        self._render()  # raising (the front end went away: a kernel shutting down) ends the updates
        return alive

    def _ipython_display_(self) -> None:
        from IPython.display import HTML, display

        if self.live:
            display(self.widget())
        else:
            display(HTML(self.snapshot_html()), metadata={})
            print(self)


def dashboard(app: App, *, period: float = 0.4, live: bool | None = None) -> Dashboard:
    """A live panel for ``app`` (a static snapshot when headless). Display it: the last line of a cell."""
    return Dashboard(app, period=period, live=live)


__all__ = ["Dashboard", "Row", "dashboard", "headless", "register_panel"]


register_view("dashboard", Dashboard)

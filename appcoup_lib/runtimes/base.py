"""The one interface every runtime implements, and what all runtimes share.

A runtime subclass implements a handful of hooks (``_start``, ``_stop``, ``_status`` ...); the
base class owns waiting, reading ``/data``, the context manager and teardown in ``finally``.
"""

from __future__ import annotations

import atexit
import http.client
import inspect
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from ..errors import AppcoupError, InvalidInput, NotFound, NotReady, NotSupported
from ..inputs import (  # noqa: F401 - re-exported: the runtimes check their inputs with these
    DNS1123,
    check_address,
    check_interval,
    check_name,
    check_port,
    check_supervisor,
    default_name,
    learner,
)
from ..labels import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL, NAME_MAX, PREFIX  # noqa: F401 - re-exported
from ..progress import Progress
from ..results import Event, Table, parse_numbers
from ..scenarios import Scenario
from ..scenarios import scenario as get_scenario

# Optional abilities an App may have beyond the common interface. Lessons check ``app.can(...)``,
# never the runtime's class.
Ability = Literal[
    "exec",      # app.exec(container, *argv): run a command inside a container
    "stop",      # app.stop(container, timeout): stop with a grace period, returns seconds taken
    "replace",   # app.replace(container, image): recreate one container from another image
    "commands",  # app.commands(): the plain CLI commands that would do the same by hand
    "spec",      # app.spec(): what the runtime applied for this app, as text (YAML, Dockerfile, supervisord.conf)
    "scale",     # app.scale(unit, replicas): run N copies of one unit
    "rollout",   # app.rollout(program, ...): roll a changed program out to its unit only
    "recreate",  # app.recreate(*units): delete units (and their scratch volumes), create them again
    "spread",    # app.spread_inside(requests): which copy answered, counted from inside (a cluster's Service)
    "append",    # app.append_data(nbytes): write into the generator's data file (the bulk-throughput lesson)
    "resolve",   # app.resolve(name, container=): what a name resolves to as seen from inside a container
    "measure_inside",  # app.measure_inside(n): GET /data timed inside a cluster, not through its port-forward
    "namespaces",  # app.namespaces(): {container: {"net"|"pid"|"ipc"|"mnt": inode}} read from /proc
]


class UnknownProgram(InvalidInput, NotFound):
    """A program name that is not part of the scenario (``kill("database")``)."""


@dataclass(frozen=True)
class Availability:
    """Whether a runtime is usable here; when not, why and the one step that fixes it."""

    runtime: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok " if self.ok else "-- "
        return f"{mark}{self.runtime:<11} {self.detail}" + (f"\n{'':15}fix: {self.fix}" if self.fix else "")


def record_event(path: Path, container: str, kind: str, detail: str = "") -> None:
    """Append what appcoup itself did (a kill, an up) to an app's journal, one JSON line an event.

    The runtimes' own records cannot tell a crash appcoup caused from any other, so they keep this beside.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps({"time": time.time(), "container": container, "kind": kind, "detail": detail}) + "\n")


def recorded_events(path: Path) -> list[Event]:
    """The journal :func:`record_event` wrote (nothing if there is none yet)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    return [Event(**json.loads(line)) for line in lines if line.strip()]


class App(ABC):
    """A running scenario. Returned by :meth:`Runtime.up`; also a context manager."""

    #: What this kind of app can do beyond the common interface (see :data:`Ability`).
    abilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float) -> None:
        self.runtime = runtime
        self.scenario = scenario
        self.name = name
        self.interval = interval
        self._down = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.scenario.name!r} on {self.runtime.name} at {self.url}>"

    # -- what every runtime provides -------------------------------------------------------
    @property
    @abstractmethod
    def url(self) -> str:
        """Where ``/data`` is served (``http://host:port``)."""

    @abstractmethod
    def status(self) -> dict[str, dict[str, Any]]:
        """``{container: {"running": bool, "restarts": int, ...}}``."""

    @abstractmethod
    def processes(self) -> Table:
        """What runs in each container: a ps-like table."""

    @abstractmethod
    def _kill(self, container: str, program: str) -> None:
        """SIGKILL ``program`` inside ``container`` (the container's main process if equal)."""

    @abstractmethod
    def events(self) -> list[Event]:
        """The timeline of what the runtime did, oldest first."""

    @abstractmethod
    def logs(self, container: str) -> str:
        """What a container printed."""

    @abstractmethod
    def _teardown(self) -> None:
        """Stop everything this app started, wait for it, remove its state."""

    # -- shared behaviour --------------------------------------------------------------------
    def can(self, ability: Ability) -> bool:
        """Whether this app can do ``ability`` (``"stop"``, ``"replace"``, ``"scale"`` ...)."""
        return ability in self.abilities and self.runtime.can(ability)

    def require(self, ability: Ability, why: str = "") -> None:
        """Raise :class:`NotSupported` naming the runtimes that can, when this app cannot ``ability``."""
        if self.can(ability):
            return
        able = [cls.name for cls in iter_runtimes() if ability in getattr(cls, "app_abilities", frozenset())]
        raise NotSupported(
            f"The {self.runtime.name} runtime cannot {ability} ({self.scenario.name!r}).",
            why=why or f"{ability!r} is not something {self.runtime.description} can do for real",
            fix=f"run this part on a runtime that can: {', '.join(able) or 'none available'}",
        )

    def kill(self, program: str) -> None:
        """Crash one program the way a real crash looks: SIGKILL, no clean-up.

        ``program`` is a container name, or a program inside a supervisor container
        (``kill("echo")`` in `single-image` kills echo inside the one container).
        """
        for c in self.scenario.containers:
            if program == c.name or program in c.programs:
                self._kill(c.name, program)
                return
        valid = sorted({p for c in self.scenario.containers for p in (c.name, *c.programs)})
        raise UnknownProgram(f"There is no program {program!r} in scenario {self.scenario.name!r}.",
                       fix=f"use one of: {', '.join(valid)}")

    def fetch(self, path: str = "/data", timeout: float = 2.0) -> str:
        """GET ``path`` from the app; raises :class:`NotReady` when it does not answer."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as r:
                return r.read().decode("utf-8", "replace")
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
            # A connection cut mid-response (IncompleteRead, BadStatusLine, RemoteDisconnected,
            # a reset) is a program dying while it answered: "not answering", like a refused one.
            reason = getattr(e, "reason", None) or f"{type(e).__name__}: {e}"
            raise NotReady(f"{self.url}{path} does not answer ({reason}).",
                           why="echo is not serving right now (crashed, restarting or not started yet)",
                           fix="look at app.status() and app.events(), or app.logs('echo')") from None

    def data(self) -> list[int]:
        """The numbers echo serves now."""
        return parse_numbers(self.fetch("/data"))

    def answers(self) -> bool:
        """True when GET /data answers with status 200."""
        try:
            self.fetch("/data", timeout=1.0)
            return True
        except NotReady:
            return False

    def wait_ready(self, timeout: float = 30, *, progress: bool | None = None) -> App:
        """Wait until GET /data answers with at least one number."""
        deadline = time.monotonic() + timeout
        next_check = time.monotonic() + 0.2
        with Progress(f"waiting for {self.scenario.name} to serve /data", total=None, enabled=progress) as bar:
            while True:
                try:
                    if self.data():
                        return self
                except NotReady:
                    pass
                if time.monotonic() > next_check:
                    next_check = time.monotonic() + 0.25
                    failure = self._failed()
                    if failure is not None:
                        # It cannot start (its port was taken after it was chosen ...): no point
                        # waiting, and nothing of it may stay behind.
                        self.down()
                        raise failure
                if time.monotonic() > deadline:
                    raise NotReady(
                        f"{self.scenario.name!r} on {self.runtime.name} served no number at {self.url}/data "
                        f"within {timeout:g} s.",
                        why=self._not_ready_hint(),
                        fix="look at app.status(), app.events() and app.logs(NAME); then app.down()",
                    )
                bar.tick()
                time.sleep(0.01)

    def _failed(self) -> AppcoupError | None:
        """Why the app can never get ready (checked while waiting), or None. Runtimes may say more."""
        return None

    def _not_ready_hint(self) -> str:
        try:
            st = self.status()
        except AppcoupError as e:
            return str(e)
        return "; ".join(f"{c}: {'running' if s.get('running') else 'not running'}" for c, s in st.items())

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> float:
        """Poll ``predicate`` until true; returns the seconds it took."""
        start = time.monotonic()
        while not predicate():
            if time.monotonic() - start > timeout:
                raise NotReady(f"Timed out after {timeout:g} s waiting for {what}.",
                               fix="look at app.status() and app.events()")
            time.sleep(0.02)
        return time.monotonic() - start

    def dashboard(self, *, period: float = 0.4, live: bool | None = None) -> Any:
        """A live panel: the numbers, each container, kill/scale/upgrade/down buttons, the timeline.

        Make it the last line of a cell. Headless (papermill) it is a static snapshot.
        See :mod:`appcoup_lib.dashboard`.
        """
        return view("dashboard")(self, period=period, live=live)

    def diagram(self, *, live: bool | None = None) -> Any:
        """What the two programs share, drawn from this app: host / node / pod / container / process
        boxes, with the shared network, PID, IPC and mount namespaces, the volume, the port, the
        Service hop. See :mod:`appcoup_lib.diagram`.
        """
        return view("diagram")(self, live=live)

    @property
    def is_down(self) -> bool:
        """Whether :meth:`down` has stopped this app (then nothing of it runs any more)."""
        return self._down

    def down(self) -> None:
        """Stop everything this app started and remove its state (safe to call twice)."""
        if self._down:
            return
        # Marked down only once the teardown succeeded: when the engine was gone, a second
        # down() (or the atexit hook) finishes the job once it is back.
        self._teardown()
        self._down = True
        self.runtime._forget(self)
        if _OWN.get((self.runtime.name, self.name)) is self:
            del _OWN[(self.runtime.name, self.name)]

    def __enter__(self) -> App:
        self._in_with = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


# Views of an app drawn by the layer above the runtimes (the dashboard, the diagram), registered
# by name when that layer is imported (``import appcoup_lib`` does): the runtimes never import it.
_VIEWS: dict[str, Callable[..., Any]] = {}


def register_view(name: str, factory: Callable[..., Any]) -> None:
    """Make ``app.<name>()`` build ``factory(app, **options)`` (the dashboard registers itself so)."""
    _VIEWS[name] = factory


def view(name: str) -> Callable[..., Any]:
    try:
        return _VIEWS[name]
    except KeyError:
        raise NotSupported(f"No {name} view is loaded.", why="the views live in the top of the library",
                           fix="import appcoup_lib (as a notebook does) before asking an app for it") from None


class Runtime(ABC):
    """Where a scenario runs. Subclasses register themselves under ``name``."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: The abilities of this runtime's apps (mirrors ``App.abilities``, readable without an app).
    app_abilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self._apps: list[App] = []
        _LIVE.add(self)  # one atexit hook for all of them (weakly held: a dropped runtime is collected)

    # -- hooks ---------------------------------------------------------------------------------
    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Whether this runtime is usable here (cheap; never raises)."""

    @abstractmethod
    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None) -> App:
        """Start ``scenario``; return at once (before it is ready)."""

    def attach(self, scenario: str, name: str | None = None) -> App:
        """An :class:`App` for a scenario already running (started by another process).

        The scenario comes back as ``up`` made it: the supervisor it chose (``single-image``'s
        naive or init) is read from what ``up`` recorded, never assumed.
        """
        sc = get_scenario(scenario)
        name = check_name(name) if name else default_name(sc.name)
        record = self._recorded(sc, name)
        return self._attach(sc.with_supervisor(record.get("supervisor") or "naive"), name, record)

    @abstractmethod
    def _recorded(self, scenario: Scenario, name: str) -> dict[str, Any]:
        """What ``up`` recorded of the app ``name`` (``supervisor``, ``interval`` ...); :class:`NotFound`
        with the command that starts it when there is no such app."""

    @abstractmethod
    def _attach(self, scenario: Scenario, name: str, record: dict[str, Any]) -> App:
        """The :class:`App` for ``name``, from what :meth:`_recorded` found."""

    @abstractmethod
    def running(self) -> list[dict[str, Any]]:
        """The apps appcoup runs on this runtime now: ``[{"name", "scenario", "url"}]``."""

    @classmethod
    @abstractmethod
    def clean(cls, *, all_learners: bool = False) -> list[str]:
        """Remove what this learner started on this runtime (everyone's with ``all_learners``).

        Returns what was removed.
        """

    # -- shared --------------------------------------------------------------------------------
    def can(self, ability: Ability) -> bool:
        """Whether this runtime's apps can do ``ability`` here (a runtime may lose one on a machine
        that lacks what it needs: rollout without an engine to build the new image)."""
        return ability in self.app_abilities

    def up(self, scenario: str | Scenario, *, interval: float = 2, port: int = 8000,
           supervisor: Literal["naive", "init"] = "naive", name: str | None = None,
           progress: bool | None = None, detach: bool = False, address: str = "127.0.0.1") -> App:
        """Start ``scenario`` and return at once; call ``wait_ready()`` on the result.

        Args:
            scenario: a scenario name (``"pod"``) or a :class:`Scenario`.
            interval: seconds between two numbers of the generator.
            port: where ``/data`` is published; 0 picks a free port.
            supervisor: for `single-image`, the naive ``app.sh`` or the forwarding ``app-init.sh``.
            name: the app's name, a DNS-1123 label (default ``appcoup-<learner>-<scenario>``).
            progress: show progress bars (default: when interactive).
            detach: leave it running when this Python process exits (the CLI's ``up``).
            address: where the published port listens: ``127.0.0.1`` (this machine only, the
                default: a workshop's Wi-Fi must not reach a learner's data) or e.g. ``0.0.0.0``.
        """
        sc = get_scenario(scenario)
        sc.check_runtime(self.name)
        supervisor = check_supervisor(supervisor)  # type: ignore[assignment]
        sc = sc.with_supervisor(supervisor)  # a scenario without a supervisor container stays as it is
        interval = check_interval(interval)
        port = check_port(port)
        name = check_name(name) if name is not None else default_name(sc.name)
        address = check_address(address)
        extra: dict[str, Any] = {}
        if address != "127.0.0.1":
            if "address" not in inspect.signature(self._up).parameters:
                raise NotSupported(f"The {self.name} runtime cannot publish on {address}.",
                                   why="it publishes on this machine only",
                                   fix="leave address out (127.0.0.1)")
            extra["address"] = address
        _replace_own(self.name, name)
        app = self._up(sc, name, interval=interval, port=port, progress=progress, **extra)
        _OWN[(self.name, name)] = app
        if not detach:
            self._apps.append(app)
            _first_at_exit()
        return app

    def _forget(self, app: App) -> None:
        if app in self._apps:
            self._apps.remove(app)

    def _down_all(self) -> None:
        for app in list(self._apps):
            try:
                app.down()
            except Exception:  # noqa: BLE001 - best effort at interpreter exit
                pass

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


# The apps this Python process started, by (runtime, name). A notebook cell ``app = rt.up(...)``
# run a second time replaces the app the first run started, instead of failing with AlreadyUp:
# re-running a cell is what learners do. An app inside a running ``with`` block, or started by
# another process, still raises AlreadyUp: a second copy there is a mistake, not a re-run.
_OWN: dict[tuple[str, str], App] = {}


def _replace_own(runtime: str, name: str) -> None:
    old = _OWN.get((runtime, name))
    if old is not None and not old._down and not getattr(old, "_in_with", False):
        del _OWN[(runtime, name)]
        print(f"(stopping {name!r}, which this kernel started earlier, to start it again)")
        try:
            old.down()
        except AppcoupError as e:  # its engine is gone, say: the new one must still be able to start
            print(f"(could not stop the earlier {name!r}: {e.what})")


_REGISTRY: dict[str, type[Runtime]] = {}
_LIVE: weakref.WeakSet[Runtime] = weakref.WeakSet()


@atexit.register
def _down_everything() -> None:
    """At interpreter exit: stop every app a runtime of this process started (not the detached ones).

    A kernel being shut down (JupyterLab, papermill) gets SIGINT, then SIGTERM at half its manager's
    wait (2.5 s of 5 by default), then SIGKILL: the first two wait here until the apps are down, so
    a slow engine does not cut a ``down`` half-way (a network or a volume left behind)."""
    runtimes = list(_LIVE)
    if not runtimes:
        return
    held = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            held[sig] = signal.signal(sig, signal.SIG_IGN)
    try:
        for rt in runtimes:
            rt._down_all()
    finally:
        for sig, handler in held.items():
            signal.signal(sig, handler)


def _first_at_exit() -> None:
    # atexit runs the last registered first. The SDKs register their own clean-up when they connect
    # (the kubernetes client closes its thread pool), after this module was imported: moved behind
    # them at every up, the apps go down while their clients still work.
    atexit.unregister(_down_everything)
    atexit.register(_down_everything)


def register(cls: type[Runtime]) -> type[Runtime]:
    """Class decorator: make a runtime available under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def registry() -> dict[str, type[Runtime]]:
    return dict(_REGISTRY)


def iter_runtimes() -> Iterator[type[Runtime]]:
    yield from _REGISTRY.values()

"""appcoup: couple two programs in containers, for real, wherever you are.

::

    import appcoup_lib as ac
    rt = ac.runtime("auto")              # "local" | "docker" | "kubernetes"
    with rt.up("pod", interval=0.5) as app:
        app.wait_ready()
        app.data()                       # the numbers echo serves
        app.kill("echo")                 # a crash: what restarts, and how fast?
        app.events()                     # what the runtime did
"""

from __future__ import annotations

from . import diagram, exercises, guide, loose, measure
from .dashboard import dashboard
from .doctor import clean, doctor, running
from .errors import (
    AlreadyUp,
    AppcoupError,
    BuildError,
    InvalidInput,
    NotFound,
    NotReady,
    NotSupported,
    PortInUse,
    RuntimeUnavailable,
    UnknownRuntime,
    UnknownScenario,
)
from .measure import watch
from .runtimes import App, Event, Runtime, Table, runtime, runtime_for
from .runtimes.base import default_name
from .scenarios import SCENARIOS, Scenario, scenario

__version__ = "0.1.0"


def matrix() -> Table:
    """Scenarios x runtimes: what couples the programs, and where each one runs."""
    from .runtimes import Table, names

    return Table([{"scenario": s.name, "couples the programs by": s.couples_by,
                   **{r: ("yes" if r in s.runtimes else "n/a") for r in names()}}
                  for s in SCENARIOS.values()])

__all__ = [
    "SCENARIOS",
    "AlreadyUp",
    "App",
    "AppcoupError",
    "BuildError",
    "Event",
    "InvalidInput",
    "NotFound",
    "NotReady",
    "NotSupported",
    "PortInUse",
    "Runtime",
    "RuntimeUnavailable",
    "Scenario",
    "UnknownRuntime",
    "UnknownScenario",
    "clean",
    "dashboard",
    "default_name",
    "diagram",
    "doctor",
    "exercises",
    "guide",
    "loose",
    "matrix",
    "measure",
    "running",
    "runtime",
    "runtime_for",
    "scenario",
    "watch",
]

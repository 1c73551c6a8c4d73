"""What one crash does to an app: who restarted, how long /data was dark, what happened to the numbers.

Recovery times alone can look the same on a fast machine (on `local` both a pod and a single
image are back within a fraction of a second). What differs is *what* restarted: in a pod only
the crashed program; in one image with a supervisor, everything in the container.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from .errors import NotReady
from .runtimes.base import App, Table

_PROGRAM_OF = {"generator.sh": "generator", "echo.py": "echo", "adapter.py": "adapter"}


def program_pids(app: App) -> dict[str, int]:
    """``{program: pid}`` of the course's programs running now (pids as the runtime reports them)."""
    out: dict[str, int] = {}
    for row in app.processes():
        cmd = str(row.get("command", ""))
        for script, program in _PROGRAM_OF.items():
            if script in cmd and isinstance(row.get("pid"), int):
                out.setdefault(program, row["pid"])
    return out


@dataclass(frozen=True)
class Crash:
    """The outcome of killing ``program`` once."""

    coupling: str
    killed: str
    dark_seconds: float | None  # None: /data never answered again within the timeout
    restarted: tuple[str, ...]  # programs that run with a new pid afterwards
    numbers_before: int
    numbers_after: int  # served once /data answered again
    generator_kept_running: bool

    def row(self) -> dict[str, object]:
        return {
            "coupling": self.coupling,
            "killed": self.killed,
            "/data dark (s)": "never back" if self.dark_seconds is None else f"{self.dark_seconds:.2f}",
            "programs restarted": ", ".join(self.restarted) or "none",
            "generator kept running": "yes" if self.generator_kept_running else "no (restarted)",
            "numbers before -> after": f"{self.numbers_before} -> {self.numbers_after}",
        }


def crash(app: App, program: str = "echo", *, coupling: str = "", timeout: float = 60,
          settle: float = 1.0) -> Crash:
    """Kill ``program`` in a ready ``app`` and report what the crash did."""
    before = program_pids(app)
    restarts_before = {c: st.get("restarts", 0) for c, st in app.status().items()}
    n_before = len(app.data())
    t0 = time.monotonic()
    app.kill(program)
    time.sleep(0.05)
    dark: float | None = None
    n_after = 0
    while time.monotonic() - t0 < timeout:
        try:
            n_after = len(app.data())
            dark = time.monotonic() - t0
            break
        except NotReady:
            time.sleep(0.02)
    if dark is not None:
        # Let restarted programs show up in the process list (a supervisor starts them in turn).
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline and set(program_pids(app)) != set(before):
            time.sleep(0.05)
    after = program_pids(app)
    # A container that restarted restarted every program in it (inside a container, a new process
    # may get the same pid again); outside that, a new pid is a restart too.
    restarts_after = {c: st.get("restarts", 0) for c, st in app.status().items()}
    renewed = {p for c in app.scenario.containers
               if restarts_after.get(c.name, 0) > restarts_before.get(c.name, 0)
               for p in (c.programs or (c.name,))}
    renewed |= {p for p in before if after.get(p) != before[p]}
    restarted = tuple(p for p in ("generator", "adapter", "echo") if p in renewed)
    return Crash(coupling or app.scenario.name, program, dark, restarted, n_before, n_after,
                 "generator" in after and "generator" not in renewed)


def table(crashes: list[Crash]) -> Table:
    rows = [c.row() for c in crashes]
    return Table(rows, list(rows[0]) if rows else None)


__all__ = ["Crash", "crash", "program_pids", "table"]

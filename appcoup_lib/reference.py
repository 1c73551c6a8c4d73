"""Reference figures: numbers `make bench` measured on a real Docker engine, for where there is none.

On `local` (a laptop without Docker, Binder) the Docker-only lessons (how long ``docker stop``
takes, what a rebuild costs) cannot be measured. The notebooks then show what ``make bench``
measured on a machine that had an engine, read from ``notebooks/reference/bench-<machine>.json``
(written by ``benchmarks/bench.py`` with the date and the machine). Never typed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NotFound
from .paths import notebooks_dir


@dataclass(frozen=True)
class Reference:
    """One ``make bench`` run: when, where, and its rows ``{runtime, scenario, metric, seconds}``."""

    path: Path
    date: str
    machine: dict[str, Any]
    rows: list[dict[str, Any]]

    def seconds(self, metric: str, scenario: str, runtime: str = "docker") -> float | None:
        for r in self.rows:
            if (r["runtime"], r["scenario"], r["metric"]) == (runtime, scenario, metric):
                return r["seconds"]
        raise NotFound(f"The reference {self.path.name} has no {runtime}/{scenario}/{metric} figure.",
                       fix="run `make bench` on a machine with Docker to record it")

    @property
    def source(self) -> str:
        m = self.machine
        return (f"measured by `make bench` on {self.date[:10]}, machine {m.get('name', '?')} "
                f"({m.get('cpus', '?')} CPUs, {m.get('system', '?')}, Docker {m.get('docker', '?')})")

    def __str__(self) -> str:
        return f"reference figures {self.source}"


def directory() -> Path:
    return notebooks_dir() / "reference"


def load(path: str | Path | None = None) -> Reference:
    """The newest reference file (or ``path``)."""
    if path is None:
        files = sorted(directory().glob("bench-*.json"))
        if not files:
            raise NotFound("There are no reference figures in notebooks/reference/.",
                           why="they are written by `make bench` on a machine with a Docker engine",
                           fix="run `make bench` there and commit notebooks/reference/bench-*.json")
        loaded = [load(f) for f in files]
        return max(loaded, key=lambda r: r.date)
    p = Path(path)
    data = json.loads(p.read_text())
    return Reference(p, data["date"], data["machine"], data["rows"])


__all__ = ["Reference", "directory", "load"]

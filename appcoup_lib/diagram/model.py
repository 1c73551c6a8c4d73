"""The diagram's data: a :class:`Topology` of boxes (host or cluster / unit / container / process),
the namespaces each container is in, the volumes and the network hops. No drawing here."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Literal

from ..results import Table

Kind = Literal["net", "pid", "ipc", "mnt"]
KINDS: tuple[Kind, ...] = ("net", "pid", "ipc", "mnt")
KIND_TITLE = {"net": "network", "pid": "PID", "ipc": "IPC", "mnt": "mount"}
Source = Literal["read", "inferred"]
Scope = Literal["host", "unit", "container", "across"]


# -- the model ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Process:
    """One program box inside a container (a supervisor and the programs it started, or one)."""

    name: str  # "generator", "echo", "adapter", or "supervisor"
    command: str
    child: bool = False  # started by the container's supervisor (drawn indented)
    pid: str | None = None  # live: as the runtime lists it (its own PID namespace on docker)
    running: bool | None = None  # None: not read; False: its container runs, but it does not


@dataclass(frozen=True)
class Mount:
    volume: str
    path: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerBox:
    """One container (on local: one supervised program) and its live state."""

    name: str
    image_key: str  # the directory of images/ it is built from
    image: str  # how this runtime gets it (an image, or the plain files)
    processes: tuple[Process, ...]
    port: int | None = None
    mount: Mount | None = None
    running: bool | None = None  # None: not read (a spec-only picture)
    restarts: int = 0
    state: str = ""


@dataclass(frozen=True)
class UnitBox:
    """A pod on Kubernetes, a group of containers on Docker, a group of processes locally."""

    name: str
    title: str  # "pod app", "process group app"
    note: str  # what this unit is on this runtime (one sentence, from the spec)
    containers: tuple[ContainerBox, ...]
    volumes: tuple[str, ...] = ()  # volumes that live inside it (a pod's emptyDir)
    live: str = ""  # live placement (node, pod name): a counter, never a position


@dataclass(frozen=True)
class Boundary:
    """The outermost box: this machine, the Docker host, or one Kubernetes cluster."""

    name: str
    title: str
    note: str
    units: tuple[UnitBox, ...]
    volumes: tuple[str, ...] = ()  # volumes that live here, outside any unit
    live: str = ""


@dataclass(frozen=True)
class Volume:
    name: str
    kind: str  # the scenario's: host-dir | scratch | persistent
    title: str  # what it is on this runtime: "emptyDir", "named volume", "directory"
    note: str


@dataclass(frozen=True)
class Namespace:
    """One namespace of one kind and the containers in it."""

    kind: Kind
    key: str  # the inode (read) or a name for it (inferred)
    members: tuple[str, ...]  # container names, scenario order
    scope: Scope  # host: every process of the machine; unit: a pod's; container: its own
    source: Source
    why: str  # short: fits the band of one container
    detail: str = ""  # the longer story (the manifest it comes from): in the tooltip


@dataclass(frozen=True)
class Hop:
    """One program reaching another over the network: the learner's port, or a Service."""

    kind: Literal["entry", "service"]
    to: str  # container that answers
    frm: str | None  # container that asks (None: the learner)
    title: str
    note: str
    crosses_clusters: bool = False


@dataclass(frozen=True)
class Pair:
    """What two programs share, kind by kind (the table under the picture)."""

    a: str
    b: str
    shares: dict[str, bool]  # kind -> shared
    source: dict[str, str]  # kind -> read | inferred
    volume: str | None = None

    def shared(self) -> tuple[str, ...]:
        return tuple(k for k in KINDS if self.shares[k])


@dataclass(frozen=True)
class Topology:
    """Everything the picture shows, as data: ``topology(app)`` or ``infer(scenario, runtime)``."""

    scenario: str
    runtime: str
    title: str
    boundaries: tuple[Boundary, ...]
    volumes: tuple[Volume, ...]
    namespaces: tuple[Namespace, ...]
    hops: tuple[Hop, ...]
    url: str = ""
    message: str = ""  # a live problem (the app is down, the engine does not answer)

    # -- lookups -----------------------------------------------------------------------------------
    @property
    def units(self) -> tuple[UnitBox, ...]:
        return tuple(u for b in self.boundaries for u in b.units)

    @property
    def containers(self) -> tuple[ContainerBox, ...]:
        return tuple(c for u in self.units for c in u.containers)

    def container(self, name: str) -> ContainerBox:
        return next(c for c in self.containers if c.name == name)

    @property
    def programs(self) -> dict[str, str]:
        """Program -> the container it runs in (supervisors left out: they are not the application)."""
        return {p.name: c.name for c in self.containers for p in c.processes if p.name != "supervisor"}

    def namespace(self, kind: str, container: str) -> Namespace:
        return next(n for n in self.namespaces if n.kind == kind and container in n.members)

    def programs_in(self, ns: Namespace) -> list[str]:
        return [p for p, c in self.programs.items() if c in ns.members]

    def pairs(self) -> list[Pair]:
        """For each two programs: which namespaces they share, and whether that was read or inferred."""
        out = []
        progs = self.programs
        for a, b in combinations(progs, 2):
            ca, cb = progs[a], progs[b]
            shares, source = {}, {}
            for k in KINDS:
                na, nb = self.namespace(k, ca), self.namespace(k, cb)
                shares[k] = na.key == nb.key
                source[k] = "read" if na.source == nb.source == "read" else "inferred"
            ma, mb = self.container(ca).mount, self.container(cb).mount
            vol = ma.volume if ma and mb and ma.volume == mb.volume else None
            out.append(Pair(a, b, shares, source, vol))
        return out

    def table(self) -> Table:
        """The pairs as a table: ``yes (read)`` / ``no (inferred)`` per namespace, and the volume."""
        rows = []
        for p in self.pairs():
            row: dict[str, Any] = {"programs": f"{p.a} + {p.b}"}
            for k in KINDS:
                row[KIND_TITLE[k]] = f"{'yes' if p.shares[k] else 'no'} ({p.source[k]})"
            row["volume"] = p.volume or "-"
            rows.append(row)
        return Table(rows, ["programs", *(KIND_TITLE[k] for k in KINDS), "volume"])

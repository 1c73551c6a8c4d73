"""Scenarios as data: one way of coupling the generator and echo, shared by every runtime.

A scenario lists *units* (what shares a network namespace and is scheduled together: a pod on
Kubernetes, a group of containers on Docker, a group of processes locally), the *containers* in
each unit, and the *volumes* they share. Each runtime translates this into its own objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Literal

from .errors import InvalidInput, NotSupported, UnknownScenario

RuntimeName = Literal["local", "docker", "kubernetes"]
RUNTIMES: tuple[str, ...] = ("local", "docker", "kubernetes")
VolumeKind = Literal["host-dir", "scratch", "persistent"]
Restart = Literal["always", "on-failure", "never"]
Supervisor = Literal["naive", "init", "restarting"]
# The image of the one container of `single-image`, per supervisor (see images/combined/).
SUPERVISOR_IMAGES: Mapping[str, str] = MappingProxyType(
    {"naive": "combined", "init": "combined-init", "restarting": "combined-restart"})

ECHO_PORT = 8000
ADAPTER_PORT = 8080


@dataclass(frozen=True)
class Container:
    """One program in its own image.

    Attributes:
        name: how the course calls it ("generator", "echo", "adapter", "app").
        image: key of the image in ``images/`` ("generator", "echo", "adapter", "combined").
        command: argv inside the image; files live under ``/app``.
        workdir: the container's working directory, where its volume is mounted.
        volume: name of the scenario volume mounted at ``workdir`` (None: nothing shared).
        port: the port it listens on inside its unit (None: it serves nothing).
        probe: HTTP path a runtime may use for readiness/liveness.
        source: remote mode: name of the service whose ``/data`` echo reads instead of a file.
        programs: the programs running inside (for a supervisor container: several).
        healthcheck: an HTTP path a runtime with health checks (Docker) polls as a ``HEALTHCHECK``
            given at ``docker run`` (see :meth:`Scenario.with_restart`); None: the image's own, if any.
    """

    name: str
    image: str
    command: tuple[str, ...]
    workdir: str
    volume: str | None = None
    port: int | None = None
    probe: str | None = None
    source: str | None = None
    programs: tuple[str, ...] = ()
    healthcheck: str | None = None  # an HTTP path Docker checks as the container's HEALTHCHECK

    @property
    def runs(self) -> tuple[str, ...]:
        """Programs inside this container (itself, unless it is a supervisor)."""
        return self.programs or (self.name,)


@dataclass(frozen=True)
class Unit:
    """Containers scheduled together that share one network namespace (a pod)."""

    name: str
    containers: tuple[Container, ...]
    restart: Restart = "always"


@dataclass(frozen=True)
class Service:
    """A stable name in front of one container's port (what `service` discovers)."""

    name: str
    unit: str
    container: str
    port: int


@dataclass(frozen=True)
class Scenario:
    """One way of coupling the two programs."""

    name: str
    title: str
    couples_by: str
    units: tuple[Unit, ...]
    volumes: Mapping[str, VolumeKind]
    entry: tuple[str, str]  # (unit, container) whose port serves /data to the learner
    services: tuple[Service, ...] = ()
    unsupported: Mapping[str, str] = field(default_factory=dict)  # runtime -> why not

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes that can run this scenario."""
        return tuple(r for r in RUNTIMES if r not in self.unsupported)

    @property
    def containers(self) -> tuple[Container, ...]:
        return tuple(c for u in self.units for c in u.containers)

    def container(self, name: str) -> Container:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)

    def unit_of(self, container: str) -> Unit:
        for u in self.units:
            if any(c.name == container for c in u.containers):
                return u
        raise KeyError(container)

    def check_runtime(self, runtime: str) -> None:
        """Raise :class:`NotSupported` when ``runtime`` cannot run this scenario."""
        if runtime in self.unsupported:
            others = ", ".join(self.runtimes) or "none"
            raise NotSupported(
                f"Scenario {self.name!r} does not run on the {runtime} runtime.",
                why=self.unsupported[runtime],
                fix=f"run it on a runtime that supports it: {others}",
            )

    @property
    def supervisor(self) -> Supervisor:
        """Which supervisor its combined container runs (what :meth:`with_supervisor` chose)."""
        for sup, image in SUPERVISOR_IMAGES.items():
            if sup != "naive" and any(c.image == image for c in self.containers):
                return sup  # type: ignore[return-value]
        return "naive"

    @property
    def restart(self) -> Restart:
        """The restart policy of its units (what :meth:`with_restart` chose; `always` unless said)."""
        policies = {u.restart for u in self.units}
        return "always" if "always" in policies else ("on-failure" if "on-failure" in policies else "never")

    def with_restart(self, restart: Restart) -> Scenario:
        """Every unit with the restart policy ``restart``: ``always``, ``on-failure`` or ``never``.

        `separate` is started without one (``never``), as two plain ``docker run`` are;
        ``with_restart("on-failure")`` is ``docker run --restart on-failure`` for both (on local,
        supervisord's ``autorestart=unexpected``). Its echo then also carries a health check (Docker's
        ``HEALTHCHECK`` on ``/healthz``), which marks a hung echo unhealthy and restarts nothing.
        """
        if restart not in ("always", "on-failure", "never"):
            raise InvalidInput(f"There is no restart policy {restart!r}.",
                               fix="use restart='always', 'on-failure' or 'never'")
        units = tuple(replace(u, restart=restart, containers=tuple(
            replace(c, healthcheck="/healthz") if c.port is not None and restart != "never" else c
            for c in u.containers)) for u in self.units)
        return replace(self, units=units)

    def with_supervisor(self, supervisor: Supervisor) -> Scenario:
        """For `single-image`: the naive `app.sh`, the signal-forwarding `app-init.sh`, or the
        restarting `app-restart.sh` (one loop per program that starts it again when it exits)."""
        if supervisor not in SUPERVISOR_IMAGES:
            raise InvalidInput(f"There is no supervisor {supervisor!r}.",
                               fix="use supervisor='naive' (app.sh), 'init' (app-init.sh) or "
                                   "'restarting' (app-restart.sh)")
        image = SUPERVISOR_IMAGES[supervisor]
        units = tuple(
            replace(u, containers=tuple(
                replace(c, image=image) if c.image.startswith("combined") else c for c in u.containers
            ))
            for u in self.units
        )
        return replace(self, units=units)


def _generator(workdir: str = "/tmp/out", volume: str = "data") -> Container:
    return Container("generator", "generator", ("sh", "/app/generator.sh"), workdir, volume)


def _echo(workdir: str = "/tmp/in", volume: str | None = "data", source: str | None = None) -> Container:
    return Container(
        "echo", "echo", ("python3", "/app/echo.py"), workdir, volume,
        port=ECHO_PORT, probe="/healthz" if source else "/data", source=source,
    )


def _through_adapter() -> dict:
    """generator + adapter in one unit, echo in remote mode in another, joined by a Service."""
    return dict(
        units=(
            Unit("generator", (
                _generator(),
                Container("adapter", "adapter", ("python3", "/app/adapter.py"), "/tmp/out", "data",
                          port=ADAPTER_PORT, probe="/readyz"),
            )),
            Unit("echo", (_echo("/tmp/in", None, source="adapter"),)),
        ),
        volumes={"data": "scratch"},
        entry=("echo", "echo"),
        services=(Service("adapter", "generator", "adapter", ADAPTER_PORT),),
    )


_NO_CLUSTER_LOCAL = "there is no cluster when the programs are plain processes or containers on one engine"

SCENARIOS: Mapping[str, Scenario] = MappingProxyType({s.name: s for s in (
    Scenario(
        name="separate",
        title="Two separate runs",
        couples_by="a shared host directory and a published port",
        units=(Unit("generator", (_generator(),), "never"), Unit("echo", (_echo(),), "never")),
        volumes={"data": "host-dir"},
        entry=("echo", "echo"),
        unsupported={"kubernetes": (
            "a pod cannot count on a host directory shared with another pod, and there is no "
            "`docker run -p` on a cluster: what this scenario improvises by hand is exactly what "
            "a pod (scenario `pod`) or a persistent volume (scenario `volume`) gives you"
        )},
    ),
    Scenario(
        name="single-image",
        title="One image, one container, a supervisor",
        couples_by="one image and one container: a supervisor script starts both programs",
        units=(Unit("app", (Container(
            "app", "combined", ("sh", "/app/supervisor.sh"), "/tmp/app", "data",
            port=ECHO_PORT, probe=None, programs=("generator", "echo"),
        ),)),),
        volumes={"data": "scratch"},
        entry=("app", "app"),
    ),
    Scenario(
        name="pod",
        title="Two containers in one pod",
        couples_by="one network namespace (localhost) and one shared scratch volume",
        units=(Unit("app", (_generator(), _echo())),),
        volumes={"data": "scratch"},
        entry=("app", "echo"),
    ),
    Scenario(
        name="service",
        title="Loose coupling through a Service",
        couples_by="an HTTP API (the adapter) found by name (DNS)",
        **_through_adapter(),
    ),
    Scenario(
        name="volume",
        title="Loose coupling through a persistent volume",
        couples_by="a persistent volume mounted by two separately scheduled units",
        units=(Unit("generator", (_generator(),)), Unit("echo", (_echo(),))),
        volumes={"data": "persistent"},
        entry=("echo", "echo"),
    ),
    Scenario(
        name="federation",
        title="Across two clusters",
        couples_by="an endpoint exposed by one cluster and consumed from another",
        **_through_adapter(),
        unsupported={"local": _NO_CLUSTER_LOCAL, "docker": _NO_CLUSTER_LOCAL},
    ),
)})


def scenario(name: str | Scenario) -> Scenario:
    """Look a scenario up by name; an unknown name lists the valid ones."""
    if isinstance(name, Scenario):
        return name
    try:
        return SCENARIOS[name]
    except KeyError:
        raise UnknownScenario(
            f"There is no scenario {name!r}.",
            fix=f"use one of: {', '.join(SCENARIOS)}",
        ) from None

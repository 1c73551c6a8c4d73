"""The Docker runtime: each scenario as containers, networks and volumes on a Docker engine.

How a scenario becomes Docker objects (what a learner would type by hand, see :meth:`DockerApp.commands`):

- a unit with one container is one ``docker run``; its port is published on the host;
- a unit with several containers (a pod) gets a tiny *pause* container that owns the network
  namespace and publishes the port; the others join it with ``--network container:<pause>``
  (this is what Kubernetes does for every pod);
- a ``host-dir`` volume is a bind mount of a host directory; ``scratch`` and ``persistent``
  volumes are named volumes;
- a scenario with services gets a user-defined network, where Docker's DNS answers the service
  name (a network alias of the unit that serves it).

Every verb's engine errors become AppcoupErrors at :func:`~.engine.errors`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ... import images
from ...errors import AlreadyUp, AppcoupError, NotFound, PortInUse
from ...labels import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL, SCENARIO_LABEL
from ...scenarios import Container, Scenario, Unit
from ..base import (
    App,
    Availability,
    Runtime,
    check_address,
    learner,
    register,
)
from . import objects
from .app import DockerApp
from .engine import (
    DEFAULT_SOCKET,
    FIX_PERMISSION,
    FIX_SDK,
    FIX_START,
    base_url,
    connect,
    diagnose,
    errors,
    flavour,
    in_parallel,
)


# -- the runtime ---------------------------------------------------------------------------------
@register
class DockerRuntime(Runtime):
    """Containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    name = "docker"
    description = "containers on a Docker engine"
    app_abilities = DockerApp.abilities

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    @classmethod
    def availability(cls) -> Availability:
        try:
            import docker  # noqa: F401 - only whether it is there
        except ImportError:
            return Availability("docker", False, "the Docker SDK for Python is not installed", FIX_SDK)
        host = os.environ.get("DOCKER_HOST", "") or base_url() or ""
        if not host or host.startswith("unix://"):
            sock = host[len("unix://"):] if host else DEFAULT_SOCKET
            if not os.path.exists(sock):
                return Availability("docker", False, f"no Docker engine: the socket {sock} does not exist",
                                    FIX_START)
            if not os.access(sock, os.R_OK | os.W_OK):
                return Availability("docker", False, f"permission denied on the Docker socket {sock}",
                                    FIX_PERMISSION)
        try:
            client = connect(timeout=3)
            engine = flavour(client)  # Docker Engine, or Podman's Docker-compatible API
            client.close()
        except Exception as e:  # noqa: BLE001 - availability never raises
            cause = e.__cause__ or e
            detail, fix = diagnose(cause)
            return Availability("docker", False, detail, fix)
        where = host or f"unix://{DEFAULT_SOCKET}"
        return Availability("docker", True, f"{engine.name} at {where}")

    # -- up --------------------------------------------------------------------------------------
    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None,
            address: str = "127.0.0.1") -> App:
        with errors(f"Starting {scenario.name!r} on Docker failed"):
            return self._start(scenario, name, interval=interval, port=port, progress=progress, address=address)

    def _start(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None,
               address: str) -> DockerApp:
        import docker.errors

        client = self.client
        existing = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={name}"})
        if any(c.status in ("running", "restarting", "created") for c in existing):
            raise AlreadyUp(f"The app {name!r} already runs on the docker runtime.",
                            fix=f"use it, or stop it first: app.down() or `appcoup down {scenario.name} --runtime docker`")
        if existing:
            objects.remove_app(client, name)  # left over from a killed kernel
        needed = sorted({c.image for c in scenario.containers} | (
            {"pause"} if any(len(u.containers) > 1 for u in scenario.units) else set()))
        tags = images.ensure(needed, progress=progress)

        entry_unit, entry_name = scenario.entry
        entry = scenario.container(entry_name)
        if port:
            holder = objects.port_holder(client, port)
            if holder:
                raise PortInUse(port, holder)
        else:
            # Pick the port here rather than let Docker pick: Docker picks a new one at every
            # restart, and the learner's URL must survive a crash.
            port = objects.free_port(client)
        started = time.time()
        address = check_address(address)
        meta = {"appcoup.interval": f"{interval:g}", "appcoup.port": str(port), "appcoup.supervisor": scenario.supervisor,
                "appcoup.started": f"{started:.3f}"}
        app = DockerApp(self, scenario, name, interval=interval, client=client, started=started, port=port)
        cmds: list[str] = []
        try:
            network = None
            if scenario.services:
                network = f"{name}-net"
                client.networks.create(network, driver="bridge", labels=objects.labels(name, scenario.name))
                cmds.append(f"docker network create {network}")
            vols: dict[str, str] = {}
            for vol, kind in scenario.volumes.items():
                if kind == "host-dir":
                    d = objects.state_root() / name / vol
                    d.mkdir(parents=True, exist_ok=True)
                    vols[vol] = str(d)
                else:
                    vname = f"{name}-{vol}"
                    client.volumes.create(vname, labels=objects.labels(name, scenario.name))
                    vols[vol] = vname
                    cmds.append(f"docker volume create {vname}")

            def start_unit(unit: Unit) -> list[str]:
                done: list[str] = []
                # `-p 127.0.0.1:PORT:8000`: reachable from this machine only, unless asked otherwise.
                ports = {f"{entry.port}/tcp": (address, port)} if unit.name == entry_unit else None
                aliases = [s.name for s in scenario.services if s.unit == unit.name] + [unit.name]
                netkw: dict[str, Any] = {}
                if network:
                    from docker.types import EndpointConfig

                    netkw = {"network": network,
                             "networking_config": {network: EndpointConfig(client.api._version, aliases=aliases)}}
                if len(unit.containers) > 1:
                    pause = client.containers.run(
                        tags["pause"], name=app.pause_name(unit.name), detach=True, ports=ports,
                        labels=objects.labels(name, scenario.name, **meta, **{"appcoup.container": "pause",
                                                                       "appcoup.unit": unit.name}),
                        restart_policy=_policy(unit.restart), **netkw)
                    done.append(_cli("run", app.pause_name(unit.name), tags["pause"], ports=ports, network=network,
                                     aliases=aliases if network else None, restart=unit.restart))
                    members = [(c, {"network_mode": f"container:{pause.id}"}, None) for c in unit.containers]
                else:
                    members = [(unit.containers[0], netkw, ports)]
                return done + self._run_members(app, unit, members, tags, vols, interval, meta)

            # Units are independent (echo finds the adapter by name when asked): start them together.
            for unit_cmds in in_parallel([lambda u=u: start_unit(u) for u in scenario.units]):
                cmds.extend(unit_cmds)
        except BaseException as e:
            objects.remove_after_failed_start(client, name)  # nothing half-started stays behind
            text = str(getattr(e, "explanation", None) or e) if isinstance(e, docker.errors.APIError) else ""
            if port and ("port is already allocated" in text or "address already in use" in text):
                raise PortInUse(port, objects.port_holder(client, port) or "another program") from e
            if port and "privileged port" in text:  # rootless Podman or rootless Docker
                raise AppcoupError(f"A rootless engine cannot publish port {port} (below 1024).",
                                   why=f"{flavour(client).name} said: {text[:300]}",
                                   fix="use port=0 (any free port) or one from 1024 up; or allow low ports: "
                                       f"sysctl net.ipv4.ip_unprivileged_port_start={port}") from e
            raise  # an engine error becomes an AppcoupError at the boundary in _up
        app._commands = cmds
        return app

    def _run_members(self, app: DockerApp, unit: Unit, members: list[tuple[Container, dict, Any]],
                     tags: dict[str, str], vols: dict[str, str], interval: float,
                     meta: dict[str, str]) -> list[str]:
        """Start the containers of one unit together (each `docker run` is a round trip); their commands."""
        sc = app.scenario

        def run(c: Container, netkw: dict, ports: Any) -> str:
            env = {"INTERVAL": f"{interval:g}", "ECHO_QUIET": "1", "PYTHONUNBUFFERED": "1",
                   "APPCOUP_CONTAINER": c.name}  # echo names itself in X-Served-By
            if c.port is not None:
                env["PORT"] = str(c.port)
            if c.source:
                svc = next(s for s in sc.services if s.name == c.source)
                env["SOURCE_URL"] = f"http://{svc.name}:{svc.port}/data"
            volumes = {vols[c.volume]: {"bind": c.workdir, "mode": "rw"}} if c.volume else None
            # The images run as a non-root user (10001, group 0); a host directory belongs to whoever
            # runs appcoup, so containers writing into one run as that user (`docker run -u`).
            user = (f"{os.getuid()}:{os.getgid()}" if c.volume and sc.volumes.get(c.volume) == "host-dir"
                    else None)
            health = _healthcheck(c) if c.healthcheck else {}
            app.client.containers.run(
                tags[c.image], command=list(c.command), name=app.container_name(c.name), detach=True,
                environment=env, working_dir=c.workdir, volumes=volumes, ports=ports, user=user,
                labels=objects.labels(app.name, sc.name, **meta, **{"appcoup.container": c.name, "appcoup.unit": unit.name}),
                restart_policy=_policy(unit.restart), **health, **netkw)
            aliases = [s.name for s in sc.services if s.unit == unit.name] + [unit.name]
            return _cli("run", app.container_name(c.name), tags[c.image], ports=ports, env=env, volumes=volumes, user=user,
                        network=netkw.get("network") or (f"container:{app.pause_name(unit.name)}"
                                                         if netkw.get("network_mode") else None),
                        restart=unit.restart, health=c.healthcheck and _health_cmd(c.healthcheck, c.port or 8000),
                        aliases=aliases if netkw.get("network") else None)

        return in_parallel([lambda m=m: run(*m) for m in members])

    # -- other processes' apps -------------------------------------------------------------------
    @errors("Cannot find the app on Docker")
    def _recorded(self, scenario: Scenario, name: str) -> dict[str, Any]:
        ctrs = self.client.containers.list(all=True, filters={"label": f"{APP_LABEL}={name}"})
        if not ctrs:
            raise NotFound(f"No app {name!r} runs on the docker runtime.",
                           fix=f"start it: `appcoup up {scenario.name} --runtime docker`")
        lab = ctrs[0].labels
        return {"supervisor": lab.get("appcoup.supervisor"), "interval": float(lab.get("appcoup.interval", "2")),
                "started": float(lab.get("appcoup.started", time.time()))}

    def _attach(self, scenario: Scenario, name: str, record: dict[str, Any]) -> App:
        return DockerApp(self, scenario, name, interval=record["interval"], client=self.client,
                         started=record["started"])

    @errors("Cannot list what runs on Docker")
    def running(self) -> list[dict[str, Any]]:
        """This learner's apps (a classroom shares one engine: each sees their own)."""
        ctrs = self.client.containers.list(filters={"label": [f"{LABEL}={LABEL_VALUE}",
                                                              f"{LEARNER_LABEL}={learner()}"]})
        apps: dict[str, dict[str, Any]] = {}
        for c in ctrs:
            name = c.labels.get(APP_LABEL)
            if not name or name in apps:
                continue
            sc = c.labels.get(SCENARIO_LABEL, "?")
            try:
                url = self.attach(sc, name).url
            except AppcoupError:
                url = "?"
            apps[name] = {"runtime": "docker", "name": name, "scenario": sc, "url": url}
        return list(apps.values())

    @classmethod
    @errors("Cannot clean up on Docker")
    def clean(cls, *, all_learners: bool = False) -> list[str]:
        """Remove this learner's containers, networks and volumes (everyone's with ``all_learners``)."""
        return objects.remove_app(connect(), None, learner_only=None if all_learners else learner())


def _policy(restart: str) -> dict[str, Any] | None:
    """``--restart always|on-failure`` as the SDK's restart_policy (None: ``no``, Docker's default)."""
    return None if restart == "never" else {"Name": restart}


def _health_cmd(path: str, port: int = 8000) -> str:
    return f"python3 -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}{path}', timeout=1)\""


def _healthcheck(c: Container) -> dict[str, Any]:
    """``docker run --health-cmd ... --health-interval 2s --health-timeout 1s --health-retries 2``."""
    s = 1_000_000_000  # the API counts nanoseconds
    return {"healthcheck": {"test": ["CMD-SHELL", _health_cmd(c.healthcheck or "/healthz", c.port or 8000)],
                            "interval": 2 * s, "timeout": s, "retries": 2}}


def _cli(verb: str, name: str, image: str, *, ports: Any = None, env: dict | None = None,
         volumes: dict | None = None, network: str | None = None, restart: str = "never",
         aliases: list[str] | None = None, user: str | None = None, health: str | None = None) -> str:
    """The `docker run` command line equivalent to one SDK call (shown to learners)."""
    parts = ["docker", verb, "-d", "--name", name]
    if restart != "never":
        parts += ["--restart", restart]
    if health:
        parts += ["--health-cmd", repr(health), "--health-interval", "2s", "--health-timeout", "1s",
                  "--health-retries", "2"]
    if user:
        parts += ["-u", user]
    if network:
        parts += ["--network", network]
    for a in aliases or []:
        parts += ["--network-alias", a]
    for k, v in (ports or {}).items():
        ip, hp = v if isinstance(v, tuple) else ("", v)
        parts += ["-p", ":".join(str(x) for x in (ip, hp or "", k.split("/")[0]) if x != "") if hp else k.split("/")[0]]
    for src, m in (volumes or {}).items():
        parts += ["-v", f"{src}:{m['bind']}"]
    for k, v in (env or {}).items():
        parts += ["-e", f"{k}={v}"]
    return " ".join([*parts, image])


__all__ = ["DockerRuntime"]

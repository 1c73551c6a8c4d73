"""A scenario running as containers on a Docker engine: what the learner does with it.

Every method that talks to the engine goes through :func:`~.engine.errors`: an engine that is
gone, or that refuses, is an AppcoupError naming what failed.
"""

from __future__ import annotations

import time
from typing import Any

from ... import images
from ...errors import AppcoupError, NotFound
from ...labels import APP_LABEL, STOP_GRACE
from ...scenarios import Scenario
from .. import procs
from ..base import Event, Runtime, Table
from ..spec import Commands, Spec
from . import crash, health, objects, spec
from .engine import errors, find, host_address, short_ref
from .events import record, timeline
from .scaling import DockerScaling

# Seconds `docker stop` waits before SIGKILL (Docker's default, stated so lessons can cite it).


class DockerApp(DockerScaling):
    """A scenario running as containers on a Docker engine."""

    # scale, rollout, recreate: see scaling.py
    abilities = frozenset({"exec", "stop", "replace", "commands", "scale", "rollout", "recreate", "append",
                           "resolve", "spec"})

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float, client: Any,
                 started: float, port: int = 0) -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.client = client
        self.started = started
        self._port = port
        self._commands: list[str] = []
        self._built_tags: list[str] = []

    # -- names ---------------------------------------------------------------------------------
    def container_name(self, container: str) -> str:
        """The Docker name of a scenario container (``appcoup-pod-echo``)."""
        return objects.container_name(self.name, container)

    def pause_name(self, unit: str) -> str:
        return objects.pause_name(self.name, unit)

    def _ctr(self, container: str) -> Any:
        with errors(f"Cannot inspect container {container!r}"):
            ctr = find(self.client.containers, self.container_name(container))
        if ctr is None:
            raise NotFound(f"The container {self.container_name(container)!r} does not exist (any more).",
                           fix="look at app.status(); start the app again with up()")
        return ctr

    def owned(self, kind: str = "containers") -> list[Any]:
        coll = getattr(self.client, kind)
        with errors(f"Cannot list the {kind} of {self.name!r}"):
            return coll.list(**({"all": True} if kind == "containers" else {}),
                             filters={"label": f"{APP_LABEL}={self.name}"})

    # -- App hooks -------------------------------------------------------------------------------
    @property
    @errors("Cannot find the app's port on Docker")
    def url(self) -> str:
        if not self._port:
            self._port = self._front_port()  # after scale(): the front holds the learner's port
        if not self._port:
            unit = self.scenario.unit_of(self.scenario.entry[1])
            holder = self.pause_name(unit.name) if len(unit.containers) > 1 else self.container_name(
                self.scenario.entry[1])
            c = self.scenario.container(self.scenario.entry[1])
            ctr = find(self.client.containers, holder)
            binds = (((ctr.attrs.get("NetworkSettings") or {}).get("Ports") or {}).get(f"{c.port}/tcp")
                     if ctr is not None else None) or []
            if not binds:  # not running (or gone): no URL yet
                return f"http://{host_address()}:0"
            self._port = int(binds[0]["HostPort"])
        return f"http://{host_address()}:{self._port}"

    @errors("Cannot read the status of the app's containers")
    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        by_name = {ctr.labels.get("appcoup.container"): ctr for ctr in self.owned()}
        health.run_overdue(self.client, list(by_name.values()))  # Podman without systemd (health.py)
        for c in self.scenario.containers:
            ctr = by_name.get(c.name)
            if ctr is None:
                out[c.name] = {"running": False, "state": "missing", "restarts": 0, "unit": self.scenario.unit_of(
                    c.name).name}
                continue
            st = ctr.attrs.get("State", {})
            out[c.name] = {
                "running": bool(st.get("Running")),
                "state": st.get("Status", "unknown"),
                "restarts": int(ctr.attrs.get("RestartCount", 0)),
                "exit_code": st.get("ExitCode"),
                "health": (st.get("Health") or {}).get("Status") or None,  # Podman: "" for none
                "container": ctr.name,
                "image": short_ref((ctr.attrs.get("Config") or {}).get("Image") or "") or None,
                "unit": self.scenario.unit_of(c.name).name,
            }
        return out

    @errors("Cannot list the processes of the app's containers")
    def processes(self) -> Table:
        """What runs in each container, with PIDs as the container sees them (its own PID 1).

        Read from ``/proc`` inside the container (the images have no ``ps``); a container that
        cannot run the probe falls back to ``docker top`` (PIDs as the host sees them).
        """
        rows = []
        for c in self.scenario.containers:
            try:
                ctr = self._ctr(c.name)
            except NotFound:
                rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
                continue
            listed = self._ps(ctr)
            if listed:
                rows += [{"container": c.name, "pid": pid, "ppid": ppid, "command": cmd} for pid, ppid, cmd in listed]
                continue
            top = self._top(ctr)
            if top is None:
                rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
                continue
            ix = {t: i for i, t in enumerate(top.get("Titles") or [])}
            for p in top.get("Processes") or []:
                rows.append({"container": c.name, "pid": p[ix.get("PID", 1)], "ppid": p[ix.get("PPID", 2)],
                             "command": p[ix.get("CMD", ix.get("COMMAND", len(p) - 1))] + "  (host pid)"})
        return Table(rows, ["container", "pid", "ppid", "command"])

    @staticmethod
    def _ps(ctr: Any) -> list[tuple[int, int, str]]:
        """The /proc listing from inside ``ctr``; empty when it cannot run the probe (then ``docker top``)."""
        import docker.errors

        try:
            res = ctr.exec_run(["sh", "-c", procs.PS])
        except docker.errors.APIError:  # not running, or no shell: the engine refused, it is not gone
            return []
        # A process may exit while it is listed: parse_ps keeps only whole "pid ppid cmd" lines.
        return procs.parse_ps(res.output.decode("utf-8", "replace")) if res.exit_code == 0 else []

    @staticmethod
    def _top(ctr: Any) -> dict[str, Any] | None:
        """``docker top``; None when the container does not run."""
        import docker.errors

        try:
            return ctr.top()
        except docker.errors.APIError:
            return None

    @errors("Cannot run a command in a container")
    def exec(self, container: str, *argv: str) -> str:
        """``docker exec``: run ``argv`` in ``container`` and return what it printed."""
        ctr = self._ctr(container)
        with errors(f"Cannot run {' '.join(argv)!r} in {container!r}"):
            res = ctr.exec_run(list(argv))
        out = res.output.decode("utf-8", "replace")
        if res.exit_code:
            raise AppcoupError(f"{' '.join(argv)!r} failed in {container!r} (exit code {res.exit_code}).",
                               why=out.strip()[-500:])
        return out

    @errors("Cannot crash a container")
    def _kill(self, container: str, program: str) -> None:
        ctr = self._ctr(container)
        with errors(f"Cannot kill {program!r} in container {container!r}"):
            if program == container:
                detail = crash.crash(self.client, ctr, helper_image=lambda: images.ensure(["pause"])["pause"],
                                     labels=objects.labels(self.name, self.scenario.name,
                                                           **{"appcoup.container": "killer"}))
            else:
                # PID 1's shell cannot be told apart by name; match the script path, skip ourselves.
                res = ctr.exec_run(["sh", "-c", procs.PKILL], environment={"SCRIPT": procs.SCRIPTS[program]})
                pids = res.output.decode().split()
                if not pids:
                    raise NotFound(f"No {program} process runs inside container {container!r} now.",
                                   fix="look at app.processes()")
                detail = f"SIGKILL to {program} (pid {', '.join(pids)} in the container)"
        self._record(container if program == container else f"{container}/{program}", "killed", detail)

    def _record(self, container: str, kind: str, detail: str = "") -> None:
        """Keep what appcoup itself did (Docker's events cannot tell a crash we caused from another)."""
        record(self.name, container, kind, detail)

    def events(self) -> list[Event]:
        """What Docker did to this app's containers since it started (Docker's events API)."""
        return timeline(self.client, self.name, self.started, self._stderr_tail)

    def _stderr_tail(self, container: str) -> str:
        """The last lines a container wrote on stderr ("" when it is gone already: the exit code must do)."""
        try:
            with errors(f"Cannot read the logs of {container!r}"):
                return self._ctr(container).logs(stdout=False, stderr=True, tail=3).decode("utf-8", "replace")
        except AppcoupError:
            return ""  # only the detail of one event is missing; the timeline is whole

    @errors("Cannot read a container's logs")
    def logs(self, container: str) -> str:
        ctr = self._ctr(container)
        with errors(f"Cannot read the logs of {container!r}"):
            return ctr.logs().decode("utf-8", "replace")

    @errors("Cannot remove the app's containers, networks and volumes")
    def _teardown(self) -> None:
        objects.remove_app(self.client, self.name)
        images.remove(self._built_tags)  # images a rollout built (scaling.py)

    # -- Docker-specific -----------------------------------------------------------------------
    def container(self, container: str) -> Any:
        """The ``docker.models.containers.Container`` behind a scenario container (advanced use)."""
        return self._ctr(container)

    @errors("Cannot stop a container")
    def stop(self, container: str, timeout: int = STOP_GRACE) -> float:
        """``docker stop`` one container; returns the seconds it took (SIGTERM, then SIGKILL)."""
        ctr = self._ctr(container)
        t0 = time.monotonic()
        with errors(f"Cannot stop {container!r}"):
            ctr.stop(timeout=timeout)
        return time.monotonic() - t0

    @errors("Cannot recreate a container")
    def replace(self, container: str, image: str) -> None:
        """Recreate one container from another image, with the same settings (a redeploy)."""
        ctr = self._ctr(container)
        spec = ctr.attrs
        with errors(f"Cannot recreate {container!r} from {image}"):
            ctr.remove(force=True)
            self.client.containers.run(image, **objects.recreate_kwargs(spec))

    def commands(self) -> Commands:
        """The plain ``docker`` commands that would make this app by hand (build, network, volumes, ``docker
        run``), then those that look at it (ps, logs, exec, inspect): read from its real containers."""
        return spec.commands(self)

    def spec(self) -> Spec:
        """What runs: the Dockerfiles of its images as built, and each container's settings (``docker inspect``)."""
        return spec.spec(self)


__all__ = ["STOP_GRACE", "DockerApp"]

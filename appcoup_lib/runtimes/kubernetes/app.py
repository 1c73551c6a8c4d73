"""A scenario running on Kubernetes: its pods, read from the API; its URL, a port-forward of its own.

One app is one namespace per cluster (named after the app), so ``down`` is one delete. A
``Part`` is what runs on one cluster: everything for most scenarios, the generator side and the
echo side for `federation`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from ...errors import AppcoupError, NotFound, NotReady, NotSupported
from ...progress import Progress
from ...scenarios import Scenario
from .. import procs
from ..base import App, Event, Runtime, Table
from .client import Connection, api_error, call
from .namespaces import delete_namespace, wait_gone
from .portforward import PortForward
from .scaling import KubernetesScaling
from .timeline import Watcher
from .translate import NAME_LABEL


@dataclass
class Part:
    """What runs on one cluster: a namespace and the scenario units in it."""

    conn: Connection
    namespace: str
    units: tuple[str, ...]


class KubernetesApp(KubernetesScaling, App):
    """A scenario as pods on one (or, for `federation`, two) clusters."""

    # scale, rollout, recreate: see scaling.py (Deployments and Services do the work)
    abilities = frozenset({"exec", "replace", "stop", "scale", "rollout", "recreate"})

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float, parts: list[Part],
                 started: float, port: int = 0, address: str = "127.0.0.1") -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.parts = parts
        self.started = started
        self._port = port
        self._address = address
        self._watchers: dict[int, Watcher] = {}
        self._forward: PortForward | None = None
        self._lock = threading.Lock()
        self._own: list[Event] = []  # what the library did (kills), at this machine's time

    # -- where things are ------------------------------------------------------------------------
    def part(self, unit: str) -> Part:
        for p in self.parts:
            if unit in p.units:
                return p
        raise NotFound(f"There is no unit {unit!r} in {self.scenario.name!r}.")

    def watcher(self, part: Part) -> Watcher:
        i = self.parts.index(part)
        with self._lock:
            if i not in self._watchers:
                self._watchers[i] = Watcher(part.conn, part.namespace, self.started)
            return self._watchers[i]

    def start_watching(self) -> None:
        for p in self.parts:
            self.watcher(p)

    def _pods(self, part: Part) -> list[dict[str, Any]]:
        return call(part.conn.core().list_namespaced_pod, part.namespace,
                    what=f"Cannot list the pods of {self.name!r}").get("items", [])

    @staticmethod
    def _newest(pods: list[dict[str, Any]], unit: str) -> dict[str, Any] | None:
        mine = [p for p in pods if (p["metadata"].get("labels") or {}).get(NAME_LABEL) == unit
                and not p["metadata"].get("deletionTimestamp")]
        return max(mine, key=lambda p: p["metadata"].get("creationTimestamp", ""), default=None)

    def pod_of(self, unit: str) -> str:
        """The name of the current pod of ``unit`` (a Deployment's pod changes when it is replaced)."""
        pod = self._newest(self._pods(self.part(unit)), unit)
        if pod is None:
            raise NotFound(f"No pod of {unit!r} exists now in {self.part(unit).namespace!r}.",
                           fix="look at app.status() and app.events()")
        return pod["metadata"]["name"]

    def pods(self, unit: str | None = None) -> list[str]:
        """The pods of the app (of one unit), newest last: what a Deployment's scale shows."""
        out = []
        for p in self.parts:
            for pod in self._pods(p):
                u = (pod["metadata"].get("labels") or {}).get(NAME_LABEL)
                if unit is None or u == unit:
                    out.append((pod["metadata"].get("creationTimestamp", ""), pod["metadata"]["name"]))
        return [n for _, n in sorted(out)]

    # -- url -------------------------------------------------------------------------------------
    def forward(self, port: int | None = None) -> PortForward:
        """The port-forward serving ``/data`` here (started on first use)."""
        with self._lock:
            if self._forward is None:
                unit, container = self.scenario.entry
                part = self.part(unit)
                c = self.scenario.container(container)
                watcher = self._watchers.get(self.parts.index(part))

                def resolve() -> str | None:
                    w = self._watchers.get(self.parts.index(part)) or watcher
                    if w is not None and w.pods:
                        return w.running_pod(unit, container)
                    try:
                        return self.pod_of(unit)
                    except AppcoupError:
                        return None

                self._forward = PortForward(part.conn, part.namespace, resolve, c.port or 8000,
                                            self._port if port is None else port, self._address)
            return self._forward

    @property
    def url(self) -> str:
        if self._down and self._forward is None:
            return "http://127.0.0.1:0"  # gone: no port-forward is started for an app that is down
        fwd = self.forward()
        return f"http://{'127.0.0.1' if fwd.address == '0.0.0.0' else fwd.address}:{fwd.port}"

    # -- status and timeline -------------------------------------------------------------------------
    def status(self) -> dict[str, dict[str, Any]]:
        listed = {id(p): self._pods(p) for p in self.parts}
        out: dict[str, dict[str, Any]] = {}
        for c in self.scenario.containers:
            unit = self.scenario.unit_of(c.name).name
            part = self.part(unit)
            pod = self._newest(listed[id(part)], unit)
            cs = next((s for s in ((pod or {}).get("status") or {}).get("containerStatuses") or []
                       if s["name"] == c.name), None)
            row: dict[str, Any] = {"running": False, "ready": False, "restarts": 0, "unit": unit,
                                   "pod": (pod or {}).get("metadata", {}).get("name"),
                                   "namespace": part.namespace, "context": part.conn.context}
            if cs is None:
                row["state"] = "missing" if pod is None else (pod.get("status") or {}).get("phase", "Pending").lower()
                out[c.name] = row
                continue
            state = cs.get("state") or {}
            key = next(iter(state), "unknown")
            last = (cs.get("lastState") or {}).get("terminated") or {}
            row.update({
                "running": key == "running",
                "ready": bool(cs.get("ready")),
                "restarts": int(cs.get("restartCount", 0)),
                "state": (state[key] or {}).get("reason") or key if key != "running" else "running",
                "exit_code": last.get("exitCode") if key == "running" else (state.get("terminated") or {}).get(
                    "exitCode", last.get("exitCode")),
                "last_reason": last.get("reason"),
                "image": cs.get("image"),
                "node": (pod.get("spec") or {}).get("nodeName"),
            })
            out[c.name] = row
        return out

    def events(self) -> list[Event]:
        """What the cluster did to the app (watched since it started), and what appcoup did, oldest first."""
        self.start_watching()
        for w in list(self._watchers.values()):
            w.wait_listed()
        merged = {(e.time, e.container, e.kind, e.detail): e for w in self._watchers.values() for e in w.events}
        for e in self._own:
            merged.setdefault((e.time, e.container, e.kind, e.detail), e)
        return sorted(merged.values(), key=lambda e: e.time)

    def _record(self, part: Part, pod: str, who: str, kind: str, detail: str) -> None:
        """Keep what appcoup did, and tell the cluster too (a core Event other processes see)."""
        now = time.time()
        self._own.append(Event(now, who, kind, detail))
        body = {
            "metadata": {"generateName": "appcoup-", "annotations": {"appcoup.time": repr(now), "appcoup.who": who}},
            "involvedObject": {"kind": "Pod", "name": pod, "namespace": part.namespace},
            "reason": "AppcoupKill", "message": detail, "type": "Warning",
            "source": {"component": "appcoup"}, "count": 1,
        }
        try:
            call(part.conn.core().create_namespaced_event, part.namespace, body, what="Cannot record an event",
                 timeout=(2, 3))
        except AppcoupError:
            pass  # only a shared record: this process keeps its own

    # -- exec, processes, kill -------------------------------------------------------------------------
    def _exec(self, part: Part, pod: str, container: str, argv: list[str], timeout: float = 20) -> tuple[int, str, str]:
        try:
            ws = part.conn.stream("connect_get_namespaced_pod_exec", pod, part.namespace, container=container,
                                  command=argv, stderr=True, stdin=False, stdout=True, tty=False,
                                  _preload_content=False)
        except Exception as e:
            raise api_error(f"Cannot run {argv[0]!r} in container {container!r} of pod {pod}", e) from e
        try:
            ws.run_forever(timeout=timeout)
            out, err = ws.read_channel(1), ws.read_channel(2)
            try:
                code = ws.returncode
            except Exception:  # noqa: BLE001 - the stream ended without a status: the process was killed
                code = -1
        finally:
            ws.close()
        return (code if code is not None else -1), out, err

    def exec(self, container: str, *argv: str) -> str:
        """``kubectl exec``: run ``argv`` in ``container`` (its current pod) and return what it printed."""
        unit = self.scenario.unit_of(container).name
        code, out, err = self._exec(self.part(unit), self.pod_of(unit), container, list(argv))
        if code:
            raise AppcoupError(f"{' '.join(argv)!r} failed in {container!r} (exit code {code}).",
                               why=(err or out).strip()[-500:])
        return out

    def processes(self) -> Table:
        """What runs in each container, with PIDs as the pod sees them.

        Pods that share one process namespace (``shareProcessNamespace``) show every container's
        processes to each; they are told apart by the program each container starts.
        """
        rows: list[dict[str, Any]] = []
        for unit in self.scenario.units:
            part = self.part(unit.name)
            pod = self._newest(self._pods(part), unit.name)
            running = [cs["name"] for cs in ((pod or {}).get("status") or {}).get("containerStatuses") or []
                       if (cs.get("state") or {}).get("running")]
            if pod is None or not running:
                rows += [{"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"}
                         for c in unit.containers]
                continue
            _, out, _ = self._exec(part, pod["metadata"]["name"], running[0], ["sh", "-c", procs.PS])
            procs = procs.parse_ps(out)
            owner = procs.owners(procs, unit.containers)
            for c in unit.containers:
                mine = [p for p in procs if owner.get(p[0]) == c.name]
                if not mine:
                    rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
                rows += [{"container": c.name, "pid": pid, "ppid": ppid, "command": cmd} for pid, ppid, cmd in mine]
        return Table(rows, ["container", "pid", "ppid", "command"])

    def _kill(self, container: str, program: str) -> None:
        unit = self.scenario.unit_of(container)
        part = self.part(unit.name)
        c = self.scenario.container(container)
        if program == container and c.programs:
            raise NotSupported(
                f"The supervisor of {container!r} cannot be SIGKILLed from inside its pod.",
                why="it is PID 1 of the container's own PID namespace, and the kernel drops signals that "
                    "PID 1 has no handler for when they come from inside that namespace (only the node could)",
                fix=f"kill one of its programs instead: app.kill({c.programs[0]!r})")
        pod = self.pod_of(unit.name)
        target = program if program in procs.SCRIPTS else container
        # From a sibling container when the pod shares one process namespace: killing a container's main
        # program ends every process in that container, the exec'd shell included.
        via = next((s.name for s in unit.containers if s.name != container), container)
        code, out, err = self._exec(part, pod, via, ["sh", "-c", procs.pkill(target)])
        pids = out.split() or (["?"] if code and via == container else [])  # the shell went down with it
        if not pids:
            raise NotFound(f"No {program} process runs inside container {container!r} now.",
                           why=err.strip()[-300:], fix="look at app.processes() and app.status()")
        who = container if program == container else f"{container}/{program}"
        self._record(part, pod, who, "killed", f"SIGKILL to {program} (pid {', '.join(pids)} in pod {pod})")

    def logs(self, container: str) -> str:
        unit = self.scenario.unit_of(container).name
        part = self.part(unit)
        pod = self.pod_of(unit)
        try:
            resp = part.conn.core().read_namespaced_pod_log(pod, part.namespace, container=container,
                                                            _preload_content=False, _request_timeout=(5, 30))
            return resp.data.decode("utf-8", "replace")
        except Exception as e:
            raise api_error(f"Cannot read the logs of {container!r}", e) from e

    def replace(self, container: str, image: str, *, timeout: float = 60) -> None:
        """Run ``container`` from another image, and return once it runs (or the cluster says why not).

        A bare pod's container image is changed in place: only that container restarts, in the same
        pod. A Deployment's pod template is changed instead: a rollout, a new pod.
        """
        unit = self.scenario.unit_of(container).name
        part = self.part(unit)
        _load_if_built(part.conn, image)
        pod = self._newest(self._pods(part), unit)
        owners = (pod or {}).get("metadata", {}).get("ownerReferences") or []
        patch = {"spec": {"containers": [{"name": container, "image": image}]}}
        if pod is not None and not owners:
            call(part.conn.core().patch_namespaced_pod, pod["metadata"]["name"], part.namespace, patch,
                 what=f"Cannot change the image of {container!r}")
        else:
            call(part.conn.apps().patch_namespaced_deployment, unit, part.namespace, {"spec": {"template": patch}},
                 what=f"Cannot change the image of {container!r}")
        watcher = self.watcher(part)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not watcher.problems():
            if _runs_image(watcher, unit, container, image):
                return
            watcher.wait(0.2)

    def stop(self, container: str, timeout: int = 10) -> float:
        """Delete the pod of ``container`` with a grace period of ``timeout`` s; the seconds until it is gone.

        The kubelet sends SIGTERM to each container's main process and SIGKILL after the grace
        period (``terminationGracePeriodSeconds``): a PID 1 that ignores SIGTERM takes all of it.
        """
        unit = self.scenario.unit_of(container).name
        part = self.part(unit)
        pod = self.pod_of(unit)
        t0 = time.monotonic()
        call(part.conn.core().delete_namespaced_pod, pod, part.namespace, grace_period_seconds=timeout,
             what=f"Cannot delete the pod {pod}")
        watcher = self.watcher(part)
        while time.monotonic() - t0 < timeout + 60:
            if pod in watcher.gone_pods:
                return time.monotonic() - t0
            watcher.wait(0.1)
        raise NotReady(f"The pod {pod} was not gone {timeout + 60} s after its deletion.",
                       fix=f"look at `kubectl describe pod -n {part.namespace} {pod}`")

    # -- readiness -------------------------------------------------------------------------------------
    def wait_ready(self, timeout: float = 60, *, progress: bool | None = None) -> App:
        """Wait until GET /data answers with a number; say why at once when the cluster knows it never will."""
        self.start_watching()
        unit, container = self.scenario.entry
        entry = self.watcher(self.part(unit))
        deadline = time.monotonic() + timeout
        with Progress(f"waiting for {self.scenario.name} to serve /data", total=None, enabled=progress) as bar:
            while True:
                problems = [p for w in self._watchers.values() for p in w.problems()]
                if problems:
                    raise NotReady(f"{self.scenario.name!r} on kubernetes cannot become ready.",
                                   why="; ".join(problems),
                                   fix="fix what the cluster reports above (kubectl describe pod -n "
                                       f"{self.part(unit).namespace}), then app.down() and up again")
                if entry.running_pod(unit, container):
                    try:
                        if self.data():
                            return self
                    except NotReady:
                        pass
                    time.sleep(0.02)
                else:
                    entry.wait(0.25)
                if time.monotonic() > deadline:
                    raise NotReady(f"{self.scenario.name!r} on kubernetes served no number at {self.url}/data "
                                   f"within {timeout:g} s.", why=self._not_ready_hint(),
                                   fix="look at app.status(), app.events() and app.logs(NAME); then app.down()")
                bar.tick()

    def _not_ready_hint(self) -> str:
        hint = super()._not_ready_hint()
        errors = [str(w.error) for w in self._watchers.values() if w.error]
        return hint + (f"; the cluster's API: {errors[0][:200]}" if errors else "")

    # -- teardown ----------------------------------------------------------------------------------------
    def _stop_helpers(self) -> None:
        with self._lock:
            if self._forward is not None:
                self._forward.close()
            for w in self._watchers.values():
                w.close()

    def abandon(self, created: list[Connection]) -> None:
        """After a failed start: remove what exists, without hiding why it failed."""
        self._stop_helpers()
        for conn in created:
            try:
                delete_namespace(conn, self.name)
            except Exception:  # noqa: BLE001, S110 - `appcoup clean` remains
                pass

    def _teardown(self) -> None:
        self._stop_helpers()
        errors = []
        for p in self.parts:
            try:
                delete_namespace(p.conn, p.namespace)
            except AppcoupError as e:
                errors.append(e)
        for p in self.parts:
            try:
                wait_gone(p.conn, p.namespace)
            except AppcoupError as e:
                errors.append(e)
        if errors:
            raise errors[0]


def _load_if_built(conn: Connection, image: str) -> None:
    """Put ``image`` on the cluster when this machine's Docker engine has it (else the kubelet pulls it)."""
    from ... import images
    from . import images as cluster_images

    try:
        here = images._exists(images._client(), image)
    except AppcoupError:
        return  # no Docker here: nothing to load from
    if here:
        nodes = cluster_images.list_nodes(conn)
        cluster_images.ensure_on_cluster(conn, cluster_images.detect(conn, nodes, set()), [image], nodes)


def _runs_image(watcher: Watcher, unit: str, container: str, image: str) -> bool:
    for pod in list(watcher.pods.values()):
        if (pod["metadata"].get("labels") or {}).get(NAME_LABEL) != unit or pod["metadata"].get("deletionTimestamp"):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if (cs["name"] == container and (cs.get("state") or {}).get("running")
                    and (cs.get("image") == image or cs.get("image", "").endswith("/" + image))):
                return True
    return False


__all__ = ["KubernetesApp", "Part"]

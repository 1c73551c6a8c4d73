"""A scenario running on Kubernetes: its pods, read from the API; its URL, a port-forward of its own.

One app is one namespace per cluster (named after the app), so ``down`` is one delete; or, in a
namespace shared with other apps, the objects labelled with its name (:mod:`.placement`). A
:class:`~.namespaces.Part` is what runs on one cluster.

Its threads are its own: ``up`` and ``attach`` start the watchers (:mod:`.events`) and the
port-forward (:mod:`.portforward`), ``events()`` starts the watchers if they are not running, and
``down`` (or :meth:`KubernetesApp.close`, which leaves the app on the cluster) ends them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from ...errors import AppcoupError, NotFound, NotReady, NotSupported
from ...results import Event, Table
from ...scenarios import Scenario
from .. import procs
from ..base import App, Runtime
from ..spec import Commands, Spec
from . import images as cluster_images
from . import inside, spec, translate
from .client import Connection, call
from .events import Watcher
from .namespaces import Part
from .placement import remove, wait_removed
from .portforward import PortForward
from .scaling import KubernetesScaling
from .translate import NAME_LABEL


class KubernetesApp(KubernetesScaling, App):
    """A scenario as pods on one (or, for `federation`, two) clusters."""

    # scale, rollout, recreate, spread, append, resolve: see scaling.py (Deployments and Services do the work)
    abilities = frozenset({"exec", "replace", "stop", "scale", "rollout", "recreate", "spread", "append", "resolve",
                           "spec", "commands", "measure_inside"})

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float, parts: list[Part],
                 started: float, address: str = "127.0.0.1") -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.parts = parts
        self.started = started
        self._address = address
        # One watcher per part, started by start_watching() (up, attach, events), closed by close().
        self._watchers = [Watcher(p.conn, p.namespace, started, selector=p.selector,
                                  prefix=f"{p.app}-" if p.shared else "") for p in parts]
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
        """The watcher of ``part``'s namespace (running once :meth:`start_watching` was called)."""
        return self._watchers[self.parts.index(part)]

    def start_watching(self) -> None:
        """Start watching every part's pods and Events (``up``, ``attach`` and ``events()`` call it)."""
        for w in self._watchers:
            w.start()

    def _pods(self, part: Part) -> list[dict[str, Any]]:
        return call(part.conn.core().list_namespaced_pod, part.namespace, label_selector=part.selector,
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
    def start_forward(self, port: int) -> PortForward:
        """Start the port-forward serving ``/data`` on ``port`` here (0: a free one); ``up`` and
        ``attach`` call it, :class:`PortInUse` when the port is taken. The running one if started."""
        with self._lock:
            if self._forward is None:
                unit, container = self.scenario.entry
                part = self.part(unit)
                watcher = self.watcher(part)

                def resolve() -> str | None:
                    if watcher.listed:  # known from the watch: no request per connection
                        return watcher.running_pod(unit, container)
                    try:
                        return self.pod_of(unit)
                    except AppcoupError:
                        return None  # no pod, or no answer: this connection closes ("not answering")

                self._forward = PortForward(part.conn, part.namespace, resolve,
                                            self.scenario.container(container).port or 8000, port,
                                            self._address).start()
            return self._forward

    @property
    def url(self) -> str:
        fwd = self._forward
        if fwd is None:
            return "http://127.0.0.1:0"  # no port-forward (yet, or the app never got one)
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
        for w in self._watchers:
            w.wait_listed()
        merged = {(e.time, e.container, e.kind, e.detail): e for w in self._watchers for e in w.events}
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
            pass  # only the record other processes see: this one's own (above) is what its events() show

    # -- exec, processes, kill -------------------------------------------------------------------------
    @staticmethod
    def _exec(part: Part, pod: str, container: str, argv: list[str], timeout: float = 20) -> tuple[int, str, str]:
        return part.conn.exec_in(pod, part.namespace, container, argv, timeout)

    def exec(self, container: str, *argv: str, timeout: float = 20) -> str:
        """``kubectl exec``: run ``argv`` in ``container`` (its current pod) and return what it printed."""
        unit = self.scenario.unit_of(container).name
        code, out, err = self._exec(self.part(unit), self.pod_of(unit), container, list(argv), timeout)
        if code:
            raise AppcoupError(f"{' '.join(argv)!r} failed in {container!r} (exit code {code}).",
                               why=(err or out).strip()[-500:])
        return out

    def measure_inside(self, n: int, *, path: str = "/data", timeout: float = 5.0) -> dict[str, Any]:
        """Time ``n`` GET ``path`` inside the cluster, not through the port-forward (see :mod:`.inside`)."""
        unit = self._entry_unit()
        svc = self._service(unit)
        at = inside.vantage(self, unit, svc, self._prober(unit) if svc is not None else None)
        return inside.timed_gets(self, at, n, path=path, timeout=timeout)

    def spec(self) -> Spec:
        """The YAML of every object applied for this app (tags, namespace, INTERVAL as applied), per cluster."""
        return spec.spec(self)

    def commands(self) -> Commands:
        """The kubectl lines that apply :meth:`spec` and look at the app (get, describe, logs, exec, port-forward)."""
        return spec.commands(self)

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
            listed = procs.parse_ps(out)
            owner = procs.owners(listed, unit.containers)
            for c in unit.containers:
                mine = [p for p in listed if owner.get(p[0]) == c.name]
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
        data = call(part.conn.core().read_namespaced_pod_log, pod, part.namespace, container=container, raw=True,
                    what=f"Cannot read the logs of {container!r}")
        return data.decode("utf-8", "replace")

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
            call(part.conn.apps().patch_namespaced_deployment, part.obj(unit), part.namespace, {"spec": {"template": patch}},
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

    # -- readiness (the loop is App.wait_ready's) -----------------------------------------------------
    def wait_ready(self, timeout: float = 60, *, progress: bool | None = None) -> App:
        """Wait until GET /data answers with a number; say why at once when the cluster knows it never will.

        The default timeout is a cluster's (pods are scheduled, images loaded): twice the base one.
        """
        return super().wait_ready(timeout, progress=progress)

    def _failed(self) -> AppcoupError | None:
        problems = [p for w in self._watchers for p in w.problems()]
        if not problems:
            return None
        # App.wait_ready downs the app before raising this: nothing of it stays on the cluster.
        pull = any(r in p for p in problems for r in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull"))
        return NotReady(f"{self.scenario.name!r} on kubernetes cannot become ready.", why="; ".join(problems),
                        fix=("an image is neither on the node nor in a registry it can pull from: "
                             + cluster_images.FIX_IMAGES) if pull else
                        "fix what the cluster reports above (for the manifests, see "
                        f"manifests/{translate.manifest_dirs(self.scenario)[0]}), then up again")

    def _not_ready_hint(self) -> str:
        hint = super()._not_ready_hint()
        errors = [str(w.error) for w in self._watchers if w.error]
        if self._forward is not None and self._forward.error:
            errors.append(f"the port-forward: {self._forward.error}")
        return hint + (f"; the cluster's API: {errors[0][:200]}" if errors else "")

    # -- threads and teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """End this object's threads (port-forward, watchers); the app itself runs on (``down`` removes it)."""
        with self._lock:
            forward = self._forward
        if forward is not None:
            forward.close()
        for w in self._watchers:
            w.close()

    def abandon(self, created: list[Connection]) -> None:
        """After a failed start: remove what exists, without hiding why it failed."""
        self.close()
        for part in self.parts:
            if not any(part.conn is c for c in created):
                continue
            try:
                remove(part)
            except AppcoupError:
                pass  # the start's own error is the one raised; `appcoup clean` removes what is left

    def _teardown(self) -> None:
        # The deletes first: a kernel shut down by its server gets a few seconds before SIGKILL, and
        # once they are sent the cluster removes everything even if this process dies while waiting.
        errors = []
        for p in self.parts:
            try:
                remove(p)
            except AppcoupError as e:
                errors.append(e)
        self.close()
        for p in self.parts:
            try:
                wait_removed(p)
            except AppcoupError as e:
                errors.append(e)
        if errors:
            raise errors[0]


def _load_if_built(conn: Connection, image: str) -> None:
    """Put ``image`` on the cluster when this machine's Docker engine has it (else the kubelet pulls it)."""
    from ... import images

    if images.exists(image):
        cluster_images.put_on_cluster(conn, [image])


def _runs_image(watcher: Watcher, unit: str, container: str, image: str) -> bool:
    for pod in list(watcher.pods.values()):
        if (pod["metadata"].get("labels") or {}).get(NAME_LABEL) != unit or pod["metadata"].get("deletionTimestamp"):
            continue
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            if (cs["name"] == container and (cs.get("state") or {}).get("running")
                    and (cs.get("image") == image or cs.get("image", "").endswith("/" + image))):
                return True
    return False


__all__ = ["KubernetesApp", "Part"]  # Part lives in .namespaces; named here too, where it was

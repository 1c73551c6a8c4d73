"""The app's timeline, from the cluster: pod status changes and Events, watched as they happen.

Two watch threads per namespace (pods, Events), started by :meth:`Watcher.start` (the app's ``up``,
``attach`` or ``events``) and ended by :meth:`Watcher.close` (its ``down``), keep the current pods in memory and turn each
change into an :class:`Event`, stamped with this machine's clock when it is observed: the API's
timestamps have one-second precision, too coarse to order a kill, an exit and a restart.
Watches end on server timeouts and on 410 (the resourceVersion is too old): they list again and
go on, until the app goes down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from ...results import Event
from ..clock import rfc3339
from .client import Connection, Gone, call, watch
from .translate import NAME_LABEL

# Waiting reasons that will not go away on their own: wait_ready reports them at once.
FATAL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                 "CreateContainerError", "CrashLoopBackOff", "RunContainerError", "ErrImageNeverPull")
_EVENT_KINDS = {"Unhealthy": "probe-failed", "Killing": "killing", "BackOff": "back-off",
                "FailedScheduling": "unschedulable", "ProvisioningFailed": "volume-failed",
                "FailedBinding": "volume-failed", "FailedMount": "volume-failed", "Failed": "failed",
                "Evicted": "evicted", "OOMKilling": "oom-killed", "Preempting": "preempted"}


def api_time(text: str | None) -> float:
    """An API timestamp (RFC 3339, whole seconds) as epoch seconds; 0.0 when absent (the callers' "unknown")."""
    return rfc3339(text) or 0.0


class Watcher:
    """Watches the pods and Events of one namespace; keeps ``pods`` current and ``events`` growing.

    Its two threads run from :meth:`start` to :meth:`close` (after which it does not start again).
    In a namespace shared with other apps, ``selector`` (the app's label) narrows the pods, and
    ``prefix`` (``<app>-``, the start of every name the app's objects carry) the Events.
    """

    def __init__(self, conn: Connection, namespace: str, started: float, *, selector: str | None = None,
                 prefix: str = "") -> None:
        self.conn, self.namespace, self.started = conn, namespace, started
        self.selector, self.prefix = selector, prefix
        self.pods: dict[str, dict[str, Any]] = {}
        self.gone_pods: dict[str, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.raw_events: dict[str, dict[str, Any]] = {}
        self.changed = threading.Condition()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._listed = {"pods": threading.Event(), "events": threading.Event()}  # the first list is in
        self._threads: list[threading.Thread] = []
        self._open: dict[str, Any] = {}  # kind -> the watch response being read (closed to end it at once)
        self._lock = threading.Lock()

    def start(self) -> Watcher:
        """Start the two watch threads (once; not again after :meth:`close`)."""
        with self._lock:
            if self._threads or self._stop.is_set():
                return self
            self._threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True,
                                              name=f"appcoup watch {kind} {self.namespace}")
                             for kind in ("pods", "events")]
            for t in self._threads:
                t.start()
        return self

    @property
    def listed(self) -> bool:
        """Whether the first list of pods is in: from then on ``pods`` is what runs."""
        return self._listed["pods"].is_set()

    def wait_listed(self, timeout: float = 5.0) -> None:
        """Wait until what existed before this watcher started is known (an app attached from elsewhere)."""
        deadline = time.monotonic() + timeout
        for ev in self._listed.values():
            ev.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float = 2.0) -> None:
        """End the watches now (their responses are closed, not waited out) and wait for the threads."""
        with self._lock:
            self._stop.set()
            responses = list(self._open.values())
        for resp in responses:
            _end(resp)
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._notify()

    def _opened(self, kind: str, resp: Any) -> None:
        with self._lock:
            self._open[kind] = resp
            closing = self._stop.is_set()
        if closing:  # close() ran while this watch was being opened
            _end(resp)

    # -- the watch loops -------------------------------------------------------------------------
    def _loop(self, kind: str) -> None:
        core = self.conn.core()
        fn: Callable[..., Any] = core.list_namespaced_pod if kind == "pods" else core.list_namespaced_event
        handle = self._pod if kind == "pods" else self._event
        narrow = {"label_selector": self.selector} if kind == "pods" and self.selector else {}
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listed = call(fn, self.namespace, what=f"Cannot list the {kind} of {self.namespace!r}", **narrow)
                    version = listed["metadata"]["resourceVersion"]
                    for item in listed.get("items", []):
                        handle("ADDED", item, initial=True)
                    self._listed[kind].set()
                for ev in watch(fn, self.namespace, resource_version=version, timeout_seconds=55, stop=self._stop,
                                what=f"Cannot watch the {kind} of {self.namespace!r}",
                                opened=lambda resp, kind=kind: self._opened(kind, resp), **narrow):
                    obj = ev.get("object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if ev["type"] != "BOOKMARK":
                        handle(ev["type"], obj, initial=False)
                self.error = None
            except Gone:
                version = ""  # too old: list again
            except Exception as e:  # noqa: BLE001 - the API failed (an AppcoupError) or sent what this cannot read:
                # said by wait_ready's why, and listed again (a thread that died would stop the timeline)
                self.error = e
                version = ""
                self._stop.wait(1.0)

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def _add(self, t: float, who: str, kind: str, detail: str = "") -> None:
        if t >= self.started - 1:
            self.events.append(Event(t, who, kind, detail))

    # -- pods ------------------------------------------------------------------------------------
    def _pod(self, kind: str, pod: dict[str, Any], *, initial: bool) -> None:
        name = pod["metadata"]["name"]
        unit = (pod["metadata"].get("labels") or {}).get(NAME_LABEL, name)
        now = time.time()
        if kind == "DELETED":
            self.pods.pop(name, None)
            self.gone_pods[name] = pod
            self._add(now, unit, "removed", f"pod {name}")
            self._notify()
            return
        old = self.pods.get(name)
        self.pods[name] = pod
        # Seen in the first list (it happened before this watcher started): the API's whole second,
        # taken at its end, so an effect never sorts before the kill appcoup stamped within that second.
        stamp = (lambda api: (api_time(api) + 0.999 if api_time(api) else now)) if initial else (lambda api: now)
        if old is None:
            # A pod of the same unit that is gone or going: this one replaces it (a Deployment at work).
            replaced = [p for p, o in [*self.gone_pods.items(), *self.pods.items()]
                        if p != name and (o["metadata"].get("labels") or {}).get(NAME_LABEL) == unit
                        and (p in self.gone_pods or o["metadata"].get("deletionTimestamp"))]
            self._add(stamp(pod["metadata"].get("creationTimestamp")), unit,
                      "replaced" if replaced else "created",
                      f"pod {name}" + (f" replaces {replaced[-1]}" if replaced else ""))
        if _scheduled(pod) and not (old and _scheduled(old)):
            self._add(stamp(_condition_time(pod, "PodScheduled")), unit, "scheduled",
                      f"pod {name} on node {pod['spec'].get('nodeName', '?')}")
        before = {c["name"]: c for c in ((old or {}).get("status") or {}).get("containerStatuses") or []}
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            self._container(cs, before.get(cs["name"]), stamp)
        self._notify()

    def _container(self, cs: dict[str, Any], old: dict[str, Any] | None, stamp: Callable[[Any], float]) -> None:
        who = cs["name"]
        state, last = cs.get("state") or {}, cs.get("lastState") or {}
        restarts, old_restarts = cs.get("restartCount", 0), (old or {}).get("restartCount", 0)
        old_state = (old or {}).get("state") or {}
        if restarts > old_restarts and last.get("terminated") and not old_state.get("terminated"):
            t = last["terminated"]
            self._add(stamp(t.get("finishedAt")) - 0.001, who, "exited", _termination(t))
        if state.get("terminated") and not old_state.get("terminated"):
            self._add(stamp(state["terminated"].get("finishedAt")), who, "exited", _termination(state["terminated"]))
        if state.get("running") and (not old_state.get("running") or restarts > old_restarts):
            kind = "started" if restarts == 0 else "restarted"
            self._add(stamp(state["running"].get("startedAt")), who, kind,
                      f"restart #{restarts}" if restarts else (cs.get("image") or ""))
        waiting = (state.get("waiting") or {}).get("reason")
        if waiting and waiting != ((old_state.get("waiting") or {}).get("reason")) and waiting != "ContainerCreating":
            self._add(stamp(None), who, "waiting", f"{waiting}: {(state['waiting'].get('message') or '')[:160]}".rstrip(": "))
        if old is not None and bool(cs.get("ready")) != bool(old.get("ready")):
            self._add(stamp(None), who, "ready" if cs.get("ready") else "not-ready")

    # -- Events ----------------------------------------------------------------------------------
    def _event(self, kind: str, ev: dict[str, Any], *, initial: bool) -> None:
        if kind == "DELETED" or not (ev.get("involvedObject") or {}).get("name", "").startswith(self.prefix):
            return  # gone, or about another app's object in a shared namespace
        uid = ev["metadata"].get("uid", "")
        count = ev.get("count") or (ev.get("series") or {}).get("count") or 1
        seen = self.raw_events.get(uid)
        self.raw_events[uid] = ev
        if seen is not None and (seen.get("count") or 1) == count:
            return
        reason = ev.get("reason", "")
        obj = ev.get("involvedObject") or {}
        path = obj.get("fieldPath") or ""
        who = path[path.find("{") + 1:-1] if "{" in path else obj.get("name", "?")
        if obj.get("kind") == "Pod" and "{" not in path:  # the pod as a whole: say which unit it is
            pod = self.pods.get(who) or self.gone_pods.get(who) or {}
            who = (pod.get("metadata", {}).get("labels") or {}).get(NAME_LABEL, who)
        t = (api_time(ev.get("lastTimestamp") or ev.get("eventTime") or ev["metadata"].get("creationTimestamp")) + 0.999
             if initial else time.time())
        if reason == "AppcoupKill":  # what appcoup did (maybe from another process), at the time it did it
            notes = ev["metadata"].get("annotations") or {}
            try:
                self._add(float(notes.get("appcoup.time", t)), notes.get("appcoup.who", who), "killed",
                          ev.get("message") or "")
            except ValueError:
                pass
            return
        if reason in _EVENT_KINDS:
            self._add(t or time.time(), who, _EVENT_KINDS[reason], (ev.get("message") or "")[:200])
        self._notify()

    # -- what wait_ready and the port-forward ask --------------------------------------------------
    def problems(self, min_age: float = 5.0) -> list[str]:
        """Why the app cannot become ready on its own (empty: nothing known to be wrong)."""
        out = []
        now = time.time()
        for pod in list(self.pods.values()):
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                w = (cs.get("state") or {}).get("waiting") or {}
                last = (cs.get("lastState") or {}).get("terminated") or {}
                if (w.get("reason") == "CrashLoopBackOff" and last.get("exitCode") == 137
                        and last.get("reason") != "OOMKilled"):
                    continue  # killed by SIGKILL (app.kill): the back-off ends and it comes back
                if w.get("reason") in FATAL_WAITING:
                    out.append(f"container {cs['name']} of pod {pod['metadata']['name']}: {w['reason']}"
                               + (f" ({w.get('message')})" if w.get("message") else ""))
            for c in (pod.get("status") or {}).get("conditions") or []:
                if (c.get("type") == "PodScheduled" and c.get("status") == "False"
                        and c.get("reason") == "Unschedulable"
                        and now - api_time(pod["metadata"].get("creationTimestamp")) > min_age):
                    out.append(f"pod {pod['metadata']['name']} cannot be scheduled: {c.get('message', '')}")
        for ev in list(self.raw_events.values()):
            obj = ev.get("involvedObject") or {}
            if obj.get("kind") == "PersistentVolumeClaim" and ev.get("reason") in ("ProvisioningFailed",
                                                                                 "FailedBinding"):
                out.append(f"the PersistentVolumeClaim {obj.get('name')} stays Pending: {ev.get('message', '')}")
        return list(dict.fromkeys(out))

    def running_pod(self, unit: str, container: str) -> str | None:
        """The name of a pod of ``unit`` to reach ``container`` in: one where it is ready first (during
        a rolling update the newest pod runs before it answers), then one where it runs, then the newest.

        A running pod whose ``container`` is seen as not running counts too (last): the status the
        watch sees lags the kubelet by up to a second (its relist period), so a container restarted
        after a crash answers before its status says it runs, and ``kubectl port-forward`` reaches it then.
        """
        best: tuple[bool, bool, str, str] | None = None
        for name, pod in list(self.pods.items()):
            if (pod["metadata"].get("labels") or {}).get(NAME_LABEL) != unit or pod["metadata"].get("deletionTimestamp"):
                continue
            phase = (pod.get("status") or {}).get("phase")
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                running = bool((cs.get("state") or {}).get("running"))
                if cs["name"] == container and (running or phase == "Running"):
                    rank = (bool(cs.get("ready")) and running, running, pod["metadata"].get("creationTimestamp", ""), name)
                    if best is None or rank > best:
                        best = rank
        return best[3] if best else None

    def wait(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)


def _end(resp: Any) -> None:
    """End a watch being read by another thread now: its thread sees the end of the stream and returns."""
    try:
        resp.shutdown()  # urllib3 >= 2.3; closing alone does not wake a thread blocked reading the socket
    except (AttributeError, ValueError, RuntimeError, OSError):  # an older urllib3, or already released or closed
        resp.close()  # then the watch ends at its next event or its server timeout


def _scheduled(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "PodScheduled" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _condition_time(pod: dict[str, Any], kind: str) -> str | None:
    for c in (pod.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c.get("lastTransitionTime")
    return None


def _termination(t: dict[str, Any]) -> str:
    reason = t.get("reason") or ""
    code = t.get("exitCode")
    sig = f", signal {t['signal']}" if t.get("signal") else ""
    return f"{reason} (exit code {code}{sig})".strip()

"""Loose coupling on Kubernetes: what a Deployment and a Service do by themselves.

- ``scale``: patch the Deployment's ``replicas``; its Service spreads requests over the ready pods.
- ``rollout``: set the new image on the Deployment; it starts a new pod, waits for its readiness
  probe, then stops an old one (``maxSurge`` 25 %, ``maxUnavailable`` 25 %: one at a time here).
  ``strategy="recreate"|"rolling"`` patches ``spec.strategy`` first (``Recreate``, or
  ``RollingUpdate`` with maxSurge 1 and maxUnavailable 0).
  The requests are counted from *inside the cluster*, through the unit's Service (a busybox
  ``wget`` loop in the generator's container), which is what the Service's users see; without a
  Service, through the app's port-forward.
- ``recreate``: scale the Deployments to 0, wait until their pods are gone, scale back (a bare
  Pod is deleted and created again from its own spec); a pod's ``emptyDir`` goes with it, a
  PersistentVolumeClaim stays.

The `pod` and `single-image` scenarios are bare Pods, as in the article: a Pod has no replicas
and no rollout, so ``scale`` and ``rollout`` say so instead of pretending.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from ...errors import AppcoupError, NotSupported
from ...polling import PATIENCE
from ...results import Event, Spread, Table, parse_numbers
from ...scenarios import Container, Unit
from ..scaling import Scaling, Traffic
from . import images as cluster_images
from .client import call
from .namespaces import Part

WAIT = 180  # seconds for a Deployment to reach what was asked
# Python, not busybox wget: the static busybox of the offline images cannot resolve cluster names.
_SPREAD = ("import sys, urllib.request\n"
           "for u in sys.argv[1:]:\n"
           "    print('@@@')\n"
           "    try:\n"
           "        r = urllib.request.urlopen(u, timeout=2)\n"
           "        print('x-served-by: ' + str(r.headers.get('X-Served-By'))); print(r.read().decode())\n"
           "    except Exception as e:\n"
           "        print('error', e)\n")
# Counts until SIGTERM (the container's file system may be read-only: no stop file).
_COUNT = ("import signal, sys, time, urllib.request\n"
          "url, period = sys.argv[1], float(sys.argv[3]); s = f = 0; run = [True]\n"
          "signal.signal(signal.SIGTERM, lambda *a: run.__setitem__(0, False))\n"
          "while run[0]:\n"
          "    s += 1\n"
          "    try:\n"
          f"        urllib.request.urlopen(url, timeout={PATIENCE}).read()\n"
          "    except Exception:\n"
          "        f += 1\n"
          "    time.sleep(period)\n"
          "print('sent', s, 'failed', f)\n")
_STOP = ("import os, signal, sys\n"
         "for p in filter(str.isdigit, os.listdir('/proc')):\n"
         "    try:\n"
         "        if int(p) != os.getpid() and sys.argv[1] in open(f'/proc/{p}/cmdline').read():\n"
         "            os.kill(int(p), signal.SIGTERM)\n"
         "    except OSError:\n"
         "        pass\n")


class KubernetesScaling(Scaling):
    """The kubernetes runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`.

    A Deployment does the scale skeleton itself: ``_scale`` is overridden whole (patch
    ``replicas``, wait), and ``_roll_out`` hands the new image to the Deployment's own strategy.
    """

    # What KubernetesApp provides (declared, not defined here: its own definitions are the ones used).
    parts: list[Part]
    _own: list[Event]
    part: Callable[[str], Part]
    _pods: Callable[[Part], list[dict[str, Any]]]
    _newest: Callable[[list[dict[str, Any]], str], dict[str, Any] | None]
    exec: Callable[..., str]

    def _note(self, who: str, kind: str, detail: str) -> None:
        # The app's own record (its _record also posts a core Event about one pod: not for a whole unit).
        self._own.append(Event(time.time(), who, kind, detail))

    # -- the Deployment behind a unit --------------------------------------------------------------
    def _deployment(self, unit: Unit, *, required: bool = True) -> dict[str, Any] | None:
        part = self.part(unit.name)
        dep = call(part.conn.apps().read_namespaced_deployment, part.obj(unit.name), part.namespace,
                   what=f"Cannot read the Deployment {unit.name!r}", missing_ok=True)
        if dep is not None:
            return dep
        if not required:
            return None
        raise NotSupported(
            f"Unit {unit.name!r} of {self.scenario.name!r} is a bare Pod on Kubernetes: it has no copies "
            "and no rollout.",
            why="replicas and rolling updates are what a Deployment adds to a Pod; this scenario is one Pod, "
                "as in the article (its manifest is a `kind: Pod`)",
            fix="use the `service` or `volume` scenario, whose units are Deployments")

    def _copies(self, unit: Unit) -> int:
        dep = self._deployment(unit, required=False)
        return int((dep or {}).get("spec", {}).get("replicas", 1))

    def _has_front(self, unit: Unit) -> bool:
        return self._service(unit) is not None

    def _service(self, unit: Unit) -> dict[str, Any] | None:
        part = self.part(unit.name)
        items = call(part.conn.core().list_namespaced_service, part.namespace, label_selector=part.selector,
                     what="Cannot list the Services").get("items", [])
        entry = next((c for c in unit.containers if c.port), None)
        for svc in items:
            if (svc["spec"].get("selector") or {}).get("app.kubernetes.io/name") == unit.name and entry and any(
                    p.get("targetPort") in (entry.port, "http") or p.get("port") == entry.port
                    for p in svc["spec"].get("ports", [])):
                return svc
        return None

    def _wait_deployment(self, unit: Unit, replicas: int, timeout: float = WAIT) -> None:
        """Until every pod is of the newest template, ready, and no old pod remains."""
        part = self.part(unit.name)

        def done() -> bool:
            dep = self._deployment(unit) or {}
            st, meta = dep.get("status", {}), dep.get("metadata", {})
            pods = [p for p in self._pods(part)
                    if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == unit.name]
            return (st.get("observedGeneration", 0) >= meta.get("generation", 1)
                    and st.get("updatedReplicas", 0) == replicas and st.get("readyReplicas", 0) == replicas
                    and st.get("replicas", 0) == replicas and len(pods) == replicas)
        self.wait_until(done, timeout, f"the Deployment {unit.name!r} to run {replicas} ready pod(s)")

    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        self._deployment(unit)
        part = self.part(unit.name)
        call(part.conn.apps().patch_namespaced_deployment_scale, part.obj(unit.name), part.namespace,
             {"spec": {"replicas": replicas}}, what=f"Cannot scale {unit.name!r}")
        self._wait_deployment(unit, replicas)
        svc = self._service(unit)
        if svc is not None:  # ready pods become the Service's endpoints a moment later
            self.wait_until(lambda: self._endpoints(svc["metadata"]["name"], part) == replicas, 60,
                            f"the Service {svc['metadata']['name']!r} to list {replicas} ready pod(s)")
            time.sleep(1.0)  # and kube-proxy, on every node, a moment after that

    @staticmethod
    def _endpoints(service: str, part: Any) -> int:
        slices = call(part.conn.discovery().list_namespaced_endpoint_slice, part.namespace,
                      label_selector=f"kubernetes.io/service-name={service}",
                      what="Cannot read the Service's endpoints").get("items", [])
        return sum(1 for sl in slices for ep in sl.get("endpoints") or []
                   if (ep.get("conditions") or {}).get("ready"))

    # -- rollout -------------------------------------------------------------------------------------
    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Build the changed images on the Docker engine, then load them onto the cluster's nodes."""
        from ... import images

        for c in containers:
            self._deployment(self.scenario.unit_of(c.name))
        built = images.build_changed({c.image for c in containers}, context=context, progress=False)
        tags = [b.tag for b in built.values()]
        if tags:
            for part in self.parts:
                cluster_images.put_on_cluster(part.conn, tags)
        return {c.name: built[c.image].tag for c in containers if c.image in built}

    def _set_strategy(self, unit: Unit, strategy: str | None, copies: int) -> None:
        """Patch the Deployment's ``spec.strategy`` (no new pod: the strategy is not in the pod template)."""
        if strategy is None:
            return
        part = self.part(unit.name)
        self._deployment(unit)
        body = ({"type": "Recreate", "rollingUpdate": None} if strategy == "recreate"
                else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
        call(part.conn.apps().patch_namespaced_deployment, part.obj(unit.name), part.namespace,
             {"spec": {"strategy": body}}, what=f"Cannot set the rollout strategy of {unit.name!r}")

    def _roll_out(self, unit: Unit, versions: dict[str, str], copies: int, strategy: str | None = None) -> str:
        part = self.part(unit.name)
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": name, "image": tag} for name, tag in versions.items()]}}}}
        call(part.conn.apps().patch_namespaced_deployment, part.obj(unit.name), part.namespace, patch,
             what=f"Cannot set the new image on {unit.name!r}")
        self._wait_deployment(unit, copies)
        # The Deployment's own strategy: RollingUpdate, or Recreate (all old pods first, as the
        # `volume` manifests ask, because a ReadWriteOnce claim may not be mounted twice).
        kind = ((self._deployment(unit) or {}).get("spec", {}).get("strategy") or {}).get("type", "RollingUpdate")
        return f"{'rolling' if kind == 'RollingUpdate' else 'recreate'} (Deployment, {kind})"

    identity_field = "pod"  # a pod replaced is a new pod; a container restarted keeps it

    def _prober(self, unit: Unit) -> str | None:
        """A container outside ``unit`` with Python in its image, to send requests from (the adapter)."""
        return next((c.name for u in self.scenario.units if u.name != unit.name
                     for c in u.containers if c.image in ("adapter", "echo")), None)

    def _traffic(self, unit: Unit, period: float) -> Any:
        svc = self._service(unit)
        prober = self._prober(unit)
        if svc is None or prober is None:
            return Traffic(self, period)
        port = next(p["port"] for p in svc["spec"]["ports"])
        return _InCluster(self, prober, f"http://{svc['metadata']['name']}:{port}/data", period)

    # -- recreate --------------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        bare: list[tuple[Any, dict[str, Any]]] = []
        scaled: list[tuple[Unit, int]] = []
        for u in units:
            part = self.part(u.name)
            dep = self._deployment(u, required=False)
            if dep is not None:
                n = int(dep["spec"].get("replicas", 1))
                call(part.conn.apps().patch_namespaced_deployment_scale, part.obj(u.name), part.namespace,
                     {"spec": {"replicas": 0}}, what=f"Cannot scale {u.name!r} to 0")
                scaled.append((u, n))
            else:
                pod = self._newest(self._pods(part), u.name)
                if pod is None:
                    continue
                call(part.conn.core().delete_namespaced_pod, pod["metadata"]["name"], part.namespace,
                     grace_period_seconds=1, what=f"Cannot delete the pod of {u.name!r}")
                bare.append((part, pod))
        names = {u.name for u in units}
        # Delete everything first: for a moment none of them exists, only the volumes that persist.
        self.wait_until(lambda: not [p for part in self.parts for p in self._pods(part)
                                     if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") in names],
                        WAIT, "the pods to be gone")
        for part, pod in bare:
            meta = pod["metadata"]
            fresh = {"apiVersion": "v1", "kind": "Pod",
                     "metadata": {k: meta[k] for k in ("name", "labels", "annotations") if meta.get(k)},
                     "spec": {k: v for k, v in pod["spec"].items() if k != "nodeName"}}
            call(part.conn.core().create_namespaced_pod, part.namespace, fresh, what="Cannot create the pod again")
        for u, n in scaled:
            part = self.part(u.name)
            call(part.conn.apps().patch_namespaced_deployment_scale, part.obj(u.name), part.namespace,
                 {"spec": {"replicas": n}}, what=f"Cannot scale {u.name!r} back")

    # -- seeing the copies -----------------------------------------------------------------------------
    def spread_inside(self, requests: int) -> Spread:
        """Requests from inside the cluster: through the Service of the unit serving /data, or each pod."""
        unit = self._entry_unit()
        svc = self._service(unit)
        entry = next(c for c in unit.containers if c.port)
        prober = self._prober(unit) if svc is not None else None
        if prober is not None:
            urls = [f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/data"] * requests  # type: ignore[index]
        else:  # no Service before the copies: ask each pod by its address, from one of them
            part = self.part(unit.name)
            ips = [p["status"].get("podIP") for p in self._pods(part)
                   if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == unit.name
                   and p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")]
            urls = [f"http://{ip}:{entry.port}/data" for ip in ips for _ in range(max(1, requests // max(1, len(ips))))]
            prober = entry.name
        out = self.exec(prober, "python3", "-c", _SPREAD, *urls)
        spread = Spread()
        for chunk in out.split("@@@")[1:]:
            who = next((ln.split(":", 1)[1].strip() for ln in chunk.splitlines()
                        if ln.strip().lower().startswith("x-served-by:")), None)
            if who is None:
                spread.failed += 1
                continue
            body = "\n".join(ln for ln in chunk.splitlines() if ln.strip().isdigit())
            spread.served.setdefault(who, []).append(parse_numbers(body))
        return spread

    def append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, from inside its container."""
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)
        n = max(1, nbytes // len(line)) * len(line)
        self.exec(gen, "sh", "-c", f"yes {line.decode().strip()} | head -c {n} >> data")

    # The names loose.py probes for today (getattr); it asks can("spread") / can("append") next.

    def volumes(self) -> Table:
        """Which container mounts which volume: the pods' own words (an emptyDir, or a claim by name)."""
        rows = []
        for unit in self.scenario.units:
            part = self.part(unit.name)
            pod = self._newest(self._pods(part), unit.name)
            if pod is None:
                continue
            vols = {v["name"]: v for v in pod["spec"].get("volumes") or []}
            for c in pod["spec"].get("containers") or []:
                for m in c.get("volumeMounts") or []:
                    v = vols.get(m["name"], {})
                    if "persistentVolumeClaim" in v:
                        what = f"PersistentVolumeClaim {v['persistentVolumeClaim']['claimName']}"
                    elif "emptyDir" in v:
                        what = "emptyDir (dies with the pod)"
                    else:
                        continue
                    rows.append({"container": c["name"], "pod": pod["metadata"]["name"], "volume": what,
                                 "mounted at (in the container)": m["mountPath"]})
        return Table(rows)

    def resolve(self, name: str, *, container: str = "echo") -> dict[str, Any]:
        """Ask the cluster's DNS, from inside ``container``'s pod, who ``name`` is."""
        unit = self.scenario.unit_of(container)
        part = self.part(unit.name)  # in a shared namespace the Service `adapter` is `<app>-adapter`
        fqdn = f"{part.obj(name)}.{part.namespace}.svc.cluster.local"
        script = ("import socket, sys; print('Address: ' + ' '.join(socket.gethostbyname_ex(sys.argv[1])[2])); "
                  "print(open('/etc/resolv.conf').read())")
        out = self.exec(container, "python3", "-c", script, fqdn)
        addrs = [w for ln in out.splitlines() if ln.startswith("Address") for w in ln.split(":", 1)[1].split()
                 if w.count(".") == 3 and "#" not in w]
        server = next((ln.split()[1] for ln in out.splitlines() if ln.startswith("nameserver")), "?")
        return {"name": fqdn, "addresses": addrs, "resolver": f"the cluster's DNS ({server})"}


class _InCluster:
    """GET a Service's URL every ``period`` s from a busybox container in the cluster, until told to stop."""

    def __init__(self, app: Any, container: str, url: str, period: float) -> None:
        self.app, self.container, self.url, self.period = app, container, url, period
        self.through = f"the Service, from inside the cluster ({url})"
        self.sent = 0
        self.failed = 0
        self._mark = f"appcoup-count-{int(time.time() * 1000)}"  # finds the loop to stop it
        self._out = ""
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            # As long as the rollout takes (a loaded machine: minutes); __exit__ stops the loop.
            self._out = self.app.exec(self.container, "python3", "-c", _COUNT, self.url, self._mark,
                                      str(self.period), timeout=600)
        except AppcoupError as e:
            self._out = str(e)

    def __enter__(self) -> Self:
        self._thread.start()
        time.sleep(0.5)  # the loop is running before the rollout begins
        return self

    def __exit__(self, *exc: object) -> None:
        self.app.exec(self.container, "python3", "-c", _STOP, self._mark)
        self._thread.join(30)
        words = self._out.split()
        if "sent" in words and "failed" in words:
            self.sent = int(words[words.index("sent") + 1])
            self.failed = int(words[words.index("failed") + 1])
        else:
            raise AppcoupError("Could not count the requests made inside the cluster.", why=self._out[-300:],
                               fix="look at app.logs('generator')")

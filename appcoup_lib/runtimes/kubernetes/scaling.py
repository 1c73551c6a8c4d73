"""Loose coupling on Kubernetes: what a Deployment and a Service do by themselves.

- ``scale``: patch the Deployment's ``replicas``; its Service spreads requests over the ready pods.
- ``rollout``: set the new image on the Deployment; it starts a new pod, waits for its readiness
  probe, then stops an old one (``maxSurge`` 25 %, ``maxUnavailable`` 25 %: one at a time here).
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
from pathlib import Path
from typing import Any

from ...errors import AppcoupError, NotSupported
from ...scenarios import Container, Unit
from ..base import Table, parse_numbers
from ..scaling import Scaling, _Traffic
from .client import call

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
          "        urllib.request.urlopen(url, timeout=2).read()\n"
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
    """The kubernetes runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`."""

    def _note(self, who: str, kind: str, detail: str) -> None:
        from ..base import Event

        self._own.append(Event(time.time(), who, kind, detail))  # type: ignore[attr-defined]

    # -- the Deployment behind a unit --------------------------------------------------------------
    def _deployment(self, unit: Unit, *, required: bool = True) -> dict[str, Any] | None:
        part = self.part(unit.name)  # type: ignore[attr-defined]
        dep = call(part.conn.apps().read_namespaced_deployment, unit.name, part.namespace,
                   what=f"Cannot read the Deployment {unit.name!r}", missing_ok=True)
        if dep is not None:
            return dep
        if not required:
            return None
        raise NotSupported(
            f"Unit {unit.name!r} of {self.scenario.name!r} is a bare Pod on Kubernetes: it has no copies "  # type: ignore[attr-defined]
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
        part = self.part(unit.name)  # type: ignore[attr-defined]
        items = call(part.conn.core().list_namespaced_service, part.namespace,
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
        part = self.part(unit.name)  # type: ignore[attr-defined]

        def done() -> bool:
            dep = self._deployment(unit) or {}
            st, meta = dep.get("status", {}), dep.get("metadata", {})
            pods = [p for p in self._pods(part)  # type: ignore[attr-defined]
                    if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == unit.name]
            return (st.get("observedGeneration", 0) >= meta.get("generation", 1)
                    and st.get("updatedReplicas", 0) == replicas and st.get("readyReplicas", 0) == replicas
                    and st.get("replicas", 0) == replicas and len(pods) == replicas)
        self.wait_until(done, timeout, f"the Deployment {unit.name!r} to run {replicas} ready pod(s)")  # type: ignore[attr-defined]

    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        self._deployment(unit)
        part = self.part(unit.name)  # type: ignore[attr-defined]
        call(part.conn.apps().patch_namespaced_deployment_scale, unit.name, part.namespace,
             {"spec": {"replicas": replicas}}, what=f"Cannot scale {unit.name!r}")
        self._wait_deployment(unit, replicas)
        svc = self._service(unit)
        if svc is not None:  # ready pods become the Service's endpoints a moment later
            self.wait_until(lambda: self._endpoints(svc["metadata"]["name"], part) == replicas, 60,  # type: ignore[attr-defined]
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
        from . import images as cluster_images
        from .runtime import _flavour

        for c in containers:
            self._deployment(self.scenario.unit_of(c.name))  # type: ignore[attr-defined]
        changed = sorted({c.image for c in containers
                          if images.tag_for(c.image, context=context) != images.tag_for(c.image)})
        built = images.build(changed, context=context, progress=False) if changed else {}
        tags = [b.tag for b in built.values()]
        if tags:
            for part in self.parts:  # type: ignore[attr-defined]
                nodes = cluster_images.list_nodes(part.conn)
                cluster_images.ensure_on_cluster(part.conn, _flavour(part.conn, nodes), tags, nodes)
        return {c.name: built[c.image].tag for c in containers if c.image in built}

    def _roll_out(self, unit: Unit, versions: dict[str, str], copies: int) -> str:
        part = self.part(unit.name)  # type: ignore[attr-defined]
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": name, "image": tag} for name, tag in versions.items()]}}}}
        call(part.conn.apps().patch_namespaced_deployment, unit.name, part.namespace, patch,
             what=f"Cannot set the new image on {unit.name!r}")
        self._wait_deployment(unit, copies)
        # The Deployment's own strategy: RollingUpdate, or Recreate (all old pods first, as the
        # `volume` manifests ask, because a ReadWriteOnce claim may not be mounted twice).
        kind = ((self._deployment(unit) or {}).get("spec", {}).get("strategy") or {}).get("type", "RollingUpdate")
        return f"{'rolling' if kind == 'RollingUpdate' else 'recreate'} (Deployment, {kind})"

    def _identities(self) -> dict[str, tuple[Any, int]]:
        return {name: (st.get("pod"), int(st.get("restarts", 0)))
                for name, st in self.status().items()}  # type: ignore[attr-defined]

    def _prober(self, unit: Unit) -> str | None:
        """A container outside ``unit`` with Python in its image, to send requests from (the adapter)."""
        return next((c.name for u in self.scenario.units if u.name != unit.name  # type: ignore[attr-defined]
                     for c in u.containers if c.image in ("adapter", "echo")), None)

    def _traffic(self, unit: Unit, period: float) -> Any:
        svc = self._service(unit)
        prober = self._prober(unit)
        if svc is None or prober is None:
            return _Traffic(self, period)
        port = next(p["port"] for p in svc["spec"]["ports"])
        return _InCluster(self, prober, f"http://{svc['metadata']['name']}:{port}/data", period)

    # -- recreate --------------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        bare: list[tuple[Any, dict[str, Any]]] = []
        scaled: list[tuple[Unit, int]] = []
        for u in units:
            part = self.part(u.name)  # type: ignore[attr-defined]
            dep = self._deployment(u, required=False)
            if dep is not None:
                n = int(dep["spec"].get("replicas", 1))
                call(part.conn.apps().patch_namespaced_deployment_scale, u.name, part.namespace,
                     {"spec": {"replicas": 0}}, what=f"Cannot scale {u.name!r} to 0")
                scaled.append((u, n))
            else:
                pod = self._newest(self._pods(part), u.name)  # type: ignore[attr-defined]
                if pod is None:
                    continue
                call(part.conn.core().delete_namespaced_pod, pod["metadata"]["name"], part.namespace,
                     grace_period_seconds=1, what=f"Cannot delete the pod of {u.name!r}")
                bare.append((part, pod))
        names = {u.name for u in units}
        # Delete everything first: for a moment none of them exists, only the volumes that persist.
        self.wait_until(lambda: not [p for part in self.parts for p in self._pods(part)  # type: ignore[attr-defined]
                                     if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") in names],
                        WAIT, "the pods to be gone")  # type: ignore[attr-defined]
        for part, pod in bare:
            meta = pod["metadata"]
            fresh = {"apiVersion": "v1", "kind": "Pod",
                     "metadata": {k: meta[k] for k in ("name", "labels", "annotations") if meta.get(k)},
                     "spec": {k: v for k, v in pod["spec"].items() if k != "nodeName"}}
            call(part.conn.core().create_namespaced_pod, part.namespace, fresh, what="Cannot create the pod again")
        for u, n in scaled:
            part = self.part(u.name)  # type: ignore[attr-defined]
            call(part.conn.apps().patch_namespaced_deployment_scale, u.name, part.namespace,
                 {"spec": {"replicas": n}}, what=f"Cannot scale {u.name!r} back")

    # -- seeing the copies -----------------------------------------------------------------------------
    def _spread(self, requests: int) -> Any:
        """Requests from inside the cluster: through the Service of the unit serving /data, or each pod."""
        from ...results import Spread

        unit = self._entry_unit()
        svc = self._service(unit)
        entry = next(c for c in unit.containers if c.port)
        prober = self._prober(unit) if svc is not None else None
        if prober is not None:
            urls = [f"http://{svc['metadata']['name']}:{svc['spec']['ports'][0]['port']}/data"] * requests  # type: ignore[index]
        else:  # no Service before the copies: ask each pod by its address, from one of them
            part = self.part(unit.name)  # type: ignore[attr-defined]
            ips = [p["status"].get("podIP") for p in self._pods(part)  # type: ignore[attr-defined]
                   if (p["metadata"].get("labels") or {}).get("app.kubernetes.io/name") == unit.name
                   and p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")]
            urls = [f"http://{ip}:{entry.port}/data" for ip in ips for _ in range(max(1, requests // max(1, len(ips))))]
            prober = entry.name
        out = self.exec(prober, "python3", "-c", _SPREAD, *urls)  # type: ignore[attr-defined]
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

    def _append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, from inside its container."""
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)  # type: ignore[attr-defined]
        n = max(1, nbytes // len(line)) * len(line)
        self.exec(gen, "sh", "-c", f"yes {line.decode().strip()} | head -c {n} >> data")  # type: ignore[attr-defined]

    def volumes(self) -> Table:
        """Which container mounts which volume: the pods' own words (an emptyDir, or a claim by name)."""
        rows = []
        for unit in self.scenario.units:  # type: ignore[attr-defined]
            part = self.part(unit.name)  # type: ignore[attr-defined]
            pod = self._newest(self._pods(part), unit.name)  # type: ignore[attr-defined]
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
        unit = self.scenario.unit_of(container)  # type: ignore[attr-defined]
        ns = self.part(unit.name).namespace  # type: ignore[attr-defined]
        fqdn = f"{name}.{ns}.svc.cluster.local"
        script = ("import socket, sys; print('Address: ' + ' '.join(socket.gethostbyname_ex(sys.argv[1])[2])); "
                  "print(open('/etc/resolv.conf').read())")
        out = self.exec(container, "python3", "-c", script, fqdn)  # type: ignore[attr-defined]
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
            self._out = self.app.exec(self.container, "python3", "-c", _COUNT, self.url, self._mark,
                                      str(self.period))
        except AppcoupError as e:
            self._out = str(e)

    def __enter__(self) -> _InCluster:
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

"""The ``kubernetes`` runtime: every scenario as pods, on the cluster the kubeconfig's context names.

- ``runtime("kubernetes")``: the current context of ``$KUBECONFIG`` (or ``~/.kube/config``, or the
  service account of the pod this runs in). ``runtime("kubernetes", context="kind-a",
  kubeconfig=PATH)`` picks another.
- `federation` spans two clusters: this runtime's context runs the generator and its adapter
  (``manifests/federation/cluster-a``) and the *peer* runs echo (``cluster-b``), which reads the
  numbers across. Name the peer with ``runtime("kubernetes", peer=CONTEXT_OR_KUBECONFIG)``, or
  ``$APPCOUP_PEER_CONTEXT`` / ``$APPCOUP_PEER_KUBECONFIG``. Without one, ``up("federation")`` raises
  :class:`NotSupported` saying so: two namespaces of one cluster are not two clusters.
- ``storage_class=NAME`` puts the `volume` claim on that StorageClass instead of the default one;
  ``liveness_probe=True`` gives `single-image` a liveness probe on echo (the health lesson).

Each app is a namespace named after the app, labelled ``app.kubernetes.io/part-of=appcoup``,
``appcoup.app`` and ``appcoup.learner``: ``down`` deletes it, ``clean`` deletes the learner's ones on
every context that answers.
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any

from ...errors import AlreadyUp, AppcoupError, NotFound, NotSupported, RuntimeUnavailable
from ...scenarios import Scenario
from ...scenarios import scenario as get_scenario
from ..base import (
    APP_LABEL,
    LABEL,
    LABEL_VALUE,
    LEARNER_LABEL,
    App,
    Availability,
    Runtime,
    check_name,
    default_name,
    learner,
    register,
)
from . import images as cluster_images
from . import translate
from .app import KubernetesApp, Part
from .client import (
    FIX_CLUSTER,
    FIX_SDK,
    Connection,
    api_error,
    call,
    connect,
    contexts,
    kubeconfig_path,
    status_of,
)
from .namespaces import annotations_of, delete_namespace, wait_gone

PEER_CONTEXT_ENV = "APPCOUP_PEER_CONTEXT"
PEER_KUBECONFIG_ENV = "APPCOUP_PEER_KUBECONFIG"
_CREATE = {  # kind -> (API group accessor, method)
    "Pod": ("core", "create_namespaced_pod"),
    "Service": ("core", "create_namespaced_service"),
    "PersistentVolumeClaim": ("core", "create_namespaced_persistent_volume_claim"),
    "Deployment": ("apps", "create_namespaced_deployment"),
    "EndpointSlice": ("discovery", "create_namespaced_endpoint_slice"),
}


def probe(conn: Connection, timeout: float = 4.0) -> dict[str, Any]:
    """The cluster's version, or :class:`RuntimeUnavailable` within ``timeout`` seconds."""
    import kubernetes

    try:
        resp = kubernetes.client.VersionApi(conn.api).get_code(_preload_content=False,
                                                                _request_timeout=(timeout / 2, timeout / 2))
        import json

        return json.loads(resp.data)
    except Exception as e:  # noqa: BLE001 - every way of not answering
        err = api_error("No answer", e, conn)
        raise RuntimeUnavailable(f"The cluster of {conn.label} does not answer.", why=err.why or err.what,
                                 fix=FIX_CLUSTER) from None


def facts(conn: Connection) -> dict[str, Any]:
    """What doctor says about a cluster: flavour, whether namespaces can be created, how images get there."""
    import kubernetes

    nodes = cluster_images.list_nodes(conn)
    groups = {g["name"] for g in call(kubernetes.client.ApisApi(conn.api).get_api_versions,
                                      what="Cannot list the API groups").get("groups", [])}
    flavour = cluster_images.detect(conn, nodes, groups)
    review = call(kubernetes.client.AuthorizationV1Api(conn.api).create_self_subject_access_review,
                  {"spec": {"resourceAttributes": {"verb": "create", "resource": "namespaces"}}},
                  what="Cannot ask what this account may do")
    allowed = bool((review.get("status") or {}).get("allowed"))
    return {"nodes": nodes, "flavour": flavour, "can_create_namespaces": allowed}


@register
class KubernetesRuntime(Runtime):
    """Pods on a Kubernetes cluster (kind, minikube, k3d, Docker Desktop, OpenShift, any other)."""

    name = "kubernetes"
    description = "pods on a Kubernetes cluster"
    app_abilities = KubernetesApp.abilities

    def __init__(self, context: str | None = None, kubeconfig: str | None = None, *, peer: str | None = None,
                 storage_class: str | None = None, liveness_probe: bool = False) -> None:
        super().__init__()
        self.context, self.kubeconfig, self.storage_class = context, kubeconfig, storage_class
        self.peer = peer
        self.liveness_probe = liveness_probe  # single-image only: the health lesson's probed variant

    @property
    def conn(self) -> Connection:
        return connect(self.context, self.kubeconfig)

    def peer_conn(self) -> Connection:
        """The second cluster of `federation` (see the module's docstring), or NotSupported."""
        peer = self.peer or os.environ.get(PEER_KUBECONFIG_ENV) or os.environ.get(PEER_CONTEXT_ENV)
        if not peer:
            raise NotSupported(
                "`federation` needs a second cluster, and none is named.",
                why="it couples programs on two clusters; two namespaces of one cluster would only pretend",
                fix="name the second cluster: runtime('kubernetes', peer='CONTEXT or path/to/kubeconfig'), or set "
                    f"{PEER_CONTEXT_ENV} / {PEER_KUBECONFIG_ENV} (`kind create cluster --name b` makes one)")
        if os.path.exists(os.path.expanduser(peer)):
            conn = connect(None, peer)
        else:
            conn = connect(peer, self.kubeconfig)
        if conn.server == self.conn.server:
            raise NotSupported(f"The peer {peer!r} is the same cluster ({conn.server}).",
                               fix="name a context or kubeconfig of another cluster as the peer")
        return conn

    # -- availability ------------------------------------------------------------------------------
    @classmethod
    def availability(cls) -> Availability:
        try:
            import kubernetes  # noqa: F401 - only whether it is there
        except ImportError:
            return Availability("kubernetes", False, "the Kubernetes client for Python is not installed", FIX_SDK)
        if kubeconfig_path() is None and not os.environ.get("KUBERNETES_SERVICE_HOST"):
            return Availability("kubernetes", False, "no cluster configured here: KUBECONFIG is not set and "
                                "~/.kube/config does not exist", FIX_CLUSTER)
        conn = None
        try:
            conn = connect(retries=False)  # a client of its own: no retries, so "nowhere" answers fast
            version = probe(conn)
            f = facts(conn)
        except AppcoupError as e:
            return Availability("kubernetes", False, e.what + (f" ({e.why})" if e.why else ""), e.fix or FIX_CLUSTER)
        finally:
            if conn is not None:
                conn.close()
        flavour = f["flavour"]
        detail = (f"Kubernetes {version.get('gitVersion', '?')} at {conn.server}, context {conn.context!r}, "
                  f"{flavour.name}; images: {flavour.how}")
        if not f["can_create_namespaces"]:
            return Availability("kubernetes", False, detail + "; this account may not create namespaces "
                                "(verb create, resource namespaces)",
                                "each app runs in a namespace of its own: ask the cluster's admin for "
                                "`create namespaces`, or use another context")
        return Availability("kubernetes", True, detail + "; namespaces: can create")

    # -- up ----------------------------------------------------------------------------------------
    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None,
            address: str = "127.0.0.1") -> App:
        from ... import images

        conns = [self.conn] + ([self.peer_conn()] if scenario.name == "federation" else [])
        dirs = translate.manifest_dirs(scenario)
        for conn in conns:
            _check_free(conn, name, scenario)
        tags = images.ensure(translate.images_of(scenario), progress=progress)
        started = time.time()
        notes = {"appcoup.interval": f"{interval:g}", "appcoup.port": str(port), "appcoup.started": f"{started:.3f}",
                 "appcoup.supervisor": "init" if any(c.image == "combined-init" for c in scenario.containers)
                 else "naive"}
        if len(conns) > 1:
            notes["appcoup.peer"] = conns[1].kubeconfig or ""
            notes["appcoup.peer-context"] = conns[1].context
        plans = [translate.plan(scenario, d, name, tags=tags, interval=interval, learner=learner(),
                                annotations=notes, storage_class=self.storage_class,
                                liveness_probe=self.liveness_probe) for d in dirs]
        units = [tuple(sorted({o["metadata"]["labels"].get(translate.NAME_LABEL, "") for o in p.objects
                               if translate.pod_spec(o) is not None})) for p in plans]
        # The manifests' pod labels name the units: both sides of federation, all of the others.
        parts = [Part(c, name, u) for c, u in zip(conns, units)]
        app = KubernetesApp(self, scenario, name, interval=interval, parts=parts, started=started, port=port,
                            address=address)
        app.forward(port)  # the port first: a taken port fails before anything exists on the cluster
        created: list[Connection] = []
        nodes_a: list[dict[str, Any]] = []
        node_port = 0
        try:
            for i, (conn, p) in enumerate(zip(conns, plans)):
                nodes = cluster_images.list_nodes(conn)
                used = sorted({c["image"] for o in p.objects for c in (translate.pod_spec(o) or {}).get("containers", [])})
                cluster_images.ensure_on_cluster(conn, _flavour(conn, nodes), used, nodes)
                if i == 1:  # federation: echo's side points at the generator side's exposed port
                    translate.point_endpoints(p, _node_address(nodes_a), node_port)
                created.append(conn)
                app.watcher(parts[i])  # watching first: every change is stamped by this machine's clock
                results = _apply(conn, p)
                if i == 0 and len(plans) > 1:
                    nodes_a = nodes
                    node_port = next(pt["nodePort"] for r in results if r.get("kind") == "Service"
                                     for pt in r["spec"].get("ports", []) if pt.get("nodePort"))
        except BaseException:
            app.abandon(created)
            raise
        return app

    # -- other processes' apps ---------------------------------------------------------------------
    def attach(self, scenario: str, name: str | None = None) -> App:
        sc = get_scenario(scenario)
        name = check_name(name) if name else default_name(sc.name)
        conn = self.conn
        ns = _read_namespace(conn, name)
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            raise NotFound(f"No app {name!r} runs on the kubernetes runtime ({conn.label}).",
                           fix=f"start it: `appcoup up {sc.name} --runtime kubernetes`")
        notes = annotations_of(ns)
        if sc.name == "single-image":
            sc = sc.with_supervisor(notes.get("appcoup.supervisor", "naive"))  # type: ignore[arg-type]
        conns = [conn]
        if sc.name == "federation":
            conns.append(connect(notes.get("appcoup.peer-context"), notes.get("appcoup.peer") or None))
        units = [tuple(u.name for u in sc.units if u.name != "echo"), ("echo",)] if len(conns) > 1 else [
            tuple(u.name for u in sc.units)]
        parts = [Part(c, name, u) for c, u in zip(conns, units)]
        return KubernetesApp(self, sc, name, interval=float(notes.get("appcoup.interval", "2")), parts=parts,
                             started=float(notes.get("appcoup.started", time.time())), port=0)

    def running(self) -> list[dict[str, Any]]:
        rows = []
        for ns in _app_namespaces(self.conn, all_learners=False):
            meta = ns["metadata"]
            if meta.get("deletionTimestamp"):
                continue  # being deleted (an app downed at a kernel's exit): going away on its own
            rows.append({"runtime": "kubernetes", "name": meta["name"],
                         "scenario": (meta.get("labels") or {}).get(translate.SCENARIO_LABEL, "?"),
                         "url": f"port-forward on attach (namespace {meta['name']}, {self.conn.context})"})
        return rows

    @classmethod
    def clean(cls, *, all_learners: bool = False) -> list[str]:
        """Delete the learner's app namespaces (everyone's with ``all_learners``) on every context that answers."""
        targets: list[tuple[str | None, str | None]] = []
        names, _ = contexts() if kubeconfig_path() else ([], None)
        targets += [(None, n) for n in names] or [(None, None)]
        for env, is_path in ((PEER_KUBECONFIG_ENV, True), (PEER_CONTEXT_ENV, False)):
            if os.environ.get(env):
                targets.append((os.environ[env], None) if is_path else (None, os.environ[env]))

        def one(target: tuple[str | None, str | None]) -> list[str]:
            try:
                quick = connect(target[1], target[0], retries=False)
                try:
                    probe(quick, timeout=3)
                finally:
                    quick.close()
                conn = connect(target[1], target[0])
            except AppcoupError:
                return []  # not reachable now: nothing to do there
            removed = []
            spaces = [ns["metadata"]["name"] for ns in _app_namespaces(conn, all_learners=all_learners)]
            for ns in spaces:
                if delete_namespace(conn, ns):
                    removed.append(f"namespace {ns} ({conn.context})")
            for ns in spaces:
                wait_gone(conn, ns)
            return removed

        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(targets))) as pool:
            results = list(pool.map(one, dict.fromkeys(targets)))
        return sorted({r for rs in results for r in rs})


# -- helpers ---------------------------------------------------------------------------------------
def _read_namespace(conn: Connection, name: str) -> dict[str, Any] | None:
    return call(conn.core().read_namespace, name, what=f"Cannot read the namespace {name!r}", missing_ok=True)


def _check_free(conn: Connection, name: str, scenario: Scenario) -> None:
    """AlreadyUp when the app's namespace exists; wait out one that is still being deleted."""
    ns = _read_namespace(conn, name)
    if ns is None:
        return
    labels = ns["metadata"].get("labels") or {}
    if labels.get(LABEL) != LABEL_VALUE:
        raise AlreadyUp(f"The namespace {name!r} exists on {conn.label} and is not appcoup's.",
                        fix="pick another app name: up(..., name='appcoup-mine')")
    if ns["metadata"].get("deletionTimestamp"):
        wait_gone(conn, name)
        return
    raise AlreadyUp(f"The app {name!r} already runs on the kubernetes runtime ({conn.label}).",
                    fix=f"use it, or stop it first: app.down() or `appcoup down {scenario.name} --runtime kubernetes`")


def _app_namespaces(conn: Connection, *, all_learners: bool) -> list[dict[str, Any]]:
    selector = f"{LABEL}={LABEL_VALUE},{APP_LABEL}"
    if not all_learners:
        selector += f",{LEARNER_LABEL}={learner()}"
    return call(conn.core().list_namespace, label_selector=selector, what="Cannot list appcoup's namespaces").get(
        "items", [])


def _flavour(conn: Connection, nodes: list[dict[str, Any]]) -> cluster_images.Flavour:
    import kubernetes

    groups: set[str] = set()
    if not os.environ.get(cluster_images.LOADER_ENV):
        groups = {g["name"] for g in call(kubernetes.client.ApisApi(conn.api).get_api_versions,
                                          what="Cannot list the API groups").get("groups", [])}
    return cluster_images.detect(conn, nodes, groups)


def _node_address(nodes: list[dict[str, Any]]) -> str:
    for n in nodes:
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                return a["address"]
    raise AppcoupError("The generator's cluster reports no node address for the other cluster to reach.",
                       fix="check `kubectl get nodes -o wide` on it")


def _apply(conn: Connection, p: translate.Plan) -> list[dict[str, Any]]:
    """Create the namespace, then all its objects at once; return what the API returned."""
    call(conn.core().create_namespace, p.namespace, what=f"Cannot create the namespace {p.name!r}")
    apis = {"core": conn.core(), "apps": conn.apps(), "discovery": conn.discovery()}

    def create(obj: dict[str, Any]) -> dict[str, Any]:
        group, method = _CREATE[obj["kind"]]
        fn = getattr(apis[group], method)
        deadline = time.monotonic() + 10
        while True:
            try:
                return call(fn, p.name, obj, what=f"Cannot create {obj['kind']} {obj['metadata']['name']!r}")
            except AppcoupError as e:
                # A brand-new namespace gets its "default" ServiceAccount a moment later; pods wait for it.
                if "serviceaccount" in (e.why or "").lower().replace(" ", "") and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise

    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, len(p.objects))) as pool:
        out = list(pool.map(create, p.objects))
    return [{"kind": o["kind"], **r} for o, r in zip(p.objects, out)]


__all__ = ["KubernetesRuntime", "status_of"]

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
  ``liveness_probe=True`` gives `single-image` a liveness probe on echo (the health lesson);
  ``workload="deployment"`` runs the bare Pods (`pod`, `single-image`) as one-replica Deployments.

Each app is a namespace named after the app, labelled ``app.kubernetes.io/part-of=appcoup``,
``appcoup.app`` and ``appcoup.learner``: ``down`` deletes it, ``clean`` deletes the learner's ones on
every context that answers. Where the account may not create namespaces (a classroom's learner), or
with ``runtime("kubernetes", namespace="x")`` / ``$APPCOUP_NAMESPACE``, every app runs in one shared
namespace instead, its objects named ``<app>-...`` and found by label (:mod:`.placement`). Without a
Docker engine here, the images come from the nodes or ``$APPCOUP_REGISTRY`` (:mod:`.images`).
"""

from __future__ import annotations

import concurrent.futures
import os
import time
from typing import Any, ClassVar

from ...errors import AlreadyUp, AppcoupError, InvalidInput, NotFound, NotSupported, RuntimeUnavailable
from ...scenarios import Scenario
from ..base import (
    APP_LABEL,
    LABEL,
    LABEL_VALUE,
    LEARNER_LABEL,
    Ability,
    App,
    Availability,
    Runtime,
    learner,
    register,
)
from . import images as cluster_images
from . import translate
from .app import KubernetesApp
from .client import (
    FIX_CLUSTER,
    FIX_SDK,
    Connection,
    call,
    connect,
    contexts,
    kubeconfig_path,
    sdk,
    status_of,
)
from .flavour import api_groups, detect
from .namespaces import annotations_of, delete_namespace, wait_gone
from .placement import (
    NAMESPACE_ENV,
    Placement,
    context_namespace,
    decide,
    delete_labelled,
    may,
    read_record,
    records,
    wait_labelled_gone,
    wait_removed,
)

PEER_CONTEXT_ENV = "APPCOUP_PEER_CONTEXT"
PEER_KUBECONFIG_ENV = "APPCOUP_PEER_KUBECONFIG"
_CREATE = {  # kind -> (API group accessor, method)
    "Pod": ("core", "create_namespaced_pod"),
    "Service": ("core", "create_namespaced_service"),
    "PersistentVolumeClaim": ("core", "create_namespaced_persistent_volume_claim"),
    "Deployment": ("apps", "create_namespaced_deployment"),
    "EndpointSlice": ("discovery", "create_namespaced_endpoint_slice"),
    "ConfigMap": ("core", "create_namespaced_config_map"),
}


def probe(conn: Connection, timeout: float = 4.0) -> dict[str, Any]:
    """The cluster's version, or :class:`RuntimeUnavailable` within ``timeout`` seconds."""
    try:
        return call(sdk().client.VersionApi(conn.api).get_code, what=f"No answer ({conn.label})",
                    timeout=(timeout / 2, timeout / 2))
    except AppcoupError as err:  # every way of not answering: said as "does not answer", with the fix
        raise RuntimeUnavailable(f"The cluster of {conn.label} does not answer.", why=err.why or err.what,
                                 fix=FIX_CLUSTER) from None


def facts(conn: Connection, namespace: str | None = None) -> dict[str, Any]:
    """What doctor says about a cluster: flavour, where apps go (and whether this account may run pods
    there), how images get there. Nothing cluster-scoped is needed: unreadable nodes are a note."""
    nodes, nodes_note = cluster_images.read_nodes(conn)
    flavour = detect(conn, nodes, api_groups(conn))
    placement = decide(conn, namespace)
    may_run = placement.shared is None or may(conn, "create", "pods", placement.shared)
    return {"nodes": nodes, "nodes_note": nodes_note, "flavour": flavour, "placement": placement,
            "may_run": may_run, "can_create_namespaces": placement.why == Placement().why}


@register
class KubernetesRuntime(Runtime):
    """Pods on a Kubernetes cluster (kind, minikube, k3d, Docker Desktop, OpenShift, any other)."""

    name = "kubernetes"
    description = "pods on a Kubernetes cluster"
    app_abilities = KubernetesApp.abilities
    #: What needs a new image built on this machine (then loaded or pushed): without a Docker engine
    #: (a learner's pod on a shared cluster) the images come from the nodes, and these are not possible.
    BUILDS: ClassVar[frozenset[str]] = frozenset({"replace", "rollout"})

    def can(self, ability: Ability) -> bool:
        if ability in self.BUILDS and ability in self.app_abilities:
            if self._builds_here is None:  # asked once: the engine's presence does not change under a kernel
                self._builds_here = cluster_images.engine_problem() is None
            return self._builds_here
        return super().can(ability)

    def __init__(self, context: str | None = None, kubeconfig: str | None = None, *, peer: str | None = None,
                 storage_class: str | None = None, liveness_probe: bool = False, workload: str = "pod",
                 namespace: str | None = None) -> None:
        super().__init__()
        self._builds_here: bool | None = None
        self.context, self.kubeconfig, self.storage_class = context, kubeconfig, storage_class
        self.namespace = namespace  # every app in this one namespace (see the module's docstring)
        self.peer = peer
        self.liveness_probe = liveness_probe  # single-image only: the health lesson's probed variant
        if workload not in ("pod", "deployment"):
            raise InvalidInput(f"There is no workload {workload!r}.",
                               fix="use workload='pod' (the manifests' bare Pods) or workload='deployment'")
        self.workload = workload  # "deployment": each bare Pod as a one-replica Deployment of it

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
        return _availability(version, conn, f)

    # -- up ----------------------------------------------------------------------------------------
    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None,
            address: str = "127.0.0.1") -> App:
        dirs = translate.manifest_dirs(scenario)
        conns = [self.conn] + ([self.peer_conn()] if len(dirs) > 1 else [])  # federation: a cluster a side
        places = [decide(c, self.namespace) for c in conns]
        for conn, place in zip(conns, places):
            _check_free(conn, place, name, scenario)
        source = cluster_images.course_images(translate.images_of(scenario), progress=progress)
        tags = source.tags
        started = time.time()
        notes = {"appcoup.interval": f"{interval:g}", "appcoup.port": str(port), "appcoup.started": f"{started:.3f}",
                 "appcoup.supervisor": scenario.supervisor}
        if len(conns) > 1:
            notes["appcoup.peer"] = conns[1].kubeconfig or ""
            notes["appcoup.peer-context"] = conns[1].context
            notes["appcoup.peer-namespace"] = places[1].shared or ""
        plans = [translate.plan(scenario, d, name, tags=tags, interval=interval, learner=learner(),
                                annotations=notes, placement=place, storage_class=self.storage_class,
                                liveness_probe=self.liveness_probe, workload=self.workload)
                 for d, place in zip(dirs, places)]
        parts = [place.part(c, name, u) for c, place, u in zip(conns, places, translate.units_per_cluster(scenario))]
        app = KubernetesApp(self, scenario, name, interval=interval, parts=parts, started=started, address=address)
        app.start_forward(port)  # the port first: a taken port fails before anything exists on the cluster
        created: list[Connection] = []
        nodes_a: list[dict[str, Any]] = []
        node_port = 0
        try:
            for i, (conn, p) in enumerate(zip(conns, plans)):
                nodes = cluster_images.list_nodes(conn)
                used = sorted({c["image"] for o in p.objects for c in (translate.pod_spec(o) or {}).get("containers", [])})
                cluster_images.deliver(conn, source, used, nodes)
                if i == 1:  # federation: echo's side points at the generator side's exposed port
                    translate.point_endpoints(p, _node_address(nodes_a), node_port)
                created.append(conn)
                app.watcher(parts[i]).start()  # watching first: every change is stamped by this machine's clock
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
    def _recorded(self, scenario: Scenario, name: str) -> dict[str, Any]:
        ns = read_record(self.conn, decide(self.conn, self.namespace), name)  # its Namespace, or its ConfigMap
        if ns is None or ns["metadata"].get("deletionTimestamp"):
            raise NotFound(f"No app {name!r} runs on the kubernetes runtime ({self.conn.label}).",
                           fix=f"start it: `appcoup up {scenario.name} --runtime kubernetes`")
        notes = annotations_of(ns)
        return {"supervisor": notes.get("appcoup.supervisor"), "interval": float(notes.get("appcoup.interval", "2")),
                "started": float(notes.get("appcoup.started", time.time())),
                "peer_context": notes.get("appcoup.peer-context"), "peer": notes.get("appcoup.peer") or None,
                "peer_namespace": notes.get("appcoup.peer-namespace") or None}

    def _attach(self, scenario: Scenario, name: str, record: dict[str, Any]) -> App:
        conns, places = [self.conn], [decide(self.conn, self.namespace)]
        if len(translate.manifest_dirs(scenario)) > 1:  # federation: its other side, where up() noted it
            conns.append(connect(record["peer_context"], record["peer"]))
            places.append(Placement(record["peer_namespace"], "as up placed it") if record["peer_namespace"]
                          else Placement())
        parts = [place.part(c, name, u) for c, place, u in zip(conns, places, translate.units_per_cluster(scenario))]
        app = KubernetesApp(self, scenario, name, interval=record["interval"], parts=parts, started=record["started"])
        app.start_watching()
        try:
            app.start_forward(0)  # a port of its own: the one up() chose belongs to the process that started it
        except BaseException:
            app.close()
            raise
        return app

    def running(self) -> list[dict[str, Any]]:
        rows = []
        place = decide(self.conn, self.namespace)
        if place.shared is not None:
            for rec in records(self.conn, place.shared, _selector(all_learners=False)):
                labels = rec["metadata"].get("labels") or {}
                rows.append({"runtime": "kubernetes", "name": labels[APP_LABEL],
                             "scenario": labels.get(translate.SCENARIO_LABEL, "?"),
                             "url": f"port-forward on attach (namespace {place.shared}, {self.conn.context})"})
            return rows
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
            removed = _clean_shared(conn, all_learners)
            try:
                spaces = [ns["metadata"]["name"] for ns in _app_namespaces(conn, all_learners=all_learners)]
            except AppcoupError as e:
                if "RBAC" in e.what:
                    return removed  # may not list namespaces: it has none of its own (the shared mode)
                raise
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
def _availability(version: dict[str, Any], conn: Connection, f: dict[str, Any]) -> Availability:
    """doctor's line: the cluster, where apps go and why, how images get there; False only for what stops `up`."""
    place: Placement = f["placement"]
    detail = (f"Kubernetes {version.get('gitVersion', '?')} at {conn.server}, context {conn.context!r}, "
              f"{f['flavour'].name}; {place.describe()}")
    if not f["may_run"]:
        return Availability("kubernetes", False, detail + f"; this account may not create pods in {place.shared!r}",
                            f"ask the cluster's admin for a Role in {place.shared!r} (admin on that namespace), "
                            f"or name a namespace where you have one: {NAMESPACE_ENV}=NAME")
    from ... import images

    source = cluster_images.course_images(list(images.NAMES), build=False)
    detail += "; " + (source.describe() if source.kind != "engine" else f"images: {f['flavour'].how}")
    if f["nodes_note"]:
        detail += f"; {f['nodes_note']}"
    missing = cluster_images.missing_on_nodes(source, sorted(source.tags.values()), f["nodes"])
    if source.kind == "nodes" and f["nodes"] and not all(cluster_images.listed_in_full(n) for n in f["nodes"]):
        detail += (f"; images on the nodes not checked (a node's status lists only its "
                   f"{cluster_images.STATUS_MAX_IMAGES} largest: `appcoup preflight` asks the node)")
    if missing:
        return Availability("kubernetes", False, detail + f"; not on the nodes: {', '.join(missing)}",
                            cluster_images.FIX_IMAGES)
    return Availability("kubernetes", True, detail)


def _selector(*, all_learners: bool) -> str:
    return f"{LABEL}={LABEL_VALUE},{APP_LABEL}" + ("" if all_learners else f",{LEARNER_LABEL}={learner()}")


def _clean_shared(conn: Connection, all_learners: bool) -> list[str]:
    """The learner's apps (everyone's) in the shared namespace ($APPCOUP_NAMESPACE, else the context's)."""
    ns = os.environ.get(NAMESPACE_ENV) or context_namespace(conn)
    selector = _selector(all_learners=all_learners)
    try:
        names = sorted({(r["metadata"].get("labels") or {}).get(APP_LABEL, "?") for r in records(conn, ns, selector)})
        if delete_labelled(conn, ns, selector):
            wait_labelled_gone(conn, ns, selector)
    except AppcoupError as e:
        if "RBAC" in e.what:
            return []  # nothing of ours can be there
        raise
    return [f"app {n} (namespace {ns}, {conn.context})" for n in names]


def _check_free(conn: Connection, place: Placement, name: str, scenario: Scenario) -> None:
    """AlreadyUp when the app's record (its namespace, or its ConfigMap) exists; wait out one being deleted."""
    ns = read_record(conn, place, name)
    if ns is None:
        if place.shared is not None:  # objects of an app downed a moment ago may still be going
            wait_removed(place.part(conn, name, ()))
        return
    labels = ns["metadata"].get("labels") or {}
    what = "namespace" if place.shared is None else f"ConfigMap (in {place.shared!r})"
    if labels.get(LABEL) != LABEL_VALUE:
        raise AlreadyUp(f"The {what} {ns['metadata']['name']!r} exists on {conn.label} and is not appcoup's.",
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


def _node_address(nodes: list[dict[str, Any]]) -> str:
    for n in nodes:
        for a in (n.get("status") or {}).get("addresses") or []:
            if a.get("type") == "InternalIP":
                return a["address"]
    if not nodes:  # a namespace-limited account: nodes are not its to read
        raise AppcoupError("`federation` needs a node address of the generator's cluster, and this account "
                           "cannot read nodes there.", why=cluster_images.NO_NODES,
                           fix="run federation with an account that may `list nodes` on the first cluster")
    raise AppcoupError("The generator's cluster reports no node address for the other cluster to reach.",
                       fix="check `kubectl get nodes -o wide` on it")


def _apply(conn: Connection, p: translate.Plan) -> list[dict[str, Any]]:
    """Create the record (the namespace, or the ConfigMap), then all the objects at once; return what the
    API returned."""
    if p.record["kind"] == "Namespace":
        call(conn.core().create_namespace, p.record, what=f"Cannot create the namespace {p.name!r}")
    else:
        call(conn.core().create_namespaced_config_map, p.namespace, p.record,
             what=f"Cannot create the ConfigMap {p.record['metadata']['name']!r} in {p.namespace!r}")
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

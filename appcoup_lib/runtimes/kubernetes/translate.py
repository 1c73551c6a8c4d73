"""A scenario as Kubernetes objects: the YAML files of ``manifests/``, adapted to one app.

The files are the one source of truth (a learner can ``kubectl apply`` them by hand); this module
only changes what differs per app: where it goes (a :class:`~.placement.Placement`: a namespace
named after the app, or a shared namespace where every object is named ``<app>-<name>``), the labels
that let ``down`` and ``clean`` find everything (and the selectors, narrowed to the app's label, so
two apps in one namespace never select each other's pods), the image tags (the content hashes
:mod:`appcoup_lib.images` built), the generator's ``INTERVAL``, the Service and namespace inside
echo's ``SOURCE_URL`` and, for `federation`, the address of the other cluster.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml

from ...paths import manifests_dir
from ...scenarios import Scenario
from ..base import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL
from .placement import PER_APP, Placement

Obj = dict[str, Any]
NAME_LABEL = "app.kubernetes.io/name"
SCENARIO_LABEL = "appcoup.scenario"
_IMAGE = re.compile(r"^appcoup/([a-z-]+):0\.1\.0$")
_SERVICE_URL = re.compile(r"//([a-z0-9-]+)\.appcoup\.svc\.")
_WORKLOADS = ("Pod", "Deployment")


@dataclass(frozen=True)
class Plan:
    """What to create on one cluster: the app's record (its Namespace, or in a shared namespace its
    ConfigMap ``<app>-appcoup``, carrying what ``up`` notes), then its objects, in ``namespace``."""

    namespace: str
    record: Obj
    objects: list[Obj]

    @property
    def name(self) -> str:
        return self.namespace


@lru_cache(maxsize=16)
def _load(rel: str) -> tuple[Obj, ...]:
    root = manifests_dir() / rel
    files = [root] if root.is_file() else sorted(root.glob("*.yaml"))
    return tuple(d for f in files for d in yaml.safe_load_all(f.read_text()) if d)


def manifest_dirs(scenario: Scenario) -> list[str]:
    """The directories of ``manifests/`` a scenario applies, one per cluster."""
    if scenario.name == "federation":
        return ["federation/cluster-a", "federation/cluster-b"]
    return [scenario.name]


def units_per_cluster(scenario: Scenario) -> list[tuple[str, ...]]:
    """The scenario's units on each cluster, in the order of :func:`manifest_dirs`.

    Read from the scenario's data: across two clusters, the units whose containers read another's
    data remotely (``source``: echo in `federation`) run on the second one, where that data is
    consumed; the others, which produce it, on the first.
    """
    units = [u.name for u in scenario.units]
    if len(manifest_dirs(scenario)) == 1:
        return [tuple(units)]
    remote = tuple(u.name for u in scenario.units if any(c.source for c in u.containers))
    return [tuple(u for u in units if u not in remote), remote]


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "Deployment":
        return obj["spec"]["template"]["spec"]
    return None


# The lesson "health blind spot": the same single-image pod, with a liveness probe on echo's /healthz.
LIVENESS = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2}


def plan(scenario: Scenario, rel: str, app: str, *, tags: dict[str, str], interval: float,
         learner: str, annotations: dict[str, str], placement: Placement = PER_APP,
         storage_class: str | None = None, liveness_probe: bool = False, workload: str = "pod") -> Plan:
    """The objects of ``manifests/<rel>`` for the app ``app`` (its name), placed as ``placement`` says.

    ``workload="deployment"``: each bare Pod as a one-replica Deployment of it (:func:`as_deployment`).
    """
    namespace = placement.namespace_of(app)
    labels = {LABEL: LABEL_VALUE, APP_LABEL: app, LEARNER_LABEL: learner, SCENARIO_LABEL: scenario.name}
    if placement.shared is None:
        record = copy.deepcopy(_load("namespace.yaml")[0])
        record["metadata"]["name"] = namespace
    else:
        record = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": placement.record_name(app)},
                  "data": {"scenario": scenario.name, "manifests": rel}}
    record["metadata"].setdefault("labels", {}).update(labels)
    record["metadata"]["annotations"] = dict(annotations)
    objects = []
    for doc in _load(rel):
        obj = copy.deepcopy(doc)
        obj["metadata"]["name"] = placement.name(app, obj["metadata"]["name"])
        obj["metadata"].setdefault("labels", {}).update(labels)
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(labels)
        _narrow(obj, app, placement)
        spec = pod_spec(obj)
        for c in (spec or {}).get("containers", []):
            _adapt_container(c, scenario, tags, interval)
            _aim(c, app, placement)
            if liveness_probe and scenario.name == "single-image":
                c["livenessProbe"] = dict(LIVENESS)
        if obj["kind"] == "PersistentVolumeClaim" and storage_class is not None:
            obj["spec"]["storageClassName"] = storage_class
        if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
            # The manifest pins a node port for readers applying it by hand; the library lets the cluster
            # choose, so two learners' federations on one cluster do not collide.
            for p in obj["spec"]["ports"]:
                p.pop("nodePort", None)
        if workload == "deployment" and obj["kind"] == "Pod":
            unit = (obj["metadata"].get("labels") or {}).get(NAME_LABEL, obj["metadata"]["name"])
            obj = as_deployment(obj, placement.name(app, unit))
        objects.append(obj)
    # Storage and names first, then what uses them (all are sent at once, but a pod that finds its
    # claim already there is scheduled a moment sooner).
    order = {"PersistentVolumeClaim": 0, "Service": 1, "EndpointSlice": 1}
    objects.sort(key=lambda o: order.get(o["kind"], 2))
    return Plan(namespace, record, objects)


def _narrow(obj: Obj, app: str, placement: Placement) -> None:
    """Selectors and references of one object, to the app's own objects (its label, its names)."""
    mine = {APP_LABEL: app}
    if obj["kind"] == "Deployment":
        obj["spec"]["selector"].setdefault("matchLabels", {}).update(mine)
    if obj["kind"] == "Service" and obj["spec"].get("selector"):
        obj["spec"]["selector"].update(mine)
    if obj["kind"] == "EndpointSlice":  # federation's hand-made endpoints: tied to the renamed Service
        svc = obj["metadata"]["labels"].get("kubernetes.io/service-name")
        if svc:
            obj["metadata"]["labels"]["kubernetes.io/service-name"] = placement.name(app, svc)
    spec = pod_spec(obj) or {}
    for v in spec.get("volumes") or []:
        if "persistentVolumeClaim" in v:
            v["persistentVolumeClaim"]["claimName"] = placement.name(app, v["persistentVolumeClaim"]["claimName"])
    affinity = (spec.get("affinity") or {}).get("podAffinity") or {}
    terms = [*affinity.get("requiredDuringSchedulingIgnoredDuringExecution", []),
             *(t["podAffinityTerm"] for t in affinity.get("preferredDuringSchedulingIgnoredDuringExecution", []))]
    for term in terms:
        term.setdefault("labelSelector", {}).setdefault("matchLabels", {}).update(mine)


def _aim(c: Obj, app: str, placement: Placement) -> None:
    """echo's ``SOURCE_URL``: the app's own Service, in the namespace the app runs in."""
    for e in c.get("env", []):
        if e["name"] == "SOURCE_URL":
            e["value"] = _SERVICE_URL.sub(
                lambda m: f"//{placement.name(app, m.group(1))}.{placement.namespace_of(app)}.svc.", e["value"])


def as_deployment(pod: Obj, name: str) -> Obj:
    """A one-replica Deployment ``name`` whose template is ``pod``: how pods run at work, where any
    change to the template makes a new pod (and a new ``emptyDir``)."""
    labels = dict(pod["metadata"].get("labels") or {})
    selector = {k: labels[k] for k in (NAME_LABEL, APP_LABEL) if k in labels}
    meta = {k: v for k, v in pod["metadata"].items() if k not in ("name", "labels")}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {**meta, "name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": labels}, "spec": copy.deepcopy(pod["spec"])}}}


def _adapt_container(c: Obj, scenario: Scenario, tags: dict[str, str], interval: float) -> None:
    m = _IMAGE.match(c.get("image", ""))
    if m:
        try:
            image = scenario.container(c["name"]).image  # combined-init for supervisor="init"
        except KeyError:
            image = m.group(1)
        c["image"] = tags[image]
    for e in c.get("env", []):
        if e["name"] == "INTERVAL":
            e["value"] = f"{interval:g}"


def images_of(scenario: Scenario) -> list[str]:
    """The images (names in :data:`appcoup_lib.images.SPECS`) a scenario's manifests use."""
    return sorted({c.image for c in scenario.containers})


def point_endpoints(p: Plan, address: str, port: int) -> None:
    """Aim the EndpointSlices of a `federation` cluster-b plan at ``address:port`` (cluster A's node port)."""
    for obj in p.objects:
        if obj["kind"] == "EndpointSlice":
            for ep in obj["endpoints"]:
                ep["addresses"] = [address]
            for pt in obj["ports"]:
                pt["port"] = port


def entry_workload(p: Plan, unit: str) -> Obj | None:
    """The Pod or Deployment of ``unit`` (pods carry ``app.kubernetes.io/name: <unit>``)."""
    for obj in p.objects:
        if obj["kind"] in _WORKLOADS:
            meta = obj["metadata"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]
            if meta.get("labels", {}).get(NAME_LABEL) == unit:
                return obj
    return None

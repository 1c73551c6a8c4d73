"""A scenario as Kubernetes objects: the YAML files of ``manifests/``, adapted to one app.

The files are the one source of truth (a learner can ``kubectl apply`` them by hand); this module
only changes what differs per app: the namespace (one per app, named after it), the labels that
let ``down`` and ``clean`` find everything, the image tags (the content hashes :mod:`appcoup_lib.images`
built), the generator's ``INTERVAL``, the namespace inside echo's ``SOURCE_URL`` and, for
`federation`, the address of the other cluster.
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

Obj = dict[str, Any]
NAME_LABEL = "app.kubernetes.io/name"
SCENARIO_LABEL = "appcoup.scenario"
_IMAGE = re.compile(r"^appcoup/([a-z-]+):0\.1\.0$")
_WORKLOADS = ("Pod", "Deployment")


@dataclass(frozen=True)
class Plan:
    """What to create on one cluster: a namespace, then its objects."""

    namespace: Obj
    objects: list[Obj]

    @property
    def name(self) -> str:
        return self.namespace["metadata"]["name"]


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


def pod_spec(obj: Obj) -> Obj | None:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "Deployment":
        return obj["spec"]["template"]["spec"]
    return None


# The lesson "health blind spot": the same single-image pod, with a liveness probe on echo's /healthz.
LIVENESS = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 1, "failureThreshold": 2}


def plan(scenario: Scenario, rel: str, namespace: str, *, tags: dict[str, str], interval: float,
         learner: str, annotations: dict[str, str], storage_class: str | None = None,
         liveness_probe: bool = False) -> Plan:
    """The objects of ``manifests/<rel>`` for the app ``namespace`` (its name)."""
    labels = {LABEL: LABEL_VALUE, APP_LABEL: namespace, LEARNER_LABEL: learner, SCENARIO_LABEL: scenario.name}
    ns = copy.deepcopy(_load("namespace.yaml")[0])
    ns["metadata"]["name"] = namespace
    ns["metadata"]["labels"].update(labels)
    ns["metadata"]["annotations"] = dict(annotations)
    objects = []
    for doc in _load(rel):
        obj = copy.deepcopy(doc)
        obj["metadata"].setdefault("labels", {}).update(labels)
        if obj["kind"] == "Deployment":
            obj["spec"]["template"]["metadata"].setdefault("labels", {}).update(labels)
        spec = pod_spec(obj)
        for c in (spec or {}).get("containers", []):
            _adapt_container(c, scenario, namespace, tags, interval)
            if liveness_probe and scenario.name == "single-image":
                c["livenessProbe"] = dict(LIVENESS)
        if obj["kind"] == "PersistentVolumeClaim" and storage_class is not None:
            obj["spec"]["storageClassName"] = storage_class
        if obj["kind"] == "Service" and obj["spec"].get("type") == "NodePort":
            # The manifest pins a node port for readers applying it by hand; the library lets the cluster
            # choose, so two learners' federations on one cluster do not collide.
            for p in obj["spec"]["ports"]:
                p.pop("nodePort", None)
        objects.append(obj)
    # Storage and names first, then what uses them (all are sent at once, but a pod that finds its
    # claim already there is scheduled a moment sooner).
    order = {"PersistentVolumeClaim": 0, "Service": 1, "EndpointSlice": 1}
    objects.sort(key=lambda o: order.get(o["kind"], 2))
    return Plan(ns, objects)


def _adapt_container(c: Obj, scenario: Scenario, namespace: str, tags: dict[str, str], interval: float) -> None:
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
        elif e["name"] == "SOURCE_URL":
            e["value"] = e["value"].replace(".appcoup.svc.", f".{namespace}.svc.")


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

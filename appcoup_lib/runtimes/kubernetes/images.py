"""Getting the course's images onto a cluster without a registry, the cluster's own way.

The images are built by :mod:`appcoup_lib.images` on the local Docker engine under content-hash
tags (never ``:latest``, never pushed). What is missing on the cluster's nodes is then loaded:

- kind: ``kind load docker-image IMAGE --name CLUSTER``
- minikube: ``minikube image load IMAGE -p PROFILE``
- k3d: ``k3d image import IMAGE -c CLUSTER``
- Docker Desktop: nothing to do, its Kubernetes uses the engine's images
- this repository's test cluster: ``tests/cluster/load IMAGE`` (into its own containerd)
- OpenShift: a binary build into an ImageStream (``oc new-build --binary``, ``oc start-build``); not done
  automatically: the error says how
- any other cluster: the command in ``$APPCOUP_IMAGE_LOADER``, run once per missing image, e.g.
  ``APPCOUP_IMAGE_LOADER="sh -c 'docker save {image} | ssh node sudo ctr -n k8s.io images import -'"``;
  ``{image}``, ``{context}`` and ``{kubeconfig}`` are filled in (the image is appended when ``{image}``
  is absent). Without it, the error names what is needed.

Where no Docker engine answers here (a learner on a shared cluster, the usual classroom), nothing is
built or loaded: the pods use the *portable* tags (``images.tag_for(name, portable=True)``, a hash of
the image's files alone) that the teacher's ``appcoup images preload`` put on every node, or, with
``$APPCOUP_REGISTRY`` set, ``$APPCOUP_REGISTRY/<name>:<hash>`` that ``appcoup images push`` put
there, pulled by the nodes (``imagePullPolicy: IfNotPresent``). :func:`course_images` decides.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from ...errors import AppcoupError, RuntimeUnavailable
from ...labels import LABEL, LABEL_VALUE
from ...refs import short_ref
from .client import Connection, call
from .flavour import LOADER_ENV, Flavour, cluster_flavour


def on_nodes(nodes: list[dict[str, Any]]) -> set[str]:
    """Every image name the nodes report, also as Docker shows it (containerd adds its default
    registry's host to a name without one)."""
    out = set()
    for n in nodes:
        for img in (n.get("status") or {}).get("images") or []:
            for name in img.get("names") or []:
                out.update((name, short_ref(name)))
    return out


# The kubelet reports only the largest images of its node in status.images: 50 by default (its
# `nodeStatusMaxImages`; -1 lifts the cap). The course's images are small, so on a busy node they are
# the first left out: an image missing from a list this long proves nothing (:func:`probe_node` asks).
STATUS_MAX_IMAGES = 50


def listed_in_full(node: dict[str, Any]) -> bool:
    """Whether this node's ``status.images`` can be complete (shorter than the kubelet's default cap)."""
    return len((node.get("status") or {}).get("images") or []) < STATUS_MAX_IMAGES


def probe_node(conn: Connection, namespace: str, node: str, tags: list[str], *, timeout: float = 90) -> set[str]:
    """Of ``tags``, those the node ``node`` holds, asked of its kubelet itself: one short-lived pod pinned
    to the node with a container per image and ``imagePullPolicy: Never`` (a missing image is
    ``ErrImageNeverPull``, nothing is pulled). For a node whose status lists only its largest images."""
    if not tags:
        return set()
    labels = {LABEL: LABEL_VALUE}
    name = f"appcoup-image-probe-{os.getpid() % 100000}-{int(time.time() * 1000) % 100000}"
    small = {"cpu": "10m", "memory": "16Mi"}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": {
        "nodeName": node, "restartPolicy": "Never", "activeDeadlineSeconds": int(timeout) + 30,
        "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
        "containers": [{"name": f"i{i}", "image": t, "imagePullPolicy": "Never", "command": ["true"],
                        "resources": {"requests": small, "limits": small}} for i, t in enumerate(tags)]}}
    core = conn.core()
    call(core.create_namespaced_pod, namespace, pod, what=f"Cannot start a pod on node {node} to look for images")
    try:
        deadline = time.monotonic() + timeout
        while True:
            got = call(core.read_namespaced_pod, name, namespace, what="Cannot read the image probe pod")
            seen = {}
            for st in (got.get("status") or {}).get("containerStatuses") or []:
                waiting = (st.get("state") or {}).get("waiting")
                if waiting and waiting.get("reason") == "ErrImageNeverPull":
                    seen[st["name"]] = False
                elif not waiting or waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
                    seen[st["name"]] = True  # running, done, or failing for a reason other than its image
            if len(seen) == len(tags):
                return {t for i, t in enumerate(tags) if seen[f"i{i}"]}
            if time.monotonic() > deadline:
                raise AppcoupError(f"The image probe on node {node} gave no answer in {timeout:.0f} s.",
                                   why=f"containers seen: {seen}", fix="look at `kubectl describe pod` of it, "
                                   f"in namespace {namespace}, and run again")
            time.sleep(0.5)
    finally:
        call(core.delete_namespaced_pod, name, namespace, grace_period_seconds=0, missing_ok=True,
             what="Cannot remove the image probe pod")


REGISTRY_ENV = "APPCOUP_REGISTRY"
NO_NODES = ("cannot read nodes with this account: assuming a generic cluster; images must be on the nodes "
            f"or in {REGISTRY_ENV}")
FIX_IMAGES = (f"ask the teacher to run `appcoup images preload` (every node then holds the images), or to push "
              f"them (`appcoup images push`) and set {REGISTRY_ENV}=REGISTRY/PATH here; or start a Docker engine "
              "here (it builds and loads them)")


def read_nodes(conn: Connection) -> tuple[list[dict[str, Any]], str | None]:
    """The cluster's nodes, and None; or [] and :data:`NO_NODES` when this account may not see them
    (a learner's namespace-limited account): never a 403 traceback."""
    try:
        return call(conn.core().list_node, what="Cannot list the cluster's nodes").get("items", []), None
    except AppcoupError as e:
        if "RBAC" in e.what:
            return [], NO_NODES
        raise


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    """The cluster's nodes; [] when this account may not see them (common for a learner's account)."""
    return read_nodes(conn)[0]


@dataclass(frozen=True)
class Source:
    """Where the pods' images come from: ``engine`` (built here, loaded), ``registry`` or ``nodes`` (preloaded)."""

    kind: str
    tags: dict[str, str] = field(default_factory=dict)  # image name -> the reference the pods use
    why: str = ""  # for "nodes": why this machine's engine cannot build them

    def describe(self) -> str:
        if self.kind == "registry":
            return f"images: pulled from {os.environ.get(REGISTRY_ENV)} (`appcoup images push` puts them there)"
        if self.kind == "nodes":
            return f"images: already on the nodes, preloaded (no Docker engine here: {self.why})"
        return "images: built by this machine's Docker engine"


def registry_ref(registry: str, name: str) -> str:
    """``REGISTRY/<name>:<portable hash>``: where ``appcoup images push`` puts ``name``."""
    from ... import images

    return f"{registry.rstrip('/')}/{name}:{images.tag_for(name, portable=True).rsplit(':', 1)[1]}"


def engine_problem() -> str | None:
    """None when this machine's Docker engine answers; else why not, in its own words."""
    from ... import images

    try:
        images.bases()
    except RuntimeUnavailable as e:
        return e.what.rstrip(".")
    except AppcoupError:
        return None  # it answers, with an error of its own: the build says it
    return None


def course_images(names: list[str], *, progress: bool | None = None, build: bool = True) -> Source:
    """The references the pods use for the images ``names``: from ``$APPCOUP_REGISTRY``; else built on
    this machine's engine (``build``); else, with no engine, the portable tags preloaded on the nodes."""
    from ... import images

    registry = os.environ.get(REGISTRY_ENV)
    if registry:
        return Source("registry", {n: registry_ref(registry, n) for n in names})
    why = engine_problem()
    if why is None:
        tags = images.ensure(names, progress=progress) if build else {}
        return Source("engine", tags)
    return Source("nodes", {n: images.tag_for(n, portable=True) for n in names}, why)


def missing_on_nodes(source: Source, used: list[str], nodes: list[dict[str, Any]]) -> list[str]:
    """Of ``used``, those no node holds (only for preloaded images and readable nodes whose lists can be
    complete: else [], and the kubelet says it at the pod if one is missing)."""
    if source.kind != "nodes" or not nodes or not all(listed_in_full(n) for n in nodes):
        return []
    present = on_nodes(nodes)
    return [t for t in used if t not in present]


def deliver(conn: Connection, source: Source, used: list[str], nodes: list[dict[str, Any]]) -> None:
    """Make ``used`` reachable by the nodes: loaded when built here, pulled from a registry, or already
    there; AppcoupError naming exactly what is missing (and the way to get it there) otherwise."""
    if source.kind == "engine":
        put_on_cluster(conn, used, nodes)
        return
    missing = missing_on_nodes(source, used, nodes)
    if missing:
        raise AppcoupError(f"The images {', '.join(missing)} are not on the nodes of {conn.label}, and no Docker "
                           f"engine here can build them.", why=f"{source.why}; {REGISTRY_ENV} is not set",
                           fix=FIX_IMAGES)


def ensure_on_cluster(conn: Connection, flavour: Flavour, tags: list[str], nodes: list[dict[str, Any]]) -> list[str]:
    """Load the images of ``tags`` the nodes do not have yet; return those loaded."""
    present = on_nodes(nodes)
    missing = [t for t in tags if t not in present]
    if not missing or flavour.name == "docker-desktop" or (not nodes and not os.environ.get(LOADER_ENV)):
        return []  # present, shared, or invisible from this account (the kubelet will say if one is missing)
    hook = os.environ.get(LOADER_ENV)
    if hook:
        for tag in missing:
            argv = [a.format(image=tag, context=conn.context, kubeconfig=conn.kubeconfig or "")
                    for a in shlex.split(hook)]
            if not any("{image}" in a for a in shlex.split(hook)):
                argv.append(tag)
            _run(argv, tag, hook)
        return missing
    if flavour.name == "openshift":
        raise AppcoupError(f"The images {', '.join(missing)} are not on the OpenShift cluster ({conn.label}).",
                           why="OpenShift builds images itself; there is no registry-free load for it",
                           fix=f"build each into an ImageStream ({flavour.how}), or set {LOADER_ENV}")
    if not flavour.loader:
        raise AppcoupError(f"The images {', '.join(missing)} are not on the cluster ({conn.label}), and appcoup "
                           "does not know how to load images into it.",
                           why="no registry is used: images built here must be copied into the cluster's nodes",
                           fix=f"set {LOADER_ENV}=\"COMMAND {{image}}\" to a command that loads a local Docker image "
                               "into this cluster (e.g. `ctr -n k8s.io images import` on its node), "
                               "then run again")
    if flavour.loader[0] != "env" and not shutil.which(flavour.loader[0]):
        raise AppcoupError(f"Loading images into the {flavour.name} cluster needs the `{flavour.loader[0]}` "
                           "command, which is not installed here.",
                           fix=f"install {flavour.loader[0]}, or run `{' '.join(flavour.loader)} "
                               f"{' '.join(missing)}` where it is")
    _run([*flavour.loader, *missing], " ".join(missing), " ".join(flavour.loader))
    return missing


def put_on_cluster(conn: Connection, tags: list[str], nodes: list[dict[str, Any]] | None = None) -> list[str]:
    """Load what the nodes lack of ``tags``, the cluster's own way (its flavour); return those loaded."""
    nodes = list_nodes(conn) if nodes is None else nodes
    return ensure_on_cluster(conn, cluster_flavour(conn, nodes), tags, nodes)


def _run(argv: list[str], what: str, how: str) -> None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except OSError as e:
        raise AppcoupError(f"Could not load {what} into the cluster: {e}.", fix=f"check the loader command ({how})") from e
    if r.returncode != 0:
        raise AppcoupError(f"Loading {what} into the cluster failed (`{' '.join(argv)}`, exit {r.returncode}).",
                           why=(r.stderr or r.stdout).strip()[-800:],
                           fix=f"fix the loader ({how}) and run again")


__all__ = ["FIX_IMAGES", "LOADER_ENV", "NO_NODES", "REGISTRY_ENV", "Flavour", "Source", "course_images", "deliver",
           "engine_problem", "ensure_on_cluster", "list_nodes", "listed_in_full", "missing_on_nodes", "on_nodes",
           "probe_node", "put_on_cluster", "read_nodes", "registry_ref"]

"""The teacher's side of images on a shared cluster: ``appcoup images push`` and ``appcoup images preload``.

A classroom's learners have a namespace each and, often, no Docker engine: their ``up`` builds and
loads nothing (:func:`.images.course_images`). Before class the teacher, with a Docker engine and
an admin's kubeconfig, puts the course's images within every node's reach, under the *portable*
tags (``images.tag_for(name, portable=True)``: a hash of the files alone, which a learner's machine
computes the same without an engine):

- ``appcoup images push``: builds them and pushes them to ``$APPCOUP_REGISTRY`` (or ``--registry``)
  as ``REGISTRY/<name>:<hash>``; learners set the same ``APPCOUP_REGISTRY`` and their nodes pull.
- ``appcoup images preload``: a DaemonSet (namespace ``appcoup-preload`` by default, labelled
  ``app.kubernetes.io/part-of=appcoup``) whose pod holds every course image, each container
  sleeping with a command of its own image, as JupyterHub's pre-puller does: every node pulls (from
  the registry) or is loaded with (the cluster's own way, without one) each image, and keeps it
  while the pods run (the kubelet never collects an image in use). It waits until every node
  runs it; ``--remove`` deletes it.
"""

from __future__ import annotations

import os
import time
from typing import Any

from ...errors import AppcoupError
from ..base import LABEL, LABEL_VALUE
from .client import Connection, call
from .images import REGISTRY_ENV, put_on_cluster, registry_ref

NAMESPACE = "appcoup-preload"
NAME = "appcoup-preload"
PRELOAD_LABEL = "appcoup.preload"
SLEEP = {"busybox": ["sleep", "2147483647"], "python": ["python3", "-c", "import time; time.sleep(1e9)"]}


def _course() -> list[str]:
    from ... import images

    return list(images.NAMES)


def _tagged(names: list[str], ref_of: Any, progress: bool | None) -> dict[str, str]:
    """Build ``names`` on this machine's engine and tag each as ``ref_of(name)``; name -> that reference."""
    from ... import images
    from ..docker.engine import connect

    built = images.ensure(names, progress=progress)
    client = connect()
    out = {}
    for n in names:
        ref = ref_of(n)
        repo, _, tag = ref.rpartition(":")
        client.images.get(built[n]).tag(repo, tag=tag)
        out[n] = ref
    return out


def push(registry: str | None = None, names: list[str] | None = None, *, progress: bool | None = None) -> dict[str, str]:
    """Build the course's images and push them to ``registry`` (default ``$APPCOUP_REGISTRY``); name -> reference."""
    from ..docker.engine import connect

    registry = registry or os.environ.get(REGISTRY_ENV)
    if not registry:
        raise AppcoupError("No registry is named to push the course's images to.",
                           fix=f"set {REGISTRY_ENV}=HOST[:PORT]/PATH (or pass --registry), the same the learners set")
    refs = _tagged(names or _course(), lambda n: registry_ref(registry, n), progress)
    client = connect()
    for ref in refs.values():
        repo, _, tag = ref.rpartition(":")
        for line in client.images.push(repo, tag=tag, stream=True, decode=True):
            if line.get("error"):
                raise AppcoupError(f"Pushing {ref} failed.", why=str(line["error"])[-500:],
                                   fix="log in first (`docker login HOST`), or check the registry's address")
    return refs


def daemonset(refs: dict[str, str]) -> dict[str, Any]:
    """The DaemonSet holding every image of ``refs`` (name -> reference) on every node."""
    from ... import images

    labels = {LABEL: LABEL_VALUE, "app.kubernetes.io/name": NAME, PRELOAD_LABEL: "true"}
    containers = [{
        "name": n, "image": ref, "imagePullPolicy": "IfNotPresent", "command": SLEEP[images.SPECS[n].base],
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"cpu": "20m", "memory": "32Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    } for n, ref in sorted(refs.items())]
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": NAME, "labels": labels},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "containers": containers, "automountServiceAccountToken": False,
                         "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}]}}}}


def preload(conn: Connection, namespace: str = NAMESPACE, names: list[str] | None = None, *,
            progress: bool | None = None, timeout: float = 600) -> dict[str, Any]:
    """Put the course's images on every node of ``conn``'s cluster and keep them there; what was done."""
    from ... import images

    names = names or _course()
    registry = os.environ.get(REGISTRY_ENV)
    if registry:  # the nodes pull them (push them first: `appcoup images push`)
        refs = {n: registry_ref(registry, n) for n in names}
    else:  # built here, loaded into the nodes the cluster's own way
        refs = _tagged(names, lambda n: images.tag_for(n, portable=True), progress)
        put_on_cluster(conn, sorted(refs.values()))
    core, apps = conn.core(), conn.apps()
    if call(core.read_namespace, namespace, missing_ok=True, what=f"Cannot read the namespace {namespace!r}") is None:
        call(core.create_namespace, {"metadata": {"name": namespace, "labels": {LABEL: LABEL_VALUE, PRELOAD_LABEL: "true"}}},
             what=f"Cannot create the namespace {namespace!r}")
    body = daemonset(refs)
    if call(apps.read_namespaced_daemon_set, NAME, namespace, missing_ok=True, what="Cannot read the DaemonSet") is None:
        call(apps.create_namespaced_daemon_set, namespace, body, what="Cannot create the preload DaemonSet")
    else:
        call(apps.replace_namespaced_daemon_set, NAME, namespace, body, what="Cannot update the preload DaemonSet")
    deadline = time.monotonic() + timeout
    while True:
        ds = call(apps.read_namespaced_daemon_set, NAME, namespace, what="Cannot read the DaemonSet")
        st, meta = ds.get("status") or {}, ds["metadata"]
        want = st.get("desiredNumberScheduled", 0)
        if (want and st.get("observedGeneration", 0) >= meta.get("generation", 1)
                and st.get("numberReady", 0) == want and st.get("updatedNumberScheduled", 0) == want):
            return {"namespace": namespace, "nodes": want, "images": refs}
        if time.monotonic() > deadline:
            raise AppcoupError(f"The preload DaemonSet is ready on {st.get('numberReady', 0)} of {want} nodes after "
                               f"{timeout:g} s.", fix=f"look at `kubectl -n {namespace} describe pods`: an image "
                               "that cannot be pulled or loaded is named there")
        time.sleep(1.0)


def remove(conn: Connection, namespace: str = NAMESPACE) -> list[str]:
    """Delete the preload DaemonSet (and its namespace, when preload made it); what went."""
    gone = []
    if call(conn.apps().delete_namespaced_daemon_set, NAME, namespace, missing_ok=True,
            what="Cannot delete the preload DaemonSet") is not None:
        gone.append(f"daemonset {NAME} ({namespace})")
    ns = call(conn.core().read_namespace, namespace, missing_ok=True, what=f"Cannot read the namespace {namespace!r}")
    if ns is not None and (ns["metadata"].get("labels") or {}).get(PRELOAD_LABEL) == "true":
        call(conn.core().delete_namespace, namespace, what=f"Cannot delete the namespace {namespace!r}")
        gone.append(f"namespace {namespace}")
    return gone


__all__ = ["NAME", "NAMESPACE", "daemonset", "preload", "push", "remove"]

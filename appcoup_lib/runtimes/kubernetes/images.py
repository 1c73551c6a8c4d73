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
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

from ...errors import AppcoupError
from ...paths import images_dir
from .client import Connection, call

LOADER_ENV = "APPCOUP_IMAGE_LOADER"


@dataclass(frozen=True)
class Flavour:
    """What kind of cluster a context points at, and how images reach it."""

    name: str  # kind | minikube | k3d | docker-desktop | openshift | appcoup-test | other
    cluster: str = ""  # the cluster/profile name the flavour's CLI wants
    loader: tuple[str, ...] = ()  # argv before the image names; () when images need no loading

    @property
    def how(self) -> str:
        if os.environ.get(LOADER_ENV):
            return f"loaded by $APPCOUP_IMAGE_LOADER ({os.environ[LOADER_ENV]})"
        if self.name == "docker-desktop":
            return "shared with the Docker engine (nothing to load)"
        if self.name == "openshift":
            return ("built into an ImageStream by a binary build: `oc new-build --binary --name NAME`, "
                    "`oc start-build NAME --from-dir images/ --follow`")
        if self.loader:
            return f"loaded with `{' '.join(self.loader)} IMAGE`"
        return f"no known way: set {LOADER_ENV}=\"your-load-command {{image}}\""


def detect(conn: Connection, nodes: list[dict[str, Any]], groups: set[str]) -> Flavour:
    """The flavour of the cluster, from its API groups, its nodes and the context's name."""
    ctx = conn.context
    node_names = [n["metadata"]["name"] for n in nodes]
    labels: dict[str, str] = {}
    provider = ""
    for n in nodes:
        labels.update(n["metadata"].get("labels") or {})
        provider = provider or (n.get("spec") or {}).get("providerID", "")
    if "route.openshift.io" in groups:
        return Flavour("openshift")
    if provider.startswith("kind://") or ctx.startswith("kind-"):
        name = ctx[len("kind-"):] if ctx.startswith("kind-") else (node_names[0].rsplit("-control-plane", 1)[0]
                                                                  if node_names else "kind")
        return Flavour("kind", name, ("kind", "load", "docker-image", "--name", name))
    if "minikube.k8s.io/name" in labels or ctx == "minikube":
        profile = labels.get("minikube.k8s.io/name", ctx)
        return Flavour("minikube", profile, ("minikube", "image", "load", "-p", profile))
    if ctx.startswith("k3d-") or any(n.startswith("k3d-") for n in node_names):
        name = ctx[len("k3d-"):] if ctx.startswith("k3d-") else node_names[0][len("k3d-"):].rsplit("-server", 1)[0]
        return Flavour("k3d", name, ("k3d", "image", "import", "-c", name))
    if ctx in ("docker-desktop", "desktop-linux") or "docker-desktop" in node_names:
        return Flavour("docker-desktop")
    test = next((n for n in node_names if n == "appcoup-cluster" or n.startswith("appcoup-cluster-")), None)
    script = images_dir().parent / "tests" / "cluster" / "load"
    if test and script.exists():
        suffix = test[len("appcoup-cluster-"):] if test != "appcoup-cluster" else ""
        return Flavour("appcoup-test", suffix, ("env", f"APPCOUP_CLUSTER_NAME={suffix}", str(script)))
    return Flavour("other")


def on_nodes(nodes: list[dict[str, Any]]) -> set[str]:
    """Every image name the nodes report (containerd adds ``docker.io/`` to names without a host)."""
    out = set()
    for n in nodes:
        for img in (n.get("status") or {}).get("images") or []:
            for name in img.get("names") or []:
                out.add(name)
                for prefix in ("docker.io/library/", "docker.io/"):
                    if name.startswith(prefix):
                        out.add(name[len(prefix):])
    return out


def list_nodes(conn: Connection) -> list[dict[str, Any]]:
    """The cluster's nodes; [] when this account may not see them (common for a learner's account)."""
    try:
        return call(conn.core().list_node, what="Cannot list the cluster's nodes").get("items", [])
    except AppcoupError as e:
        if "RBAC" in e.what:
            return []
        raise


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


def _run(argv: list[str], what: str, how: str) -> None:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False)
    except OSError as e:
        raise AppcoupError(f"Could not load {what} into the cluster: {e}.", fix=f"check the loader command ({how})") from e
    if r.returncode != 0:
        raise AppcoupError(f"Loading {what} into the cluster failed (`{' '.join(argv)}`, exit {r.returncode}).",
                           why=(r.stderr or r.stdout).strip()[-800:],
                           fix=f"fix the loader ({how}) and run again")

"""What kind of cluster a context points at (kind, minikube, k3d, ...), and so how images reach it.

Its own module because the runtime (``up``, ``doctor``'s facts) and the scaling hooks (a rollout
loads the images it built) both ask, and neither may import the other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ...paths import images_dir
from .client import Connection, call, sdk

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


def api_groups(conn: Connection) -> set[str]:
    """The names of the API groups the cluster serves (OpenShift has ``route.openshift.io``)."""
    body = call(sdk().client.ApisApi(conn.api).get_api_versions, what="Cannot list the API groups")
    return {g["name"] for g in body.get("groups", [])}


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


def cluster_flavour(conn: Connection, nodes: list[dict[str, Any]]) -> Flavour:
    """The flavour to load images by; with ``$APPCOUP_IMAGE_LOADER`` set the loader decides, so the
    API groups (one round trip) are not asked."""
    return detect(conn, nodes, set() if os.environ.get(LOADER_ENV) else api_groups(conn))


__all__ = ["LOADER_ENV", "Flavour", "api_groups", "cluster_flavour", "detect"]

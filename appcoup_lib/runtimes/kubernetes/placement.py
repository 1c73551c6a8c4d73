"""Where an app's objects go: a namespace of its own, or one namespace every app shares.

- **One namespace per app** (the default where the account may create namespaces): the namespace
  is named after the app; ``down`` deletes it, and everything in it goes with it.
- **A shared namespace**, when the account may not create namespaces (a learner's one namespace on
  a JupyterHub, OpenShift's developer sandbox, a company cluster), or when asked for with
  ``runtime("kubernetes", namespace="x")`` or ``$APPCOUP_NAMESPACE``: every app runs in that one
  namespace (default: the kubeconfig context's namespace, or the pod's service account's). Each
  object is named ``<app>-<name>`` and labelled ``appcoup.app=<app>``; the app's record (what
  ``up`` notes for ``attach``) is the ConfigMap ``<app>-appcoup``; ``down`` and ``clean`` delete by
  label. Nothing cluster-scoped is read or written.

:func:`translate.plan` makes both from the same manifests; :class:`Placement` is the one difference.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from ...errors import AppcoupError
from ..base import APP_LABEL, LABEL, LABEL_VALUE
from .client import Connection, call, sdk
from .namespaces import DELETE_TIMEOUT, Part, delete_namespace, wait_gone

NAMESPACE_ENV = "APPCOUP_NAMESPACE"
SA_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
RECORD = "appcoup"  # the ConfigMap <app>-appcoup: the app's record in a shared namespace


@dataclass(frozen=True)
class Placement:
    """A namespace per app (``shared`` None), or the one namespace ``shared`` for every app; ``why`` so."""

    shared: str | None = None
    why: str = "may create namespaces"

    def namespace_of(self, app: str) -> str:
        return self.shared or app

    def name(self, app: str, name: str) -> str:
        """The name of the manifest's object ``name`` for ``app`` here (prefixed in a shared namespace)."""
        return f"{app}-{name}" if self.shared else name

    def record_name(self, app: str) -> str:
        return f"{app}-{RECORD}"

    def describe(self) -> str:
        if self.shared is None:
            return f"namespaces: one per app ({self.why})"
        return f"namespaces: shared namespace {self.shared!r} ({self.why})"

    def part(self, conn: Connection, app: str, units: tuple[str, ...]) -> Part:
        return Part(conn, self.namespace_of(app), units, app=app, shared=self.shared is not None)


PER_APP = Placement()  # the default: a namespace per app


def of_part(part: Part) -> Placement:
    """The placement an app's part was made with (for a plan made again: ``app.spec()``)."""
    return Placement(part.namespace, "as up placed it") if part.shared else PER_APP


def may(conn: Connection, verb: str, resource: str, namespace: str | None = None, group: str = "") -> bool:
    """Whether this account may ``verb`` ``resource`` (a SelfSubjectAccessReview: any account may ask)."""
    attrs = {"verb": verb, "resource": resource, "group": group, **({"namespace": namespace} if namespace else {})}
    review = call(sdk().client.AuthorizationV1Api(conn.api).create_self_subject_access_review,
                  {"spec": {"resourceAttributes": attrs}}, what="Cannot ask what this account may do")
    return bool((review.get("status") or {}).get("allowed"))


def context_namespace(conn: Connection) -> str:
    """The namespace the context names (in a pod: its service account's), else ``default``."""
    if conn.kubeconfig is None:
        try:
            with open(SA_NAMESPACE) as f:
                return f.read().strip() or "default"
        except OSError:
            return "default"
    try:
        ctxs, _ = sdk().config.list_kube_config_contexts(config_file=conn.kubeconfig)
    except Exception:  # noqa: BLE001 - read once already by connect(): only the namespace is missing here
        return "default"
    ctx = next((c for c in ctxs or [] if c.get("name") == conn.context), {})
    return (ctx.get("context") or {}).get("namespace") or "default"


_DECIDED: dict[tuple[Any, ...], Placement] = {}


def decide(conn: Connection, asked: str | None = None) -> Placement:
    """Where this runtime's apps go on ``conn``: asked for (argument, then ``$APPCOUP_NAMESPACE``), else a
    namespace per app where the account may create namespaces, else the context's namespace."""
    if asked:
        return Placement(asked, f"asked for with namespace={asked!r}")
    if os.environ.get(NAMESPACE_ENV):
        return Placement(os.environ[NAMESPACE_ENV], f"asked for with {NAMESPACE_ENV}")
    key = (conn.kubeconfig, conn.context, conn.server)
    if key not in _DECIDED:
        _DECIDED[key] = (Placement() if may(conn, "create", "namespaces")
                         else Placement(context_namespace(conn), "this account may not create namespaces"))
    return _DECIDED[key]


# -- found and removed by label, in a shared namespace ------------------------------------------------
# (API, kind, plural of the list and delete-collection methods); the record last: while it is there,
# `running` and `clean` still see the app.
_KINDS = (("apps", "Deployment", "deployment"), ("apps", "ReplicaSet", "replica_set"), ("core", "Pod", "pod"),
          ("core", "Service", "service"), ("discovery", "EndpointSlice", "endpoint_slice"),
          ("core", "PersistentVolumeClaim", "persistent_volume_claim"), ("core", "ConfigMap", "config_map"))


def _api(conn: Connection, group: str) -> Any:
    return {"core": conn.core, "apps": conn.apps, "discovery": conn.discovery}[group]()


def labelled(conn: Connection, namespace: str, selector: str, kinds: tuple[str, ...] | None = None
             ) -> list[tuple[str, dict[str, Any]]]:
    """(kind, object) of everything appcoup made in ``namespace`` that ``selector`` selects."""
    out = []
    for group, kind, plural in _KINDS:
        if kinds is None or kind in kinds:
            items = call(getattr(_api(conn, group), f"list_namespaced_{plural}"), namespace, label_selector=selector,
                         what=f"Cannot list the {kind}s of {namespace!r}").get("items", [])
            out += [(kind, o) for o in items]
    return out


def delete_labelled(conn: Connection, namespace: str, selector: str) -> bool:
    """Delete what ``selector`` selects in ``namespace``, kind by kind; False when nothing was there."""
    found = False
    for group, kind, plural in _KINDS:
        api = _api(conn, group)
        if not call(getattr(api, f"list_namespaced_{plural}"), namespace, label_selector=selector, limit=1,
                    what=f"Cannot list the {kind}s of {namespace!r}").get("items"):
            continue
        found = True
        extra = {"grace_period_seconds": 1} if kind == "Pod" else {}  # the programs exit at once on SIGTERM
        call(getattr(api, f"delete_collection_namespaced_{plural}"), namespace, label_selector=selector,
             propagation_policy="Background", what=f"Cannot delete the {kind}s of {selector} in {namespace!r}",
             **extra)
    return found


def wait_labelled_gone(conn: Connection, namespace: str, selector: str, timeout: float = DELETE_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if not labelled(conn, namespace, selector):
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    left = ", ".join(f"{k} {o['metadata']['name']}" for k, o in labelled(conn, namespace, selector)[:5])
    raise AppcoupError(f"{left} in {namespace!r} ({conn.label}) still being deleted after {timeout:g} s.",
                       fix=f"look at `kubectl get all -n {namespace} -l {selector}`; `appcoup clean` finishes the job")


def read_record(conn: Connection, placement: Placement, app: str) -> dict[str, Any] | None:
    """The app's record (its Namespace, or its ConfigMap in a shared namespace); None when absent."""
    if placement.shared is None:
        return call(conn.core().read_namespace, app, what=f"Cannot read the namespace {app!r}", missing_ok=True)
    return call(conn.core().read_namespaced_config_map, placement.record_name(app), placement.shared,
                what=f"Cannot read the record of {app!r} in {placement.shared!r}", missing_ok=True)


def records(conn: Connection, namespace: str, selector: str) -> list[dict[str, Any]]:
    """The records (ConfigMaps ``<app>-appcoup``) of the apps ``selector`` selects in a shared namespace."""
    items = call(conn.core().list_namespaced_config_map, namespace, label_selector=selector,
                 what=f"Cannot list appcoup's apps in {namespace!r}").get("items", [])
    return [c for c in items if c["metadata"]["name"] == f"{(c['metadata'].get('labels') or {}).get(APP_LABEL)}-{RECORD}"]


def app_selector(app: str) -> str:
    return f"{LABEL}={LABEL_VALUE},{APP_LABEL}={app}"


def remove(part: Part) -> bool:
    """Delete what an app runs on one cluster: its namespace, or (shared) its objects by label."""
    if part.shared:
        return delete_labelled(part.conn, part.namespace, app_selector(part.app))
    return delete_namespace(part.conn, part.namespace)


def wait_removed(part: Part) -> None:
    if part.shared:
        wait_labelled_gone(part.conn, part.namespace, app_selector(part.app))
    else:
        wait_gone(part.conn, part.namespace)


__all__ = ["NAMESPACE_ENV", "PER_APP", "Placement", "app_selector", "context_namespace", "decide", "delete_labelled",
           "labelled", "may", "of_part", "read_record", "records", "remove", "wait_labelled_gone", "wait_removed"]

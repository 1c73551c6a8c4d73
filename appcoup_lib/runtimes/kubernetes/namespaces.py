"""An app's namespaces: one per app and cluster, deleted as a whole (everything in it goes with it).

A :class:`Part` is what runs on one cluster: everything for most scenarios, the generator side and
the echo side for `federation`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ...errors import AppcoupError
from ..base import APP_LABEL
from .client import Connection, call

DELETE_TIMEOUT = 90  # seconds to wait for a namespace to be gone


@dataclass
class Part:
    """What runs on one cluster: a namespace and the scenario units in it.

    ``shared``: the namespace holds other apps too (see :mod:`.placement`): the app's objects are
    named ``<app>-<name>`` and found by the label ``appcoup.app=<app>``.
    """

    conn: Connection
    namespace: str
    units: tuple[str, ...]
    app: str = ""
    shared: bool = False

    def obj(self, name: str) -> str:
        """The name of the manifest's object ``name`` (a unit's Deployment, a Service) in this part."""
        return f"{self.app}-{name}" if self.shared and not name.startswith(f"{self.app}-") else name

    @property
    def selector(self) -> str | None:
        """The label selector of this app's objects in a shared namespace (None: the namespace is the app's)."""
        return f"{APP_LABEL}={self.app}" if self.shared else None


def delete_namespace(conn: Connection, namespace: str) -> bool:
    """Delete an app's namespace (and so everything in it); False when it was not there."""
    core = conn.core()
    gone = call(core.delete_namespace, namespace, body={"propagationPolicy": "Background"}, missing_ok=True,
                what=f"Cannot delete the namespace {namespace!r} ({conn.label})")
    if gone is None:
        return False
    # The namespace controller would give each pod its full grace period; the app is going away as a
    # whole, so one second is enough for the programs (which exit at once on SIGTERM).
    try:
        call(core.delete_collection_namespaced_pod, namespace, grace_period_seconds=1,
             what=f"Cannot delete the pods of {namespace!r}")
    except AppcoupError:
        pass  # only sooner: the namespace's deletion removes them anyway, and wait_gone waits for that
    return True


def wait_gone(conn: Connection, namespace: str, timeout: float = DELETE_TIMEOUT) -> None:
    """Wait until a deleted namespace (with everything in it) no longer exists."""
    core = conn.core()
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        if call(core.read_namespace, namespace, missing_ok=True, timeout=(5, 10),
                what=f"Cannot check that {namespace!r} is gone ({conn.label})") is None:
            return
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise AppcoupError(f"The namespace {namespace!r} ({conn.label}) is still being deleted after {timeout:g} s.",
                       fix=f"look at `kubectl get all -n {namespace}`; `appcoup clean` finishes the job")


def annotations_of(ns: dict[str, Any]) -> dict[str, str]:
    return (ns.get("metadata") or {}).get("annotations") or {}


__all__ = ["DELETE_TIMEOUT", "Part", "annotations_of", "delete_namespace", "wait_gone"]

"""An app's namespaces: one per app and cluster, deleted as a whole (everything in it goes with it)."""

from __future__ import annotations

import time
from typing import Any

from ...errors import AppcoupError
from .client import Connection, api_error, status_of

DELETE_TIMEOUT = 90  # seconds to wait for a namespace to be gone


def delete_namespace(conn: Connection, namespace: str) -> bool:
    """Delete an app's namespace (and so everything in it); False when it was not there."""
    core = conn.core()
    try:
        core.delete_namespace(namespace, body={"propagationPolicy": "Background"}, _preload_content=False,
                              _request_timeout=(5, 30))
    except Exception as e:
        if status_of(e) == 404:
            return False
        raise api_error(f"Cannot delete the namespace {namespace!r}", e, conn) from e
    # The namespace controller would give each pod its full grace period; the app is going away as a
    # whole, so one second is enough for the programs (which exit at once on SIGTERM).
    try:
        core.delete_collection_namespaced_pod(namespace, grace_period_seconds=1, _preload_content=False,
                                              _request_timeout=(5, 30))
    except Exception:  # noqa: BLE001, S110 - the namespace's deletion removes them anyway
        pass
    return True


def wait_gone(conn: Connection, namespace: str, timeout: float = DELETE_TIMEOUT) -> None:
    """Wait until a deleted namespace (with everything in it) no longer exists."""
    core = conn.core()
    deadline = time.monotonic() + timeout
    delay = 0.1
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace, _preload_content=False, _request_timeout=(5, 10))
        except Exception as e:
            if status_of(e) == 404:
                return
            raise api_error(f"Cannot check that {namespace!r} is gone", e, conn) from e
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)
    raise AppcoupError(f"The namespace {namespace!r} ({conn.label}) is still being deleted after {timeout:g} s.",
                       fix=f"look at `kubectl get all -n {namespace}`; `appcoup clean` finishes the job")


def annotations_of(ns: dict[str, Any]) -> dict[str, str]:
    return (ns.get("metadata") or {}).get("annotations") or {}

"""The teacher's board on a cluster (see :mod:`.classroom`): read with a teacher's kubeconfig.

Across every namespace: the learners' progress ConfigMaps (label ``appcoup.progress``), the pods
and claims labelled part-of=appcoup with a learner (apps of a shared namespace and of a namespace
per app alike), and the namespaces of apps that have no pod yet. Cleaning a learner deletes their
app namespaces, and in shared namespaces their apps' objects by label; never the progress.
"""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Callable
from typing import Any

from .errors import AppcoupError
from .labels import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL

STATE_FILE = "predictions.json"
PROGRESS = "appcoup-progress"
PROGRESS_LABEL = "appcoup.progress"
STUCK = 60
BAD_WAITING = ("CrashLoopBackOff", "ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError",
               "CreateContainerError", "InvalidImageName", "RunContainerError")
FIX_READ = ("the board needs a teacher's kubeconfig that may list pods, configmaps, claims and namespaces in "
            "every namespace (`kubectl auth can-i list pods -A` must say yes)")


def stamp(value: Any) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(value)[:19], "%Y-%m-%dT%H:%M:%S")))
    except (TypeError, ValueError):
        return None


def _connect(context: str | None, kubeconfig: str | None) -> Any:
    from .runtimes.kubernetes.client import connect
    from .runtimes.kubernetes.runtime import probe

    conn = connect(context, kubeconfig, retries=False)
    probe(conn)
    return conn


def trouble_of(pod: dict[str, Any], now: float) -> list[str]:
    """What is wrong with one pod, in a teacher's words ([] when nothing is)."""
    meta, status = pod["metadata"], pod.get("status") or {}
    name, out = meta["name"], []
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") in BAD_WAITING:
            out.append(f"pod {name}: {cs['name']} {waiting['reason']} ({cs.get('restartCount', 0)} restarts)")
    if out:
        return out
    age = now - (stamp(meta.get("creationTimestamp")) or now)
    conds = {c.get("type"): c for c in status.get("conditions") or []}
    if status.get("phase") == "Pending" and age > STUCK:
        why = (conds.get("PodScheduled") or {}).get("message") or "not scheduled or its containers not started"
        out.append(f"pod {name}: Pending for {int(age)} s ({why[:120]})")
    elif status.get("phase") == "Running" and (conds.get("Ready") or {}).get("status") == "False":
        since = now - (stamp((conds.get("Ready") or {}).get("lastTransitionTime")) or now)
        if since > STUCK:
            out.append(f"pod {name}: not ready for {int(since)} s")
    elif status.get("phase") == "Failed":
        out.append(f"pod {name}: Failed ({status.get('reason') or 'a container exited'})")
    return out


def from_cluster(one: Callable[[str], Any], notes: list[str], *, context: str | None = None,
                 kubeconfig: str | None = None) -> None:
    """Add every learner the cluster knows of to the board (``one(name)`` returns their row)."""
    try:
        conn = _connect(context, kubeconfig)
    except AppcoupError as e:
        notes.append(f"cluster: {e.what}")
        return
    try:
        _read_cluster(conn, one, notes)
    finally:
        conn.close()


def _read_cluster(conn: Any, one: Callable[[str], Any], notes: list[str]) -> None:
    from .runtimes.kubernetes.client import call

    core, now = conn.core(), time.time()
    try:
        maps = call(core.list_config_map_for_all_namespaces, label_selector=PROGRESS_LABEL,
                    what="Cannot list the learners' progress").get("items", [])
        pods = call(core.list_pod_for_all_namespaces, label_selector=f"{LABEL}={LABEL_VALUE},{LEARNER_LABEL}",
                    what="Cannot list the learners' pods").get("items", [])
        claims = call(core.list_persistent_volume_claim_for_all_namespaces,
                      label_selector=f"{LABEL}={LABEL_VALUE},{LEARNER_LABEL}",
                      what="Cannot list the learners' claims").get("items", [])
        spaces = call(core.list_namespace, label_selector=f"{LABEL}={LABEL_VALUE},{LEARNER_LABEL},{APP_LABEL}",
                      what="Cannot list the apps' namespaces").get("items", [])
    except AppcoupError as e:
        notes.append(f"cluster ({conn.context}): {e.what} {FIX_READ}")
        return
    for cm in maps:
        labels = cm["metadata"].get("labels") or {}
        try:
            records = json.loads((cm.get("data") or {}).get(STATE_FILE, "{}")).get("predictions") or {}
        except ValueError:
            notes.append(f"cluster: {cm['metadata']['namespace']}/{cm['metadata']['name']} is not a progress file")
            continue
        who = labels.get(LEARNER_LABEL) or cm["metadata"]["namespace"]
        one(who).take(records)
        one(who).where.append(f"namespace {cm['metadata']['namespace']}")
    for ns in spaces:
        labels = ns["metadata"].get("labels") or {}
        if not ns["metadata"].get("deletionTimestamp"):
            one(labels[LEARNER_LABEL]).apps.setdefault(labels[APP_LABEL], f"kubernetes, namespace {ns['metadata']['name']}")
    for kind, items in (("pod", pods), ("claim", claims)):
        for obj in items:
            labels = obj["metadata"].get("labels") or {}
            who, app = labels.get(LEARNER_LABEL), labels.get(APP_LABEL, "?")
            if not who or obj["metadata"].get("deletionTimestamp"):
                continue
            row = one(who)
            row.apps.setdefault(app, f"kubernetes, namespace {obj['metadata']['namespace']}")
            if kind == "pod":
                row.trouble += [f"{app}: {t}" for t in trouble_of(obj, now)]
                continue
            age = now - (stamp(obj["metadata"].get("creationTimestamp")) or now)
            if (obj.get("status") or {}).get("phase") == "Pending" and age > STUCK:
                row.trouble.append(f"{app}: claim {obj['metadata']['name']} Pending for {int(age)} s")


def clean_cluster(learner: str | None, *, context: str | None = None, kubeconfig: str | None = None) -> list[str]:
    """Delete the apps of ``learner`` (everyone's: None) on the cluster; the progress ConfigMaps stay."""
    try:
        conn = _connect(context, kubeconfig)
    except AppcoupError as e:
        return [f"cluster: not cleaned: {e.what}"]
    try:
        return _clean(conn, learner)
    finally:
        conn.close()


def _clean(conn: Any, learner: str | None) -> list[str]:
    from .runtimes.kubernetes.client import call
    from .runtimes.kubernetes.namespaces import delete_namespace
    from .runtimes.kubernetes.placement import delete_labelled

    who = f"{LEARNER_LABEL}={learner}" if learner else LEARNER_LABEL
    selector = f"{LABEL}={LABEL_VALUE},{who},{APP_LABEL}"
    core, removed = conn.core(), []
    for ns in call(core.list_namespace, label_selector=selector, what="Cannot list the apps' namespaces").get("items", []):
        if delete_namespace(conn, ns["metadata"]["name"]):
            removed.append(f"kubernetes: namespace {ns['metadata']['name']} ({conn.context})")
    shared: dict[str, set[str]] = {}
    for lister in (core.list_config_map_for_all_namespaces, core.list_pod_for_all_namespaces,
                   core.list_persistent_volume_claim_for_all_namespaces, core.list_service_for_all_namespaces):
        for o in call(lister, label_selector=selector, what="Cannot list the learners' objects").get("items", []):
            shared.setdefault(o["metadata"]["namespace"], set()).add((o["metadata"].get("labels") or {})[APP_LABEL])
    spaces = {n["metadata"]["name"] for n in call(core.list_namespace, label_selector=selector,
                                                   what="Cannot list the apps' namespaces").get("items", [])}
    for ns, apps in sorted(shared.items()):
        if ns in spaces:
            continue  # a namespace per app: deleted above, with everything in it
        if delete_labelled(conn, ns, selector):
            removed += [f"kubernetes: app {a} (namespace {ns}, {conn.context})" for a in sorted(apps)]
    return removed


__all__ = ["BAD_WAITING", "FIX_READ", "PROGRESS", "PROGRESS_LABEL", "STATE_FILE", "STUCK", "clean_cluster",
           "from_cluster", "stamp", "trouble_of"]

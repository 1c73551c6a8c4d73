"""``app.spec()`` and ``app.commands()`` on Kubernetes: the objects the runtime applied, and the kubectl lines.

The YAML is :func:`~.translate.plan` for this app, computed again from what the cluster holds of it
(the image tags its workloads run, the namespace's labels and the annotations ``up`` wrote there,
``federation``'s EndpointSlice address), so it is what ``up`` applied, for an app this process
started and for one it attached to alike; what changed since (a rollout's image, a scale's replicas)
is taken from the live objects. One YAML stream per cluster, each headed ``# cluster: <context>``.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from ...errors import NotFound
from ...labels import LEARNER_LABEL
from ..spec import Commands, Part, Spec, build_command, ps_argv
from . import translate
from .client import Connection, call, contexts, kubeconfig_path
from .flavour import cluster_flavour
from .images import list_nodes
from .placement import of_part, read_record

_TAG = re.compile(r"(?:^|/)appcoup/([a-z-]+):")


def _live(app: Any, part: Any) -> dict[tuple[str, str], dict[str, Any]]:
    """The Pods and Deployments of a part's namespace, by (kind, name)."""
    conn, ns = part.conn, part.namespace
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, fn in (("Pod", conn.core().list_namespaced_pod), ("Deployment", conn.apps().list_namespaced_deployment)):
        for obj in call(fn, ns, label_selector=part.selector, what=f"Cannot list the {kind}s of {app.name!r}").get(
                "items", []):
            out[(kind, obj["metadata"]["name"])] = {**obj, "kind": kind}  # a list's items carry no kind
    return out


def _tags(app: Any, live: dict[tuple[str, str], dict[str, Any]]) -> dict[str, str]:
    """Scenario image name -> the tag its container runs now (read from the workloads)."""
    tags: dict[str, str] = {}
    for obj in live.values():
        for c in (translate.pod_spec(obj) or {}).get("containers", []):
            try:
                name = app.scenario.container(c["name"]).image
            except KeyError:
                m = _TAG.search(c.get("image", ""))
                name = m.group(1) if m else ""
            if name and (obj["kind"] == "Deployment" or name not in tags):  # a Deployment's template wins
                tags[name] = c["image"]
    return tags


def plans(app: Any) -> list[tuple[Any, translate.Plan]]:
    """(part, plan) for each cluster of the app: what ``up`` applied there, with what changed since."""
    from ... import images

    out = []
    dirs = translate.manifest_dirs(app.scenario)
    for rel, part in zip(dirs, app.parts):
        ns = read_record(part.conn, of_part(part), app.name)  # its Namespace, or its ConfigMap when shared
        if ns is None:
            raise NotFound(f"The app {app.name!r} is not on {part.conn.label} any more.")
        meta = ns["metadata"]
        live = _live(app, part)
        tags = _tags(app, live)
        for name in translate.images_of(app.scenario):
            if name not in tags:  # no workload of it now (a crash mid-replacement): the tag up built
                tags[name] = images.tag_for(name)
        notes = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("appcoup.")}
        p = translate.plan(app.scenario, rel, app.name, placement=of_part(part), tags=tags, interval=app.interval,
                           learner=(meta.get("labels") or {}).get(LEARNER_LABEL, ""), annotations=notes,
                           storage_class=app.runtime.storage_class, liveness_probe=app.runtime.liveness_probe,
                           workload=app.runtime.workload)
        for obj in p.objects:
            now = live.get((obj["kind"], obj["metadata"]["name"]))
            if obj["kind"] == "Deployment" and now is not None:
                obj["spec"]["replicas"] = now["spec"].get("replicas", obj["spec"].get("replicas"))
            if obj["kind"] == "EndpointSlice":  # federation's cluster B: aimed at cluster A's node port
                got = call(part.conn.discovery().read_namespaced_endpoint_slice, obj["metadata"]["name"],
                           part.namespace, what="Cannot read the EndpointSlice", missing_ok=True)
                if got:
                    obj["endpoints"], obj["ports"] = got.get("endpoints") or obj["endpoints"], got.get("ports") or obj["ports"]
        out.append((part, p))
    return out


def _doc(obj: dict[str, Any]) -> str:
    return yaml.safe_dump(obj, sort_keys=False, default_flow_style=False, width=110)


def spec(app: Any) -> Spec:
    """The YAML of every object applied, one stream per cluster (``kubectl apply -f`` takes it as it is)."""
    parts = []
    for part, p in plans(app):
        head = (f"# cluster: {part.conn.context} ({part.conn.server}), namespace {p.name}"
                + (" (shared: the app's objects carry its name)" if part.shared else "") + "\n")
        text = head + "---\n".join(_doc(o) for o in [p.record, *p.objects])
        parts.append(Part(f"cluster: {part.conn.context}, namespace {p.name}", "yaml", text))
    return Spec(app.name, "kubernetes", parts)


def _kubectl(conn: Connection) -> list[str]:
    """``kubectl`` with ``--kubeconfig``/``--context`` when they are not what plain kubectl would use."""
    argv = ["kubectl"]
    if conn.kubeconfig and conn.kubeconfig != kubeconfig_path():
        argv += ["--kubeconfig", conn.kubeconfig]
    current = contexts(conn.kubeconfig)[1] if conn.kubeconfig else None
    if conn.kubeconfig and conn.context != current:
        argv += ["--context", conn.context]
    return argv


def commands(app: Any, *, forward_port: int = 0) -> Commands:
    """The kubectl lines that apply this app's spec and look at it, with its real namespace and pod names."""
    from .. import ports

    steps: list[tuple[str, str]] = []
    planned = plans(app)
    used = sorted({c["image"] for _, p in planned for o in p.objects for c in (translate.pod_spec(o) or {}).get(
        "containers", [])})
    for tag in used:
        step = build_command(tag)
        if step is not None:
            steps.append(step)
    many = len(planned) > 1
    for i, (part, p) in enumerate(planned):
        k = _kubectl(part.conn)
        try:
            loader = cluster_flavour(part.conn, list_nodes(part.conn)).loader
        except Exception:  # noqa: BLE001 - only the load line is missing: the cluster decides
            loader = ()
        if loader:
            steps.append((f"put the images on the cluster's nodes (no registry): {part.conn.context}",
                          shlex.join([*loader, *used])))
        file = f"{app.name}{'-' + str(i) if many else ''}.yaml"
        save = f"app.spec().save({file!r}{f', part={i}' if many else ''})"
        steps.append((f"create the namespace and its objects ({save} writes {file})",
                      shlex.join([*k, "apply", "-f", file])))
    for part, p in planned:
        k = shlex.join(_kubectl(part.conn) + ["-n", part.namespace])
        only = f" -l {part.selector}" if part.selector else ""
        steps.append((f"what runs in {part.namespace} (get)", f"{k} get pods,deployments,services,pvc{only} -o wide"))
        steps.append(("watch the pods change (Ctrl-C to stop)", f"{k} get pods{only} -w"))
        for unit in app.scenario.units:
            if unit.name not in part.units:
                continue
            try:
                pod = app.pod_of(unit.name)
            except Exception:  # noqa: BLE001 - no pod of it now: its lines would name nothing
                continue
            steps.append((f"what the cluster did to pod {pod} (describe: events at the end)",
                          f"{k} describe pod {pod}"))
            image_of = {c["name"]: c["image"] for _, pl in planned for o in pl.objects
                        for c in (translate.pod_spec(o) or {}).get("containers", [])}
            for c in unit.containers:
                steps.append((f"what {c.name} printed (logs; --previous: before its last restart)",
                              f"{k} logs {pod} -c {c.name}"))
                steps.append((f"the processes {c.name} sees (exec)",
                              f"{k} exec {pod} -c {c.name} -- {shlex.join(ps_argv(image_of.get(c.name, c.image)))}"))
            entry_unit, entry = app.scenario.entry
            if unit.name == entry_unit:
                port = forward_port or ports.free_port()
                cport = app.scenario.container(entry).port or 8000
                steps.append((f"serve /data here on port {port}, as app.url does (then: curl localhost:{port}/data)",
                              f"{k} port-forward pod/{pod} {port}:{cport}"))
        steps.append(("what happened (the namespace's events)", f"{k} get events --sort-by=.lastTimestamp"))
    for part, _ in planned:
        k = _kubectl(part.conn)
        steps.append(("remove it all, as app.down() does", shlex.join(
            [*k, "-n", part.namespace, "delete", "all,configmaps,pvc,endpointslices", "-l", part.selector]
            if part.selector else [*k, "delete", "namespace", part.namespace])))
    return Commands(steps)


__all__ = ["commands", "plans", "spec"]

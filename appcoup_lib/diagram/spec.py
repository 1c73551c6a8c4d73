"""What the spec says (a pure function of a scenario and a runtime name), and the live state on top.

:func:`infer` reads the scenario, and for Kubernetes the course's manifests, and knows how each
runtime builds a scenario (how the Docker runtime joins a pod's containers, what a Pod shares).
:func:`with_state` adds what an app reports: it changes states and counters, never the boxes.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from functools import lru_cache
from typing import Any

from ..paths import manifests_dir
from ..scenarios import Container, Scenario, Unit
from ..scenarios import scenario as get_scenario
from .model import (
    KINDS,
    Boundary,
    ContainerBox,
    Hop,
    Mount,
    Namespace,
    Process,
    Scope,
    Topology,
    UnitBox,
    Volume,
)

# The script each program runs: how a row of app.processes() is told apart (a pod with one
# process namespace lists every container's processes to each).
_SCRIPTS = {"generator": "generator.sh", "echo": "echo.py", "adapter": "adapter.py"}
_PROGRAM_CMD = {"generator": "sh /app/generator.sh", "echo": "python3 /app/echo.py",
                "adapter": "python3 /app/adapter.py"}


# -- what the spec says: a pure function of (scenario, runtime) -----------------------------------------
@lru_cache(maxsize=32)
def _pod_specs(scenario: str) -> tuple[tuple[frozenset[str], dict[str, Any], str, str], ...]:
    """The course's manifests for ``scenario``: (container names, pod spec, workload kind, file) each."""
    import yaml

    dirs = ["federation/cluster-a", "federation/cluster-b"] if scenario == "federation" else [scenario]
    out = []
    try:
        root = manifests_dir()
    except FileNotFoundError:
        return ()
    for rel in dirs:
        for f in sorted((root / rel).glob("*.yaml")):
            for doc in yaml.safe_load_all(f.read_text()):
                if not doc or doc.get("kind") not in ("Pod", "Deployment"):
                    continue
                spec = doc["spec"] if doc["kind"] == "Pod" else doc["spec"]["template"]["spec"]
                names = frozenset(c["name"] for c in spec.get("containers", []))
                out.append((names, spec, doc["kind"], f"manifests/{rel}/{f.name}"))
    return tuple(out)


def _pod_spec(scenario: Scenario, unit: str) -> tuple[dict[str, Any], str, str]:
    names = {c.name for u in scenario.units if u.name == unit for c in u.containers}
    for cs, spec, kind, path in _pod_specs(scenario.name):
        if cs == names:
            return spec, kind, path
    return {}, "Pod", "manifests/"


def _mount(runtime: str, scenario: Scenario, unit: str, c: Container) -> Mount | None:
    if not c.volume:
        return None
    ro = False
    if runtime == "kubernetes":
        spec, _, _ = _pod_spec(scenario, unit)
        for sc in spec.get("containers", []):
            if sc["name"] == c.name:
                ro = any(m.get("mountPath") == c.workdir and m.get("readOnly") for m in sc.get("volumeMounts", []))
    return Mount(c.volume, c.workdir, ro)


def _processes(c: Container) -> tuple[Process, ...]:
    if c.programs:  # a supervisor container: the supervisor, and what it started
        return (Process("supervisor", " ".join(c.command)),
                *(Process(p, _PROGRAM_CMD.get(p, p), child=True) for p in c.programs))
    return (Process(c.name, " ".join(c.command)),)


def image_text(runtime: str, key: str) -> str:
    """How a runtime gets a container's programs: an image, or the plain files."""
    return f"no image: files of images/{key}/" if runtime == "local" else f"image appcoup/{key}"


def _unit(runtime: str, scenario: Scenario, u: Unit) -> UnitBox:
    containers = tuple(ContainerBox(c.name, c.image, image_text(runtime, c.image), _processes(c), c.port,
                                    _mount(runtime, scenario, u.name, c)) for c in u.containers)
    many = len(u.containers) > 1
    inside: tuple[str, ...] = ()
    if runtime == "local":
        title = f"process group {u.name}"
        note = "not a pod: a name for programs started together, with no isolation"
    elif runtime == "docker":
        if many:
            title = f"pod-like group {u.name}"
            note = "a pause container holds one network namespace; the others join it (--network container:)"
        else:
            title = f"container group {u.name}"
            note = "one docker run"
    else:
        _, kind, path = _pod_spec(scenario, u.name)
        title = f"pod {u.name}"
        note = f"a Pod{' of Deployment ' + u.name if kind == 'Deployment' else ''} ({path})"
        inside = tuple(sorted({c.volume for c in u.containers if c.volume
                               and scenario.volumes.get(c.volume) == "scratch"}))
    return UnitBox(u.name, title, note, containers, inside)


def _volume(runtime: str, name: str, kind: str) -> Volume:
    if runtime == "local":
        title = {"host-dir": "host directory", "scratch": "directory", "persistent": "directory"}[kind]
        note = {"host-dir": "a directory of this machine, shared by hand",
                "scratch": "a directory of this machine (stands in for an emptyDir)",
                "persistent": "a directory of this machine (stands in for a persistent volume)"}[kind]
    elif runtime == "docker":
        title = "bind mount" if kind == "host-dir" else "named volume"
        note = {"host-dir": "a host directory mounted into each container (-v /path:...)",
                "scratch": "a named volume on the Docker host (-v NAME:...)",
                "persistent": "a named volume: outlives the containers (-v NAME:...)"}[kind]
    else:
        title = {"scratch": "emptyDir", "persistent": "PersistentVolumeClaim"}.get(kind, kind)
        note = {"scratch": "lives and dies with its pod; only that pod's containers see it",
                "persistent": "a claim on storage of the cluster; outlives the pods"}.get(kind, "")
    return Volume(name, kind, title, note)


def _namespaces(runtime: str, scenario: Scenario) -> tuple[Namespace, ...]:
    """Which containers share which namespace, as the spec and the runtime's way of building it say."""
    out: list[Namespace] = []
    everyone = tuple(c.name for c in scenario.containers)
    for kind in KINDS:
        if runtime == "local":
            out.append(Namespace(kind, "host", everyone, "host", "inferred", "plain processes: not isolated",
                                 "the local runtime starts plain processes: none gets a namespace of its own"))
            continue
        for u in scenario.units:
            names = tuple(c.name for c in u.containers)
            shared, why, detail = False, "", ""
            if runtime == "docker" and kind == "net" and len(names) > 1:
                shared, why = True, "network_mode=container:<pause>"
                detail = "each container of the group is started with --network container:<pause>"
            elif runtime == "kubernetes":
                spec, _, path = _pod_spec(scenario, u.name)
                host = {"net": "hostNetwork", "pid": "hostPID", "ipc": "hostIPC"}.get(kind)
                if host and spec.get(host):
                    out.append(Namespace(kind, "host", names, "host", "inferred", f"{host}: true", path))
                    continue
                if kind in ("net", "ipc"):
                    shared, why = True, ("a pod's containers share it" if len(names) > 1
                                         else "the pod's; one container")
                    detail = "every container of a pod joins its sandbox's network and IPC namespaces"
                elif kind == "pid" and spec.get("shareProcessNamespace"):
                    shared, why = True, "shareProcessNamespace: true"
                    detail = f"set in {path}: the pod's containers see (and can signal) each other's processes"
            if shared:
                out.append(Namespace(kind, f"unit:{u.name}", names, "unit", "inferred", why, detail))
                continue
            for c in u.containers:
                if runtime == "docker":
                    why = {"net": "its own (docker run)", "pid": "no --pid container:",
                           "ipc": "no --ipc container:", "mnt": "own root filesystem"}[kind]
                else:
                    why = {"pid": "no shareProcessNamespace", "mnt": "own root filesystem"}[kind]
                detail = ("each container has its own root filesystem: only the volumes mounted into it are "
                          "shared" if kind == "mnt" else "")
                if c.programs:  # what matters here: the programs inside share the one container's
                    why = "one container: its programs share it"
                out.append(Namespace(kind, f"container:{c.name}", (c.name,), "container", "inferred", why, detail))
    return tuple(out)


def _hops(runtime: str, scenario: Scenario, url: str) -> tuple[Hop, ...]:
    entry = scenario.entry[1]
    port = scenario.container(entry).port
    where = url or "http://127.0.0.1:PORT"
    listener = "echo" if "echo" in scenario.container(entry).programs else entry  # a supervisor's echo
    if runtime == "local":
        note = f"{where}: {listener} listens on this machine's port itself (nothing to publish)"
    elif runtime == "docker":
        holder = "the pause container" if len(scenario.unit_of(entry).containers) > 1 else entry
        note = f"{where} → -p 127.0.0.1:HOST:{port} on {holder} → {entry}:{port}"
    else:
        note = f"{where} → kubectl port-forward to one pod → {entry}:{port} (not through a Service)"
    hops = [Hop("entry", entry, None, f"you: {where}/data", note)]
    for s in scenario.services:
        client = next((c.name for c in scenario.containers if c.source == s.name), None)
        if client is None:
            continue
        fed = scenario.name == "federation"
        if runtime == "local":
            title, note = f"no Service: {s.name}", "a fixed address on 127.0.0.1 (no DNS)"
        elif runtime == "docker":
            title, note = f"DNS name {s.name}", "a network alias on the app's Docker network"
        elif fed:
            title = f"Service {s.name} (in B)"
            note = "no selector: an EndpointSlice names a NodePort of cluster A"
        else:
            title, note = f"Service {s.name}", f"ClusterIP; DNS {s.name}.<namespace>.svc"
        hops.append(Hop("service", s.container, client, title, f"GET :{s.port}/data · {note}", fed))
    return tuple(hops)


def infer(scenario: str | Scenario, runtime: str, *, url: str = "") -> Topology:
    """The picture the spec gives, with no live state: pure in (scenario, runtime name)."""
    sc = get_scenario(scenario)
    units = tuple(_unit(runtime, sc, u) for u in sc.units)
    in_units = {v for u in units for v in u.volumes}
    outside = tuple(v for v in sc.volumes if v not in in_units)
    if runtime == "local":
        bounds = (Boundary("host", "this machine (host)",
                           "plain processes under one supervisord: no containers, no namespaces", units, outside),)
    elif runtime == "docker":
        bounds = (Boundary("host", "Docker host", "one engine runs every container of the app", units, outside),)
    elif sc.name == "federation":
        a, b = units[0], units[1]
        bounds = (Boundary("cluster-a", "cluster A", "Kubernetes: the generator's side", (a,), outside),
                  Boundary("cluster-b", "cluster B", "Kubernetes: echo's side", (b,)))
    else:
        bounds = (Boundary("cluster", "Kubernetes cluster", "pods scheduled onto its nodes", units, outside),)
    return Topology(sc.name, runtime, f"{sc.name} on {runtime}: {sc.title}",
                    bounds, tuple(_volume(runtime, v, k) for v, k in sc.volumes.items()),
                    _namespaces(runtime, sc), _hops(runtime, sc, url), url)


# -- what the live app says -----------------------------------------------------------------------------
def _digits(value: Any) -> str:
    m = re.search(r"\d+", str(value))
    return m.group(0) if m else str(value)


def _own_ns(kind: str) -> str:
    try:
        return _digits(os.readlink(f"/proc/self/ns/{kind}"))
    except OSError:
        return ""


def read_namespaces(topo: Topology, inodes: dict[str, dict[str, Any]]) -> tuple[Namespace, ...]:
    """Groups from ``app.namespaces()``; a kind not read for every container stays inferred."""
    out: list[Namespace] = []
    order = [c.name for c in topo.containers]
    unit_of = {c.name: u.name for u in topo.units for c in u.containers}
    for kind in KINDS:
        got = {c: _digits((inodes.get(c) or {}).get(kind)) for c in order if (inodes.get(c) or {}).get(kind)}
        if len(got) < len(order):
            out += [n for n in topo.namespaces if n.kind == kind]
            continue
        mine = _own_ns(kind) if topo.runtime == "local" else ""  # the kernel is on the same host only there
        for key in dict.fromkeys(got.values()):
            members = tuple(c for c in order if got[c] == key)
            why = f"{kind}:[{key}]"
            if key == mine:
                scope: Scope = "host"
                why += ", this kernel's too"
            elif len(members) == 1:
                scope = "container"
            elif len({unit_of[m] for m in members}) == 1:
                scope = "unit"
            else:
                scope = "across"
            out.append(Namespace(kind, key, members, scope, "read", why,
                                 f"read from /proc/<pid>/ns/{kind} of {', '.join(members)}"))
    return tuple(out)


def _pids(rows: Any, c: ContainerBox) -> dict[str, str]:
    """Program -> pid from ``app.processes()`` rows of one container."""
    mine = [r for r in rows if r.get("container") == c.name and str(r.get("pid", "-")) != "-"]
    out: dict[str, str] = {}
    for p in c.processes:
        if p.name == "supervisor":
            if mine:
                out[p.name] = str(mine[0]["pid"])  # the tree's root (the container's first process)
            continue
        script = _SCRIPTS.get(p.name, p.name)
        hit = next((r for r in mine if script in str(r.get("command", ""))), None)
        if hit is not None:
            out[p.name] = str(hit["pid"])
    return out


def with_state(topo: Topology, status: dict[str, dict[str, Any]] | None, rows: Any = None,
               inodes: dict[str, dict[str, Any]] | None = None, message: str = "") -> Topology:
    """The same topology with live state: colours, counters and labels change, nothing moves."""
    def container(c: ContainerBox) -> ContainerBox:
        st = (status or {}).get(c.name)
        if st is None:
            return replace(c, running=False if status is not None else None,
                           state="missing" if status is not None else "", processes=c.processes)
        pids = _pids(rows, c) if rows is not None else {}
        running = bool(st.get("running"))
        # A program can be dead in a running container (a supervisor that did not notice): ps says so.
        procs = tuple(replace(p, pid=pids.get(p.name) if running else None,
                              running=(p.name in pids if rows is not None else None) if running else False)
                      for p in c.processes)
        return replace(c, running=running, restarts=int(st.get("restarts") or 0),
                       state=str(st.get("state") or ("running" if running else "not running")), processes=procs)

    def unit(u: UnitBox) -> UnitBox:
        if topo.runtime != "kubernetes" or not status:
            return replace(u, containers=tuple(container(c) for c in u.containers))
        st = next((status.get(c.name) for c in u.containers if status.get(c.name)), {}) or {}
        bits = [f"node {st['node']}" if st.get("node") else "", f"pod {st['pod']}" if st.get("pod") else ""]
        return replace(u, containers=tuple(container(c) for c in u.containers),
                       live=" · ".join(b for b in bits if b) or "not scheduled")

    def boundary(b: Boundary) -> Boundary:
        live = b.live
        if topo.runtime == "kubernetes" and status:
            st = next((status.get(c.name) for u in b.units for c in u.containers if status.get(c.name)), {}) or {}
            bits = [f"context {st['context']}" if st.get("context") else "",
                    f"namespace {st['namespace']}" if st.get("namespace") else ""]
            live = " · ".join(x for x in bits if x)
        return replace(b, units=tuple(unit(u) for u in b.units), live=live)

    out = replace(topo, boundaries=tuple(boundary(b) for b in topo.boundaries), message=message)
    if inodes:
        out = replace(out, namespaces=read_namespaces(out, inodes))
    return out

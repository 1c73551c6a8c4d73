"""``appcoup preflight``: the teacher's check of the class's cluster or machine, the day before.

Each check is one line, ✔ or ✘, and every ✘ carries the one fix. On a cluster (the teacher's
kubeconfig): it answers; a sample learner (``--learner-kubeconfig``, or a throwaway namespace with
a ServiceAccount and the Role the JupyterHub recipe gives each learner) may do what the course does
(SelfSubjectAccessReviews); the ResourceQuota of the learner's namespace leaves room for the largest
scenario; every node holds every course image; a StorageClass for the volume scenario; a second
cluster for 06; a dry run of notebook 03 as that learner (papermill, short). On one machine: the
Docker engine, its free disk, the course's images, and the same dry run on docker.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AppcoupError

OK, BAD = "✔", "✘"
MIN_DISK = 5 * 2**30  # bytes free where the engine keeps its images and containers
DRY_RUN_TIMEOUT = 150
# What the course does in a learner's namespace: (verb, group, resource, subresource).
NEEDS = [(v, "", "pods", "") for v in ("create", "get", "list", "watch", "delete", "deletecollection")] + [
    ("create", "", "pods", "exec"), ("create", "", "pods", "portforward"), ("get", "", "pods", "log"),
    ("create", "", "services", ""), ("delete", "", "services", ""), ("list", "", "services", ""),
    ("create", "", "configmaps", ""), ("update", "", "configmaps", ""), ("deletecollection", "", "configmaps", ""),
    ("create", "", "persistentvolumeclaims", ""), ("deletecollection", "", "persistentvolumeclaims", ""),
    ("create", "apps", "deployments", ""), ("patch", "apps", "deployments", ""), ("update", "apps", "deployments", "scale"),
    ("deletecollection", "apps", "replicasets", ""), ("create", "discovery.k8s.io", "endpointslices", ""),
    ("list", "", "events", ""), ("watch", "", "events", "")]
# Room the largest scenario needs (volume, echo scaled to 2, one rollout's surge pod, the two records).
NEED = {"pods": "4", "services": "2", "persistentvolumeclaims": "1", "configmaps": "3", "requests.storage": "64Mi",
        "requests.cpu": "60m", "requests.memory": "96Mi", "limits.cpu": "900m", "limits.memory": "320Mi"}
# The Role the JupyterHub recipe (classroom/jupyterhub_config.py) gives each learner, for the throwaway one.
EVERY = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
ROLE_RULES = [
    {"apiGroups": [""], "verbs": EVERY, "resources": ["pods", "pods/exec", "pods/portforward", "pods/log", "services",
                                                      "endpoints", "persistentvolumeclaims", "configmaps", "events"]},
    {"apiGroups": ["apps"], "verbs": EVERY, "resources": ["deployments", "deployments/scale", "replicasets",
                                                          "replicasets/scale"]},
    {"apiGroups": ["discovery.k8s.io"], "verbs": EVERY, "resources": ["endpointslices"]},
    {"apiGroups": ["events.k8s.io"], "verbs": ["get", "list", "watch"], "resources": ["events"]},
    {"apiGroups": [""], "verbs": ["get"], "resources": ["namespaces", "resourcequotas", "limitranges"]}]


@dataclass
class Check:
    ok: bool
    what: str
    fix: str = ""

    def __str__(self) -> str:
        return f"{OK if self.ok else BAD} {self.what}" + ("" if self.ok or not self.fix else f"\n    fix: {self.fix}")


class Checklist(list):
    @property
    def ok(self) -> bool:
        return all(c.ok for c in self)

    def __str__(self) -> str:
        bad = sum(not c.ok for c in self)
        return "\n".join(str(c) for c in self) + (f"\n{len(self)} checks: all passed" if not bad
                                                   else f"\n{len(self)} checks: {bad} failed")


def preflight(*, runtime: str = "auto", context: str | None = None, kubeconfig: str | None = None,
              learner_kubeconfig: str | None = None, namespace: str | None = None, peer: str | None = None,
              storage_class: str | None = None, dry_run: bool = True, say: Callable[[Check], None] | None = None
              ) -> Checklist:
    """Run every check for the class's runtime (auto: kubernetes when a kubeconfig is there, else docker)."""
    out = Checklist()

    def add(c: Check) -> None:
        out.append(c)
        if say:
            say(c)

    from .runtimes.kubernetes.client import kubeconfig_path

    if runtime == "auto":
        runtime = "kubernetes" if (kubeconfig_path(kubeconfig) or learner_kubeconfig) else "docker"
    if runtime == "kubernetes":
        _cluster(add, context, kubeconfig, learner_kubeconfig, namespace, peer, storage_class, dry_run)
    elif runtime == "docker":
        _machine(add, dry_run)
    else:
        add(Check(True, f"runtime {runtime}: processes on each learner's machine, nothing shared to check"))
        if dry_run:
            add(_dry_run("local", {}))
    return out


# -- one machine ---------------------------------------------------------------------------------------
def _machine(add: Callable[[Check], None], dry_run: bool) -> None:
    from .runtimes import availability

    av = availability("docker")
    add(Check(av.ok, f"Docker engine: {av.detail}", av.fix))
    if not av.ok:
        return
    from . import images
    from .runtimes.docker import connect

    client = connect(timeout=30)
    root = client.info().get("DockerRootDir") or "/var/lib/docker"
    try:
        free = shutil.disk_usage(root).free
    except OSError:
        root, free = "/", shutil.disk_usage("/").free
    add(Check(free >= MIN_DISK, f"disk: {free / 2**30:.1f} GiB free at {root} (at least {MIN_DISK // 2**30} GiB)",
              "free space on that disk (`docker system prune` removes stopped containers and dangling images)"))
    missing = []
    for name in images.NAMES:
        try:
            client.images.get(images.tag_for(name))
        except Exception:  # noqa: BLE001 - not there (or not readable): missing either way
            missing.append(name)
    add(Check(not missing, "course images on the engine: " + (f"missing {', '.join(missing)}" if missing
                                                              else f"all {len(images.NAMES)} built"),
              "appcoup images build --offline   (once, before the class; learners then build nothing)"))
    sock = Path("/var/run/docker.sock")
    if sock.exists() and os.geteuid() == 0:
        import grp

        st = sock.stat()
        try:
            g = grp.getgrgid(st.st_gid)
            members = ", ".join(g.gr_mem) or "nobody yet"
            add(Check(True, f"Docker socket {sock}: learners need group {g.gr_name} (members: {members})"))
        except KeyError:
            pass
    if dry_run:
        add(_dry_run("docker", {}))


# -- a cluster -----------------------------------------------------------------------------------------
def _cluster(add: Callable[[Check], None], context: str | None, kubeconfig: str | None, learner_kubeconfig: str | None,
             namespace: str | None, peer: str | None, storage_class: str | None, dry_run: bool) -> None:
    from .runtimes.kubernetes.client import connect
    from .runtimes.kubernetes.runtime import probe

    try:
        conn = connect(context, kubeconfig, retries=False)
        version = probe(conn)
    except AppcoupError as e:
        add(Check(False, f"cluster: {e.what}", e.fix or "point --kubeconfig at the class's cluster"))
        return
    add(Check(True, f"cluster: Kubernetes {version.get('gitVersion', '?')} at {conn.server} ({conn.context})"))
    sample = None
    try:
        sample = _sample_learner(conn, learner_kubeconfig, namespace)
        add(Check(True, f"sample learner: {sample['how']}"))
    except AppcoupError as e:
        add(Check(False, f"sample learner: {e.what}", e.fix or "pass --learner-kubeconfig PATH (a learner's own)"))
    try:
        if sample:
            add(_rbac(sample["conn"], sample["namespace"]))
            add(_quota(conn, namespace or sample["namespace"]))  # --namespace: a real learner's, with its quota
        add(_images_on_nodes(conn, namespace or (sample or {}).get("namespace")))
        add(_storage(conn, storage_class))
        add(_peer(conn, peer))
        if dry_run and sample:
            env = {"KUBECONFIG": sample["kubeconfig"], "APPCOUP_NAMESPACE": sample["namespace"],
                   "DOCKER_HOST": "unix:///nonexistent/docker.sock"}  # a learner of a shared cluster has no engine
            add(_dry_run("kubernetes", env))
    finally:
        if sample and sample.get("throwaway"):
            from .runtimes.kubernetes.namespaces import delete_namespace

            try:
                delete_namespace(conn, sample["namespace"])
            except AppcoupError:
                pass


def _sample_learner(conn: Any, learner_kubeconfig: str | None, namespace: str | None) -> dict[str, Any]:
    from .runtimes.kubernetes.client import call, connect
    from .runtimes.kubernetes.placement import context_namespace

    if learner_kubeconfig:
        lc = connect(None, learner_kubeconfig, retries=False)
        ns = namespace or context_namespace(lc)
        return {"conn": lc, "namespace": ns, "kubeconfig": learner_kubeconfig,
                "how": f"{learner_kubeconfig} in namespace {ns!r}"}
    ns = f"appcoup-preflight-{os.getpid() % 100000}-{int(time.time()) % 10000}"
    core = conn.core()
    from .runtimes.kubernetes.client import sdk

    rbac = sdk().client.RbacAuthorizationV1Api(conn.api)
    meta = {"name": "learner", "namespace": ns, "labels": {"app.kubernetes.io/part-of": "appcoup"}}
    what = "Cannot make the throwaway learner"
    call(core.create_namespace, {"metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": "appcoup",
                                                                     "appcoup.preflight": "true"}}}, what=what)
    call(core.create_namespaced_service_account, ns, {"metadata": meta}, what=what)
    call(rbac.create_namespaced_role, ns, {"metadata": meta, "rules": ROLE_RULES}, what=what)
    call(rbac.create_namespaced_role_binding, ns, {
        "metadata": meta, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "learner"},
        "subjects": [{"kind": "ServiceAccount", "name": "learner", "namespace": ns}]}, what=what)
    token = call(core.create_namespaced_service_account_token, "learner", ns, {"spec": {"expirationSeconds": 1200}},
                 what=what)["status"]["token"]
    path = Path(tempfile.mkdtemp(prefix="appcoup-preflight-")) / "learner.kubeconfig"
    ca = conn.configuration.ssl_ca_cert  # a file the client wrote: its bytes go into the kubeconfig
    tls = (f"certificate-authority-data: {base64.b64encode(Path(ca).read_bytes()).decode()}" if ca
           else "insecure-skip-tls-verify: true")
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: class, cluster: {{server: "{conn.server}", {tls}}}}}]
users: [{{name: learner, user: {{token: "{token}"}}}}]
contexts: [{{name: learner, context: {{cluster: class, user: learner, namespace: {ns}}}}}]
current-context: learner
""")
    path.chmod(0o600)
    return {"conn": connect(None, str(path), retries=False), "namespace": ns, "kubeconfig": str(path), "throwaway": True,
            "how": f"throwaway ServiceAccount with the hub's learner Role in namespace {ns!r} (removed after)"}


def _rbac(lc: Any, ns: str) -> Check:
    from .runtimes.kubernetes.client import call, sdk

    api = sdk().client.AuthorizationV1Api(lc.api)
    denied = []
    for verb, group, resource, sub in NEEDS:
        attrs = {"verb": verb, "group": group, "resource": resource, "subresource": sub, "namespace": ns}
        review = call(api.create_self_subject_access_review, {"spec": {"resourceAttributes": attrs}},
                      what="Cannot ask what the learner may do")
        if not (review.get("status") or {}).get("allowed"):
            denied.append(f"{verb} {resource}{'/' + sub if sub else ''}{'.' + group if group else ''}")
    return Check(not denied, f"RBAC of the learner in {ns!r}: " + (f"may not {', '.join(denied)}" if denied
                                                                  else f"all {len(NEEDS)} verbs the course needs"),
                 "give each learner a Role in their namespace with these verbs (classroom/jupyterhub_config.py "
                 "`_rules()` is the one the hub uses), bound to their account")


def _quota(conn: Any, ns: str) -> Check:
    from kubernetes.utils import parse_quantity

    from .runtimes.kubernetes.client import call

    quotas = call(conn.core().list_namespaced_resource_quota, ns, what=f"Cannot read the quotas of {ns!r}").get("items", [])
    if not quotas:
        return Check(True, f"quota in {ns!r}: no ResourceQuota (nothing limits a learner there)")
    short = []
    for q in quotas:
        hard, used = (q.get("status") or {}).get("hard") or (q.get("spec") or {}).get("hard") or {}, \
            (q.get("status") or {}).get("used") or {}
        for key, need in NEED.items():
            for k in (key, f"count/{key}"):
                if k in hard:
                    room = parse_quantity(hard[k]) - parse_quantity(used.get(k, "0"))
                    if room < parse_quantity(need):
                        short.append(f"{q['metadata']['name']}: {k} leaves {room} (needs {need})")
    return Check(not short, f"quota in {ns!r}: " + ("; ".join(short) if short else
                                                    f"{len(quotas)} ResourceQuota(s) leave room for the largest scenario"),
                 "raise the quota (per learner at least: " + ", ".join(f"{k}={v}" for k, v in NEED.items()) + ")")


def _images_on_nodes(conn: Any, namespace: str | None) -> Check:
    from . import images
    from .runtimes.kubernetes.images import (
        STATUS_MAX_IMAGES,
        engine_problem,
        listed_in_full,
        on_nodes,
        probe_node,
        read_nodes,
    )

    nodes, note = read_nodes(conn)
    if not nodes:
        return Check(False, f"images on the nodes: cannot tell ({note or 'no nodes'})",
                     "run preflight with a kubeconfig that may list nodes (the teacher's)")
    wants = {n: {images.tag_for(n, portable=True)} for n in images.NAMES}
    if not engine_problem():  # the engine's tags too, when this machine loads them
        for n in images.NAMES:
            wants[n].add(images.tag_for(n))
    missing, asked = [], []
    for node in nodes:
        held = on_nodes([node])
        gone = [n for n, tags in wants.items() if not tags & held]
        if gone and not listed_in_full(node):  # its status lists only the largest images: ask its kubelet
            if not namespace:
                missing.append(f"{node['metadata']['name']}: cannot tell (its status lists only its "
                               f"{STATUS_MAX_IMAGES} largest images, and no namespace to probe it in)")
                continue
            try:
                held |= probe_node(conn, namespace, node["metadata"]["name"],
                                   sorted({t for n in gone for t in wants[n]}))
            except AppcoupError as e:
                missing.append(f"{node['metadata']['name']}: cannot tell ({e.what})")
                continue
            asked.append(node["metadata"]["name"])
            gone = [n for n, tags in wants.items() if not tags & held]
        if gone:
            missing.append(f"{node['metadata']['name']} lacks {', '.join(gone)}")
    how = (f" (asked the kubelet of {', '.join(asked)} with a probe pod: its status lists only its "
           f"{STATUS_MAX_IMAGES} largest images)") if asked else ""
    return Check(not missing, f"images on every node ({len(nodes)}): " + ("; ".join(missing) if missing
                                                                         else f"all {len(wants)} course images{how}"),
                 "appcoup images preload   (a DaemonSet holds every image on every node; or push them to a "
                 "registry: appcoup images push, and set APPCOUP_REGISTRY for the learners)")


def _storage(conn: Any, name: str | None) -> Check:
    from .runtimes.kubernetes.client import call, sdk

    classes = call(sdk().client.StorageV1Api(conn.api).list_storage_class, what="Cannot list the StorageClasses")
    items = classes.get("items", [])
    if name:
        ok = any(c["metadata"]["name"] == name for c in items)
        return Check(ok, f"StorageClass {name!r} for the volume scenario: " + ("there" if ok else "does not exist"),
                     f"create it, or name one that exists: {', '.join(c['metadata']['name'] for c in items) or 'none'}")
    default = [c["metadata"]["name"] for c in items if (c["metadata"].get("annotations") or {}).get(
        "storageclass.kubernetes.io/is-default-class") == "true"]
    return Check(bool(default), "default StorageClass for the volume scenario: " + (default[0] if default else "none"),
                 "install a provisioner (e.g. rancher's local-path-provisioner) and mark its class default: kubectl "
                 "annotate storageclass NAME storageclass.kubernetes.io/is-default-class=true")


def _peer(conn: Any, peer: str | None) -> Check:
    from .runtimes.kubernetes.client import connect
    from .runtimes.kubernetes.runtime import probe

    peer = peer or os.environ.get("APPCOUP_PEER_KUBECONFIG") or os.environ.get("APPCOUP_PEER_CONTEXT")
    fix = ("make a second cluster (`kind create cluster --name b`) and pass --peer PATH-OR-CONTEXT "
           "(or set APPCOUP_PEER_KUBECONFIG) for 06-federation")
    if not peer:
        return Check(False, "second cluster for 06: none named", fix)
    try:
        pc = connect(None, peer, retries=False) if os.path.exists(os.path.expanduser(peer)) else \
            connect(peer, conn.kubeconfig, retries=False)
        probe(pc)
    except AppcoupError as e:
        return Check(False, f"second cluster for 06 ({peer}): {e.what}", fix)
    if pc.server == conn.server:
        return Check(False, f"second cluster for 06: {peer} is the same cluster ({pc.server})", fix)
    return Check(True, f"second cluster for 06: {pc.server} ({pc.context})")


def short_03(runtime: str, out: str) -> str:
    """Run the first part of notebook 03 (up, the watch with its kill, the events) and ``app.down()``
    through papermill into ``out``; '' when it ran, else what failed. Called in a learner's process."""
    import json

    import papermill as pm

    from .paths import notebooks_dir

    src = next(notebooks_dir().glob("03-*.ipynb"))
    nb = json.loads(src.read_text())
    cells = nb["cells"]
    code = ["".join(c["source"]) if c["cell_type"] == "code" else "" for c in cells]
    watched = next((i for i, c in enumerate(code) if "watch(" in c), None)
    after = next((i for i, c in enumerate(code) if watched is not None and i > watched and "events()" in c), None)
    if after is not None:
        nb["cells"] = cells[:after + 1] + [{"cell_type": "code", "metadata": {}, "execution_count": None,
                                            "outputs": [], "source": "app.down()"}]
    short = Path(out) / "03-short.ipynb"
    short.write_text(json.dumps(nb))
    try:
        pm.execute_notebook(str(short), str(Path(out) / "03-executed.ipynb"), cwd=str(src.parent), progress_bar=False,
                            parameters={"runtime": runtime, "interval": 0.2, "duration": 3})
    except pm.PapermillExecutionError as e:
        return f"cell {e.exec_count}: {e.ename}: {e.evalue}"[:300]
    return ""


def _dry_run(runtime: str, env: dict[str, str]) -> Check:
    """The first part of notebook 03 through papermill, as a learner of its own (own state and name)."""
    out = Path(tempfile.mkdtemp(prefix="appcoup-preflight-run-"))
    code = (f"from appcoup_lib.preflight import short_03\nerr = short_03({runtime!r}, {str(out)!r})\n"
            "print('ERROR ' + err if err else 'OK')\n")
    full = {**os.environ, **env, "APPCOUP_LEARNER": f"preflight-{os.getpid() % 10000}", "APPCOUP_STATE": str(out / "state"),
            "APPCOUP_PROGRESS": "0", "APPCOUP_HEADLESS": "1"}
    t0 = time.monotonic()
    try:
        p = subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                           timeout=DRY_RUN_TIMEOUT, check=False)
        said = (p.stdout.strip().splitlines() or [p.stderr.strip()[-300:] or "ERROR no output"])[-1]
    except subprocess.TimeoutExpired:
        said = f"ERROR did not finish in {DRY_RUN_TIMEOUT} s"
    ok = said == "OK"
    what = f"dry run of 03-pod-coupling (up, a kill, events, down) as a learner on {runtime}: " + (
        f"ok in {time.monotonic() - t0:.0f} s" if ok else said.removeprefix("ERROR "))
    return Check(ok, what, f"read the executed notebook {out}/03-executed.ipynb; the whole course: "
                           f"make course RUNTIME={runtime}")


__all__ = ["NEED", "NEEDS", "ROLE_RULES", "Check", "Checklist", "preflight", "short_03"]

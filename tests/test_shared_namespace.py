"""One namespace is enough: the kubernetes runtime with a learner's namespace-limited account (issue 15, 1).

A fresh namespace on the test cluster holds a ServiceAccount with a Role there (the verbs a learner's
`admin` on one namespace gives; no ClusterRole at all) and a kubeconfig for it, with a token from the
TokenRequest API. As that learner, with no Docker engine here (``DOCKER_HOST`` points at nothing: the
classroom case), pod, service and volume run in that one namespace from the images the teacher's
``preload`` put on the node; two apps side by side do not collide; ``down`` and ``clean`` remove by label
exactly what they should. Everything made here is labelled part-of=appcoup and removed at the end.
"""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest
from cluster.conftest_cluster import k8s_cluster  # noqa: F401

import appcoup_lib as ac
from appcoup_lib import images
from appcoup_lib.errors import AppcoupError
from appcoup_lib.runtimes.base import APP_LABEL, LEARNER_LABEL

pytestmark = [pytest.mark.kubernetes, pytest.mark.cluster, pytest.mark.slow]
TAG = f"sn{os.getpid() % 100000}"
PART_OF = "app.kubernetes.io/part-of=appcoup"
IMAGES = ["generator", "echo", "adapter"]  # what pod, service and volume run
_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
RULES = [
    {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "endpoints", "persistentvolumeclaims",
                                      "configmaps", "events"], "verbs": _VERBS},
    {"apiGroups": [""], "resources": ["pods/exec", "pods/portforward"], "verbs": ["create", "get"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "deployments/scale", "replicasets"], "verbs": _VERBS},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": _VERBS},
]


def _name(what: str) -> str:
    return f"appcoup-{TAG}-{what}"


@pytest.fixture(scope="module")
def admin(k8s_cluster):  # noqa: F811
    from appcoup_lib.runtimes.kubernetes.client import connect

    return connect(None, k8s_cluster.kubeconfig)


@pytest.fixture(scope="module")
def preloaded(admin):  # the teacher, before class: the images on every node (with Docker, as admin)
    from appcoup_lib.runtimes.kubernetes import preload

    ns = f"appcoup-preload-{TAG}"
    done = preload.preload(admin, ns, IMAGES, progress=False, timeout=300)
    yield done
    preload.remove(admin, ns)


@pytest.fixture(scope="module")
def learner_ns(admin, tmp_path_factory):
    """(namespace, kubeconfig path) of a learner who may do everything in one namespace and nothing else."""
    from appcoup_lib.runtimes.kubernetes.client import call, sdk

    ns = f"appcoup-{TAG}-learner"
    core = admin.core()
    rbac = sdk().client.RbacAuthorizationV1Api(admin.api)
    call(core.create_namespace, {"metadata": {"name": ns, "labels": {"app.kubernetes.io/part-of": "appcoup"}}},
         what="namespace")
    try:
        deadline = time.monotonic() + 30
        while call(core.read_namespaced_service_account, "default", ns, missing_ok=True, what="sa") is None:
            assert time.monotonic() < deadline, "no default ServiceAccount"
            time.sleep(0.2)
        labels = {"app.kubernetes.io/part-of": "appcoup"}
        call(core.create_namespaced_service_account, ns, {"metadata": {"name": "learner", "labels": labels}}, what="sa")
        call(rbac.create_namespaced_role, ns, {"metadata": {"name": "learner", "labels": labels}, "rules": RULES},
             what="role")
        call(rbac.create_namespaced_role_binding, ns, {
            "metadata": {"name": "learner", "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "learner"},
            "subjects": [{"kind": "ServiceAccount", "name": "learner", "namespace": ns}]}, what="rolebinding")
        token = call(core.create_namespaced_service_account_token, "learner", ns,
                     {"spec": {"expirationSeconds": 3600}}, what="token")["status"]["token"]
        import yaml

        ca = yaml.safe_load(Path(admin.kubeconfig).read_text())["clusters"][0]["cluster"]["certificate-authority-data"]
        kc = tmp_path_factory.mktemp("learner") / "kubeconfig"
        kc.write_text(textwrap.dedent(f"""\
            apiVersion: v1
            kind: Config
            clusters: [{{name: c, cluster: {{server: "{admin.server}", certificate-authority-data: "{ca}"}}}}]
            users: [{{name: learner, user: {{token: "{token}"}}}}]
            contexts: [{{name: learner, context: {{cluster: c, user: learner, namespace: {ns}}}}}]
            current-context: learner
            """))
        yield ns, str(kc)
    finally:
        call(core.delete_namespace, ns, missing_ok=True, what="delete namespace")


@pytest.fixture
def as_learner(learner_ns, preloaded, monkeypatch):
    """This process as the learner: their kubeconfig, no Docker engine, no registry; yields the namespace."""
    ns, kc = learner_ns
    monkeypatch.setenv("KUBECONFIG", kc)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    for env in ("APPCOUP_NAMESPACE", "APPCOUP_REGISTRY", "APPCOUP_IMAGE_LOADER", "APPCOUP_PEER_KUBECONFIG",
                "APPCOUP_PEER_CONTEXT"):
        monkeypatch.delenv(env, raising=False)
    monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}a")
    yield ns


def _left(admin, ns: str, selector: str) -> list[str]:
    from appcoup_lib.runtimes.kubernetes.placement import labelled

    return sorted(f"{k} {o['metadata']['name']}" for k, o in labelled(admin, ns, selector))


def _grows(app) -> None:
    app.wait_ready(timeout=120)
    first = len(app.data())
    app.wait_until(lambda: len(app.data()) > first, 30, f"{app.name} to serve more numbers")


def test_availability_and_doctor_say_the_shared_mode_and_why(as_learner, monkeypatch) -> None:
    av = ac.runtimes.availability("kubernetes")
    assert av.ok, av
    assert f"namespaces: shared namespace {as_learner!r} (this account may not create namespaces)" in av.detail, av
    assert "cannot read nodes with this account: assuming a generic cluster" in av.detail, av
    assert "no Docker engine here" in av.detail, av
    assert f"shared namespace {as_learner!r}" in str(ac.doctor())
    monkeypatch.setenv("APPCOUP_NAMESPACE", as_learner)
    av = ac.runtimes.availability("kubernetes")
    assert av.ok and f"shared namespace {as_learner!r} (asked for with APPCOUP_NAMESPACE)" in av.detail, av


def test_a_namespace_this_account_may_not_use_is_said_not_a_traceback(as_learner, monkeypatch) -> None:
    monkeypatch.setenv("APPCOUP_NAMESPACE", "default")
    av = ac.runtimes.availability("kubernetes")
    assert not av.ok and "may not create pods in 'default'" in av.detail and "APPCOUP_NAMESPACE" in av.fix, av
    with pytest.raises(AppcoupError) as e:  # an AppcoupError at worst: the verb and resource named
        ac.runtimes.runtime_class("kubernetes")().up("pod", port=0, name=_name("denied"))
    assert "RBAC" in str(e.value) and "default" in str(e.value), e.value


def test_pod_and_volume_run_in_the_learners_namespace(as_learner, admin) -> None:
    rt = ac.runtime("kubernetes")
    for scenario in ("pod", "volume"):
        name = _name(scenario[:3])
        with rt.up(scenario, interval=0.5, port=0, name=name) as app:
            _grows(app)
            assert {r["namespace"] for r in app.status().values()} == {as_learner}
            assert all(p.startswith(f"{name}-") for p in app.pods())
            if scenario == "volume":
                assert any(f"PersistentVolumeClaim {name}-data" in r["volume"] for r in app.volumes())
        assert _left(admin, as_learner, f"{APP_LABEL}={name}") == []


def test_two_services_side_by_side_and_down_and_clean_remove_by_label(as_learner, admin, monkeypatch) -> None:
    from appcoup_lib.runtimes.kubernetes import KubernetesRuntime

    rt = ac.runtime("kubernetes")
    a, b = _name("sa"), _name("sb")
    one = rt.up("service", interval=0.5, port=0, name=a, detach=True)
    two = rt.up("service", interval=0.5, port=0, name=b, detach=True)
    monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}b")
    other = rt.up("pod", interval=0.5, port=0, name=_name("ob"), detach=True)  # another learner's, beside them
    monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}a")
    try:
        for app in (one, two):
            _grows(app)
        assert f"{a}-adapter.{as_learner}.svc" in one.exec("echo", "sh", "-c", "echo $SOURCE_URL")
        assert one.resolve("adapter")["name"] == f"{a}-adapter.{as_learner}.svc.cluster.local"
        assert {r["name"] for r in rt.running()} == {a, b}  # this learner's, found by label
        again = rt.attach("service", a)  # found by its label and record in the namespace
        try:
            assert again.status()["echo"]["running"] and len(again.data()) > 0
        finally:
            again.close()
        one.down()
        assert _left(admin, as_learner, f"{APP_LABEL}={a}") == []
        n = len(two.data())
        two.wait_until(lambda: len(two.data()) > n, 30, "the other app to go on serving")
        removed = KubernetesRuntime.clean()
        assert any(b in r for r in removed) and not any(_name("ob") in r for r in removed), removed
        assert _left(admin, as_learner, f"{LEARNER_LABEL}={TAG}a") == []
        assert _left(admin, as_learner, f"{APP_LABEL}={_name('ob')}") != []
    finally:
        for app in (one, two):
            app.close()
        monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}b")
        other.down()
    assert _left(admin, as_learner, PART_OF) == []


def test_without_an_engine_the_missing_images_are_named(k8s_cluster, preloaded, monkeypatch) -> None:  # noqa: F811
    """As admin (nodes readable), no engine, no registry: exactly the images no node holds are named, and
    none is called missing where the node's status cannot tell (the kubelet lists only its 50 largest)."""
    from appcoup_lib.runtimes.kubernetes.client import connect
    from appcoup_lib.runtimes.kubernetes.images import list_nodes, listed_in_full, on_nodes, probe_node

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    monkeypatch.delenv("APPCOUP_REGISTRY", raising=False)
    conn = connect(None, k8s_cluster.kubeconfig)
    nodes = list_nodes(conn)
    portable = [images.tag_for(n, portable=True) for n in images.NAMES]
    listed = on_nodes(nodes)
    held = set(listed)  # the truth, asked of each node's kubelet for what its status does not list
    for node in nodes:
        held |= probe_node(conn, f"appcoup-preload-{TAG}", node["metadata"]["name"],
                           [t for t in portable if t not in listed])
    assert all(images.tag_for(n, portable=True) in held for n in IMAGES), "preload put them on the node"
    missing = [t for t in portable if t not in held]
    av = ac.runtimes.availability("kubernetes")
    if all(listed_in_full(n) for n in nodes):
        assert av.ok == (not missing), av
        for t in missing:
            assert t in av.detail and "appcoup images preload" in av.fix, av
    else:  # a cut list proves no absence: no false alarm, and it says it did not look
        assert av.ok and "not checked" in av.detail, av


def test_a_node_status_cut_at_50_images_proves_no_absence() -> None:
    """The kubelet's status.images holds at most 50 images (nodeStatusMaxImages): an image missing from a
    list that long is not reported as missing. (Node dicts written here: a real node needs 50+ images.)"""
    from appcoup_lib.runtimes.kubernetes.images import Source, missing_on_nodes

    def node(n: int) -> dict:
        return {"metadata": {"name": "n"}, "status": {"images": [{"names": [f"big/{i}:1"]} for i in range(n)]}}

    src = Source("nodes", {"echo": "appcoup/echo:abc"}, "no engine")
    assert missing_on_nodes(src, ["appcoup/echo:abc"], [node(49)]) == ["appcoup/echo:abc"]
    assert missing_on_nodes(src, ["appcoup/echo:abc"], [node(50)]) == []


def test_registry_refs_are_the_portable_hashes(monkeypatch) -> None:
    from appcoup_lib.runtimes.kubernetes.images import course_images

    monkeypatch.setenv("APPCOUP_REGISTRY", "registry.example:5000/course")
    src = course_images(IMAGES)
    assert src.kind == "registry"
    for n in IMAGES:
        assert src.tags[n] == f"registry.example:5000/course/{n}:{images.tag_for(n, portable=True).split(':')[1]}"
    assert Path(images.tag_for("echo", portable=True)).name.startswith("echo:")


_IN_POD = """
import appcoup_lib as ac
av = ac.runtimes.availability("kubernetes")
print("AV", av.ok, av.detail, flush=True)
assert av.ok, av
rt = ac.runtime("kubernetes")
with rt.up("pod", interval=0.5, port=0, name=NAME) as app:
    app.wait_ready(timeout=150)
    n = len(app.data())
    app.wait_until(lambda: len(app.data()) > n, 30, "more numbers")
    print("NS", sorted({r["namespace"] for r in app.status().values()}), flush=True)
print("LEFT", rt.running(), flush=True)
print("OK", flush=True)
"""


def test_an_in_cluster_service_account_runs_pod(learner_ns, preloaded, admin) -> None:
    """The JupyterHub case: the course in a pod with the learner's ServiceAccount (in-cluster config, the
    namespace read from the service account's files, no Docker engine). The pod runs the echo image with
    this checkout and this venv's packages mounted from the node (the test cluster is this machine)."""
    import sysconfig

    from appcoup_lib.runtimes.kubernetes.client import call

    ns, _ = learner_ns
    name, pod = _name("incl"), f"appcoup-{TAG}-runner"
    site = sysconfig.get_paths()["purelib"]
    root = str(Path(__file__).resolve().parent.parent)
    env = {"PYTHONPATH": f"{root}:{site}", "HOME": "/tmp", "APPCOUP_STATE": "/tmp/appcoup-state",
           "APPCOUP_PROGRESS": "0", "APPCOUP_LEARNER": f"{TAG}pod"}
    body = {"metadata": {"name": pod, "labels": {"app.kubernetes.io/part-of": "appcoup"}},
            "spec": {"serviceAccountName": "learner", "restartPolicy": "Never",
                     "containers": [{"name": "course", "image": images.tag_for("echo", portable=True),
                                     "imagePullPolicy": "IfNotPresent", "workingDir": "/tmp",
                                     "command": ["python3", "-c", f"NAME = {name!r}\n" + _IN_POD],
                                     "env": [{"name": k, "value": v} for k, v in env.items()],
                                     "volumeMounts": [{"name": "repo", "mountPath": root, "readOnly": True},
                                                      {"name": "site", "mountPath": site, "readOnly": True}]}],
                     "volumes": [{"name": "repo", "hostPath": {"path": root, "type": "Directory"}},
                                 {"name": "site", "hostPath": {"path": site, "type": "Directory"}}]}}
    core = admin.core()
    call(core.create_namespaced_pod, ns, body, what="runner pod")
    try:
        deadline = time.monotonic() + 300
        phase = ""
        while time.monotonic() < deadline:
            phase = call(core.read_namespaced_pod, pod, ns, what="runner")["status"].get("phase", "")
            if phase in ("Succeeded", "Failed"):
                break
            time.sleep(2)
        log = call(core.read_namespaced_pod_log, pod, ns, raw=True, what="log").decode(errors="replace")
        assert phase == "Succeeded" and "\nOK" in log, f"{phase}: {log[-3000:]}"
        assert f"shared namespace {ns!r} (this account may not create namespaces)" in log, log
        assert f"NS [{ns!r}]" in log, log
    finally:
        call(core.delete_namespaced_pod, pod, ns, grace_period_seconds=0, missing_ok=True, what="delete runner")
    assert _left(admin, ns, f"{APP_LABEL}={name}") == []

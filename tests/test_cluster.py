"""The test Kubernetes cluster of tests/cluster/ works as a cluster: node, pods, restarts, DNS,
volumes, logs/exec/port-forward, and images that reach it without a registry.

Each test runs in its own namespace (labelled app.kubernetes.io/part-of=appcoup, deleted at the end),
with images assembled here from Debian's busybox-static (see Cluster.busybox_image) or built by Docker.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

try:  # tests/ is on sys.path under pytest's rootdir-based import mode
    from cluster.conftest_cluster import Cluster, k8s_cluster, k8s_cluster_b, k8s_namespace
except ImportError:  # pragma: no cover - other import modes
    import importlib.util
    import sys

    _spec = importlib.util.spec_from_file_location(
        "cluster.conftest_cluster", Path(__file__).parent / "cluster" / "conftest_cluster.py")
    _mod = importlib.util.module_from_spec(_spec)
    sys.modules["cluster.conftest_cluster"] = _mod
    _spec.loader.exec_module(_mod)
    Cluster, k8s_cluster, k8s_cluster_b, k8s_namespace = (
        _mod.Cluster, _mod.k8s_cluster, _mod.k8s_cluster_b, _mod.k8s_namespace)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parent.parent
PART_OF = {"app.kubernetes.io/part-of": "appcoup"}


def container(name: str, image: str, command: str, **extra) -> dict:
    c = {"name": name, "image": image, "imagePullPolicy": "Never", "command": ["sh", "-c", command]}
    c.update(extra)
    return c


def pod(name: str, containers: list[dict], volumes: list[dict] | None = None, labels: dict | None = None) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": {**PART_OF, **(labels or {})}},
        "spec": {"containers": containers, "volumes": volumes or [], "terminationGracePeriodSeconds": 1},
    }


def deployment(name: str, containers: list[dict], volumes: list[dict] | None = None) -> dict:
    labels = {**PART_OF, "app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": containers, "volumes": volumes or [],
                                       "terminationGracePeriodSeconds": 1}}},
    }


def wait_ready(k: Cluster, ns: str, what: str, timeout: int = 120) -> None:
    r = k.kubectl_run("wait", "--for=condition=Ready", what, f"--timeout={timeout}s", namespace=ns,
                      check=False, timeout=timeout + 30)
    if r.returncode != 0:
        raise AssertionError(f"{what} not Ready: {r.stderr}\n{k.describe(ns)}")


def statuses(k: Cluster, ns: str, name: str) -> dict:
    p = k.get_json("pod", name, namespace=ns)
    return {s["name"]: s for s in p["status"].get("containerStatuses", [])}


# Two containers sharing an emptyDir: a generator appending numbers to /shared/data, and an echo
# serving that directory over HTTP on port 8000 (busybox httpd) -- the course's coupling, in small.
GENERATOR = "i=0; while true; do i=$((i+1)); echo $i >> /shared/data; sleep 0.5; done"
ECHO = "exec httpd -f -p 8000 -h /shared"


def coupled_pod(image: str, name: str = "coupled") -> dict:
    mount = [{"name": "shared", "mountPath": "/shared"}]
    return pod(name, [
        container("generator", image, GENERATOR, volumeMounts=mount),
        container("echo", image, ECHO, volumeMounts=mount, ports=[{"containerPort": 8000}],
                  readinessProbe={"httpGet": {"path": "/data", "port": 8000}, "periodSeconds": 1}),
    ], volumes=[{"name": "shared", "emptyDir": {}}])


class PortForward:
    def __init__(self, k: Cluster, ns: str, target: str, port: int) -> None:
        self.proc = subprocess.Popen(
            [k.kubectl, "--kubeconfig", k.kubeconfig, "-n", ns, "port-forward", target, f"0:{port}"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        guard = threading.Timer(60, self.proc.kill)  # a port-forward that never says where it listens
        guard.start()
        try:
            line = self.proc.stdout.readline()  # "Forwarding from 127.0.0.1:NNNNN -> 8000"
        finally:
            guard.cancel()
        m = re.search(r"127\.0\.0\.1:(\d+)", line)
        if not m:
            self.close()
            raise AssertionError(f"port-forward did not start: {line!r} {self.proc.stderr.read()!r}")
        self.local = int(m.group(1))

    def get(self, path: str) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.local}{path}", timeout=10) as r:
            return r.read().decode()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_node_ready_and_readyz(k8s_cluster: Cluster) -> None:
    k = k8s_cluster
    assert k.kubectl_run("get", "--raw", "/readyz").stdout.strip() == "ok"
    nodes = k.get_json("nodes")["items"]
    assert len(nodes) == 1
    cond = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert cond.get("Ready") == "True", cond
    # Cluster DNS runs (CoreDNS, built here) and a default StorageClass exists.
    dns = k.get_json("deploy", "coredns", namespace="kube-system")
    assert dns["status"].get("readyReplicas") == 1
    classes = k.get_json("storageclass")["items"]
    assert any(c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
               for c in classes)


def test_emptydir_pod_serves_data_through_port_forward(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    k, ns = k8s_cluster, k8s_namespace
    k.apply(coupled_pod(k.busybox_image()), namespace=ns)
    wait_ready(k, ns, "pod/coupled")
    pf = PortForward(k, ns, "pod/coupled", 8000)
    try:
        first = k.wait("numbers in /data", lambda: pf.get("/data").split(), timeout=30)
        assert all(x.isdigit() for x in first), first
        time.sleep(2)
        later = pf.get("/data").split()
        assert len(later) > len(first), (first, later)  # the generator keeps appending, echo keeps serving
    finally:
        pf.close()


def test_killing_one_container_restarts_only_that_container(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    k, ns = k8s_cluster, k8s_namespace
    k.apply(coupled_pod(k.busybox_image()), namespace=ns)
    wait_ready(k, ns, "pod/coupled")
    before = statuses(k, ns, "coupled")
    assert before["generator"]["restartCount"] == 0 and before["echo"]["restartCount"] == 0
    uid = k.get_json("pod", "coupled", namespace=ns)["metadata"]["uid"]
    # The generator's process, as the node sees it: its containerd task's PID.
    cid = before["generator"]["containerID"].split("://", 1)[1]
    tasks = k.ctr("tasks", "ls").stdout.decode().splitlines()
    pid = next(int(line.split()[1]) for line in tasks if line.startswith(cid))
    os.kill(pid, signal.SIGKILL)
    k.wait("generator restarted", lambda: statuses(k, ns, "coupled")["generator"]["restartCount"] >= 1, timeout=60)
    wait_ready(k, ns, "pod/coupled")
    after = statuses(k, ns, "coupled")
    assert after["generator"]["restartCount"] == 1, after["generator"]
    assert after["echo"]["restartCount"] == 0, after["echo"]
    assert after["echo"]["containerID"] == before["echo"]["containerID"]
    assert k.get_json("pod", "coupled", namespace=ns)["metadata"]["uid"] == uid  # same pod, same sandbox
    last = after["generator"].get("lastState", {}).get("terminated", {})
    assert last.get("exitCode") == 137, last  # killed by SIGKILL


def test_service_reached_by_fqdn_from_another_deployment(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    k, ns = k8s_cluster, k8s_namespace
    image = k.busybox_image()
    token = uuid.uuid4().hex
    k.apply([
        deployment("echo", [container("echo", image, f"mkdir -p /www && echo {token} > /www/token && "
                                                     "exec httpd -f -p 8000 -h /www",
                                      ports=[{"containerPort": 8000}],
                                      readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1})]),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "labels": PART_OF},
         "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8000}]}},
        deployment("client", [container("client", image, "exec sleep 3600")]),
    ], namespace=ns)
    for d in ("echo", "client"):
        r = k.kubectl_run("rollout", "status", f"deploy/{d}", "--timeout=120s", namespace=ns, check=False, timeout=150)
        assert r.returncode == 0, f"{d}: {r.stderr}\n{k.describe(ns)}"
    fqdn = f"echo.{ns}.svc.cluster.local"

    def fetch() -> str:
        # busybox nc, not wget: Debian's busybox-static wget segfaults (on the host too).
        r = k.kubectl_run("exec", "deploy/client", "--", "sh", "-c",
                          f"printf 'GET /token HTTP/1.0\\r\\nHost: {fqdn}\\r\\n\\r\\n' | nc -w 5 {fqdn} 80",
                          namespace=ns, check=False, timeout=30)
        return r.stdout.replace("\r", "").split("\n\n", 1)[-1].strip() if " 200 " in r.stdout else ""

    assert k.wait(f"http://{fqdn}/token from the client pod", fetch, timeout=60) == token
    # The name resolves to the Service's ClusterIP through the cluster DNS.
    svc_ip = k.get_json("svc", "echo", namespace=ns)["spec"]["clusterIP"]
    r = k.kubectl_run("exec", "deploy/client", "--", "nslookup", fqdn, namespace=ns, check=False)
    assert svc_ip in r.stdout, r.stdout + r.stderr


@pytest.mark.parametrize("mode", ["ReadWriteOnce", "ReadWriteMany"])
def test_pvc_binds_and_two_pods_see_the_same_file(k8s_cluster: Cluster, k8s_namespace: str, mode: str) -> None:
    k, ns = k8s_cluster, k8s_namespace
    image = k.busybox_image()
    token = uuid.uuid4().hex
    k.apply({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "labels": PART_OF},
             "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "64Mi"}}}}, namespace=ns)
    k.wait("PVC bound", lambda: k.get_json("pvc", "data", namespace=ns)["status"].get("phase") == "Bound",
           timeout=60)
    vol = [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    mount = [{"name": "data", "mountPath": "/data"}]
    k.apply([pod("writer", [container("w", image, f"echo {token} > /data/hello && exec sleep 3600",
                                      volumeMounts=mount)], vol),
             pod("reader", [container("r", image, "exec sleep 3600", volumeMounts=mount)], vol)], namespace=ns)
    wait_ready(k, ns, "pod/writer")
    wait_ready(k, ns, "pod/reader")

    def read() -> str:
        r = k.kubectl_run("exec", "reader", "--", "cat", "/data/hello", namespace=ns, check=False)
        return r.stdout.strip()

    assert k.wait("the writer's file seen by the reader", read, timeout=30) == token
    # and the other way round
    k.kubectl_run("exec", "reader", "--", "sh", "-c", "echo back > /data/back", namespace=ns)
    assert k.kubectl_run("exec", "writer", "--", "cat", "/data/back", namespace=ns).stdout.strip() == "back"


def test_logs_and_exec(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    k, ns = k8s_cluster, k8s_namespace
    token = uuid.uuid4().hex
    k.apply(pod("talker", [container("talk", k.busybox_image(), f"echo hello-{token}; exec sleep 3600")]),
            namespace=ns)
    wait_ready(k, ns, "pod/talker")
    logs = k.wait("the log line", lambda: k.kubectl_run("logs", "talker", namespace=ns).stdout, timeout=30)
    assert f"hello-{token}" in logs
    r = k.kubectl_run("exec", "talker", "--", "sh", "-c", "echo $((6*7)); hostname", namespace=ns)
    assert r.stdout.split() == ["42", "talker"]
    r = k.kubectl_run("exec", "talker", "--", "sh", "-c", "exit 3", namespace=ns, check=False)
    assert r.returncode == 3


def _refs_in_cluster(k: Cluster, name: str, loaded: set[str] | None = None) -> list[str]:
    """The containerd refs of a Docker image name: containerd normalises a name without a registry host
    by prefixing the default registry's host (and library/ for single-component names)."""
    if loaded is None:
        loaded = set(k.ctr("images", "ls", "-q").stdout.decode().split())
    return [ref for ref in loaded if ref == name or ref.endswith("/" + name)]


def _docker_ok() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_docker_image_reaches_the_cluster_through_load(k8s_cluster: Cluster, k8s_namespace: str) -> None:
    """An image built by Docker (FROM scratch + busybox: nothing pulled) runs after tests/cluster/load."""
    if not _docker_ok():
        if "docker" in os.environ.get("APPCOUP_REQUIRE", ""):
            pytest.fail("Docker is required (APPCOUP_REQUIRE) but not answering")
        pytest.skip("Docker is not answering")
    k, ns = k8s_cluster, k8s_namespace
    with tempfile.TemporaryDirectory() as d:
        Path(d, "busybox").write_bytes(Path("/bin/busybox").read_bytes())
        os.chmod(Path(d, "busybox"), 0o755)
        Path(d, "Dockerfile").write_text(
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
            "CMD [\"sh\"]\n")
        tag = "appcoup-test/cluster-load:" + uuid.uuid4().hex[:8]
        r = subprocess.run(["docker", "build", "-q", "-t", tag, d], capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr
    try:
        r = subprocess.run([str(ROOT / "tests" / "cluster" / "load"), tag], capture_output=True, text=True, timeout=300, check=False)
        assert r.returncode == 0, r.stderr
        k.apply(pod("loaded", [container("c", tag, "echo from-docker-image; exec sleep 3600")]), namespace=ns)
        wait_ready(k, ns, "pod/loaded")
        assert "from-docker-image" in k.kubectl_run("logs", "loaded", namespace=ns).stdout
    finally:
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, timeout=120, check=False)
        k.kubectl_run("delete", "pod", "loaded", "--wait=true", "--timeout=60s", namespace=ns, check=False)
        for ref in _refs_in_cluster(k, tag):
            k.ctr("images", "rm", ref, check=False)


def _course_images() -> list[str]:
    if not _docker_ok():
        return []
    out = subprocess.run(["docker", "images", "--filter", "label=app.kubernetes.io/part-of=appcoup",
                          "--format", "{{.Repository}}:{{.Tag}}"], capture_output=True, text=True, check=False).stdout
    return [n for n in out.split() if "<none>" not in n]


def test_up_is_idempotent_and_loads_the_course_images(k8s_cluster: Cluster) -> None:
    """A second `up` on a running cluster is quick, prints the same kubeconfig, and leaves every Docker image
    labelled app.kubernetes.io/part-of=appcoup loaded into the cluster."""
    k = k8s_cluster
    if not k.started_here and not k.kubeconfig.startswith(os.environ.get("APPCOUP_CLUSTER_STATE", "/var/lib/appcoup-cluster")):
        pytest.skip("the cluster under test is not one of tests/cluster")
    before = _course_images()
    env = {k_: v for k_, v in os.environ.items() if k_ != "APPCOUP_BUILD_IMAGES_CMD"}
    t0 = time.monotonic()
    r = subprocess.run([str(ROOT / "tests" / "cluster" / "up")], capture_output=True, text=True, timeout=600, env=env, check=False)
    took = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-4000:]
    assert r.stdout.strip().splitlines()[-1] == k.kubeconfig
    assert took < 180, f"up on a running cluster took {took:.0f}s"
    if not _docker_ok():
        return
    names = sorted(set(before) & set(_course_images()))  # (images others rebuild meanwhile come and go)
    loaded = set(k.ctr("images", "ls", "-q").stdout.decode().split())
    missing = [n for n in names if not _refs_in_cluster(k, n, loaded)]
    assert not missing, f"course images not loaded into the cluster: {missing}"


def test_status_reports_a_stopped_component_and_up_restarts_it(k8s_cluster: Cluster) -> None:
    k = k8s_cluster
    pidfile = k.run_dir / "provisioner.pid"
    if not pidfile.exists():
        pytest.skip("the cluster under test is not one of tests/cluster")
    cluster_dir = ROOT / "tests" / "cluster"
    r = subprocess.run([str(cluster_dir / "status")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    for component in ("etcd", "containerd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                      "kubelet", "kube-proxy", "provisioner"):
        assert re.search(rf"^{component}\s+healthy", r.stdout, re.MULTILINE), r.stdout
    os.kill(int(pidfile.read_text()), signal.SIGKILL)  # the volume provisioner: nothing else depends on it
    time.sleep(0.5)
    r = subprocess.run([str(cluster_dir / "status")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode != 0 and re.search(r"^provisioner\s+STOPPED", r.stdout, re.MULTILINE), r.stdout
    env = {k_: v for k_, v in os.environ.items() if k_ != "APPCOUP_BUILD_IMAGES_CMD"}
    r = subprocess.run([str(cluster_dir / "up")], capture_output=True, text=True, timeout=600, env=env, check=False)
    assert r.returncode == 0, r.stderr[-4000:]
    r = subprocess.run([str(cluster_dir / "status")], capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    assert k.kubectl_run("get", "--raw", "/readyz").stdout.strip() == "ok"


def test_a_service_of_one_cluster_is_reached_from_another(
    k8s_cluster: Cluster, k8s_cluster_b: Cluster, k8s_namespace: str
) -> None:
    """Two clusters on one machine: cluster A exposes a NodePort; cluster B consumes it through a Service
    without selector and an EndpointSlice naming A's node (the shape of the course's federation scenario)."""
    a, b, ns = k8s_cluster, k8s_cluster_b, k8s_namespace
    b.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": PART_OF}})
    try:
        token = uuid.uuid4().hex
        a.apply([
            deployment("echo", [container("echo", a.busybox_image(), f"mkdir -p /www && echo {token} > /www/token && "
                                                                   "exec httpd -f -p 8000 -h /www",
                                          ports=[{"containerPort": 8000}],
                                          readinessProbe={"tcpSocket": {"port": 8000}, "periodSeconds": 1})]),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "echo", "labels": PART_OF},
             "spec": {"type": "NodePort", "selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8000}]}},
        ], namespace=ns)
        node_port = a.get_json("svc", "echo", namespace=ns)["spec"]["ports"][0]["nodePort"]
        node = a.get_json("nodes")["items"][0]
        node_ip = next(x["address"] for x in node["status"]["addresses"] if x["type"] == "InternalIP")
        b.apply([
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "remote", "labels": PART_OF},
             "spec": {"ports": [{"port": 80, "targetPort": node_port}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": "remote-a", "labels": {**PART_OF, "kubernetes.io/service-name": "remote"}},
             "addressType": "IPv4", "endpoints": [{"addresses": [node_ip]}],
             "ports": [{"name": "", "port": node_port, "protocol": "TCP"}]},
            deployment("client", [container("client", b.busybox_image(), "exec sleep 3600")]),
        ], namespace=ns)
        for k, d in ((a, "echo"), (b, "client")):
            r = k.kubectl_run("rollout", "status", f"deploy/{d}", "--timeout=120s", namespace=ns, check=False,
                              timeout=150)
            assert r.returncode == 0, f"{d}: {r.stderr}\n{k.describe(ns)}"
        fqdn = f"remote.{ns}.svc.cluster.local"

        def fetch() -> str:
            r = b.kubectl_run("exec", "deploy/client", "--", "sh", "-c",
                              f"printf 'GET /token HTTP/1.0\\r\\nHost: {fqdn}\\r\\n\\r\\n' | nc -w 5 {fqdn} 80",
                              namespace=ns, check=False, timeout=30)
            return r.stdout.replace("\r", "").split("\n\n", 1)[-1].strip() if " 200 " in r.stdout else ""

        assert b.wait(f"cluster A's echo from cluster B at http://{fqdn}/token", fetch, timeout=60) == token
    finally:
        b.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)

"""pytest fixtures for the test Kubernetes cluster of tests/cluster/.

Fixtures:
  ``k8s_cluster`` (session): a :class:`Cluster`. Uses the cluster named by ``KUBECONFIG`` when it answers
  ``kubectl get --raw /readyz``, else ours at /var/lib/appcoup-cluster/admin.kubeconfig when it answers;
  otherwise, only when ``APPCOUP_TEST_CLUSTER_UP=1`` (opt-in: .ci/run sets it), runs ``tests/cluster/up``, uses the kubeconfig printed on its last stdout line, and runs
  ``tests/cluster/down`` at the end (unless ``APPCOUP_CLUSTER_KEEP=1``). A cluster that was already
  running is never torn down. The cluster's ``kubectl`` is put on ``PATH`` and ``KUBECONFIG`` is set for
  the session.
  ``k8s_cluster_b`` (session): a second cluster (``APPCOUP_CLUSTER_NAME=b tests/cluster/up``), same rules.
  ``k8s_namespace`` (function): a fresh namespace (in ``k8s_cluster``) labelled
  ``app.kubernetes.io/part-of=appcoup``, deleted at the end of the test.

Import from tests/conftest.py with
  ``from cluster.conftest_cluster import k8s_cluster, k8s_cluster_b, k8s_namespace  # noqa: F401``
(tests/ is on sys.path under pytest's default rootdir-based import mode).

Without a running cluster and without ``APPCOUP_TEST_CLUSTER_UP=1`` the fixture skips, saying so (it fails
when ``APPCOUP_REQUIRE`` names the cluster). If ``up`` fails, the fixture fails (with up's stderr tail).
It skips only when the machine cannot run the cluster at all (not root, or no containerd/runc installed) and ``APPCOUP_REQUIRE`` names none of
``cluster``, ``kubernetes``, ``k8s`` (nor is ``APPCOUP_CLUSTER_REQUIRED=1``). Note: ``up`` installs the
Debian packages it lacks (``tests/cluster/install-deps``) unless ``APPCOUP_CLUSTER_NO_APT=1``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LABEL = "app.kubernetes.io/part-of=appcoup"
CACHE_ROOT = Path(os.environ.get("APPCOUP_CLUSTER_CACHE", "/var/cache/appcoup-cluster"))
RUN_DIR = Path(os.environ.get("APPCOUP_CLUSTER_RUN", "/run/appcoup-cluster"))
STATE_DIR = Path(os.environ.get("APPCOUP_CLUSTER_STATE", "/var/lib/appcoup-cluster"))


def _required() -> bool:
    req = {r.strip() for r in os.environ.get("APPCOUP_REQUIRE", "").split(",")}
    return bool(req & {"kubernetes", "cluster", "k8s"}) or os.environ.get("APPCOUP_CLUSTER_REQUIRED") == "1"


def _find_kubectl() -> str | None:
    for cand in (CACHE_ROOT / "kubectl", shutil.which("kubectl")):
        if cand and os.access(str(cand), os.X_OK):
            return str(cand)
    return None


def _answers(kubectl: str, kubeconfig: str) -> bool:
    try:
        r = subprocess.run([kubectl, "--kubeconfig", kubeconfig, "get", "--raw", "/readyz"],
                           capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and r.stdout.strip() == "ok"


def _run_dir_for(kubeconfig: str) -> Path:
    """/var/lib/appcoup-cluster[-b]/admin.kubeconfig -> /run/appcoup-cluster[-b] (else the default run dir)."""
    parent = Path(kubeconfig.split(os.pathsep)[0]).resolve().parent
    if parent.name.startswith("appcoup-cluster-") and parent.parent == STATE_DIR.parent:
        return RUN_DIR.parent / parent.name
    return RUN_DIR


@dataclass
class Cluster:
    kubeconfig: str
    kubectl: str
    started_here: bool
    name: str = ""  # "" for the default cluster, "b" for the second one
    _images: dict = field(default_factory=dict)

    @property
    def containerd_socket(self) -> str:
        return str(_run_dir_for(self.kubeconfig) / "containerd.sock")

    @property
    def run_dir(self) -> Path:
        return _run_dir_for(self.kubeconfig)

    @property
    def env(self) -> dict:
        env = dict(os.environ)
        env["KUBECONFIG"] = self.kubeconfig
        return env

    def kubectl_run(self, *args: str, check: bool = True, timeout: float = 120, input: str | None = None,
                    namespace: str | None = None) -> subprocess.CompletedProcess:
        cmd = [self.kubectl, "--kubeconfig", self.kubeconfig]
        if namespace:
            cmd += ["-n", namespace]
        cmd += list(args)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    def apply(self, manifest: dict | list | str, namespace: str | None = None) -> None:
        if not isinstance(manifest, str):
            items = manifest if isinstance(manifest, list) else [manifest]
            manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        self.kubectl_run("apply", "-f", "-", input=manifest, namespace=namespace)

    def get_json(self, *args: str, namespace: str | None = None) -> dict:
        return json.loads(self.kubectl_run("get", *args, "-o", "json", namespace=namespace).stdout)

    def ctr(self, *args: str, check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess:
        r = subprocess.run(["ctr", "-a", self.containerd_socket, "-n", "k8s.io", *args], capture_output=True,
                           input=input, timeout=300, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"ctr {' '.join(args)} failed: {r.stderr.decode(errors='replace')}")
        return r

    def busybox_image(self) -> str:
        """A busybox image assembled here from Debian's busybox-static (no registry, no Docker) and
        imported into the cluster's containerd. Returns its name (use imagePullPolicy: Never)."""
        if "busybox" in self._images:
            return self._images["busybox"]
        bb = Path("/bin/busybox")
        if not bb.exists():
            pytest.fail("no /bin/busybox: apt-get install -y busybox-static")
        digest = hashlib.sha256(bb.read_bytes()).hexdigest()[:12]
        name = f"appcoup.local/test-busybox:{digest}"
        tar = CACHE_ROOT / "test-images" / f"busybox-{digest}.tar"
        if not tar.exists():
            tar.parent.mkdir(parents=True, exist_ok=True)
            applets = subprocess.run([str(bb), "--list"], capture_output=True, text=True, check=True).stdout.split()
            cmd = [sys.executable, str(HERE / "mkimage.py"), "--name", name, "--out", str(tar),
                   "--file", f"{bb}:/bin/busybox", "--cmd", "sh"]
            for a in applets:
                if a != "busybox":
                    cmd += ["--symlink", f"/bin/{a}:busybox"]
            subprocess.run(cmd, check=True)
        listed = self.ctr("images", "ls", "-q").stdout.decode().split()
        if name not in listed:
            self.ctr("images", "import", str(tar))
        self._images["busybox"] = name
        return name

    def wait(self, what: str, cond, timeout: float = 120, interval: float = 1.0):
        """Poll cond() until it returns a truthy value; fail with `what` and the last error otherwise."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            try:
                v = cond()
                if v:
                    return v
                last = v
            except Exception as e:  # noqa: BLE001 - keep polling, report the last error
                last = e
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")

    def describe(self, namespace: str) -> str:
        r = self.kubectl_run("describe", "pods", namespace=namespace, check=False)
        e = self.kubectl_run("get", "events", "--sort-by=.lastTimestamp", namespace=namespace, check=False)
        return (r.stdout + r.stderr)[-4000:] + "\n" + (e.stdout + e.stderr)[-2000:]


_clusters: dict[str, Cluster] = {}
_failures: dict[str, str] = {}


def _start(name: str = "") -> Cluster:
    """The cluster `name` ("" = default, "b" = second), reused when it answers, else brought up."""
    if name in _clusters:
        return _clusters[name]
    if name in _failures:
        pytest.fail(_failures[name], pytrace=False)
    kubectl = _find_kubectl()
    state = STATE_DIR if not name else STATE_DIR.parent / f"{STATE_DIR.name}-{name}"
    # A cluster that already runs: (for the default one) the one KUBECONFIG names, else ours at its usual place.
    candidates = ([os.environ.get("KUBECONFIG")] if not name else []) + [str(state / "admin.kubeconfig")]
    for kc in candidates:
        if kc and kubectl and os.path.exists(kc.split(os.pathsep)[0]) and _answers(kubectl, kc):
            _clusters[name] = Cluster(kubeconfig=kc, kubectl=kubectl, started_here=False, name=name)
            return _clusters[name]
    if os.environ.get("APPCOUP_TEST_CLUSTER_UP") != "1":
        # Building a cluster installs packages and starts daemons: never on a learner's machine
        # unless asked (.ci/run asks).
        msg = ("no test cluster answers (neither KUBECONFIG nor " + str(state / "admin.kubeconfig") + ") and "
               "building one is opt-in: set APPCOUP_TEST_CLUSTER_UP=1 (root; installs packages, starts "
               "containerd and the cluster's daemons), or start it with tests/cluster/up")
        if _required():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    if os.geteuid() != 0 or not shutil.which("containerd") or not shutil.which("runc"):
        msg = "test Kubernetes cluster needs root, containerd and runc (see tests/cluster/README.md)"
        if _required():
            pytest.fail(msg)
        pytest.skip(msg)
    env = dict(os.environ)
    env.pop("APPCOUP_CLUSTER_NAME", None)
    if name:
        env["APPCOUP_CLUSTER_NAME"] = name
    r = subprocess.run([str(HERE / "up")], capture_output=True, text=True, timeout=3600, env=env, check=False)
    kc = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""
    kubectl = _find_kubectl()
    failure = None
    if r.returncode != 0 or not kc:
        failure = f"tests/cluster/up (cluster {name or 'default'}) failed ({r.returncode}):\n{r.stderr[-6000:]}"
    elif not kubectl or not _answers(kubectl, kc):
        failure = f"tests/cluster/up printed {kc} but the cluster does not answer /readyz"
    if failure is not None:
        _failures[name] = failure
        if os.environ.get("APPCOUP_CLUSTER_KEEP") != "1":
            subprocess.run([str(HERE / "down")], capture_output=True, timeout=300, env=env, check=False)
        pytest.fail(failure, pytrace=False)
    _clusters[name] = Cluster(kubeconfig=kc, kubectl=kubectl, started_here=True, name=name)
    return _clusters[name]


def _down(cluster: Cluster) -> None:
    if cluster.started_here and os.environ.get("APPCOUP_CLUSTER_KEEP") != "1":
        env = dict(os.environ)
        env.pop("APPCOUP_CLUSTER_NAME", None)
        if cluster.name:
            env["APPCOUP_CLUSTER_NAME"] = cluster.name
        subprocess.run([str(HERE / "down")], capture_output=True, timeout=300, env=env, check=False)


@pytest.fixture(scope="session")
def k8s_cluster():
    cluster = _start()
    saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "PATH")}
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    kdir = str(Path(cluster.kubectl).parent)
    if kdir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = kdir + os.pathsep + os.environ.get("PATH", "")
    yield cluster
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    _down(cluster)


@pytest.fixture(scope="session")
def k8s_cluster_b(k8s_cluster: Cluster):
    """A second cluster on the same machine (APPCOUP_CLUSTER_NAME=b: own ports, its node in its own network
    namespace), for what spans two clusters. Brought up when it does not answer; down at the end if so."""
    cluster = _start("b")
    yield cluster
    _down(cluster)


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster, request):
    name = "appcoup-t-" + uuid.uuid4().hex[:8]
    test = "".join(c if c.isalnum() or c in "-_." else "-" for c in request.node.name)[:63].strip("-_.")
    k8s_cluster.apply({"apiVersion": "v1", "kind": "Namespace",
                       "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "appcoup",
                                                             "appcoup.test": test}}})
    k8s_cluster.wait(f"default service account in {name}",
                     lambda: k8s_cluster.kubectl_run("get", "sa", "default", namespace=name, check=False).returncode == 0,
                     timeout=30, interval=0.5)
    yield name
    k8s_cluster.kubectl_run("delete", "namespace", name, "--wait=false", check=False)

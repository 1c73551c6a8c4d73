"""The teacher's board (``appcoup classroom``) and ``appcoup preflight``, for real.

- One machine: two real OS users (``useradd -m``, in the ``docker`` group) share this Docker engine;
  each runs a check (a verdict) and starts an app as themselves, with their own HOME. Root's
  ``appcoup classroom --homes /home`` shows both, with exercise, verdict and app; the one whose echo
  was killed in ``separate`` (exited, nothing restarts it) is in trouble; ``classroom clean`` removes
  only that learner's things, ``clean --all --homes /home`` the rest of the class.
- A cluster: two learner namespaces, each with its progress written by :func:`classroom.record`
  under ``$APPCOUP_NAMESPACE`` (one by a real check, predict then check_..., as a ServiceAccount with
  the hub's learner Role in its namespace only, as JupyterHub's learners are); the board lists both,
  and a pod that cannot pull its image as trouble; cleaning that learner removes the pod, not the progress.
- ``appcoup preflight`` against the test cluster (peer: the second one) passes every check; against a
  learner whose Role lacks a verb, a quota too small and a StorageClass that does not exist, each
  of those lines is a ✘ with its fix, and the exit code is 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cluster.conftest_cluster import k8s_cluster  # noqa: F401

from appcoup_lib.preflight import ROLE_RULES

ROOT = Path(__file__).resolve().parent.parent
PEER = "/var/lib/appcoup-cluster-b/admin.kubeconfig"


def _root_with_useradd() -> str | None:
    if os.geteuid() != 0:
        return "needs root (creates OS users)"
    if not (shutil.which("useradd") and shutil.which("runuser")):
        return "needs useradd and runuser"
    return None


def _python_for_others(tmp: Path) -> str:
    """A Python other users can run with this checkout's packages: the repo's .venv when they can
    read it, else a venv of the system Python that adds the .venv's site-packages."""
    probe = subprocess.run(["runuser", "-u", "nobody", "--", sys.executable, "-c", "import appcoup_lib"],
                           capture_output=True, check=False)
    if probe.returncode == 0:
        return sys.executable
    venv = tmp / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    pth = next(venv.glob("lib/python3*/site-packages")) / "appcoup-shared.pth"
    pth.write_text(f"import site; site.addsitedir({str(site)!r})\n")
    venv.chmod(0o755)
    tmp.chmod(0o755)
    return str(venv / "bin" / "python")


def _env(home: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "DOCKER_HOST")}
    return {**keep, "HOME": home, "APPCOUP_PROGRESS": "0", "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def class_of_two():
    why = _root_with_useradd()
    if why:
        pytest.skip(why)
    tmp = Path(tempfile.mkdtemp(prefix="appcoup-board-"))  # pytest's own tmp is root's only (0700)
    python = _python_for_others(tmp)
    n = os.getpid() % 1000
    users = [f"alice{n}", f"bob{n}"]
    for u in users:
        subprocess.run(["useradd", "-m", "-G", "docker", "-s", "/bin/sh", u], check=True, capture_output=True)

    def run(user: str, *args: str, code: str | None = None) -> subprocess.CompletedProcess[str]:
        argv = [python, "-c", code] if code else [python, "-m", "appcoup_lib", *args]
        p = subprocess.run(["runuser", "-u", user, "--", *argv], env=_env(f"/home/{user}"), cwd="/tmp",
                           capture_output=True, text=True, timeout=300, check=False)
        assert "Traceback" not in p.stderr, p.stderr
        return p

    try:
        yield users, run
    finally:
        for u in users:  # whatever a failed test left of theirs, then the users
            subprocess.run([sys.executable, "-m", "appcoup_lib", "classroom", "--cluster", "no", "clean", u],
                           capture_output=True, check=False, timeout=120)
            subprocess.run(["userdel", "-r", "-f", u], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)


def board(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "appcoup_lib", "classroom", *args], capture_output=True, text=True,
                       timeout=300, check=False, env={**os.environ, **env})
    assert "Traceback" not in p.stderr, p.stderr
    return p


def row(text: str, learner: str) -> str:
    return next((line for line in text.splitlines() if line.split(" ", 1)[0] == learner), "")


def _containers(learner: str) -> list[str]:
    from appcoup_lib.runtimes.docker import connect

    return [c.name for c in connect().containers.list(all=True, filters={"label": f"appcoup.learner={learner}"})]


CHECK_01 = ("from appcoup_lib.exercises import predict, check_separate_generator_killed as c\n"
            "predict('01.1', {'data_answers': True, 'new_numbers': False})\n"
            "print(c(data_answers=True, new_numbers=False))\n")
CHECK_03 = ("from appcoup_lib.exercises import predict, check_pod_generator_killed as c\n"
            "predict('03.1', {'generator': 0, 'echo': 1})\n"
            "print(c(restarts={'generator': 1, 'echo': 0}))\n")


@pytest.mark.docker
@pytest.mark.slow
def test_the_board_of_two_os_users_on_one_engine(class_of_two) -> None:
    (alice, bob), run = class_of_two
    assert "right" in run(alice, code=CHECK_01).stdout
    assert "not quite" in run(bob, code=CHECK_03).stdout
    for who, scenario in ((alice, "separate"), (bob, "pod")):
        p = run(who, "up", scenario, "--runtime", "docker", "--port", "0")
        assert p.returncode == 0, p.stderr
    saved = json.loads(Path(f"/home/{alice}/.cache/appcoup/predictions.json").read_text())
    assert saved["predictions"]["01.1"]["verdict"]["ok"] is True and saved["predictions"]["01.1"]["learner"] == alice

    p = board("--homes", "/home", "--cluster", "no")
    assert p.returncode == 0, p.stderr
    a, b = row(p.stdout, alice), row(p.stdout, bob)
    assert "01.1 01-separate-runs" in a and "1/1 right" in a and f"appcoup-{alice}-separate (docker)" in a, p.stdout
    assert "03.1 03-pod-coupling" in b and "0/1 right" in b and f"appcoup-{bob}-pod (docker)" in b, p.stdout
    assert a.rstrip().endswith("-") and b.rstrip().endswith("-"), "nobody is in trouble yet"

    assert run(alice, "kill", "separate", "echo", "--runtime", "docker").returncode == 0
    deadline = time.monotonic() + 30
    while "exited" not in row(board("--homes", "/home", "--cluster", "no").stdout, alice):
        assert time.monotonic() < deadline, "alice's dead echo never showed as trouble"
        time.sleep(1)
    p = board("--homes", "/home", "--cluster", "no")
    assert "echo exited" in row(p.stdout, alice) and "nothing restarts it" in row(p.stdout, alice), p.stdout
    assert "exited" not in row(p.stdout, bob)

    p = board("--cluster", "no", "clean", alice)
    assert p.returncode == 0 and f"appcoup-{alice}-separate" in p.stdout, p.stdout + p.stderr
    assert _containers(alice) == [] and _containers(bob), "only alice's things go"
    p = board("--homes", "/home", "--cluster", "no")
    assert "1/1 right" in row(p.stdout, alice) and "(docker)" not in row(p.stdout, alice), "her progress stays"

    p = board("--homes", "/home", "--cluster", "no", "clean", "--all")
    assert p.returncode == 0 and f"appcoup-{bob}-pod" in p.stdout, p.stdout + p.stderr
    assert _containers(bob) == []


# -- the cluster ----------------------------------------------------------------------------------------
@pytest.fixture
def admin_kubeconfig(k8s_cluster):  # noqa: F811
    return k8s_cluster.kubeconfig


@pytest.fixture(scope="module")
def class_prepared(k8s_cluster):  # noqa: F811
    """The teacher's step before preflight: every course image on the node (loaded from this machine's engine)."""
    from appcoup_lib import images
    from appcoup_lib.runtimes.kubernetes.client import connect
    from appcoup_lib.runtimes.kubernetes.images import put_on_cluster

    put_on_cluster(connect(None, k8s_cluster.kubeconfig), list(images.ensure(list(images.NAMES), progress=False).values()))


def _kubectl(kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    exe = shutil.which("kubectl") or "/usr/local/bin/kubectl"
    p = subprocess.run([exe, "--kubeconfig", kubeconfig, *args], input=stdin, capture_output=True, text=True,
                       timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.fixture
def two_namespaces(admin_kubeconfig):
    n = os.getpid() % 10000
    n = f"{n}-{int(time.time() * 10) % 100000}"  # a fresh pair per test: the last one may still be going
    spaces = [f"appcoup-board-{n}-a", f"appcoup-board-{n}-b"]
    for ns in spaces:
        _kubectl(admin_kubeconfig, "create", "namespace", ns)
    yield spaces
    for ns in spaces:
        _kubectl(admin_kubeconfig, "delete", "namespace", ns, "--wait=false")


def learner_kubeconfig(admin: str, ns: str, rules: list[dict], out: Path) -> str:
    """A ServiceAccount ``learner`` in ``ns`` with a Role of ``rules``, as a kubeconfig of its token."""
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "learner", "namespace": ns},
            "rules": rules}
    _kubectl(admin, "create", "serviceaccount", "learner", "-n", ns)
    _kubectl(admin, "apply", "-f", "-", stdin=json.dumps(role))
    _kubectl(admin, "create", "rolebinding", "learner", "-n", ns, "--role", "learner", f"--serviceaccount={ns}:learner")
    token = _kubectl(admin, "create", "token", "learner", "-n", ns).strip()
    view = ["config", "view", "--minify", "--raw", "-o"]
    server = _kubectl(admin, *view, "jsonpath={.clusters[0].cluster.server}")
    ca = _kubectl(admin, *view, "jsonpath={.clusters[0].cluster.certificate-authority-data}")
    out.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "current-context": "l",
                               "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority-data": ca}}],
                               "users": [{"name": "l", "user": {"token": token}}],
                               "contexts": [{"name": "l", "context": {"cluster": "c", "user": "l", "namespace": ns}}]}))
    return str(out)


RECORD = ("from appcoup_lib.classroom import record, learner_namespace\n"
          "record('{nb}', '{ex}', {ok}, guess={{'g': 1}})\n"
          "print(learner_namespace()[1])\n")
# The other way in: a learner's own check cell (exercises' verdict calls record()).
CHECKED = ("from appcoup_lib.exercises import predict, check_service_generator_recreated as c\n"
           "from appcoup_lib.classroom import learner_namespace\n"
           "predict('04.1', False)\n"
           "assert c(kept=False).ok\n"
           "print(learner_namespace()[1])\n")


@pytest.mark.kubernetes
@pytest.mark.cluster
@pytest.mark.slow
def test_the_board_of_two_learner_namespaces(two_namespaces, admin_kubeconfig, tmp_path) -> None:
    n = os.getpid() % 10000
    who = [f"ns{n}a", f"ns{n}b"]
    for ns, learner, (nb, ex, ok) in zip(two_namespaces, who, [("04-service-coupling", "04.1", True),
                                                              ("05-volume-coupling", "05.1", False)]):
        # The first learner as the hub makes them: a ServiceAccount with the hub's Role in its namespace only.
        kubeconfig = (learner_kubeconfig(admin_kubeconfig, ns, ROLE_RULES, tmp_path / f"{learner}.kubeconfig")
                      if ex == "04.1" else admin_kubeconfig)
        env = {**os.environ, "KUBECONFIG": kubeconfig, "APPCOUP_NAMESPACE": ns, "APPCOUP_LEARNER": learner,
               "APPCOUP_STATE": str(tmp_path / learner)}
        code = CHECKED if ex == "04.1" else RECORD.format(nb=nb, ex=ex, ok=ok)
        p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                           check=False)
        assert p.returncode == 0 and p.stdout.strip() == ns, p.stderr
        cm = json.loads(_kubectl(admin_kubeconfig, "get", "configmap", "appcoup-progress", "-n", ns, "-o", "json"))
        assert cm["metadata"]["labels"]["appcoup.learner"] == learner
        assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "appcoup"
    # A pod of the second learner that can never start: its image does not exist anywhere.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stuck", "namespace": two_namespaces[1], "labels": {
        "app.kubernetes.io/part-of": "appcoup", "appcoup.learner": who[1], "appcoup.app": f"appcoup-{who[1]}-pod"}},
        "spec": {"containers": [{"name": "echo", "image": "appcoup.invalid/nothing:0"}]}}
    _kubectl(admin_kubeconfig, "apply", "-f", "-", stdin=json.dumps(pod))
    env = {"KUBECONFIG": admin_kubeconfig}
    deadline = time.monotonic() + 90
    while True:
        p = board("--homes", str(tmp_path / "no-homes"), "--no-docker", "--cluster", "yes", **env)
        assert p.returncode == 0, p.stderr
        a, b = row(p.stdout, who[0]), row(p.stdout, who[1])
        if "ImagePull" in b or "ErrImage" in b or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert "04.1 04-service-coupling" in a and "1/1 right" in a, p.stdout
    assert "05.1 05-volume-coupling" in b and "0/1 right" in b and f"appcoup-{who[1]}-pod" in b, p.stdout
    assert "pod stuck: echo" in b and ("ImagePullBackOff" in b or "ErrImagePull" in b), p.stdout

    p = board("--no-docker", "--cluster", "yes", "clean", who[1], **env)
    assert p.returncode == 0 and f"appcoup-{who[1]}-pod" in p.stdout, p.stdout + p.stderr
    got = _kubectl(admin_kubeconfig, "get", "pods,configmaps", "-n", two_namespaces[1], "-o", "name")
    assert "configmap/appcoup-progress" in got, "progress stays"


# -- preflight ------------------------------------------------------------------------------------------
def preflight(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "appcoup_lib", "preflight", *args], capture_output=True, text=True,
                       timeout=400, check=False, env={**os.environ, **env})
    assert "Traceback" not in p.stderr, p.stderr
    return p


@pytest.mark.kubernetes
@pytest.mark.cluster
@pytest.mark.slow
def test_preflight_passes_on_the_test_clusters(admin_kubeconfig, class_prepared) -> None:
    if not Path(PEER).exists():
        pytest.skip("no second test cluster (APPCOUP_CLUSTER_NAME=b tests/cluster/up)")
    t0 = time.monotonic()
    p = preflight("--peer", PEER, KUBECONFIG=admin_kubeconfig)
    print(p.stdout, f"({time.monotonic() - t0:.0f} s)")
    assert p.returncode == 0, p.stdout + p.stderr
    for line in ("✔ cluster:", "✔ sample learner:", "✔ RBAC of the learner", "✔ quota in", "✔ images on every node",
                 "✔ default StorageClass", "✔ second cluster for 06", "✔ dry run of 03-pod-coupling"):
        assert line in p.stdout
    assert "✘" not in p.stdout
    left = _kubectl(admin_kubeconfig, "get", "namespaces", "-l", "appcoup.preflight=true", "-o", "json")
    assert all(ns["metadata"].get("deletionTimestamp") for ns in json.loads(left)["items"]), "the throwaway goes"


@pytest.mark.kubernetes
@pytest.mark.cluster
@pytest.mark.slow
def test_preflight_names_what_is_missing_and_its_fix(admin_kubeconfig, two_namespaces, tmp_path,
                                                     class_prepared) -> None:
    ns = two_namespaces[0]
    rules = [{"apiGroups": ["", "apps", "discovery.k8s.io"], "verbs": ["get", "list", "watch", "create", "delete"],
              "resources": ["pods", "services", "configmaps", "deployments"]}]  # no exec, no claims ...
    learner = learner_kubeconfig(admin_kubeconfig, ns, rules, tmp_path / "learner.kubeconfig")
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tiny", "namespace": ns},
             "spec": {"hard": {"pods": "1", "services": "5"}}}
    _kubectl(admin_kubeconfig, "apply", "-f", "-", stdin=json.dumps(quota))
    p = preflight("--learner-kubeconfig", learner, "--storage-class", "appcoup-no-such-class", "--no-dry-run",
                  "--peer", PEER, KUBECONFIG=admin_kubeconfig)
    print(p.stdout)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = p.stdout.splitlines()

    def failed(start: str) -> str:
        i = next(i for i, line in enumerate(lines) if line.startswith(f"✘ {start}"))
        assert lines[i + 1].strip().startswith("fix:"), lines[i:i + 2]
        return lines[i] + lines[i + 1]

    assert "create pods/exec" in failed("RBAC of the learner") and "persistentvolumeclaims" in failed("RBAC")
    assert "tiny: pods leaves 1 (needs 4)" in failed("quota in")
    assert "does not exist" in failed("StorageClass 'appcoup-no-such-class'")
    assert "✔ cluster:" in p.stdout and "✔ images on every node" in p.stdout


@pytest.mark.docker
def test_preflight_on_one_machine() -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    p = subprocess.run([sys.executable, "-m", "appcoup_lib", "preflight", "--runtime", "docker", "--no-dry-run"],
                       capture_output=True, text=True, timeout=300, check=False, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    for line in ("✔ Docker engine:", "✔ disk:", "✔ course images on the engine: all"):
        assert line in p.stdout


# -- the teacher's notebook ------------------------------------------------------------------------------
NOTEBOOK = ROOT / "notebooks" / "teacher-board.ipynb"


def test_the_teacher_notebook_is_committed_clean_and_paired() -> None:
    import jupytext

    nb = json.loads(NOTEBOOK.read_text())
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code")
    assert sum("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]) == 1
    a, b = jupytext.read(NOTEBOOK), jupytext.read(ROOT / "course-src" / "teacher-board.py")
    cells = lambda n: [(c.cell_type, c.source.strip()) for c in n.cells]
    assert cells(a) == cells(b), "make notebooks (or jupytext --sync course-src/teacher-board.py)"
    assert a.metadata["jupytext"]["formats"] == "notebooks///ipynb,course-src///py:percent"


@pytest.mark.notebook
def test_the_teacher_notebook_shows_a_learner(tmp_path) -> None:
    import papermill as pm

    state = tmp_path / "homes" / "carol" / ".cache" / "appcoup"
    state.mkdir(parents=True)
    env = {**os.environ, "APPCOUP_STATE": str(state), "APPCOUP_LEARNER": "carol"}
    code = "from appcoup_lib.classroom import record; record('02-dockerfile-coupling', '02.1', True)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    out = tmp_path / "board.ipynb"
    os.environ.setdefault("APPCOUP_HEADLESS", "1")
    pm.execute_notebook(str(NOTEBOOK), str(out), cwd=str(NOTEBOOK.parent), progress_bar=False,
                        parameters={"homes": [str(tmp_path / "homes")], "docker": False, "cluster": False, "period": 1.0})
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "carol" in text and "02.1 02-dockerfile-coupling" in text and "1/1 right" in text, text

"""The kubernetes runtime on the real test cluster(s) of tests/cluster: every scenario, the same semantics
the local and docker tests check, the errors a learner meets, and cleanup.

Apps get names unique to this pytest process, so sessions running beside this one are never touched;
``clean`` is exercised under learner names of this process only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cluster.conftest_cluster import k8s_cluster, k8s_cluster_b, k8s_namespace  # noqa: F401

import appcoup_lib as ac
from appcoup_lib.errors import AppcoupError, NotFound, NotReady, NotSupported
from appcoup_lib.runtimes.base import LEARNER_LABEL

pytestmark = [pytest.mark.kubernetes, pytest.mark.cluster, pytest.mark.slow]
ROOT = Path(__file__).resolve().parent.parent
TAG = f"kt{os.getpid() % 100000}"
PART_OF = "app.kubernetes.io/part-of=appcoup"


def _name(what: str) -> str:
    return f"appcoup-{TAG}-{what}"


def _our_namespaces(kubeconfig: str | None = None) -> set[str]:
    """Namespaces of apps this test process started (by name), on a cluster."""
    from appcoup_lib.runtimes.kubernetes.client import call, connect

    conn = connect(None, kubeconfig)
    items = call(conn.core().list_namespace, label_selector=PART_OF, what="list").get("items", [])
    return {n["metadata"]["name"] for n in items if n["metadata"]["name"].startswith(f"appcoup-{TAG}-")}


@pytest.fixture
def rt(k8s_cluster):  # noqa: F811
    return ac.runtime("kubernetes")


@pytest.fixture(autouse=True)
def nothing_left_on_the_cluster(k8s_cluster):  # noqa: F811
    """After every test, no namespace of this process's apps is left on cluster A (nor B, when up)."""
    yield
    peer = os.environ.get("APPCOUP_PEER_KUBECONFIG")
    left = _our_namespaces() | (_our_namespaces(peer) if peer else set())
    if left:
        from appcoup_lib.runtimes.kubernetes.client import connect
        from appcoup_lib.runtimes.kubernetes.namespaces import delete_namespace

        for kc in (None, peer):
            for ns in left:
                try:
                    delete_namespace(connect(None, kc), ns)
                except AppcoupError:
                    pass
        pytest.fail(f"left behind on the cluster: namespaces {sorted(left)}", pytrace=False)


def test_pod_echo_restarts_alone_and_the_url_survives(rt) -> None:
    with rt.up("pod", interval=0.3, port=0, name=_name("pod")) as app:
        url = app.url
        app.wait_ready(timeout=60)
        first = app.data()
        assert first and all(0 <= n <= 32767 for n in first)
        procs = app.processes()
        assert {r["container"] for r in procs} == {"generator", "echo"}
        assert any("echo.py" in r["command"] for r in procs if r["container"] == "echo")
        app.kill("echo")
        app.wait_until(lambda: not app.answers(), 10, "/data to stop answering after the kill")
        app.wait_until(app.answers, 60, "/data to answer again")
        assert app.url == url  # the same local port, no action by the learner
        # The port-forward reaches the new echo as soon as the kubelet starts it; the status,
        # read from the API's watch, says so a moment later.
        app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 10, "the restart to show in the status")
        st = app.status()
        assert st["echo"]["restarts"] >= 1 and st["echo"]["exit_code"] == 137, st
        assert st["generator"]["restarts"] == 0 and st["generator"]["running"], st
        kinds = [(e.container, e.kind) for e in app.events()]
        killed = kinds.index(("echo", "killed"))
        assert ("echo", "exited") in kinds[killed:] and ("echo", "restarted") in kinds[killed:], kinds
        assert kinds.index(("echo", "exited"), killed) < kinds.index(("echo", "restarted"), killed), kinds
        assert app.data()[:len(first)] == first  # the scratch volume outlived echo's restart


def test_single_image_hides_a_dead_echo(rt) -> None:
    with rt.up("single-image", interval=0.3, port=0, name=_name("si")) as app:
        app.wait_ready(timeout=60)
        app.kill("echo")
        app.wait_until(lambda: not app.answers(), 10, "/data to stop answering")
        time.sleep(2)  # time for a restart, if anything noticed
        st = app.status()["app"]
        assert st["running"] and st["restarts"] == 0, st
        assert not app.answers()
        commands = [r["command"] for r in app.processes()]
        assert not any("echo.py" in c for c in commands) and any("generator.sh" in c for c in commands), commands
        with pytest.raises(NotSupported, match="PID 1"):
            app.kill("app")


def test_single_image_with_an_init_restarts_the_container(rt) -> None:
    with rt.up("single-image", supervisor="init", interval=0.3, port=0, name=_name("sinit")) as app:
        app.wait_ready(timeout=60)
        assert "combined-init" in app.status()["app"]["image"]
        app.kill("echo")
        app.wait_until(lambda: app.status()["app"]["restarts"] >= 1, 30, "the container to restart")
        app.wait_until(app.answers, 30, "/data to answer again")


def test_service_is_found_by_dns_and_the_url_follows_a_new_pod(rt) -> None:
    from appcoup_lib.runtimes.kubernetes.client import call

    name = _name("svc")
    with rt.up("service", interval=0.3, port=0, name=name) as app:
        app.wait_ready(timeout=60)
        assert f"adapter.{name}.svc.cluster.local" in app.exec("echo", "sh", "-c", "echo $SOURCE_URL")
        before = app.data()
        assert before
        # The Deployment replaces a deleted pod: the port-forward finds the new one by itself.
        old = app.pod_of("echo")
        part = app.part("echo")
        call(part.conn.core().delete_namespaced_pod, old, part.namespace, grace_period_seconds=0, what="delete")
        app.wait_until(lambda: app.pods("echo") != [old] and app.answers(), 60, "a new echo pod serving /data")
        assert app.pod_of("echo") != old
        assert app.data()[:len(before)] == before  # the numbers live beside the generator, not in echo
        assert any(e.kind == "replaced" and e.container == "echo" for e in app.events())


def test_volume_outlives_the_generator(rt) -> None:
    from appcoup_lib.runtimes.kubernetes.client import call

    with rt.up("volume", interval=0.3, port=0, name=_name("vol")) as app:
        app.wait_ready(timeout=90)
        app.wait_until(lambda: len(app.data()) >= 3, 20, "three numbers")
        before = app.data()
        part = app.part("generator")
        old = app.pod_of("generator")
        call(part.conn.core().delete_namespaced_pod, old, part.namespace, grace_period_seconds=0, what="delete")
        def replaced() -> bool:
            try:
                return app.pod_of("generator") != old and app.status()["generator"]["running"]
            except NotFound:  # the moment between the old pod's deletion and the new one's creation
                return False

        app.wait_until(replaced, 60, "a new generator pod")
        app.wait_until(lambda: len(app.data()) > len(before) + 1, 30, "more numbers from the new generator")
        assert app.data()[:len(before)] == before


def test_federation_crosses_clusters(k8s_cluster, k8s_cluster_b, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setenv("APPCOUP_PEER_KUBECONFIG", k8s_cluster_b.kubeconfig)
    rt = ac.runtime("kubernetes")
    with rt.up("federation", interval=0.3, port=0, name=_name("fed")) as app:
        app.wait_ready(timeout=120)
        st = app.status()
        assert st["echo"]["node"] != st["generator"]["node"], st  # two clusters, two nodes
        first = app.data()
        app.wait_until(lambda: len(app.data()) > len(first), 20, "more numbers across the clusters")
        app.kill("adapter")  # the other cluster's side fails: echo's /data fails, then comes back
        app.wait_until(lambda: app.status()["adapter"]["restarts"] >= 1, 30, "the adapter to restart")
        app.wait_until(lambda: app.answers() and len(app.data()) > 0, 30, "numbers again")


def test_federation_without_a_second_cluster_says_what_is_needed(k8s_cluster, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("APPCOUP_PEER_KUBECONFIG", raising=False)
    monkeypatch.delenv("APPCOUP_PEER_CONTEXT", raising=False)
    with pytest.raises(NotSupported, match="second cluster") as e:
        ac.runtime("kubernetes").up("federation", port=0, name=_name("fed1"))
    assert "peer=" in e.value.fix


def test_separate_is_not_available(rt) -> None:
    with pytest.raises(NotSupported, match="separate"):
        rt.up("separate", port=0)


@pytest.mark.parametrize("server", ["https://127.0.0.1:1", "https://10.255.255.1:6443"])
def test_a_kubeconfig_pointing_nowhere_answers_fast_with_the_fix(tmp_path, monkeypatch, server) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters: [{{name: nowhere, cluster: {{server: "{server}", insecure-skip-tls-verify: true}}}}]
        users: [{{name: me, user: {{token: abc}}}}]
        contexts: [{{name: nowhere, context: {{cluster: nowhere, user: me}}}}]
        current-context: nowhere
        """))
    monkeypatch.setenv("KUBECONFIG", str(kc))
    t0 = time.monotonic()
    av = ac.runtimes.availability("kubernetes")
    assert time.monotonic() - t0 < 5
    assert not av.ok and "does not answer" in av.detail and "kubectl cluster-info" in av.fix, av


def test_a_claim_that_stays_pending_is_the_reason_given(k8s_cluster) -> None:  # noqa: F811
    rt = ac.runtime("kubernetes", storage_class="appcoup-no-such-class")
    with rt.up("volume", interval=0.5, port=0, name=_name("pvc")) as app:
        with pytest.raises(NotReady) as e:
            app.wait_ready(timeout=60)
        assert "PersistentVolumeClaim data stays Pending" in e.value.why
        assert "appcoup-no-such-class" in e.value.why


def test_an_image_that_cannot_be_pulled_is_the_reason_given(rt) -> None:
    with rt.up("pod", interval=0.5, port=0, name=_name("img")) as app:
        app.wait_ready(timeout=60)
        app.replace("echo", "appcoup/echo:not-built-anywhere")  # a bare pod's container changes in place
        app.wait_until(lambda: not app.answers(), 30, "echo to stop")
        with pytest.raises(NotReady) as e:
            app.wait_ready(timeout=60)
        assert "ErrImagePull" in e.value.why or "ImagePullBackOff" in e.value.why, e.value.why
        assert app.status()["generator"]["restarts"] == 0  # in place: the other container went on


def test_a_back_off_after_kills_is_waited_out_not_reported(rt) -> None:
    with rt.up("pod", interval=0.5, port=0, name=_name("backoff")) as app:
        app.wait_ready(timeout=60)
        for n in (1, 2):  # the first restart is immediate, the second waits out a back-off (10 s)
            app.wait_until(lambda: app.status()["echo"]["running"], 60, "echo running")
            app.kill("echo")
            app.wait_until(lambda n=n: app.status()["echo"]["restarts"] >= n or not app.status()["echo"]["running"],
                           30, "the kill to show")
        app.wait_ready(timeout=60)  # CrashLoopBackOff after SIGKILLs: it comes back, so no NotReady
        # echo serves a moment before the kubelet's next status update shows its new restart count
        app.wait_until(lambda: app.status()["echo"]["restarts"] >= 2, 15, "the second restart to show")


def test_a_container_that_cannot_start_is_the_reason_given(rt) -> None:
    from appcoup_lib import images

    with rt.up("pod", interval=0.5, port=0, name=_name("crash")) as app:
        app.wait_ready(timeout=60)
        # echo's command (python3) does not exist in the busybox image of the generator: it cannot start.
        app.replace("echo", images.ensure(["generator"], progress=False)["generator"], timeout=5)
        with pytest.raises(NotReady) as e:
            app.wait_ready(timeout=60)
        assert "container echo" in e.value.why
        assert any(r in e.value.why for r in ("CrashLoopBackOff", "RunContainerError", "CreateContainerError")), e.value.why


def test_an_image_missing_on_an_unknown_cluster_names_the_hook(k8s_cluster, monkeypatch) -> None:  # noqa: F811
    from appcoup_lib.runtimes.kubernetes import images as kimages
    from appcoup_lib.runtimes.kubernetes.client import connect

    monkeypatch.delenv("APPCOUP_IMAGE_LOADER", raising=False)
    conn = connect()
    with pytest.raises(AppcoupError, match="APPCOUP_IMAGE_LOADER"):
        kimages.ensure_on_cluster(conn, kimages.Flavour("other"), ["appcoup/echo:not-here"], kimages.list_nodes(conn))


def test_rbac_denials_name_the_verb_and_resource(k8s_cluster, k8s_namespace, tmp_path, monkeypatch) -> None:  # noqa: F811
    from appcoup_lib.runtimes.kubernetes.client import call, connect

    conn = connect()
    core = conn.core()
    call(core.create_namespaced_service_account, k8s_namespace, {"metadata": {"name": "learner"}}, what="sa")
    token = call(core.create_namespaced_service_account_token, "learner", k8s_namespace,
                 {"spec": {"expirationSeconds": 600}}, what="token")["status"]["token"]
    kc = tmp_path / "kubeconfig"
    kc.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: Config
        clusters: [{{name: c, cluster: {{server: "{conn.server}", insecure-skip-tls-verify: true}}}}]
        users: [{{name: learner, user: {{token: "{token}"}}}}]
        contexts: [{{name: learner, context: {{cluster: c, user: learner}}}}]
        current-context: learner
        """))
    monkeypatch.setenv("KUBECONFIG", str(kc))
    av = ac.runtimes.availability("kubernetes")
    # No namespaces of its own: the shared mode, in the context's namespace, where it may not run pods either.
    assert not av.ok and "may not create namespaces" in av.detail and "may not create pods in 'default'" in av.detail, av
    with pytest.raises(AppcoupError) as e:
        ac.runtimes.runtime_class("kubernetes")().up("pod", port=0, name=_name("rbac"))
    text = str(e.value)
    assert "RBAC" in text and "cannot" in text and 'resource "configmaps"' in text, text


def test_clean_removes_only_the_learners_own_apps(rt, monkeypatch) -> None:
    from appcoup_lib.runtimes.kubernetes import KubernetesRuntime

    monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}a")
    a = rt.up("pod", interval=1, port=0, name=_name("la"), detach=True)
    monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}b")
    b = rt.up("pod", interval=1, port=0, name=_name("lb"))
    try:
        assert {_name("la"), _name("lb")} <= _our_namespaces()
        monkeypatch.setenv("APPCOUP_LEARNER", f"{TAG}a")
        assert [r["name"] for r in rt.running()] == [_name("la")]
        removed = KubernetesRuntime.clean()
        assert any(_name("la") in r for r in removed) and not any(_name("lb") in r for r in removed), removed
        assert _our_namespaces() == {_name("lb")}
    finally:
        b.down()
        a.close()


def test_nothing_is_left_after_a_killed_kernel_and_clean(k8s_cluster) -> None:  # noqa: F811
    name = _name("kernel")
    learner = f"{TAG}k"
    script = textwrap.dedent(f"""
        import appcoup_lib as ac
        app = ac.runtime("kubernetes").up("pod", interval=0.5, port=0, name={name!r})
        app.wait_ready(timeout=60)
        print("ready", flush=True)
        import time; time.sleep(120)
    """)
    env = {**os.environ, "APPCOUP_LEARNER": learner}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)  # no atexit, no finally: as when a Jupyter kernel is killed
        proc.wait()
    assert name in _our_namespaces()  # the cluster keeps it running
    # `appcoup clean` as the learner runs it (this runtime only: the Docker engine here is shared).
    r = subprocess.run([sys.executable, "-m", "appcoup_lib", "clean", "--runtime", "kubernetes"], env=env,
                       capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == 0 and f"namespace {name}" in r.stdout, r.stdout + r.stderr
    assert name not in _our_namespaces()
    from appcoup_lib.runtimes.kubernetes.client import call, connect

    left = call(connect().core().list_pod_for_all_namespaces, label_selector=f"{LEARNER_LABEL}={learner}",
                what="list").get("items", [])
    assert not left


@pytest.mark.serial  # notebook 06 beside it uses cluster B
@pytest.mark.skipif(os.environ.get("APPCOUP_TEST_DISRUPTIVE") != "1",
                    reason="restarts cluster B's API server: set APPCOUP_TEST_DISRUPTIVE=1")
def test_an_api_server_restart_is_reported_and_the_app_stays_removable(k8s_cluster_b) -> None:  # noqa: F811
    rt = ac.runtime("kubernetes", kubeconfig=k8s_cluster_b.kubeconfig)
    app = rt.up("pod", interval=0.5, port=0, name=_name("apisrv"))
    try:
        app.wait_ready(timeout=60)
        pidfile = k8s_cluster_b.run_dir / "kube-apiserver.pid"
        os.kill(int(pidfile.read_text()), signal.SIGKILL)
        with pytest.raises(AppcoupError, match="does not answer"):
            app.status()
        env = {**os.environ, "APPCOUP_CLUSTER_NAME": "b"}
        env.pop("APPCOUP_BUILD_IMAGES_CMD", None)
        r = subprocess.run([str(ROOT / "tests" / "cluster" / "up")], capture_output=True, text=True, timeout=600,
                           env=env, check=False)
        assert r.returncode == 0, r.stderr[-3000:]
        app.wait_until(lambda: app.status()["echo"]["running"], 60, "the API server to answer again")
        app.wait_ready(timeout=60)  # the pods ran on; the port-forward goes through the new API server
    finally:
        app.down()
    assert _name("apisrv") not in _our_namespaces(k8s_cluster_b.kubeconfig)

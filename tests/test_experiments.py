"""The measurements behind the claims of notebooks 01-04 (appcoup_lib/experiments.py and the
rollout strategies), each asserting the behaviour the text claims, on each runtime where it applies."""

from __future__ import annotations

import uuid

import pytest

import appcoup_lib as ac
from appcoup_lib import experiments as ex
from appcoup_lib.scenarios import scenario

pytestmark = pytest.mark.slow
RUNTIMES = [pytest.param(r, marks=getattr(pytest.mark, r)) for r in ("local", "docker", "kubernetes")]
LOCAL_DOCKER = [pytest.param(r, marks=getattr(pytest.mark, r)) for r in ("local", "docker")]


def _name(what: str) -> str:
    return f"appcoup-t-{what}-{uuid.uuid4().hex[:5]}"


# -- data: the variants ---------------------------------------------------------------------------
def test_variants_are_data():
    sep = scenario("separate")
    assert sep.restart == "never"
    on = sep.with_restart("on-failure")
    assert on.restart == "on-failure" and all(u.restart == "on-failure" for u in on.units)
    assert on.container("echo").healthcheck == "/healthz" and on.container("generator").healthcheck is None
    one = scenario("single-image").with_supervisor("restarting")
    assert one.supervisor == "restarting" and one.container("app").image == "combined-restart"
    with pytest.raises(ac.InvalidInput):
        sep.with_restart("sometimes")  # type: ignore[arg-type]
    with pytest.raises(ac.InvalidInput):
        scenario("single-image").with_supervisor("s6")  # type: ignore[arg-type]


def test_pod_as_a_deployment_is_the_same_pod():
    from appcoup_lib.runtimes.kubernetes import translate

    sc = scenario("pod")
    kw = {"tags": {"generator": "g:1", "echo": "e:1"}, "interval": 0.5, "learner": "me", "annotations": {}}
    pod = translate.plan(sc, "pod", "appcoup-x-pod", **kw).objects[0]
    dep = translate.plan(sc, "pod", "appcoup-x-pod", workload="deployment", **kw).objects[0]
    assert pod["kind"] == "Pod" and dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 1
    assert dep["spec"]["template"]["spec"] == pod["spec"]
    sel = dep["spec"]["selector"]["matchLabels"]
    assert sel.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


# -- 1. restart back-off ------------------------------------------------------------------------
@pytest.mark.local
def test_local_restarts_at_once_but_backs_off_a_failed_start(local):
    with local.up("pod", interval=0.5, port=0, name=_name("bo")) as app:
        quick = ex.backoff(app, kills=3)
        assert all(d is not None and d < 1.5 for d in quick.delays), quick
        # Killed within startsecs=1 of its start, a program has "failed to start": 1 s, 2 s, ... later.
        failed = ex.backoff(app, kills=3, settle=0)
        d = failed.delays
        assert all(x is not None for x in d), failed
        assert d[2] > d[1] + 0.5 and d[2] >= 1.8, failed


@pytest.mark.docker
def test_docker_restart_policy_doubles_its_delay():
    rt = ac.runtime("docker")
    with rt.up("pod", interval=0.5, port=0, name=_name("bo")) as app:
        b = ex.backoff(app, kills=5, settle=0.5)
        d = [x for x in b.delays if x is not None]
        assert len(d) == 5, b
        assert d[-1] > d[0] + 0.5 and d[-1] > 1.0, b  # 0.1, 0.2, 0.4, 0.8, 1.6 s plus the start


@pytest.mark.kubernetes
def test_kubernetes_crash_loop_back_off_grows():
    rt = ac.runtime("kubernetes")
    with rt.up("pod", interval=0.5, port=0, name=_name("bo")) as app:
        b = ex.backoff(app, kills=3)
        d = b.delays
        assert all(x is not None for x in d), b
        # The first restart is at once; then the kubelet's 10 s, 20 s ... on top of its restart and the
        # port-forward (noisy on a loaded machine: its sync loop, so no ratio between the two is asserted).
        assert d[1] > d[0] + 5 and d[2] > d[0] + 5, b
        assert any("BackOff" in r["seen while down"] for r in b.rows), b


# -- 2. Recreate against RollingUpdate ----------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_recreate_fails_requests_rolling_fails_none(runtime):
    rt = ac.runtime(runtime)
    with rt.up("service", interval=0.5, port=0, name=_name("strat")) as app:
        app.wait_ready(timeout=120)
        assert app.replicas("echo") == 1
        recreate = app.rollout("echo", strategy="recreate")
        assert recreate["strategy"].startswith("recreate"), recreate
        assert recreate["failed_requests"] > 0, recreate
        rolling = app.rollout("echo", strategy="rolling")
        assert rolling["strategy"].startswith("rolling"), rolling
        assert rolling["failed_requests"] == 0 and rolling["requests"] > 10, rolling
        assert rolling["generator_restarts"] == 0 and recreate["generator_restarts"] == 0
    with pytest.raises(ac.InvalidInput):
        app.rollout("echo", strategy="blue-green")  # type: ignore[arg-type]


# -- 3. a bare Pod patched in place against a Deployment's new pod -------------------------------------
@pytest.mark.kubernetes
def test_deployment_change_loses_the_emptydir_pod_patch_keeps_it():
    rows = {r["workload"]: r for r in ex.pod_vs_deployment(ac.runtime("kubernetes"))}
    bare, dep = rows["bare Pod"], rows["Deployment"]
    assert bare["same pod"] and bare["containers restarted"] == ["echo"], bare
    assert bare["numbers lost"] == 0 and bare["numbers after"] >= bare["numbers before"], bare
    assert not dep["same pod"] and dep["containers restarted"] == ["echo", "generator"], dep
    assert dep["numbers lost"] == dep["numbers before"] > 0, dep


# -- 4. a hang: alive, not answering ---------------------------------------------------------------------
@pytest.mark.parametrize("runtime", LOCAL_DOCKER)
def test_nothing_notices_a_hang_without_a_liveness_probe(runtime):
    rt = ac.runtime(runtime)
    with rt.up("pod", interval=0.5, port=0, name=_name("hang")) as app:
        h = ex.hang(app, wait=5)
        assert h["data_stopped"] and not h["data_back"] and h["restarted"] == [], h
        app.wait_ready(timeout=10)  # SIGCONT: it goes on as if nothing happened


@pytest.mark.kubernetes
def test_kubernetes_liveness_probe_restarts_only_echo_the_single_image_never_notices():
    rt = ac.runtime("kubernetes")
    with rt.up("pod", interval=0.5, port=0, name=_name("hang")) as app:
        h = ex.hang(app, wait=45)
        assert h["data_back"] and h["restarted"] == ["echo"], h
        assert h["back_after"] < 40, h
    with rt.up("single-image", interval=0.5, port=0, name=_name("hang1")) as app:
        h = ex.hang(app, wait=12)
        assert h["data_stopped"] and not h["data_back"] and h["restarted"] == [], h


# -- 5. separate runs with a restart policy -------------------------------------------------------------
@pytest.mark.parametrize("runtime", LOCAL_DOCKER)
def test_a_restart_policy_repairs_a_crash_not_a_hang(runtime):
    r = ex.restart_policy(ac.runtime(runtime), "on-failure", wait=8)
    assert r["crash_back_after"] is not None and r["crash_restarts"] >= 1, r
    assert r["hang"]["data_stopped"] and r["hang"]["restarted"] == [], r
    if runtime == "docker":  # the HEALTHCHECK saw it, and restarted nothing
        assert "unhealthy" in r["hang"]["health"], r


# -- 6. one image, a restarting supervisor ---------------------------------------------------------------
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_restarting_supervisor_brings_echo_back_unseen(runtime):
    r = ex.supervised(ac.runtime(runtime), "restarting")
    assert r["data_back"] and r["back_after"] < 10, r
    assert r["containers"] == ["app"] and r["container_restarts"] == 0, r
    assert r["supervisor_says"] and "echo exited" in r["supervisor_says"][0], r

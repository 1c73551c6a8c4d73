"""Loose coupling's verbs on every runtime that has them: scale, rollout, recreate, and the
measurements of notebooks 04-07. Everything runs for real (processes, containers)."""

from __future__ import annotations

import time
import uuid

import pytest

import appcoup_lib as ac
from appcoup_lib import loose

RUNTIMES = [pytest.param(r, marks=getattr(pytest.mark, r)) for r in ("local", "docker", "kubernetes")]
# On Kubernetes, `pod` and `single-image` are bare Pods (no replicas, no rollout), and the
# `volume` Deployments use the Recreate strategy (a ReadWriteOnce claim): the tests say so.
K8S = "kubernetes"


def _name(what: str) -> str:
    return f"appcoup-t-{what}-{uuid.uuid4().hex[:5]}"


@pytest.fixture(params=RUNTIMES)
def rt(request):
    return ac.runtime(request.param)


def test_every_runtime_declares_the_loose_abilities():
    for name in ("local", "docker", "kubernetes"):
        cls = ac.runtimes.runtime_class(name)
        assert {"scale", "rollout", "recreate"} <= cls.app_abilities


def test_replicas_of_echo_all_serve_the_same_numbers(rt):
    with rt.up("service", interval=0.2, port=0, name=_name("svc")) as app:
        app.wait_ready()
        first_url = app.url
        app.scale("echo", 3)
        assert app.replicas("echo") == 3
        if rt.name != K8S:
            assert app.url != first_url, "a front now holds the learner's port"
        seen = loose.spread(app, 30)
        assert len(seen.replicas) == 3, f"requests must spread over every replica: {seen.served}"
        assert seen.failed == 0
        assert seen.same_numbers, seen.table()
        app.scale("echo", 1)
        assert app.replicas("echo") == 1
        assert len(loose.spread(app, 5).replicas) == 1


def test_copies_of_a_pod_each_serve_their_own_numbers(rt):
    with rt.up("pod", interval=0.2, port=0, name=_name("pod")) as app:
        app.wait_ready()
        if rt.name == K8S:
            with pytest.raises(ac.NotSupported, match="bare Pod"):
                app.scale("app", 3)
            return
        app.scale("app", 3)
        time.sleep(0.3)
        seen = loose.spread(app, 15)
        assert len(seen.replicas) == 3
        assert not seen.same_numbers, "three generators cannot have written the same random numbers"


def test_rollout_leaves_the_generator_alone(rt):
    with rt.up("service", interval=0.2, port=0, name=_name("roll")) as app:
        app.wait_ready()
        alone = app.rollout("echo")
        assert alone["strategy"].startswith("rolling" if rt.name == K8S else "recreate")
        assert alone["replaced"] == ["echo"]
        assert alone["generator_restarts"] == 0 and "generator" in alone["untouched"]
        assert alone["requests"] > 0
        app.scale("echo", 2)
        rolled = app.rollout("echo")
        assert rolled["strategy"].startswith("rolling")
        assert rolled["failed_requests"] == 0, rolled
        assert rolled["generator_restarts"] == 0
        assert app.status()["generator"]["restarts"] == 0
        assert loose.spread(app, 6).same_numbers


def test_rollout_in_one_image_restarts_the_generator_too(rt):
    with rt.up("single-image", interval=0.2, port=0, name=_name("one")) as app:
        app.wait_ready()
        if rt.name == K8S:
            with pytest.raises(ac.NotSupported, match="bare Pod"):
                app.rollout("echo")
            return
        result = app.rollout("echo")
        assert result["replaced"] == ["app"] or result["restarts"]["app"] >= 1
        assert result["generator_restarts"] == 1


def test_volume_data_outlives_both_units(rt):
    with rt.up("volume", interval=0.2, port=0, name=_name("vol")) as app:
        app.wait_ready(timeout=120)
        time.sleep(0.5)
        before = app.data()
        app.recreate("generator", "echo")
        app.wait_ready(timeout=120)
        after = app.data()
        assert after[: len(before)] == before, "the persistent volume keeps every number"


def test_pod_scratch_volume_goes_with_the_pod(rt):
    with rt.up("pod", interval=0.2, port=0, name=_name("scr")) as app:
        app.wait_ready()
        time.sleep(0.5)
        before = app.data()
        app.recreate("app")
        app.wait_ready(timeout=120)
        after = app.data()
        assert after[: len(before)] != before, "a new pod starts with an empty scratch volume"


def test_bulk_and_latency_measure_something(rt):
    with rt.up("volume", interval=0.2, port=0, name=_name("bulk")) as app:
        app.wait_ready()
        result = loose.bulk(app, 0.5, rounds=1)
        assert result["bytes"] >= 500_000 and result["mb_per_s"] > 0
        lat = loose.latencies(app, 10)
        assert len(lat) == 10 and all(x > 0 for x in lat)
        if rt.name == K8S:  # no Service in front of echo: from echo's own container, to its localhost
            assert f"inside the cluster: from container echo of pod {app.status()['echo']['pod']} " \
                   "to http://localhost:8000/data" in result["where"], result["where"]
        else:
            assert result["where"] == f"from this machine via app.url ({app.url}/data)"


def test_latency_and_bulk_are_taken_where_the_coupling_is(rt):
    # On a cluster app.url is a port-forward through the API server: timed there, the tunnel would
    # be most of every number. So they are timed inside it, and say from where, to which URL.
    with rt.up("pod", interval=0.2, port=0, name=_name("where")) as pod:
        pod.wait_ready()
        timed = loose.timed_gets(pod, 60)
        assert len(timed.seconds) == 60 and all(x > 0 for x in timed.seconds)
        assert all(b > 0 for b in timed.bytes), "every answer carried numbers"
        tunnel = loose.timed_gets(pod, 30, via="url")
        assert tunnel.where == f"from this machine via app.url ({pod.url}/data)"
        if rt.name == K8S:
            assert timed.where == (f"inside the cluster: from container echo of pod {pod.status()['echo']['pod']} "
                                   "to http://localhost:8000/data (echo itself, inside its pod)")
            # The tunnel's own time (API server, kubelet) is in every request through it, none inside.
            assert timed.percentile(50) < tunnel.percentile(50), (timed.percentile(50), tunnel.percentile(50))
        else:
            assert timed.where == tunnel.where, "here app.url is the coupling's own way in"
    with rt.up("service", interval=0.2, port=0, name=_name("where")) as svc:
        svc.wait_ready()
        timed = loose.timed_gets(svc, 20)
        moved = loose.bulk(svc, 0.3, rounds=2)
        assert moved["bytes"] >= 300_000 and moved["mb_per_s"] > 0
        assert moved["where"] == timed.where
        if rt.name == K8S:  # echo has a Service: from the adapter's container (another pod), to its name
            service = svc.part("echo").obj("echo")
            assert timed.where == (f"inside the cluster: from container adapter of pod {svc.status()['adapter']['pod']} "
                                   f"to http://{service}.{svc.part('echo').namespace}.svc.cluster.local:8000/data "
                                   f"(the Service {service})")
        else:
            assert timed.where == f"from this machine via app.url ({svc.url}/data)"
        assert len(loose.latencies(svc, 3)) == 3, "latencies: the seconds alone, as before"


def test_scaling_another_unit_says_why_not(rt):
    with rt.up("service", interval=0.2, port=0, name=_name("no")) as app:
        with pytest.raises(ac.NotSupported) as e:
            app.scale("generator", 2)
        assert "echo" in str(e.value)
        with pytest.raises(ac.InvalidInput):
            app.scale("echo", 0)


@pytest.mark.docker
def test_docker_dns_answers_the_alias_with_every_copy():
    rt = ac.runtime("docker")
    with rt.up("service", interval=0.2, port=0, name=_name("dns")) as app:
        app.wait_ready()
        assert len(app.resolve("adapter")["addresses"]) == 1
        app.scale("echo", 2)
        assert len(app.resolve("echo", container="adapter")["addresses"]) == 2


@pytest.mark.parametrize("name", [pytest.param(r, marks=getattr(pytest.mark, r)) for r in ("local", "docker")])
def test_the_front_routes_around_a_dead_copy(name):
    # What a Service does for a crashed replica: the learner's requests keep being answered.
    from appcoup_lib.measure import Poller

    rt = ac.runtime(name)
    with rt.up("service", interval=0.2, port=0, name=_name("dead")) as app:
        app.wait_ready()
        app.scale("echo", 2)
        with Poller(app, every=0.02) as poll:
            time.sleep(0.3)
            app.kill("echo")
            time.sleep(1.5)
        assert len(poll.samples) > 20
        assert poll.failures == 0, poll.timeline().gaps()

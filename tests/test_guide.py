"""Notebook 07's decision guide, read from a real scorecard; the spec's pictures side by side; and
``at_work``/``wiring`` on two real clusters (federation)."""

from __future__ import annotations

import os
import re

import pytest
import yaml
from cluster.conftest_cluster import k8s_cluster, k8s_cluster_b  # noqa: F401

import appcoup_lib as ac
from appcoup_lib import guide, loose


@pytest.fixture(scope="module")
def card():
    return loose.scorecard(ac.runtime("local"), ["pod", "service"], interval=0.2, mb=0.5,
                           recovery_timeout=5.0, progress=None)


@pytest.mark.local
@pytest.mark.slow
def test_the_guide_quotes_a_real_scorecard(card):
    rows = {r["scenario"]: r for r in card}
    g = guide.decision_guide(card)
    text = str(g)
    said = dict(g.lines)
    # Every sentence quotes this table: the numbers in it are the table's own.
    assert f"{rows['pod']['first number (s)']} s in a pod" in said["Colocation"]
    assert f"{rows['service']['first number (s)']} s through a Service" in said["Colocation"]
    fastest = min(("pod", "service"), key=lambda s: rows[s]["first number (s)"])
    assert said["Fastest"].startswith(f"to a first number here: {fastest} ")
    # On local, a pod's copy is a copy of its generator; service's copies of echo share one.
    assert rows["pod"]["2 replicas serve"] == "different numbers"
    assert rows["service"]["2 replicas serve"] == "the same numbers"
    assert "the same numbers in service" in said["Scaling"] and "its own in pod" in said["Scaling"]
    assert rows["service"]["generator restarts on upgrade"] == 0
    calm = ", ".join(s for s in rows if rows[s]["generator restarts on upgrade"] == 0)
    assert f"did not in {calm}." in said["Ownership"] or f"running in {calm}:" in said["Ownership"]
    assert set(g.topics()) <= set(guide.TOPICS)
    assert "<ul class='appcoup-guide'>" in g._repr_html_() and text.startswith("- ")
    # and the exercise of 07 agrees with the same two columns
    from appcoup_lib.exercises import check_loose_scenarios

    assert check_loose_scenarios(card, guess=["service"]).ok is True


def test_the_guide_leaves_out_what_the_table_cannot_answer():
    g = guide.decision_guide([{"scenario": "pod", "first number (s)": 0.4, "recovery (s)": "not within 5 s"}])
    assert g.topics() == ["Recovery", "Fastest"]
    assert "within 5 s in pod" in dict(g.lines)["Recovery"]
    assert str(guide.decision_guide([])).startswith("(the scorecard answers none")


@pytest.mark.parametrize("runtime", ["local", "docker", "kubernetes"])
def test_pictures_show_every_scenario_of_a_runtime_side_by_side(runtime):
    names = [s.name for s in ac.SCENARIOS.values() if runtime in s.runtimes]
    row = guide.pictures(names, runtime)
    page = row._repr_html_()
    assert page.count("<svg") == len(names) and "display:flex" in page
    for name in names:
        assert re.search(rf"{re.escape(name)} on {runtime}", page)
    assert guide.picture("pod", runtime)._repr_html_().count("<svg") == 1


def test_wiring_without_an_app_is_the_manifests_as_written():
    a, b = guide.wiring().parts
    assert a.title.startswith("cluster A: manifests/federation/cluster-a")
    docs_a, docs_b = list(yaml.safe_load_all(a.text)), list(yaml.safe_load_all(b.text))
    assert [(d["kind"], d["spec"]["type"]) for d in docs_a] == [("Service", "NodePort")]
    assert docs_a[0]["spec"]["ports"][0]["nodePort"] == 30080
    # B: the Service without a selector (echo's own Service, with one, is not part of the wiring) and its slice
    assert [d["kind"] for d in docs_b] == ["Service", "EndpointSlice"] and "selector" not in docs_b[0]["spec"]
    assert docs_b[1]["endpoints"][0]["addresses"] == ["192.0.2.10"] and docs_b[1]["ports"][0]["port"] == 30080


@pytest.mark.kubernetes
@pytest.mark.cluster
@pytest.mark.slow
def test_at_work_on_two_clusters_shows_each_and_what_joins_them(k8s_cluster, k8s_cluster_b, monkeypatch):  # noqa: F811
    monkeypatch.setenv("APPCOUP_PEER_KUBECONFIG", k8s_cluster_b.kubeconfig)
    rt = ac.runtime("kubernetes")
    with rt.up("federation", interval=0.3, port=0, name=f"appcoup-gd{os.getpid() % 100000}-fed") as app:
        app.wait_ready(timeout=120)
        text = guide.at_work(app)
        a, b = guide.wiring(app).parts
    assert text.index("=== cluster A:") < text.index("(runs adapter, generator)") < text.index("=== cluster B:")
    assert "(runs echo)" in text
    # What kubectl printed agrees with what was applied: A's NodePort (allocated by A, asked for by
    # nobody), B's Service without a selector, and B's slice holding A's node address and that port.
    slice_ = next(d for d in yaml.safe_load_all(b.text) if d["kind"] == "EndpointSlice")
    address, port = slice_["endpoints"][0]["addresses"][0], slice_["ports"][0]["port"]
    assert "nodePort" not in next(yaml.safe_load_all(a.text))["spec"]["ports"][0]
    assert re.search(rf"service/adapter\s+NodePort\s+\S+\s+\S+\s+8080:{port}/TCP", text), text
    assert re.search(r"service/adapter\s+ClusterIP\s+\S+\s+\S+\s+8080/TCP\s+\S+\s+<none>", text), text
    assert re.search(rf"adapter-cluster-a\s+IPv4\s+{port}\s+{re.escape(address)}\s", text), text
    assert re.search(rf"\sReady\s.*\s{re.escape(address)}\s", text), "A's node, at the address B points at"
    assert "kubernetes.io/service-name=adapter -o wide" in text and "get nodes -o wide" in text
    answered = text.split("--- the GET /data adapter answered", 1)[1]
    assert '"GET /data' in answered and "/readyz" not in answered

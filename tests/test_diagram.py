"""app.diagram(): what the programs share, drawn from real apps.

The spec inference (which namespaces docker and kubernetes give the containers of a scenario) is a
pure function of (scenario, runtime name): it is tested as such, without a cluster. The pictures of
running apps are tested on the local runtime (and on docker when an engine answers); on local the
inference is also checked against the real ``/proc/<pid>/ns`` inodes of the app's processes.
"""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET

import pytest

import appcoup_lib as ac
from appcoup_lib.diagram import KINDS, Diagram, infer, layout, read_namespaces, render, topology, with_state

INTERVAL = 0.2
SVG = "{http://www.w3.org/2000/svg}"


def _shares(scenario: str, runtime: str) -> dict[tuple[str, str], set[str]]:
    return {(p.a, p.b): set(p.shared()) for p in infer(scenario, runtime).pairs()}


def _texts(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter(f"{SVG}text"))


def _boxes(svg: str) -> dict[str, tuple[str, ...]]:
    """Every drawn box by id: the geometry of the first rect of each ``data-id`` group."""
    out = {}
    for g in ET.fromstring(svg).iter(f"{SVG}g"):
        rect = g.find(f"{SVG}rect")
        if g.get("data-id") and rect is not None:
            out[g.get("data-id")] = tuple(rect.get(a) for a in ("x", "y", "width", "height"))
    return out


def _group(svg: str, data_id: str) -> ET.Element:
    return next(g for g in ET.fromstring(svg).iter(f"{SVG}g") if g.get("data-id") == data_id)


def _until(predicate, timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# -- the spec inference: pure functions of (scenario, runtime) ----------------------------------------
def test_docker_pod_shares_only_the_network():
    # The pod's containers join the pause container with network_mode=container:, and nothing else.
    assert _shares("pod", "docker") == {("generator", "echo"): {"net"}}


def test_kubernetes_pod_shares_network_ipc_and_pid_never_mount():
    # net + IPC: every pod; PID: the course's manifests set shareProcessNamespace; mount: never.
    assert _shares("pod", "kubernetes") == {("generator", "echo"): {"net", "ipc", "pid"}}
    pid = infer("pod", "kubernetes").namespace("pid", "echo")
    assert "shareProcessNamespace" in pid.why and "manifests/pod/pod.yaml" in pid.detail


def test_local_shares_every_host_namespace_and_says_it_is_not_isolated():
    for scenario in ("pod", "service", "separate", "volume"):
        topo = infer(scenario, "local")
        assert all(n.scope == "host" and n.source == "inferred" for n in topo.namespaces)
        assert all(set(p.shared()) == set(KINDS) for p in topo.pairs())
        text = _texts(render(topo))
        assert "the host's, shared with every process here" in text and "not isolated" in text
        assert "not a pod" in text


def test_service_pairs_share_nothing_across_pods():
    for runtime in ("docker", "kubernetes"):
        shares = _shares("service", runtime)
        assert shares[("adapter", "echo")] == set() and shares[("generator", "echo")] == set()
    assert _shares("service", "kubernetes")[("generator", "adapter")] == {"net", "ipc", "pid"}
    assert _shares("service", "docker")[("generator", "adapter")] == {"net"}
    hop = {rt: next(h for h in infer("service", rt).hops if h.kind == "service") for rt in ("local", "docker",
                                                                                            "kubernetes")}
    assert "no Service" in hop["local"].title and "DNS" in hop["docker"].title
    assert hop["kubernetes"].title == "Service adapter"


def test_single_image_programs_share_everything_of_their_one_container():
    for runtime in ("local", "docker", "kubernetes"):
        pairs = infer("single-image", runtime).pairs()
        assert [(p.a, p.b) for p in pairs] == [("generator", "echo")]
        assert set(pairs[0].shared()) == set(KINDS)


def test_volumes_and_clusters_as_each_runtime_makes_them():
    k = infer("pod", "kubernetes")
    assert k.volumes[0].title == "emptyDir" and k.units[0].volumes == ("data",)  # inside the pod
    assert infer("pod", "docker").volumes[0].title == "named volume"
    assert infer("volume", "kubernetes").volumes[0].title == "PersistentVolumeClaim"
    assert infer("separate", "docker").volumes[0].title == "bind mount"
    fed = infer("federation", "kubernetes")
    assert [b.title for b in fed.boundaries] == ["cluster A", "cluster B"]
    assert any(h.crosses_clusters for h in fed.hops)
    assert "port-forward" in next(h for h in k.hops if h.kind == "entry").note


@pytest.mark.parametrize("scenario", [s.name for s in ac.SCENARIOS.values() if len(s.runtimes) > 1])
def test_a_scenario_is_laid_out_the_same_on_every_runtime(scenario):
    sc = ac.scenario(scenario)
    where = {rt: {k: v for k, v in layout(infer(sc, rt)).boxes.items() if k.startswith(("container:", "process:"))}
             for rt in sc.runtimes}
    first = where[sc.runtimes[0]]
    assert all(w == first for w in where.values()), where


def test_read_inodes_override_the_inference():
    topo = infer("pod", "docker")
    inodes = {"generator": {"net": "net:[4026532001]", "pid": "4026532010", "ipc": "4026532011", "mnt": "1"},
              "echo": {"net": "4026532001", "pid": "4026532020", "ipc": "4026532021", "mnt": "2"}}
    read = with_state(topo, {"generator": {"running": True}, "echo": {"running": True}}, [], inodes)
    assert {n.source for n in read.namespaces} == {"read"}
    assert read.pairs()[0].shared() == ("net",)
    assert read.pairs()[0].source["net"] == "read"
    svg = render(read)
    assert "read from /proc" in _texts(svg)
    # A kind not read for every container stays what the spec says.
    partial = read_namespaces(topo, {"generator": {"net": "7"}, "echo": {}})
    assert all(n.source == "inferred" for n in partial)


def test_text_is_escaped():
    topo = infer("pod", "local", url="http://127.0.0.1:1/<&'\">")
    svg = render(topo)
    ET.fromstring(svg)  # parses: the odd characters were escaped
    assert "/<&'\">/data" in _texts(svg)


# -- real apps -------------------------------------------------------------------------------------------
def _names(app: ac.App) -> set[str]:
    return {n for c in app.scenario.containers for n in (c.name, *c.runs)}


@pytest.mark.local
@pytest.mark.parametrize("scenario", ["pod", "single-image", "service"])
def test_a_running_app_drawn_then_echo_killed(local, monkeypatch, scenario):
    monkeypatch.setenv("APPCOUP_HEADLESS", "1")
    with local.up(scenario, interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=30, progress=False)
        d = app.diagram()
        assert isinstance(d, Diagram) and not d.alive, "headless: a snapshot, no thread"
        svg = d._repr_svg_()
        assert svg == d.svg() and svg in d._repr_html_()
        text = _texts(svg)
        for name in _names(app):
            assert name in text, name
        assert app.url in text
        for c in app.scenario.containers:
            assert _group(svg, f"container:{c.name}").get("data-running") == "true"
        topo = topology(app)
        assert all(n.scope == "host" for n in topo.namespaces)
        assert "not isolated" in text
        before = _boxes(svg)

        app.kill("echo")
        if scenario == "single-image":
            # The naive supervisor does not notice: the container runs on, its echo process is dead.
            _until(lambda: not any("echo.py" in r["command"] for r in app.processes()), 10, "echo to die")
            after = d.refresh().svg()
            assert _group(after, "container:app").get("data-running") == "true"
            dead = _group(after, "process:app/echo")
            assert dead.get("data-running") == "false"
            assert dead.find(f"{SVG}rect").get("fill") == "#ffebee"
        else:
            _until(lambda: not app.status()["echo"]["running"] or app.status()["echo"]["restarts"] >= 1, 10,
                   "echo to die")
            if not app.status()["echo"]["running"]:
                after = d.refresh().svg()
                echo = _group(after, "container:echo")
                assert echo.get("data-running") == "false"
                assert echo.find(f"{SVG}rect").get("stroke") == "#c62828"  # red
            app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1 and app.status()["echo"]["running"],
                           15, "echo to restart")
            after = d.refresh().svg()
            assert _group(after, "container:echo").get("data-restarts") == "1"
            assert "restarts 1" in _texts(after)
        assert _boxes(after) == before, "a live change moves nothing"
        out = d.save(os.path.join(os.environ["APPCOUP_STATE"], f"{scenario}.svg"))
        ET.parse(out)
    d.refresh()
    assert "the app is down" in _texts(d.svg())


@pytest.mark.local
def test_local_inference_matches_proc(local):
    """What the picture infers for local, checked against the kernel: every program's namespaces
    are this test process's own (the host's)."""
    with local.up("pod", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=30, progress=False)
        st = app.status()
        inodes = {c: {k: os.readlink(f"/proc/{s['pid']}/ns/{k}") for k in KINDS} for c, s in st.items()}
        for c in inodes:
            for k in KINDS:
                assert inodes[c][k] == os.readlink(f"/proc/self/ns/{k}")
        read = with_state(infer("pod", "local"), st, app.processes(), inodes)
        assert all(n.source == "read" and n.scope == "host" for n in read.namespaces)
        assert _boxes(render(read)) == _boxes(render(infer("pod", "local")))


@pytest.mark.local
def test_live_widget_updates_and_stops_with_the_app(local, monkeypatch):
    monkeypatch.setenv("APPCOUP_HEADLESS", "0")
    import ipywidgets

    with local.up("pod", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=30, progress=False)
        w = app.diagram(live=True)
        assert isinstance(w, ipywidgets.HTML)
        d = w.diagram
        assert d.alive and "<svg" in w.value
        geometry = _boxes(w.value[w.value.index("<svg"):w.value.index("</svg>") + 6])
        app.kill("echo")
        _until(lambda: "restarts 1" in w.value, 20, "the widget to show echo's restart")
        svg = w.value[w.value.index("<svg"):w.value.index("</svg>") + 6]
        assert _boxes(svg) == geometry
        # A second live diagram of the same app (a re-run cell) takes over from the first.
        w2 = app.diagram(live=True)
        _until(lambda: not d.alive, 5, "the first diagram to stop")
        assert w2.diagram.alive
    _until(lambda: not w2.diagram.alive, 10, "the thread to stop once the app is down")
    w2.close()


@pytest.mark.local
def test_close_stops_the_thread(local, monkeypatch):
    monkeypatch.setenv("APPCOUP_HEADLESS", "0")
    with local.up("pod", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=30, progress=False)
        w = app.diagram(live=True)
        w.close()
        assert not w.diagram.alive
        assert isinstance(app.diagram(live=False), Diagram)


@pytest.mark.docker
@pytest.mark.slow
def test_docker_pod_drawn_and_echo_killed(monkeypatch):
    monkeypatch.setenv("APPCOUP_HEADLESS", "1")
    rt = ac.runtime("docker")
    with rt.up("pod", interval=INTERVAL, port=0, progress=False) as app:
        app.wait_ready(timeout=90, progress=False)
        d = app.diagram()
        svg = d.svg()
        text = _texts(svg)
        for name in _names(app):
            assert name in text
        assert "network_mode=container:<pause>" in text
        assert {n.kind for n in d.topology.namespaces if len(n.members) > 1} == {"net"}
        before = _boxes(svg)
        # The same pod as on local, box for box: only the words and the namespaces differ.
        local_boxes = _boxes(render(infer("pod", "local")))
        assert {k: v for k, v in before.items() if k.startswith(("container:", "process:"))} == {
            k: v for k, v in local_boxes.items() if k.startswith(("container:", "process:"))}
        app.kill("echo")
        app.wait_until(lambda: app.status()["echo"]["restarts"] >= 1, 60, "echo to restart")
        after = d.refresh().svg()
        assert _group(after, "container:echo").get("data-restarts") == str(app.status()["echo"]["restarts"])
        assert _boxes(after) == before

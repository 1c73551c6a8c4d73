"""The Kubernetes manifests: valid for the cluster version CI runs, and saying what the course says.

Every document of every YAML file under ``manifests/`` is validated against the Kubernetes JSON
schemas bundled with ``kubernetes-validate`` (offline, strict: unknown fields are errors). Then
the course-level promises a learner relies on: labels, pinned images, resources, probes, a
restricted security context, and agreement with the scenarios in ``appcoup_lib.scenarios``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from appcoup_lib.scenarios import SCENARIOS, Container, Scenario

kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
# The Kubernetes version CI's cluster runs (tests/cluster/lib.sh).
K8S_VERSION = "1.34"
NAMESPACE = "appcoup"
TAG = "0.1.0"
PART_OF = "app.kubernetes.io/part-of"
NAME = "app.kubernetes.io/name"
SCENARIO_LABEL = "appcoup.scenario"
KUBE_SCENARIOS = [name for name, s in SCENARIOS.items() if "kubernetes" in s.runtimes]

Doc = dict[str, Any]


def _files() -> list[Path]:
    return sorted(p for p in MANIFESTS.rglob("*") if p.suffix in (".yaml", ".yml"))


def _docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]


def _scenario_of(path: Path) -> str | None:
    rel = path.relative_to(MANIFESTS)
    return rel.parts[0] if len(rel.parts) > 1 else None


ALL: list[tuple[Path, Doc]] = [(p, d) for p in _files() for d in _docs(p)]
ALL_IDS = [f"{p.relative_to(MANIFESTS)}:{d.get('kind')}/{d.get('metadata', {}).get('name')}" for p, d in ALL]


def _scenario_docs(name: str) -> list[Doc]:
    return [d for p, d in ALL if _scenario_of(p) == name]


def _pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] == "Pod":
        return doc["spec"]
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def _pod_labels(doc: Doc) -> dict[str, str]:
    meta = doc["metadata"] if doc["kind"] == "Pod" else doc["spec"]["template"]["metadata"]
    return meta.get("labels", {})


def _workloads(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for d in docs:
        spec = _pod_spec(d)
        if spec is not None:
            yield d, spec


def _env(container: Doc) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def _port_number(container: Doc, port: int | str) -> int | None:
    if isinstance(port, int):
        return port
    return next((p["containerPort"] for p in container.get("ports", []) if p.get("name") == port), None)


# ---- the checks, as functions that list problems, so the tests below can show they catch them


def security_problems(spec: Doc) -> list[str]:
    """What keeps a pod spec from the restricted security context the course promises."""
    problems = []
    psc = spec.get("securityContext", {})
    if psc.get("runAsNonRoot") is not True:
        problems.append("pod: runAsNonRoot must be true")
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        # OpenShift's restricted-v2 rejects a pinned id outside the project's range: the image's
        # numeric USER runs (tests/test_images.py runs each image as an arbitrary UID in group 0).
        if key in psc:
            problems.append(f"pod: {key} must not be pinned (OpenShift assigns an arbitrary UID)")
    if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile must be RuntimeDefault")
    grace = spec.get("terminationGracePeriodSeconds")
    if not isinstance(grace, int) or grace > 10:
        problems.append("pod: terminationGracePeriodSeconds must be small (<= 10)")
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        csc = c.get("securityContext", {})
        if csc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{c['name']}: allowPrivilegeEscalation must be false")
        if csc.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{c['name']}: readOnlyRootFilesystem must be true")
        if csc.get("capabilities", {}).get("drop") != ["ALL"] or csc.get("capabilities", {}).get("add"):
            problems.append(f"{c['name']}: capabilities must drop ALL and add none")
        if csc.get("privileged") or "runAsUser" in csc:
            problems.append(f"{c['name']}: must not run privileged or pin a user")
    return problems


def container_problems(c: Doc) -> list[str]:
    """Images, pull policy, resources, and the env Python needs on a read-only root."""
    problems = []
    image = c.get("image", "")
    repo, sep, tag = image.rpartition(":")
    if not sep or "/" in tag or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", tag):
        problems.append(f"{c['name']}: image {image!r} must carry an explicit tag")
    elif tag == "latest":
        problems.append(f"{c['name']}: image {image!r} must not use :latest")
    first = image.split("/")[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        # The library loads images into the cluster; no registry is reachable in a workshop.
        problems.append(f"{c['name']}: image {image!r} must not name a registry host")
    if c.get("imagePullPolicy") != "IfNotPresent":
        problems.append(f"{c['name']}: imagePullPolicy must be IfNotPresent (no registry is reachable)")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for what in ("cpu", "memory"):
            if what not in res.get(kind, {}):
                problems.append(f"{c['name']}: resources.{kind}.{what} is missing")
    if "python" in " ".join(c.get("command", [])) and _env(c).get("PYTHONDONTWRITEBYTECODE") != "1":
        problems.append(f"{c['name']}: Python on a read-only root needs PYTHONDONTWRITEBYTECODE=1")
    return problems


def scenario_problems(scn: Scenario, docs: list[Doc]) -> list[str]:
    """Where the manifests of one scenario disagree with its definition in scenarios.py."""
    problems = []
    pods = {_pod_labels(d).get(NAME): (d, spec) for d, spec in _workloads(docs)}
    if set(pods) != {u.name for u in scn.units}:
        units = sorted(u.name for u in scn.units)
        problems.append(f"units {units} but pods labelled {sorted(map(str, pods))}")
    for unit in scn.units:
        if unit.name not in pods:
            continue
        _, spec = pods[unit.name]
        have = {c["name"]: c for c in spec["containers"]}
        if list(have) != [c.name for c in unit.containers]:
            want_names = [c.name for c in unit.containers]
            problems.append(f"{unit.name}: containers {list(have)}, scenario says {want_names}")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for want in unit.containers:
            if want.name in have:
                drift = _container_vs_scenario(scn, want, have[want.name], volumes)
                problems += [f"{want.name}: {p}" for p in drift]
    return problems


def _container_vs_scenario(scn: Scenario, want: Container, c: Doc, volumes: dict[str, Doc]) -> list[str]:
    problems = []
    repo = c.get("image", "").rsplit(":", 1)[0]
    if repo != f"appcoup/{want.image}":
        problems.append(f"image {c.get('image')!r} should be appcoup/{want.image}:{TAG}")
    if c.get("command") != list(want.command):
        problems.append(f"command {c.get('command')} should be {list(want.command)}")
    if c.get("workingDir") != want.workdir:
        problems.append(f"workingDir {c.get('workingDir')!r} should be {want.workdir!r}")
    ports = [p["containerPort"] for p in c.get("ports", [])]
    if ports != ([want.port] if want.port else []):
        problems.append(f"ports {ports} should be {[want.port] if want.port else []}")
    env = _env(c)
    if want.port and env.get("PORT") != str(want.port):
        problems.append(f"env PORT should be {want.port!r}")
    if "generator" in want.runs and env.get("INTERVAL") != "2":
        problems.append('env INTERVAL should be "2"')
    # Volumes: mounted at the working directory, of the kind the scenario asks for.
    mounts = c.get("volumeMounts", [])
    if want.volume is None:
        if mounts:
            problems.append(f"mounts {mounts}, the scenario shares no volume with it")
    else:
        if [(m["name"], m["mountPath"]) for m in mounts] != [(want.volume, want.workdir)]:
            problems.append(f"should mount volume {want.volume!r} at {want.workdir}, mounts {mounts}")
        vol = volumes.get(want.volume, {})
        kind = scn.volumes[want.volume]
        if kind == "scratch" and "emptyDir" not in vol:
            problems.append(f"volume {want.volume!r} should be an emptyDir")
        if kind == "persistent" and vol.get("persistentVolumeClaim", {}).get("claimName") != want.volume:
            problems.append(f"volume {want.volume!r} should be the PersistentVolumeClaim {want.volume!r}")
    # Probes: the scenario's HTTP path for readiness, a liveness probe beside it.
    ready, live = c.get("readinessProbe"), c.get("livenessProbe")
    if want.probe:
        get = (ready or {}).get("httpGet", {})
        if get.get("path") != want.probe or _port_number(c, get.get("port")) != want.port:
            problems.append(f"readinessProbe should GET {want.probe} on port {want.port}, is {ready}")
        lget = (live or {}).get("httpGet", {})
        if not lget or _port_number(c, lget.get("port")) != want.port:
            problems.append(f"needs an HTTP livenessProbe on port {want.port}, is {live}")
    elif want.port is None:
        # A program that serves nothing: an exec readiness probe at most.
        if ready is not None and "exec" not in ready:
            problems.append(f"serves no port, so only an exec probe fits, is {ready}")
    elif ready or live:
        # The supervisor container: no probe could tell its two programs apart (the lesson).
        problems.append("the scenario gives this container no probe")
    if want.source:
        svc = next(s for s in scn.services if s.name == want.source)
        url = f"http://{svc.name}.{NAMESPACE}.svc.cluster.local:{svc.port}/data"
        if env.get("SOURCE_URL") != url:
            problems.append(f"env SOURCE_URL should be {url}, is {env.get('SOURCE_URL')}")
    elif "SOURCE_URL" in env:
        problems.append("file mode: SOURCE_URL must not be set")
    return problems


# ---- schema validation


def test_there_are_manifests_to_check():
    assert not (MANIFESTS / ".keep").exists()
    assert len(ALL) >= 10


@pytest.mark.parametrize(("path", "doc"), ALL, ids=ALL_IDS)
def test_valid_for_kubernetes(path, doc):
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        where = ".".join(map(str, e.path))
        pytest.fail(f"{path.relative_to(ROOT)}: {doc['kind']}/{doc['metadata']['name']} is not valid "
                    f"for Kubernetes {K8S_VERSION}: {e.message} at {where}", pytrace=False)


def _broken(change) -> Doc:
    doc = copy.deepcopy(next(d for p, d in ALL if p.parent.name == "pod" and d["kind"] == "Pod"))
    change(doc)
    return doc


@pytest.mark.parametrize("change", [
    pytest.param(lambda d: d["spec"]["containers"][1].__setitem__("imagePulPolicy", "IfNotPresent"),
                 id="misspelt-field"),
    pytest.param(lambda d: d["spec"]["containers"][1]["ports"][0].__setitem__("containerPort", "8000"),
                 id="port-as-string"),
    pytest.param(lambda d: d["spec"]["containers"][0].pop("name"), id="container-without-name"),
    pytest.param(lambda d: d["spec"].__setitem__("volumes", {"name": "data"}), id="volumes-not-a-list"),
])
def test_the_validator_rejects_a_broken_manifest(change):
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(_broken(change), K8S_VERSION, strict=True)


# ---- what every object promises


@pytest.mark.parametrize(("path", "doc"), ALL, ids=ALL_IDS)
def test_labelled_for_the_course_and_for_clean_up(path, doc):
    labels = doc["metadata"].get("labels", {})
    assert labels.get(PART_OF) == "appcoup", "appcoup clean finds what it removes by this label"
    scn = _scenario_of(path)
    if doc["kind"] != "Namespace":
        assert labels.get(NAME), f"{NAME} names the component"
        assert labels.get(SCENARIO_LABEL) == scn
        # The namespace is chosen at apply time (kubectl -n, or the library).
        assert "namespace" not in doc["metadata"]
    if _pod_spec(doc) is not None:
        pod = _pod_labels(doc)
        assert pod.get(PART_OF) == "appcoup" and pod.get(SCENARIO_LABEL) == scn and pod.get(NAME)
    if doc["kind"] in ("Deployment",):
        selector = doc["spec"]["selector"]["matchLabels"]
        assert selector.items() <= _pod_labels(doc).items()
        assert SCENARIO_LABEL in selector, "two scenarios in one namespace must not select each other's pods"


WORKLOADS = [(p, d) for p, d in ALL if _pod_spec(d) is not None]
WORKLOAD_IDS = [f"{p.relative_to(MANIFESTS)}:{d['kind']}/{d['metadata']['name']}" for p, d in WORKLOADS]


@pytest.mark.parametrize(("path", "doc"), WORKLOADS, ids=WORKLOAD_IDS)
def test_every_pod_runs_restricted(path, doc):
    assert security_problems(_pod_spec(doc)) == []


@pytest.mark.parametrize(("path", "doc"), WORKLOADS, ids=WORKLOAD_IDS)
def test_every_container_is_pinned_and_bounded(path, doc):
    problems = [p for c in _pod_spec(doc)["containers"] for p in container_problems(c)]
    assert problems == []


def test_no_registry_host_and_no_latest_anywhere():
    for path in _files() + [MANIFESTS / "README.md"]:
        text = path.read_text()
        assert not re.search(r"\b(docker\.io|quay\.io|ghcr\.io|gcr\.io|registry\.k8s\.io)\b", text), path
        assert not re.search(r"[\w/.-]+:latest\b", text), f"{path}: an image with :latest"


@pytest.mark.parametrize("change", [
    pytest.param(lambda s: s["containers"][0]["securityContext"].pop("readOnlyRootFilesystem"),
                 id="writable-root"),
    pytest.param(lambda s: s["securityContext"].__setitem__("runAsUser", 0), id="root"),
    pytest.param(lambda s: s["securityContext"].__setitem__("runAsUser", 10001), id="pinned-uid"),
    pytest.param(lambda s: s["securityContext"].__setitem__("runAsNonRoot", False), id="may-be-root"),
    pytest.param(lambda s: s["containers"][1]["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
                 id="keeps-capabilities"),
    pytest.param(lambda s: s.pop("terminationGracePeriodSeconds"), id="default-grace-period"),
])
def test_the_security_check_catches_a_weaker_pod(change):
    spec = _broken(lambda d: None)["spec"]
    change(spec)
    assert security_problems(spec)


@pytest.mark.parametrize(("change", "expect"), [
    (lambda c: c.__setitem__("image", "appcoup/echo"), "explicit tag"),
    (lambda c: c.__setitem__("image", "appcoup/echo:latest"), ":latest"),
    (lambda c: c.__setitem__("image", "registry.example:5000/appcoup/echo:0.1.0"), "registry host"),
    (lambda c: c.__setitem__("imagePullPolicy", "Always"), "IfNotPresent"),
    (lambda c: c["resources"].pop("limits"), "limits"),
    (lambda c: c.__setitem__("env", [e for e in c["env"] if e["name"] != "PYTHONDONTWRITEBYTECODE"]),
     "PYTHONDONTWRITEBYTECODE"),
], ids=["untagged", "latest", "registry", "pull-always", "no-limits", "pyc"])
def test_the_container_check_catches_a_careless_container(change, expect):
    echo = _broken(lambda d: None)["spec"]["containers"][1]
    change(echo)
    assert any(expect in p for p in container_problems(echo))


# ---- agreement with scenarios.py


def test_one_directory_per_kubernetes_scenario_and_none_for_separate():
    dirs = {p.name for p in MANIFESTS.iterdir() if p.is_dir()}
    assert dirs == set(KUBE_SCENARIOS)
    assert "kubernetes" not in SCENARIOS["separate"].runtimes
    assert "separate" in (MANIFESTS / "README.md").read_text(), "the README says why separate has none"


@pytest.mark.parametrize("name", KUBE_SCENARIOS)
def test_manifests_match_the_scenario(name):
    assert scenario_problems(SCENARIOS[name], _scenario_docs(name)) == []


@pytest.mark.parametrize(("change", "expect"), [
    (lambda s: s["containers"][1].__setitem__("name", "web"), "containers"),
    (lambda s: s["containers"][1].__setitem__("workingDir", "/srv"), "workingDir"),
    (lambda s: s["containers"][1]["ports"][0].__setitem__("containerPort", 8001), "ports"),
    (lambda s: s["containers"][1]["readinessProbe"]["httpGet"].__setitem__("path", "/"), "readinessProbe"),
    (lambda s: s["volumes"].__setitem__(0, {"name": "data", "hostPath": {"path": "/tmp"}}), "emptyDir"),
], ids=["renamed", "workdir", "port", "probe", "hostpath"])
def test_the_scenario_check_catches_a_drift(change, expect):
    pod = _broken(lambda d: None)
    change(_pod_spec(pod))
    problems = scenario_problems(SCENARIOS["pod"], [pod])
    assert any(expect in p for p in problems), problems


def test_single_image_is_one_container_running_the_supervisor():
    (_, spec), = list(_workloads(_scenario_docs("single-image")))
    (c,) = spec["containers"]
    assert c["image"] == f"appcoup/combined:{TAG}" and c["command"] == ["sh", "/app/supervisor.sh"]


def test_pod_is_one_pod_with_two_containers_sharing_an_emptydir():
    (doc,) = [d for d in _scenario_docs("pod") if _pod_spec(d) is not None]
    assert doc["kind"] == "Pod" and doc["metadata"]["name"] == "appcoup", "the course names the pod appcoup"
    spec = doc["spec"]
    assert [c["name"] for c in spec["containers"]] == ["generator", "echo"]
    mounted = [{m["name"] for m in c["volumeMounts"]} for c in spec["containers"]]
    shared = set.intersection(*mounted)
    assert len(shared) == 1
    (vol,) = [v for v in spec["volumes"] if v["name"] in shared]
    assert "emptyDir" in vol


def _services(name: str) -> list[Doc]:
    return [d for d in _scenario_docs(name) if d["kind"] == "Service"]


@pytest.mark.parametrize("name", KUBE_SCENARIOS)
def test_services_select_what_the_scenario_discovers(name):
    scn = SCENARIOS[name]
    pods = {_pod_labels(d).get(NAME): (d, spec) for d, spec in _workloads(_scenario_docs(name))}
    for svc in _services(name):
        selector = svc["spec"].get("selector")
        if selector is None:
            continue  # federation/cluster-b: endpoints given by hand (checked below)
        matched = [u for u, (d, _) in pods.items() if selector.items() <= _pod_labels(d).items()]
        assert len(matched) == 1, f"Service {svc['metadata']['name']} selects {matched}"
    for want in scn.services:
        found = [s for s in _services(name)
                 if s["metadata"]["name"] == want.name and s["spec"].get("selector")]
        assert found, f"{name}: no Service {want.name!r}"
        (port,) = found[0]["spec"]["ports"]
        _, spec = pods[want.unit]
        container = next(c for c in spec["containers"] if c["name"] == want.container)
        assert port["port"] == want.port
        target = _port_number(container, port.get("targetPort", port["port"]))
        assert target == scn.container(want.container).port


def test_service_echo_finds_the_adapter_by_its_full_dns_name():
    (echo,) = [d for d in _scenario_docs("service")
               if d["kind"] == "Deployment" and d["metadata"]["name"] == "echo"]
    env = _env(_pod_spec(echo)["containers"][0])
    assert env["SOURCE_URL"] == "http://adapter.appcoup.svc.cluster.local:8080/data"


def test_volume_is_one_claim_mounted_by_two_pods():
    docs = _scenario_docs("volume")
    (pvc,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == "data"
    assert "storageClassName" not in pvc["spec"], "the cluster's default storage class provisions it"
    assert pvc["spec"]["accessModes"] in (["ReadWriteOnce"], ["ReadWriteMany"])
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deployments) == ["echo", "generator"]
    for d in deployments:
        claims = [v["persistentVolumeClaim"]["claimName"] for v in _pod_spec(d)["volumes"]]
        assert claims == ["data"]
        if pvc["spec"]["accessModes"] == ["ReadWriteOnce"]:
            assert d["spec"]["strategy"]["type"] == "Recreate", \
                "a rolling update would wait for the volume the old pod holds"


def test_federation_cluster_b_reaches_the_port_cluster_a_exposes():
    a = [d for p, d in ALL if "cluster-a" in p.parts]
    b = [d for p, d in ALL if "cluster-b" in p.parts]
    assert {d["metadata"]["name"] for d in a if _pod_spec(d)} == {"generator"}
    assert {d["metadata"]["name"] for d in b if _pod_spec(d)} == {"echo"}
    (exposed,) = [d for d in a if d["kind"] == "Service" and d["metadata"]["name"] == "adapter"]
    assert exposed["spec"]["type"] in ("NodePort", "LoadBalancer")
    node_port = exposed["spec"]["ports"][0]["nodePort"]
    (local_name,) = [d for d in b if d["kind"] == "Service" and d["metadata"]["name"] == "adapter"]
    assert "selector" not in local_name["spec"]
    (eps,) = [d for d in b if d["kind"] == "EndpointSlice"]
    assert eps["metadata"]["labels"]["kubernetes.io/service-name"] == "adapter"
    assert {p["name"] for p in eps["ports"]} == {p["name"] for p in local_name["spec"]["ports"]}
    assert [p["port"] for p in eps["ports"]] == [node_port]


def test_namespace_is_appcoup_and_enforces_the_restricted_profile():
    (ns,) = _docs(MANIFESTS / "namespace.yaml")
    assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == NAMESPACE
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"

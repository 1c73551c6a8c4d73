"""``app.spec()`` and ``app.commands()`` on every runtime: what the runtime really did for THIS app, and the
commands a learner would type, run for real where they can be.

The spec must name this app's real image tags, namespace and INTERVAL (checked against what the
runtime and the engine or cluster report); the commands that only look (ps, logs, get, exec,
status) are executed and must show this app's containers, pods and programs.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml
from cluster.conftest_cluster import k8s_cluster  # noqa: F401

import appcoup_lib as ac
from appcoup_lib.runtimes.spec import Commands, Part, Spec, fence

TAG = f"sp{os.getpid() % 100000}"
INTERVAL = 0.7


def _name(what: str) -> str:
    return f"appcoup-{TAG}-{what}"


def _sh(cmd: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=timeout, check=False)


# -- the two types -------------------------------------------------------------------------------
def test_spec_renders_fenced_code_with_its_language() -> None:
    s = Spec("appcoup-x", "kubernetes", [("cluster: a", "yaml", "kind: Pod\n"), ("cluster: b", "yaml", "kind: Service")])
    md = s._repr_markdown_()
    assert md.count("```yaml\n") == 2 and "**cluster: a**" in md
    assert s.language == "yaml" and s.text == "kind: Pod\n---\nkind: Service\n"
    assert list(yaml.safe_load_all(s.text)) == [{"kind": "Pod"}, {"kind": "Service"}]
    assert "## cluster: b" in str(s) and s.part("cluster: b") == Part("cluster: b", "yaml", "kind: Service")
    assert fence("sh", "echo ```x```").startswith("````sh\n")  # a fence longer than what it holds


def test_commands_are_a_sequence_of_lines_with_their_purpose() -> None:
    c = Commands([("what runs", "docker ps"), ("its logs", "docker logs x")])
    assert c[0] == "docker ps" and list(c) == ["docker ps", "docker logs x"] and len(c) == 2
    assert str(c) == "# what runs\ndocker ps\n# its logs\ndocker logs x\n"
    assert c._repr_markdown_().startswith("```sh\n# what runs\n")
    assert c.matching("logs") == ["docker logs x"]


def test_every_runtime_declares_spec_and_commands() -> None:
    for cls in ac.runtimes.registry().values():
        assert {"spec", "commands"} <= cls.app_abilities, cls.name
    from appcoup_lib.runtimes.local import LocalRuntime

    assert "exec" in LocalRuntime.app_abilities


# -- local -----------------------------------------------------------------------------------------
@pytest.mark.local
@pytest.mark.parametrize("scenario", ["pod", "service"])
def test_local_spec_is_the_supervisord_config_and_the_process_tree(local, scenario: str) -> None:
    with local.up(scenario, interval=INTERVAL, port=0, name=_name(f"l-{scenario}"), progress=False) as app:
        app.wait_ready(timeout=30, progress=False)
        spec = app.spec()
        assert spec.language == "ini" and spec.parts[1].language == "text"
        conf = spec.parts[0].text
        assert "[program:echo]" in conf and "[program:generator]" in conf
        assert f'INTERVAL="{INTERVAL:g}"' in conf and str(app.home / "supervisord.conf") in conf
        echo_pid = app.status()["echo"]["pid"]
        tree = spec.parts[1].text
        assert re.search(rf"^\s*{echo_pid}\s", tree, re.MULTILINE), tree
        assert "```ini\n" in spec._repr_markdown_() and "```text\n" in spec._repr_markdown_()
        cmds = app.commands()
        status = next(c for c in cmds if c.endswith(" status"))
        assert "supervisorctl -c " in status
        # supervisorctl says STARTING for a program's first second (startsecs), then RUNNING with its pid
        app.wait_until(lambda: "STARTING" not in _sh(status).stdout, 10, "RUNNING in supervisorctl status")
        r = _sh(status)
        assert r.returncode == 0, r.stderr
        assert re.search(rf"^echo\s+RUNNING\s+pid {echo_pid},", r.stdout, re.MULTILINE), r.stdout
        r = _sh(next(c for c in cmds if c.startswith("ps ")))
        assert r.returncode == 0 and str(echo_pid) in r.stdout, r.stdout + r.stderr
        # exec: a local container is its directory and its environment
        assert app.can("exec")
        assert app.exec("echo", "sh", "-c", "echo $INTERVAL; pwd").split() == [
            f"{INTERVAL:g}", str(spec_dir(app, "echo"))]
        assert "data" in app.exec("generator", "ls")
        assert app.logs("echo") is not None and app.events()


def spec_dir(app, container: str):  # type: ignore[no-untyped-def]
    from appcoup_lib.runtimes.local.spec import programs

    return next(d for name, _, d, _ in programs(app) if name == container)


# -- docker ----------------------------------------------------------------------------------------
@pytest.mark.docker
@pytest.mark.parametrize("scenario", ["pod", "service"])
def test_docker_spec_is_the_dockerfiles_and_the_real_containers(scenario: str) -> None:
    rt = ac.runtime("docker")
    with rt.up(scenario, interval=INTERVAL, port=0, name=_name(f"d-{scenario}"), progress=False) as app:
        app.wait_ready(timeout=60, progress=False)
        st = app.status()
        spec = app.spec()
        assert spec.language == "dockerfile"
        files = [p for p in spec.parts if p.language == "dockerfile"]
        settings = spec.parts[-1]
        assert settings.language == "sh"
        for c in app.scenario.containers:
            tag = st[c.name]["image"]
            part = next(p for p in files if tag in p.title)
            # FROM names the base the tag was built on (the build arg substituted)
            base = re.search(r"^FROM (\S+)$", part.text, re.MULTILINE)
            assert base and "$" not in base.group(1), part.text
            assert f"ARG BASE={base.group(1)}" in part.text
            assert tag in settings.text and f"--name {st[c.name]['container']}" in settings.text
        assert f"-e INTERVAL={INTERVAL:g}" in settings.text
        if scenario == "pod":
            pause = app.pause_name("app")
            assert settings.text.count(f"--network container:{pause}") == 2
            assert "network mode: container:" in settings.text
        else:
            assert f"--network {app.name}-net" in settings.text and "--network-alias adapter" in settings.text

        cmds = app.commands()
        assert any(c.startswith("docker build -t ") for c in cmds)
        assert f"docker volume create {app.name}-data" in cmds
        ps = next(c for c in cmds if c.startswith("docker ps"))
        r = _sh(ps)
        assert r.returncode == 0, r.stderr
        for c in app.scenario.containers:
            assert st[c.name]["container"] in r.stdout
        for c in app.scenario.containers:
            r = _sh(f"docker logs {st[c.name]['container']}")
            assert r.returncode == 0, r.stderr
            assert f"docker logs {st[c.name]['container']}" in cmds
        r = _sh(next(c for c in cmds if c.startswith(f"docker exec {app.container_name('echo')} ")))
        assert r.returncode == 0 and "echo.py" in r.stdout, r.stdout + r.stderr
        r = _sh(next(c for c in cmds if c.startswith(f"docker exec {app.container_name('generator')} ")))
        assert r.returncode == 0 and "generator.sh" in r.stdout, r.stdout + r.stderr
        # each docker run line parses as one shell command naming the real image
        for line in (c for c in cmds if c.startswith("docker run ")):
            argv = shlex.split(line)
            assert argv[-1].startswith("appcoup/") or any(a.startswith("appcoup/") for a in argv)


# -- kubernetes ------------------------------------------------------------------------------------
def _kubectl(cluster) -> str:  # type: ignore[no-untyped-def]
    for k in (getattr(cluster, "kubectl", None), "/var/cache/appcoup-cluster/kubectl", shutil.which("kubectl")):
        if k and os.path.exists(k):
            return str(k)
    pytest.skip("no kubectl here")


@pytest.mark.kubernetes
@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["pod", "service"])
def test_kubernetes_spec_is_the_yaml_applied(k8s_cluster, scenario: str) -> None:  # noqa: F811
    kubectl = _kubectl(k8s_cluster)
    rt = ac.runtime("kubernetes")
    with rt.up(scenario, interval=INTERVAL, port=0, name=_name(f"k-{scenario}"), progress=False) as app:
        app.wait_ready(timeout=120, progress=False)
        st = app.status()
        spec = app.spec()
        assert spec.language == "yaml" and len(spec.parts) == 1
        assert spec.text.startswith("# cluster: ")
        docs = [d for d in yaml.safe_load_all(spec.text) if d]
        ns = docs[0]
        assert ns["kind"] == "Namespace" and ns["metadata"]["name"] == app.name == st["echo"]["namespace"]
        objs = docs[1:]
        assert all(d["metadata"].get("labels", {}).get("appcoup.app") == app.name for d in objs)
        # the workloads, their containers and images are what the cluster runs
        from appcoup_lib.runtimes.kubernetes.translate import pod_spec

        images = {c["name"]: c["image"] for d in objs for c in (pod_spec(d) or {}).get("containers", [])}
        assert set(images) == {c.name for c in app.scenario.containers}
        r = subprocess.run([kubectl, "get", "pods", "-n", app.name, "-o", "json"], capture_output=True, text=True,
                           check=True)
        pods = {p["metadata"]["name"]: p for p in json.loads(r.stdout)["items"]}
        for c in app.scenario.containers:
            # the image the pod was given (a container's status may name another tag of the same image)
            running = {x["name"]: x["image"] for x in pods[st[c.name]["pod"]]["spec"]["containers"]}
            assert running[c.name] == images[c.name], (running, images)
            assert images[c.name].startswith(f"appcoup/{c.image}:")
        envs = {e["name"]: e["value"] for d in objs for c in (pod_spec(d) or {}).get("containers", [])
                for e in c.get("env", []) if "value" in e}
        assert envs["INTERVAL"] == f"{INTERVAL:g}"
        if scenario == "service":
            assert envs["SOURCE_URL"] == f"http://adapter.{app.name}.svc.cluster.local:8080/data"
            assert {d["kind"] for d in objs} >= {"Deployment", "Service"}
        else:
            assert [d["kind"] for d in objs] == ["Pod"]
        r = subprocess.run([kubectl, "get", "pods,deployments,services", "-n", app.name, "-o", "json"],
                           capture_output=True, text=True, check=True)
        live = {(i["kind"], i["metadata"]["name"]) for i in json.loads(r.stdout)["items"]}
        for d in objs:
            if d["kind"] in ("Deployment", "Service", "Pod"):
                assert (d["kind"], d["metadata"]["name"]) in live, (d["kind"], d["metadata"]["name"], live)

        # the YAML is real: the API server accepts it as it is (and for a pod app on a fresh namespace too)
        r = subprocess.run([kubectl, "apply", "--dry-run=server", "-f", "-"], input=spec.text, capture_output=True,
                           text=True, check=False)
        assert r.returncode == 0, r.stderr

        cmds = app.commands()
        pods = [st[c.name]["pod"] for c in app.scenario.containers]
        get = next(c for c in cmds if " get pods," in c)
        assert f"-n {app.name} " in get
        r = _sh(re.sub(r"^kubectl", shlex.quote(kubectl), get))
        assert r.returncode == 0, r.stderr
        for pod in pods:
            assert pod in r.stdout
        assert any(f"describe pod {pods[-1]}" in c for c in cmds)
        assert any(f"port-forward pod/{st['echo']['pod']} " in c and c.endswith(":8000") for c in cmds)
        for c in app.scenario.containers:
            logs = next(x for x in cmds if x.endswith(f"logs {st[c.name]['pod']} -c {c.name}"))
            r = _sh(re.sub(r"^kubectl", shlex.quote(kubectl), logs))
            assert r.returncode == 0, r.stderr
            ex = next(x for x in cmds if f" exec {st[c.name]['pod']} -c {c.name} -- " in x)
            r = _sh(re.sub(r"^kubectl", shlex.quote(kubectl), ex))
            assert r.returncode == 0 and ("echo.py" if c.name == "echo" else "generator.sh") in r.stdout, r.stdout

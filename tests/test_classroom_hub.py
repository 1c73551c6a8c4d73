"""JupyterHub on the test cluster, for real (issue 15 section 2): classroom/up, N learners, their servers
spawned at once through the Hub's REST API, notebooks 03 and 04 on the kubernetes runtime inside each
learner's server, isolation between learners (403), nothing left after the learners are deleted.

Opt-in: ``APPCOUP_TEST_CLASSROOM=1`` (it builds an image, starts a hub and N pods: minutes); a failure,
not a skip, when ``classroom`` is in ``APPCOUP_REQUIRE``. ``APPCOUP_CLASS_SIZE`` learners (default 8)
are spawned and checked; notebooks run in ``APPCOUP_CLASS_NOTEBOOKS`` of them at once (default: as many
as fit this machine, see NOTEBOOK_FIT). Figures: printed and written to ``build/classroom.json``.
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT, required

pytestmark = [pytest.mark.classroom, pytest.mark.slow]

KUBECTL = os.environ.get("APPCOUP_KUBECTL", "/var/cache/appcoup-cluster/kubectl")
N = int(os.environ.get("APPCOUP_CLASS_SIZE", "8"))
# How many learners run the notebooks at once on this machine (2 cores shared with other sessions):
# 4 took 261 s for the parts of 03 and 04 that run without a Docker engine in the server (see
# classroom/README.md, "Known gaps"); provisional until the full notebooks run there.
# APPCOUP_CLASS_NOTEBOOKS overrides.
NOTEBOOK_FIT = 4
NB = min(N, int(os.environ.get("APPCOUP_CLASS_NOTEBOOKS", str(NOTEBOOK_FIT))))
NOTEBOOKS = ("03-pod-coupling.ipynb", "04-service-coupling.ipynb")
PARAMS = ["-p", "runtime", "kubernetes", "-p", "interval", "0.2", "-p", "duration", "2.0"]
TAG = f"t{os.getpid() % 100000}"
PREFIX = f"appcoup-{TAG}"
REPORT = ROOT / "build" / "classroom.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kubeconfig() -> str | None:
    for cand in (os.environ.get("KUBECONFIG"), "/var/lib/appcoup-cluster/admin.kubeconfig"):
        if cand and os.path.exists(cand):
            return cand
    return None


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    why = None
    if os.environ.get("APPCOUP_TEST_CLASSROOM") != "1":
        why = "the JupyterHub class test is opt-in: set APPCOUP_TEST_CLASSROOM=1"
    elif not _kubeconfig():
        why = "no cluster: set KUBECONFIG (tests/cluster/up prints it)"
    if why:
        if "classroom" in required():
            pytest.fail(f"classroom is required here (APPCOUP_REQUIRE) but {why}", pytrace=False)
        pytest.skip(why)
    state = tmp_path_factory.mktemp("classroom")
    env = {**os.environ, "KUBECONFIG": _kubeconfig(), "CLASSROOM_STATE": str(state), "CLASSROOM_NAME": TAG,
           "CLASSROOM_PREFIX": PREFIX, "CLASSROOM_PORT": str(_free_port()), "CLASSROOM_HUB_PORT": str(_free_port()),
           "CLASSROOM_PROXY_API_PORT": str(_free_port()), "APPCOUP_PYTHON": sys.executable}
    t0 = time.monotonic()
    r = subprocess.run([str(ROOT / "classroom" / "up"), "--learners", "0"], env=env, capture_output=True, text=True,
                       timeout=1500)
    up_s = time.monotonic() - t0
    try:
        assert r.returncode == 0, f"classroom/up failed:\n{r.stderr[-4000:]}"
        yield {"env": env, "url": r.stdout.strip().splitlines()[-1], "token": (state / "admin-token").read_text().strip(),
               "up_seconds": up_s, "state": state}
    finally:
        d = subprocess.run([str(ROOT / "classroom" / "down"), "--purge"], env=env, capture_output=True, text=True,
                           timeout=600)
        print(d.stderr[-2000:])
        assert d.returncode == 0, f"classroom/down failed:\n{d.stderr[-3000:]}"


def _api(hub, method, path, body=None, timeout=60):
    req = urllib.request.Request(f"{hub['url']}/hub/api{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {hub['token']}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
        text = resp.read()
        return resp.status, (json.loads(text) if text else None)


def _k8s():
    import kubernetes

    cfg = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(config_file=_kubeconfig(), client_configuration=cfg)
    return kubernetes, cfg


def _as_token(kubernetes, admin_cfg, token):
    cfg = kubernetes.client.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = admin_cfg.host, admin_cfg.ssl_ca_cert, admin_cfg.verify_ssl
    cfg.api_key = {"authorization": f"Bearer {token}"}
    return kubernetes.client.ApiClient(cfg)


# -- measuring from the node's cgroups (no metrics-server on the test cluster) ------------------------
def _cgroup(controller: str, uid: str) -> str | None:
    found = glob.glob(f"/sys/fs/cgroup/{controller}/kubepods/**/pod{uid}", recursive=True)
    return found[0] if found else None


def _working_set(uid: str) -> int | None:
    d = _cgroup("memory", uid)
    try:
        usage = int(Path(d, "memory.usage_in_bytes").read_text())
        stat = dict(line.split() for line in Path(d, "memory.stat").read_text().splitlines())
        return max(0, usage - int(stat.get("total_inactive_file", 0)))
    except (TypeError, OSError, ValueError):
        return None


def _cpu_ns(uid: str) -> int | None:
    d = _cgroup("cpuacct", uid) or _cgroup("cpu,cpuacct", uid)
    try:
        return int(Path(d, "cpuacct.usage").read_text())
    except (TypeError, OSError, ValueError):
        return None


class Sampler(threading.Thread):
    """Every few seconds: each class namespace's pods, their working set and CPU time; and where every
    object labelled with one of our learners lives (it must be that learner's namespace)."""

    def __init__(self, core, learners: dict[str, str]):
        super().__init__(daemon=True)
        self.core, self.learners, self.stop = core, learners, threading.Event()
        self.peak_total = dict.fromkeys(learners, 0)
        self.peak_server = dict.fromkeys(learners, 0)
        self.peak_apps = dict.fromkeys(learners, 0)
        self.cpu: dict[str, dict[str, int]] = {u: {} for u in learners}  # learner -> pod uid -> last cpuacct ns
        self.misplaced: set[tuple[str, str, str]] = set()
        self.seen_app_pods: dict[str, set[str]] = {u: set() for u in learners}

    def sample(self) -> None:
        ns_of = {ns: u for u, ns in self.learners.items()}
        pods = self.core.list_pod_for_all_namespaces(label_selector="app.kubernetes.io/part-of=appcoup").items
        total = dict.fromkeys(self.learners, 0)
        server = dict.fromkeys(self.learners, 0)
        for p in pods:
            labels = p.metadata.labels or {}
            owner = labels.get("appcoup.learner")
            if owner in self.learners and p.metadata.namespace != self.learners[owner]:
                self.misplaced.add(("Pod", p.metadata.name, p.metadata.namespace))
            u = ns_of.get(p.metadata.namespace)
            if u is None:
                continue
            ws, cpu = _working_set(p.metadata.uid), _cpu_ns(p.metadata.uid)
            is_server = labels.get("component") == "singleuser-server"
            if not is_server:
                self.seen_app_pods[u].add(p.metadata.name)
            if ws is not None:
                total[u] += ws
                if is_server:
                    server[u] += ws
            if cpu is not None:
                self.cpu[u][p.metadata.uid] = max(cpu, self.cpu[u].get(p.metadata.uid, 0))
        for u in self.learners:
            self.peak_total[u] = max(self.peak_total[u], total[u])
            self.peak_server[u] = max(self.peak_server[u], server[u])
            self.peak_apps[u] = max(self.peak_apps[u], total[u] - server[u])
        for lister, kind in ((self.core.list_service_for_all_namespaces, "Service"),
                             (self.core.list_config_map_for_all_namespaces, "ConfigMap"),
                             (self.core.list_persistent_volume_claim_for_all_namespaces, "PersistentVolumeClaim")):
            for o in lister(label_selector="appcoup.learner").items:
                owner = (o.metadata.labels or {}).get("appcoup.learner")
                if owner in self.learners and o.metadata.namespace != self.learners[owner]:
                    self.misplaced.add((kind, o.metadata.name, o.metadata.namespace))

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.sample()
            except Exception:  # noqa: BLE001, S110 - a missed sample only lowers the resolution
                pass
            self.stop.wait(3)

    def cpu_seconds(self, u: str) -> float:
        return sum(self.cpu[u].values()) / 1e9


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


@pytest.mark.timeout(2700)
def test_a_class_on_jupyterhub(hub):
    kubernetes, admin_cfg = _k8s()
    core = kubernetes.client.CoreV1Api(kubernetes.client.ApiClient(admin_cfg))
    users = [f"learner{i:02d}" for i in range(1, N + 1)]
    learners = {u: f"{PREFIX}-{u}" for u in users}
    report: dict = {"learners": N, "notebook_learners": NB, "notebooks": list(NOTEBOOKS),
                    "hub_up_seconds": round(hub["up_seconds"], 1), "cpus": os.cpu_count()}
    sampler = Sampler(core, learners)
    failed: dict[str, str] = {}
    try:
        # -- N learners, their servers spawned at once ------------------------------------------------
        status, _ = _api(hub, "POST", "/users", {"usernames": users})
        assert status == 201
        t_class = time.monotonic()
        started: dict[str, float] = {}

        def spawn(u: str) -> float:
            started[u] = time.monotonic()
            st, _ = _api(hub, "POST", f"/users/{u}/server", timeout=120)
            assert st in (201, 202), f"spawn of {u}: HTTP {st}"
            deadline = started[u] + 600
            while time.monotonic() < deadline:
                _, info = _api(hub, "GET", f"/users/{u}")
                srv = (info.get("servers") or {}).get("", {})
                if srv.get("ready"):
                    return time.monotonic() - started[u]
                if not srv.get("pending") and not srv.get("ready") and time.monotonic() - started[u] > 10:
                    pytest.fail(f"the server of {u} stopped while spawning: {srv}")
                time.sleep(1)
            pytest.fail(f"the server of {u} was not ready within 600 s")

        sampler.start()
        with cf.ThreadPoolExecutor(N) as pool:
            spawn_s = dict(zip(users, pool.map(spawn, users)))
        report["spawn_seconds"] = {u: round(s, 1) for u, s in spawn_s.items()}
        report["spawn_p50_seconds"] = round(statistics.median(spawn_s.values()), 1)
        report["spawn_p95_seconds"] = round(_pct(list(spawn_s.values()), 0.95), 1)
        report["all_spawned_seconds"] = round(time.monotonic() - t_class, 1)

        # -- notebooks 03 and 04 on the kubernetes runtime inside each (of NB) learner's server ------------
        def notebooks(u: str) -> dict:
            ns, pod = learners[u], f"jupyter-{u}"
            out = {}
            for nb in NOTEBOOKS:
                t0 = time.monotonic()
                r = subprocess.run([KUBECTL, "--kubeconfig", _kubeconfig(), "exec", "-n", ns, pod, "--", "sh", "-c",
                                    f"cd ~/notebooks && papermill --no-progress-bar {nb} /tmp/out-{nb} "
                                    + " ".join(PARAMS[i] for i in range(len(PARAMS)))],
                                   capture_output=True, text=True, timeout=1500)
                out[nb] = {"ok": r.returncode == 0, "seconds": round(time.monotonic() - t0, 1),
                           "tail": "" if r.returncode == 0 else (r.stdout + r.stderr)[-2500:]}
            return out

        t_nb = time.monotonic()
        with cf.ThreadPoolExecutor(max(1, NB)) as pool:
            runs = dict(zip(users[:NB], pool.map(notebooks, users[:NB])))
        report["notebook_wall_seconds"] = round(time.monotonic() - t_nb, 1)
        report["notebook_runs"] = {u: {nb: {k: v for k, v in r.items() if k != "tail"} for nb, r in rs.items()}
                                   for u, rs in runs.items()}
        report["class_wall_seconds"] = round(time.monotonic() - t_class, 1)
        sampler.sample()
        sampler.stop.set()
        mib = 1024 * 1024
        report["per_learner"] = {u: {"peak_memory_mib": round(sampler.peak_total[u] / mib),
                                     "peak_server_memory_mib": round(sampler.peak_server[u] / mib),
                                     "peak_apps_memory_mib": round(sampler.peak_apps[u] / mib),
                                     "cpu_seconds": round(sampler.cpu_seconds(u), 1),
                                     "app_pods_seen": len(sampler.seen_app_pods[u])} for u in users}
        ran = [report["per_learner"][u] for u in users[:NB]]
        report["per_learner_running_notebooks"] = {
            "peak_memory_mib_max": max(r["peak_memory_mib"] for r in ran),
            "peak_memory_mib_median": statistics.median(r["peak_memory_mib"] for r in ran),
            "cpu_seconds_median": statistics.median(r["cpu_seconds"] for r in ran),
            "avg_cores_median": round(statistics.median(r["cpu_seconds"] for r in ran)
                                      / max(1.0, report["notebook_wall_seconds"]), 3)}
        idle = [report["per_learner"][u]["peak_server_memory_mib"] for u in users[NB:]] or [0]
        report["idle_server_memory_mib_max"] = max(idle)
        # (asserted at the end: the isolation and clean-up checks run whatever the notebooks did)
        failed = {f"{u} {nb}": r["tail"] for u, rs in runs.items() for nb, r in rs.items() if not r["ok"]}
        report["notebooks_failed"] = sorted(failed)

        # -- each learner's objects only in its own namespace ----------------------------------------
        assert not sampler.misplaced, f"objects of a learner outside its namespace: {sorted(sampler.misplaced)}"
        assert all(sampler.seen_app_pods[u] for u in users[:NB]), \
            f"no app pod seen in some learner's namespace: { {u: len(sampler.seen_app_pods[u]) for u in users[:NB]} }"

        # -- a learner's token cannot list, read or delete another learner's objects ------------------
        denied, allowed_wrongly = 0, []
        for i, u in enumerate(users):
            other = users[(i + 1) % N]
            tok = core.create_namespaced_service_account_token(
                "learner", learners[u], kubernetes.client.AuthenticationV1TokenRequest(
                    spec=kubernetes.client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))).status.token
            mine = kubernetes.client.CoreV1Api(_as_token(kubernetes, admin_cfg, tok))
            mine.list_namespaced_pod(learners[u])  # their own: allowed
            attempts = [
                ("list pods", lambda o=other, m=mine: m.list_namespaced_pod(learners[o])),
                ("read pod", lambda o=other, m=mine: m.read_namespaced_pod(f"jupyter-{o}", learners[o])),
                ("delete pod", lambda o=other, m=mine: m.delete_namespaced_pod(f"jupyter-{o}", learners[o],
                                                                               dry_run="All")),
                ("list configmaps", lambda o=other, m=mine: m.list_namespaced_config_map(learners[o])),
                ("list namespaces", lambda m=mine: m.list_namespace()),
            ]
            for what, call in attempts:
                try:
                    call()
                    allowed_wrongly.append(f"{u}: {what} ({other})")
                except kubernetes.client.ApiException as e:
                    assert e.status == 403, f"{u}: {what}: HTTP {e.status}, not 403"
                    denied += 1
        report["forbidden_checks"] = denied
        assert not allowed_wrongly, f"a learner's token could touch another's objects: {allowed_wrongly}"
    finally:
        sampler.stop.set()
        # -- the hub removes the learners: nothing of theirs is left ------------------------------------
        t_del = time.monotonic()
        for u in users:
            try:
                _api(hub, "DELETE", f"/users/{u}/server", timeout=120)
            except urllib.error.HTTPError:
                pass
        for u in users:
            for _ in range(60):
                try:
                    st, _ = _api(hub, "DELETE", f"/users/{u}", timeout=120)
                    break
                except urllib.error.HTTPError as e:
                    if e.code == 404:
                        break
                    time.sleep(2)  # 400 while the server is still stopping
        deadline = time.monotonic() + 300
        left = set(learners.values())
        while left and time.monotonic() < deadline:
            left = {n.metadata.name for n in core.list_namespace().items} & set(learners.values())
            time.sleep(2)
        report["delete_seconds"] = round(time.monotonic() - t_del, 1)
        REPORT.parent.mkdir(parents=True, exist_ok=True)
        REPORT.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps({k: v for k, v in report.items() if k not in ("spawn_seconds", "notebook_runs",
                                                                       "per_learner")}, indent=2))
    assert not left, f"learner namespaces left 300 s after the hub deleted the learners: {sorted(left)}"
    stray = [f"{k} {o.metadata.namespace}/{o.metadata.name}"
             for k, lister in (("Pod", core.list_pod_for_all_namespaces),
                               ("Service", core.list_service_for_all_namespaces),
                               ("ConfigMap", core.list_config_map_for_all_namespaces))
             for o in lister(label_selector="appcoup.learner").items
             if (o.metadata.labels or {}).get("appcoup.learner") in learners]
    assert not stray, f"objects of deleted learners left: {stray}"
    assert not failed, "notebooks failed in the learners' servers:\n" + "\n\n".join(
        f"== {k}\n{v}" for k, v in failed.items())
    print(f"classroom: N={N} spawned, notebooks in {NB} at once; spawn p50 {report['spawn_p50_seconds']} s, "
          f"p95 {report['spawn_p95_seconds']} s; class wall {report['class_wall_seconds']} s; {REPORT}")

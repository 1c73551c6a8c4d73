"""classroom/up, classroom/down, classroom/status: JupyterHub for the course on a Kubernetes cluster.

The hub (jupyterhub + KubeSpawner) and its proxy (configurable-http-proxy) run as processes on this
machine, talking to the cluster of ``$KUBECONFIG`` with its credentials; every learner's server is a
pod in a namespace of their own (``<prefix>-<username>``), made from the single-user image built
here offline. Run with the course's venv (``.venv/bin/python classroom/classroom.py up``); the hub's
own tools go into ``build/classroom/`` (a venv with pinned jupyterhub and kubespawner from PyPI,
configurable-http-proxy from npm) the first time.

Everything made on the cluster carries ``app.kubernetes.io/part-of=appcoup`` and
``appcoup.classroom=<name>``; ``down`` removes it all.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "classroom"
BUILD = Path(os.environ.get("CLASSROOM_BUILD", ROOT / "build" / "classroom"))
STATE = Path(os.environ.get("CLASSROOM_STATE", BUILD / "state"))
NAME = os.environ.get("CLASSROOM_NAME", "appcoup")
PREFIX = os.environ.get("CLASSROOM_PREFIX", "appcoup-class")
PINS = {"jupyterhub": "6.1.1", "jupyterhub-kubespawner": "7.1.0", "configurable-http-proxy": "5.3.0"}
IMAGE_REPO = "appcoup/singleuser"
LABEL = "app.kubernetes.io/part-of=appcoup"

# Per learner: their server (the single-user pod) and the course's apps they start in their namespace.
# Measured by tests/test_classroom_hub.py on the test cluster (2 cores, 24 GiB), notebooks 03 and 04 on
# the kubernetes runtime, from the pods' memory cgroups (peak) and cpuacct (see classroom/README.md):
# the limits are the measured peak with headroom, the requests what a learner uses most of the time.
SIZING: dict[str, Any] = {
    "server_request_cpu": 0.05, "server_limit_cpu": 1.0,
    "server_request_memory": "256M", "server_limit_memory": "1G",
    "app_request_cpu": "10m", "app_request_memory": "16Mi",      # LimitRange defaults per app container
    "app_limit_cpu": "500m", "app_limit_memory": "128Mi",
    "quota_requests_cpu": "1", "quota_requests_memory": "1Gi",   # ResourceQuota of the namespace
    "quota_limits_cpu": "8", "quota_limits_memory": "4Gi",
    "quota_pods": "24", "quota_services": "10", "quota_pvcs": "6", "quota_storage": "10Gi",
}


def say(msg: str) -> None:
    print(f"classroom: {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], **kw: Any) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    return subprocess.run(argv, **kw)  # noqa: PLW1510 - check is set just above


def sizing() -> dict[str, Any]:
    s = dict(SIZING)
    s.update(json.loads(os.environ.get("CLASSROOM_SIZING_OVERRIDE", "{}")))
    return s


# -- the hub's tools (PyPI and npm, pinned) ----------------------------------------------------------
def hub_venv() -> Path:
    venv = BUILD / "hub-venv"
    want = f"jupyterhub=={PINS['jupyterhub']} jupyterhub-kubespawner=={PINS['jupyterhub-kubespawner']}"
    stamp = venv / ".classroom-pins"
    if not (stamp.exists() and stamp.read_text() == want):
        say(f"installing {want} into {venv} (PyPI)")
        run([sys.executable, "-m", "venv", str(venv)])
        run([str(venv / "bin" / "pip"), "install", "-q", *want.split()])
        if os.environ.get("CLASSROOM_AUTH") == "native":
            run([str(venv / "bin" / "pip"), "install", "-q", "jupyterhub-nativeauthenticator"])
        stamp.write_text(want)
    return venv


def chp() -> Path:
    where = BUILD / "chp"
    exe = where / "node_modules" / ".bin" / "configurable-http-proxy"
    pkg = where / "node_modules" / "configurable-http-proxy" / "package.json"
    if not (exe.exists() and json.loads(pkg.read_text()).get("version") == PINS["configurable-http-proxy"]):
        if not shutil.which("npm"):
            raise SystemExit("classroom: configurable-http-proxy needs Node.js and npm (apt-get install nodejs npm)")
        say(f"installing configurable-http-proxy@{PINS['configurable-http-proxy']} into {where} (npm)")
        where.mkdir(parents=True, exist_ok=True)
        run(["npm", "install", "--silent", "--no-fund", "--no-audit", "--prefix", str(where),
             f"configurable-http-proxy@{PINS['configurable-http-proxy']}"])
    return exe


# -- the single-user image, built offline -------------------------------------------------------------
def _course_sources_hash() -> str:
    h = hashlib.sha256()
    for top in ("appcoup_lib", "images", "manifests", "notebooks"):
        for p in sorted((ROOT / top).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts:
                h.update(f"\0{p.relative_to(ROOT)}\0".encode())
                h.update(p.read_bytes())
    h.update((ROOT / "pyproject.toml").read_bytes())
    return h.hexdigest()[:16]


def _requirements() -> list[str]:
    import tomllib

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [*proj["dependencies"], *proj["optional-dependencies"]["kubernetes"],
            f"jupyterhub=={PINS['jupyterhub']}", "ipykernel", "pip"]


def _image_python(base: str) -> tuple[str, str]:
    """The base image's Python version and glibc version (the wheels are chosen for them, not for this host)."""
    from appcoup_lib import images

    cache = BUILD / f"python-of-{images._client().images.get(base).id.split(':')[-1][:16]}"
    if not cache.exists():
        out = run(["docker", "run", "--rm", "--network", "none", base, "python3", "-c",
                   "import platform; print(platform.python_version(), platform.libc_ver()[1])"],
                  capture_output=True, text=True).stdout
        cache.write_text(out)
    out = cache.read_text().split()
    return out[0], out[1]


def wheels(base: str) -> tuple[Path, str]:
    """The build context's wheels: every dependency (``pip download --only-binary`` on the host, for the
    image's own Python and glibc, from PyPI) and the course itself (rebuilt when its sources change).
    Returns the context dir and a hash of what it holds."""
    ctx = BUILD / "image-context"
    deps = BUILD / "wheels-deps"
    pyver, glibc = _image_python(base)
    reqs = _requirements()
    want = hashlib.sha256(json.dumps([reqs, pyver, glibc]).encode()).hexdigest()[:16]
    stamp = deps / ".classroom-stamp"
    if not (stamp.exists() and stamp.read_text() == want):
        say(f"pip download: the course's dependencies, jupyterhub and ipykernel for Python {pyver}, glibc {glibc} "
            "(once; PyPI or pip's cache)")
        if deps.exists():
            shutil.rmtree(deps)
        deps.mkdir(parents=True)
        major, minor = glibc.split(".")[:2]
        arch = platform.machine()
        plats = [f"manylinux_2_{i}_{arch}" for i in range(5, int(minor) + 1)] if major == "2" else []
        plats += [f"manylinux1_{arch}", f"manylinux2010_{arch}", f"manylinux2014_{arch}"]
        cp = "cp" + "".join(pyver.split(".")[:2])
        run([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", pyver,
             "--implementation", "cp", "--abi", cp, "--abi", "abi3", "--abi", "none",
             *[a for pl in plats for a in ("--platform", pl)], "--dest", str(deps), *reqs])
        stamp.write_text(want)
        if (ctx / ".course-hash").exists():
            (ctx / ".course-hash").unlink()
    src = _course_sources_hash()
    ctx_deps, ctx_course = ctx / "deps", ctx / "course"
    if not (ctx_deps / ".stamp").exists() or (ctx_deps / ".stamp").read_text() != want:
        if ctx_deps.exists():
            shutil.rmtree(ctx_deps)
        ctx_deps.mkdir(parents=True)
        for w in deps.glob("*.whl"):
            try:
                os.link(w, ctx_deps / w.name)
            except OSError:
                shutil.copy2(w, ctx_deps / w.name)
        (ctx_deps / "requirements.txt").write_text("\n".join(reqs) + "\n")
        (ctx_deps / ".stamp").write_text(want)
    if not (ctx / ".course-hash").exists() or (ctx / ".course-hash").read_text() != src:
        if ctx_course.exists():
            shutil.rmtree(ctx_course)
        ctx_course.mkdir(parents=True)
        say("pip wheel: the course")
        run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(ctx_course), str(ROOT)])
        (ctx / ".course-hash").write_text(src)
    for f in ("Dockerfile", "appcoup-start"):
        shutil.copy2(HERE / "image" / f, ctx / f)
    (ctx / ".dockerignore").write_text("**/.stamp\n.course-hash\n")
    h = hashlib.sha256(f"{src} {want}".encode())
    for f in ("Dockerfile", "appcoup-start"):
        h.update((HERE / "image" / f).read_bytes())
    return ctx, h.hexdigest()


def singleuser_image() -> str:
    """appcoup/singleuser:<hash>, built when missing, FROM the course's offline python base."""
    from appcoup_lib import images

    images.build(["echo"], offline=True, progress=False)  # makes the offline base-python if it is not here
    base = images.local_base_tag("python")
    client = images._client()
    base_id = client.images.get(base).id
    ctx, h = wheels(base)
    tag = f"{IMAGE_REPO}:{hashlib.sha256((h + base_id).encode()).hexdigest()[:12]}"
    if images.exists(tag):
        return tag
    say(f"building {tag} FROM {base} (no network: --network none)")
    t0 = time.monotonic()
    log = []
    for chunk in client.api.build(path=str(ctx), tag=tag, buildargs={"BASE": base}, network_mode="none",
                                  labels={"app.kubernetes.io/part-of": "appcoup", "appcoup.image": "singleuser"},
                                  rm=True, forcerm=True, pull=False, decode=True):
        if "stream" in chunk:
            log.append(chunk["stream"])
        if "error" in chunk:
            raise SystemExit("classroom: the single-user image failed to build:\n" + "".join(log)[-3000:]
                             + chunk["error"])
    say(f"built {tag} in {time.monotonic() - t0:.0f} s")
    return tag


PRELOAD_NS = f"{PREFIX}-preload"


def preload_course_images() -> dict[str, str]:
    """The course's images on every node under their portable tags, held there by the course's preload
    DaemonSet (`appcoup images preload`, in the namespace <prefix>-preload): the learners' servers have
    no Docker engine, so their runtime uses exactly these tags."""
    from appcoup_lib.runtimes.kubernetes import preload
    from appcoup_lib.runtimes.kubernetes.client import connect

    done = preload.preload(connect(kubeconfig=kubeconfig()), PRELOAD_NS, progress=False)
    return done["images"]


# -- the cluster -----------------------------------------------------------------------------------
def kubeconfig() -> str:
    path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    if not os.path.exists(path.split(":")[0]):
        raise SystemExit("classroom: no kubeconfig: set KUBECONFIG (the test cluster's: tests/cluster/up | tail -n1)")
    return path


def core():
    import kubernetes

    kubernetes.config.load_kube_config(config_file=kubeconfig())
    return kubernetes.client.CoreV1Api()


def load_images(tags: list[str]) -> list[str]:
    """Put the images on the cluster's nodes the cluster's own way (the course's loader)."""
    from appcoup_lib.runtimes.kubernetes.client import connect
    from appcoup_lib.runtimes.kubernetes.images import put_on_cluster

    return put_on_cluster(connect(kubeconfig=kubeconfig()), tags)


def hub_ip() -> str:
    """An address of this machine the cluster's pods can route to: CLASSROOM_HUB_IP, else a node's
    InternalIP that is this machine's own (the test cluster's node is the host)."""
    if os.environ.get("CLASSROOM_HUB_IP"):
        return os.environ["CLASSROOM_HUB_IP"]
    for node in core().list_node().items:
        for a in node.status.addresses or []:
            if a.type == "InternalIP" and _is_local(a.address):
                return a.address
    raise SystemExit("classroom: no node of this cluster is this machine, so the pods may not reach a hub here. "
                     "Set CLASSROOM_HUB_IP to an address of this machine the pods can reach (and that can reach "
                     "the pods' IPs), or see classroom/README.md, 'Another cluster'.")


def _is_local(ip: str) -> bool:
    try:
        with socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET) as s:
            s.bind((ip, 0))
        return True
    except OSError:
        return False


def class_namespaces() -> list[str]:
    sel = f"{LABEL},appcoup.classroom={NAME}"
    return [n.metadata.name for n in core().list_namespace(label_selector=sel).items]


# -- the hub process --------------------------------------------------------------------------------
def _pid(name: str) -> int | None:
    try:
        pid = int((STATE / name).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def url() -> str:
    return f"http://127.0.0.1:{os.environ.get('CLASSROOM_PORT', '8800')}"


def admin_token() -> str:
    return (STATE / "admin-token").read_text().strip()


def api(method: str, path: str, body: Any = None, timeout: float = 30) -> Any:
    req = urllib.request.Request(f"{url()}/hub/api{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"token {admin_token()}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # our own hub
        text = r.read()
    return json.loads(text) if text else None


def write_learners(n: int, teacher: str) -> Path:
    """learners.csv: learner01..learnerNN and the teacher, each with a password (kept if already there)."""
    path = STATE / "learners.csv"
    have: dict[str, str] = {}
    if path.exists():
        with open(path, newline="") as f:
            have = {r["name"]: r["password"] for r in csv.DictReader(f)}
    names = [teacher] + [f"learner{i:02d}" for i in range(1, n + 1)]
    for name in names:
        have.setdefault(name, "-".join(secrets.choice(_WORDS) for _ in range(3)))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "password"])
        for name, pw in have.items():
            w.writerow([name, pw])
    os.chmod(tmp, 0o600)
    tmp.replace(path)
    return path


_WORDS = ("pod", "node", "port", "pipe", "echo", "data", "file", "tide", "kite", "lamp", "moss", "nest",
          "oak", "pine", "quay", "reef", "sail", "tern", "vale", "wren", "yarn", "zinc", "bolt", "cove")


def up(args: argparse.Namespace) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    os.chmod(STATE, 0o700)
    if _pid("hub.pid"):
        say(f"the hub already runs (pid {_pid('hub.pid')}): {url()}")
        print(url())
        return 0
    t0 = time.monotonic()
    venv, proxy = hub_venv(), chp()
    t = time.monotonic()
    image = singleuser_image()
    t_image, t = time.monotonic() - t, time.monotonic()
    loaded = load_images([image])
    say(f"single-user image on the nodes: {image} ({time.monotonic() - t:.0f} s{', loaded now' if loaded else ''}; "
        f"built or found in {t_image:.0f} s)")
    t = time.monotonic()
    refs = preload_course_images()
    say(f"the course's {len(refs)} images are held on every node (DaemonSet in {PRELOAD_NS}, "
        f"{time.monotonic() - t:.0f} s)")
    ip = hub_ip()
    tok = STATE / "admin-token"
    if not tok.exists():
        tok.write_text(secrets.token_hex(32))
        os.chmod(tok, 0o600)
    learners = write_learners(args.learners, args.teacher)
    env = {
        **os.environ, "CLASSROOM_STATE": str(STATE), "CLASSROOM_NAME": NAME, "CLASSROOM_PREFIX": PREFIX,
        "CLASSROOM_IMAGE": image, "CLASSROOM_HUB_IP": ip, "CLASSROOM_CHP": str(proxy),
        "CLASSROOM_SIZING": json.dumps(sizing()), "CLASSROOM_TEACHER": args.teacher,
        "KUBECONFIG": kubeconfig(), "PATH": f"{venv / 'bin'}:{proxy.parent}:{os.environ.get('PATH', '')}",
    }
    env.pop("APPCOUP_APP", None)
    logf = open(STATE / "hub.log", "ab")  # noqa: SIM115 - handed to the daemon
    proc = subprocess.Popen([str(venv / "bin" / "jupyterhub"), "-f", str(HERE / "jupyterhub_config.py")],
                            cwd=STATE, env=env, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    (STATE / "hub.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"classroom: the hub exited ({proc.returncode}); last lines of {STATE / 'hub.log'}:\n"
                             + (STATE / "hub.log").read_text()[-3000:])
        try:
            urllib.request.urlopen(f"{url()}/hub/health", timeout=3)
            break
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    else:
        raise SystemExit(f"classroom: the hub did not answer at {url()} within 120 s; see {STATE / 'hub.log'}")
    say(f"hub up in {time.monotonic() - t0:.0f} s at {url()} (bound on {os.environ.get('CLASSROOM_BIND', '0.0.0.0')}); "
        f"pods reach its API at {ip}:{os.environ.get('CLASSROOM_HUB_PORT', '8881')}")
    say(f"learners and passwords: {learners} (teacher: {args.teacher}); admin token: {tok}")
    print(url())
    return 0


def down(args: argparse.Namespace) -> int:
    pid = _pid("hub.pid")
    if pid:
        say(f"stopping the hub (pid {pid}; it stops the learners' servers first)")
        os.killpg(pid, signal.SIGTERM)
        for _ in range(90):
            if not _pid("hub.pid"):
                break
            time.sleep(1)
        else:
            os.killpg(pid, signal.SIGKILL)
    ppid = _pid("proxy.pid")
    if ppid:
        os.kill(ppid, signal.SIGTERM)
    spaces = []
    try:
        spaces = class_namespaces()
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - no cluster: nothing there to remove
        say(f"the cluster does not answer ({e.__class__.__name__}); nothing removed there")
    try:
        from appcoup_lib.runtimes.kubernetes import preload
        from appcoup_lib.runtimes.kubernetes.client import connect

        for gone in preload.remove(connect(kubeconfig=kubeconfig()), PRELOAD_NS):
            say(f"removed {gone}")
    except Exception as e:  # noqa: BLE001 - best effort: the namespace check below reports what is left
        say(f"could not remove the preload DaemonSet: {e}")
    if spaces:
        from kubernetes.client.rest import ApiException

        api_ = core()
        for ns in spaces:
            try:
                api_.delete_namespace(ns)
            except ApiException as e:
                if e.status != 404:
                    raise
        say(f"deleting {len(spaces)} namespace(s): {' '.join(spaces)}")
    # Gone, not only asked to go: the learners' namespaces and the preload's (its pods hold the images).
    deadline = time.monotonic() + 300
    while (left := _left()) and time.monotonic() < deadline:
        time.sleep(2)
    if left:
        say(f"still terminating after 300 s: {' '.join(left)}")
        return 1
    for f in ("hub.pid", "proxy.pid", "jupyterhub.sqlite", "cookie-secret", "jupyterhub-proxy.pid"):
        (STATE / f).unlink(missing_ok=True)
    if args.purge and STATE.exists():
        shutil.rmtree(STATE)
        say(f"removed {STATE} (passwords and token included)")
    say("down: nothing of the classroom is left on the cluster")
    return 0


def _left() -> list[str]:
    """The classroom's namespaces still there (the preload's included)."""
    names = {n.metadata.name for n in core().list_namespace(label_selector=LABEL).items}
    return sorted(set(class_namespaces()) | ({PRELOAD_NS} & names))


def status(args: argparse.Namespace) -> int:
    pid = _pid("hub.pid")
    print(f"hub: {f'running, pid {pid}, {url()}' if pid else 'not running'}")
    try:
        spaces = class_namespaces()
        print(f"learner namespaces ({len(spaces)}): {' '.join(spaces) or '-'}")
    except Exception as e:  # noqa: BLE001
        print(f"cluster: not answering ({e.__class__.__name__})")
    if pid:
        users = api("GET", "/users")
        for u in users:
            print(f"  {u['name']:<12} server: {'ready' if (u.get('servers') or {}).get('', {}).get('ready') else '-'}")
    return 0 if pid else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="classroom", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="build and load the images, start the hub")
    u.add_argument("--learners", type=int, default=int(os.environ.get("CLASSROOM_LEARNERS", "30")),
                   help="how many learner accounts learners.csv gets (learner01..); default 30")
    u.add_argument("--teacher", default=os.environ.get("CLASSROOM_TEACHER", "teacher"))
    d = sub.add_parser("down", help="stop the hub, delete every learner namespace")
    d.add_argument("--purge", action="store_true", help="also remove the state dir (passwords, token)")
    sub.add_parser("status", help="the hub, the learners, their namespaces")
    sub.add_parser("image", help="only build the single-user image; print its tag")
    a = p.parse_args(argv)
    if a.cmd == "image":
        print(singleuser_image())
        return 0
    return {"up": up, "down": down, "status": status}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())

"""The workshop bundle with the network off, for real (issue 15, section 5).

Opt-in (``APPCOUP_TEST_OFFLINE=1``; ``.ci/run`` sets it): it builds ``build/appcoup-bundle.tar.gz``
(or takes ``$APPCOUP_TEST_BUNDLE``), reports its size (``build/bundle-size.txt``), and then, inside
a network namespace with no network (``unshare -n``; ``unshare --net --map-root-user`` when not
root), where it first checks that ``lo`` is the only link, down, and that PyPI cannot be reached:

* ``make venv VENV=<fresh> BUNDLE=<bundle>``: a fresh venv from the bundle's wheels alone
  (``pip install --no-index --find-links``) and its images ``docker load``-ed (the engine's unix
  socket is a file: it works from inside a network namespace);
* notebooks 00-03, unpacked from the bundle, headless with papermill on ``local`` and ``docker``;
* ``appcoup clean`` as the test's own learner, then nothing of that learner is left running.

One thing a network namespace takes away that "the Wi-Fi is off" does not: the host's loopback.
Docker publishes an app's port on the host's 127.0.0.1, which a process in the namespace cannot
reach. So the test runs a *loopback bridge*: inside the namespace, a listener on 127.0.0.1:PORT
for each port a container of the test's learner publishes, relayed through a unix socket to the
same port on the host's 127.0.0.1 (and nowhere else: the outside end refuses any port that is not
such a container's). Nothing else crosses; the namespace still has no link but ``lo``.

With ``offline`` in ``APPCOUP_REQUIRE`` a missing prerequisite (unshare, a Docker engine on a unix
socket, network namespaces) fails instead of skipping.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
NOTEBOOKS = ("00-setup", "01-separate-runs", "02-dockerfile-coupling", "03-pod-coupling")
SCENARIO = {"00-setup": "pod", "01-separate-runs": "separate", "02-dockerfile-coupling": "single-image",
            "03-pod-coupling": "pod"}  # as in test_notebooks.py: where n/a, a notebook falls back to local
RUNTIMES = ("local", "docker")
# Reaching outside: a TCP connection to ADDRESS (this machine's default gateway, found outside the
# namespace), and pip asking the package index it is configured with. Both must fail inside.
OUTSIDE = "import socket, sys; socket.create_connection((sys.argv[1], 443), 3)"
PIP_INDEX = ["-m", "pip", "download", "--no-deps", "--retries", "0", "--timeout", "3", "-d", "/tmp/appcoup-no-net", "six"]

pytestmark = [pytest.mark.offline, pytest.mark.slow]


# -- the Docker API through its unix socket, standard library only (the driver runs before any venv) --
def docker_socket() -> str | None:
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        return host[len("unix://"):]
    return None if host else "/var/run/docker.sock"


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.path)
        self.sock = s


def published_ports(sock: str, learner: str) -> set[int]:
    """Host ports on 127.0.0.1 that running containers of ``learner`` publish."""
    filters = urllib.parse.quote(json.dumps({"label": [f"appcoup.learner={learner}"], "status": ["running"]}))
    conn = _UnixHTTP(sock)
    try:
        conn.request("GET", f"/containers/json?filters={filters}")
        ctrs = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return {p["PublicPort"] for c in ctrs for p in c.get("Ports") or []
            if p.get("PublicPort") and p.get("IP") in ("127.0.0.1", "0.0.0.0", "", None)}


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _join(a: socket.socket, b: socket.socket) -> None:
    for x, y in ((a, b), (b, a)):
        threading.Thread(target=_pipe, args=(x, y), daemon=True).start()


class BridgeOutside:
    """The host end of the loopback bridge: a unix socket; each connection names a port first."""

    def __init__(self, path: Path, docker_sock: str, learner: str) -> None:
        self.path, self.docker_sock, self.learner = path, docker_sock, learner
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(64)
        self.relayed: set[int] = set()
        self.refused: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        head = b""
        while not head.endswith(b"\n") and len(head) < 8:
            chunk = client.recv(1)
            if not chunk:
                break
            head += chunk
        try:
            port = int(head)
            if port not in published_ports(self.docker_sock, self.learner):
                raise ValueError("not a port of the test's containers")
            up = socket.create_connection(("127.0.0.1", port), timeout=5)
            up.settimeout(None)
        except (ValueError, OSError) as e:
            self.refused.append(f"{head!r}: {e}")
            client.close()
            return
        self.relayed.add(port)
        _join(client, up)

    def close(self) -> None:
        self.server.close()
        self.path.unlink(missing_ok=True)


class BridgeInside(threading.Thread):
    """The namespace's end: follows the learner's published ports, listens on each, relays outside."""

    def __init__(self, path: str, docker_sock: str, learner: str) -> None:
        super().__init__(daemon=True)
        self.path, self.docker_sock, self.learner = path, docker_sock, learner
        self.listeners: dict[int, socket.socket] = {}
        self.seen: set[int] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                ports = published_ports(self.docker_sock, self.learner)
            except OSError:
                continue
            for port in ports - set(self.listeners):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    s.close()
                    continue
                s.listen(64)
                self.listeners[port] = s
                self.seen.add(port)
                threading.Thread(target=self._accept, args=(s, port), daemon=True).start()
            for port in set(self.listeners) - ports:
                self.listeners.pop(port).close()

    def _accept(self, server: socket.socket, port: int) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            out = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                out.connect(self.path)
                out.sendall(b"%d\n" % port)
            except OSError:
                client.close()
                continue
            _join(client, out)


# -- what runs inside the network namespace ---------------------------------------------------------
def _run(cmd: list[str], log: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, **kw)
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(cmd)}  # rc={out.returncode}, {time.monotonic() - t0:.1f} s\n{out.stdout}{out.stderr}")
    return out


def _outputs_text(path: Path) -> str:
    nb = json.loads(path.read_text())
    texts = []
    for cell in nb["cells"]:
        for o in cell.get("outputs", []):
            t = o.get("text", "")
            texts.append(t if isinstance(t, str) else "".join(t))
            texts.append("".join(o.get("data", {}).get("text/plain", "")))
            if o.get("output_type") == "error":
                texts.append("Traceback " + o.get("ename", "") + ": " + o.get("evalue", ""))
    return "\n".join(texts)


def inside(cfg: dict[str, Any]) -> dict[str, Any]:
    """The test's steps in the namespace; returns what the test asserts on."""
    work, log = Path(cfg["work"]), Path(cfg["work"]) / "inside.log"
    venv, learner, state = work / "venv", cfg["learner"], cfg["state"]
    res: dict[str, Any] = {"netns": os.readlink("/proc/self/ns/net"), "seconds": {}}
    res["links"] = _run(["ip", "-o", "link", "show"], log).stdout
    res["pypi_rc"] = _run([sys.executable, *PIP_INDEX], log).returncode
    res["routes"] = _run(["ip", "route", "show", "table", "all"], log).stdout
    if cfg.get("gateway"):  # not only names: an address that answers outside is out of reach (no route)
        res["pypi_ip_rc"] = _run([sys.executable, "-c", OUTSIDE, cfg["gateway"]], log).returncode
    # Loopback is not a network, but the kernels papermill starts talk to it (ZeroMQ), as do the
    # local runtime's programs and the bridge: up it goes, and nothing else.
    _run(["ip", "link", "set", "lo", "up"], log)
    res["links_lo_up"] = _run(["ip", "-o", "link", "show"], log).stdout
    bridge = BridgeInside(cfg["bridge"], cfg["docker_sock"], learner)
    bridge.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(APPCOUP_LEARNER=learner, APPCOUP_STATE=state, APPCOUP_HEADLESS="1", APPCOUP_PROGRESS="0")
    env["PATH"] = f"{venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"

    t0 = time.monotonic()  # the README's path: make venv with BUNDLE=, into a fresh venv
    make = _run(["make", "-C", str(ROOT), "venv", f"VENV={venv}", f"BUNDLE={cfg['bundle']}"], log, env=env)
    res["seconds"]["install"] = time.monotonic() - t0
    res["make_rc"], res["make_tail"] = make.returncode, (make.stdout + make.stderr)[-3000:]
    if make.returncode != 0:
        return res
    vpy = str(venv / "bin" / "python")
    res["pypi_rc_venv"] = _run([vpy, *PIP_INDEX], log).returncode
    res["installed"] = _run([vpy, "-c", "import appcoup_lib, sys; print(appcoup_lib.__file__, sys.prefix)"],
                            log, env=env).stdout.strip()
    nbdir = Path(_run([vpy, str(ROOT / "appcoup_lib" / "bundle.py"), "notebooks", cfg["bundle"], str(work)],
                      log, env=env).stdout.strip())
    res["runs"] = []
    for runtime in cfg["runtimes"]:
        for stem in cfg["notebooks"]:
            out = work / "out" / runtime / f"{stem}.ipynb"
            out.parent.mkdir(parents=True, exist_ok=True)
            t0 = time.monotonic()
            p = _run([str(venv / "bin" / "papermill"), str(nbdir / f"{stem}.ipynb"), str(out), "--cwd", str(nbdir),
                      "--no-progress-bar", "-p", "runtime", runtime, "-p", "interval", str(cfg["interval"]),
                      "-p", "duration", str(cfg["duration"])], log, env=env, timeout=300)
            text = _outputs_text(out) if out.exists() else ""
            res["runs"].append({"notebook": stem, "runtime": runtime, "rc": p.returncode,
                                "seconds": round(time.monotonic() - t0, 1), "stderr": p.stderr[-2000:],
                                "runtimes_seen": [r for r in ("local", "docker", "kubernetes") if f"runtime: {r}" in text],
                                "traceback": "Traceback" in text, "not_quite": "✘ not quite" in text})
    clean = _run([str(venv / "bin" / "appcoup"), "clean"], log, env=env)
    res["clean_rc"], res["clean_out"] = clean.returncode, clean.stdout + clean.stderr
    ps = _run(["docker", "ps", "-a", "-q", "--filter", f"label=appcoup.learner={learner}"], log, env=env) \
        if shutil.which("docker") else None
    res["docker_ps"] = ps.stdout.strip() if ps else "(no docker CLI)"
    res["docker_ps_rc"] = ps.returncode if ps else 0
    count = "import sys; from pathlib import Path; from appcoup_lib.runtimes.local import strays; " \
            "print(len(strays(under=Path(sys.argv[1]))))"
    res["strays"] = _run([vpy, "-c", count, state], log, env=env).stdout.strip()
    res["pypi_rc_end"] = _run([vpy, *PIP_INDEX], log).returncode
    res["bridge_ports"] = sorted(bridge.seen)
    bridge.stop.set()
    return res


# -- the test ------------------------------------------------------------------------------------
def _required() -> bool:
    return "offline" in {r.strip() for r in os.environ.get("APPCOUP_REQUIRE", "").split(",")}


def _missing() -> list[str]:
    missing = [f"{b} (util-linux / iproute2)" for b in ("unshare", "ip", "make") if not shutil.which(b)]
    sock = docker_socket()
    if sock is None:
        missing.append(f"a Docker engine on a unix socket (DOCKER_HOST={os.environ.get('DOCKER_HOST')} cannot be "
                       "reached from a namespace with no network)")
    else:
        try:
            conn = _UnixHTTP(sock)
            conn.request("GET", "/_ping")
            conn.getresponse().read()
            conn.close()
        except OSError as e:
            missing.append(f"a Docker engine answering at {sock} ({e}): start it (.ci/docker-up)")
    if not missing and subprocess.run(_unshare() + ["true"], capture_output=True, check=False).returncode != 0:
        missing.append("network namespaces (`unshare -n` as root, or unprivileged user namespaces)")
    return missing


def _unshare() -> list[str]:
    return ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "--net", "--map-root-user"]


@pytest.mark.timeout(1500)
def test_the_bundle_installs_and_runs_notebooks_00_to_03_with_no_network(tmp_path: Path) -> None:
    if os.environ.get("APPCOUP_TEST_OFFLINE") != "1":
        if _required():
            pytest.fail("offline is required (APPCOUP_REQUIRE) but APPCOUP_TEST_OFFLINE is not 1", pytrace=False)
        pytest.skip("builds the workshop bundle and runs notebooks 00-03 with no network (minutes): "
                    "set APPCOUP_TEST_OFFLINE=1 to run it (.ci/run does)")
    missing = _missing()
    if missing:
        why = "no offline test without " + "; ".join(missing)
        if _required():
            pytest.fail(f"the offline test is required here (APPCOUP_REQUIRE) but: {why}", pytrace=False)
        pytest.skip(why)
    started = time.monotonic()
    BUILD.mkdir(exist_ok=True)

    bundle = Path(os.environ.get("APPCOUP_TEST_BUNDLE") or BUILD / "appcoup-bundle.tar.gz")
    if not os.environ.get("APPCOUP_TEST_BUNDLE"):
        subprocess.run([sys.executable, "-m", "appcoup_lib.bundle", "make", "--out", str(bundle)], cwd=ROOT,
                       check=True, timeout=900)
    made = time.monotonic() - started
    assert bundle.is_file(), f"no bundle at {bundle}"
    from appcoup_lib.bundle import manifest

    m = manifest(bundle)
    size = bundle.stat().st_size
    report = (f"{bundle.name}: {size / 1e6:.1f} MB ({size} bytes); {len(m['wheels'])} wheels "
              f"{m['sizes']['wheels'] / 1e6:.1f} MB, {len(m['images'])} images {m['sizes']['images'] / 1e6:.1f} MB "
              f"saved, {len(m['notebooks'])} notebook files; python {m['python']['tag']} {m['python']['platform']}; "
              f"made {m['created']}\n")
    (BUILD / "bundle-size.txt").write_text(report)
    print(report, end="")
    assert m["images"], "the bundle must carry the course's images (it was made without a Docker engine?)"
    assert {"pause", "front", "echo", "generator", "base-python", "base-busybox"} <= {i["name"] for i in m["images"]}
    assert any(w["file"].startswith("appcoup-") for w in m["wheels"])
    assert {n.split("/")[-1] for n in m["notebooks"]} >= {f"{s}.ipynb" for s in NOTEBOOKS}

    learner = f"offline{os.getpid() % 100000}"
    state = tmp_path / "state"
    state.mkdir()
    sock = docker_socket()
    assert sock
    bridge = BridgeOutside(tmp_path / "bridge.sock", sock, learner)
    # Found here, outside: this machine's way out (its default gateway), unreachable inside.
    route = subprocess.run(["ip", "-4", "route", "show", "default"], capture_output=True, text=True, check=False).stdout.split()
    gateway = route[route.index("via") + 1] if "via" in route else None
    cfg = {"work": str(tmp_path), "bundle": str(bundle.resolve()), "learner": learner, "state": str(state),
           "bridge": str(bridge.path), "docker_sock": sock, "runtimes": list(RUNTIMES), "notebooks": list(NOTEBOOKS),
           "interval": 0.2, "duration": 2.0, "gateway": gateway}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    t0 = time.monotonic()
    try:
        proc = subprocess.run([*_unshare(), sys.executable, __file__, "inside", str(tmp_path / "cfg.json")],
                              capture_output=True, text=True, timeout=1200, check=False)
    finally:
        bridge.close()
        # A safety net from outside, for this test's learner and state only.
        env = {**os.environ, "APPCOUP_LEARNER": learner, "APPCOUP_STATE": str(state)}
        subprocess.run([sys.executable, "-m", "appcoup_lib", "clean"], env=env, capture_output=True, check=False,
                       timeout=300, cwd=ROOT)
    inside_s = time.monotonic() - t0
    if (tmp_path / "inside.log").exists():
        shutil.copy(tmp_path / "inside.log", BUILD / "offline-test.log")
    assert proc.returncode == 0, f"the driver failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    wall = time.monotonic() - started
    res.update(bundle_mb=round(size / 1e6, 1), make_bundle_s=round(made, 1), netns_s=round(inside_s, 1),
               wall_s=round(wall, 1), relayed=sorted(bridge.relayed), refused=bridge.refused)
    (BUILD / "offline-test.json").write_text(json.dumps(res, indent=1) + "\n")
    print(f"offline test: bundle {size / 1e6:.1f} MB; bundle made in {made:.0f} s, install {res['seconds'].get('install', 0):.0f} s, "
          f"in the namespace {inside_s:.0f} s, wall {wall:.0f} s")
    for r in res.get("runs", []):
        print(f"  {r['notebook']:<24} {r['runtime']:<7} rc={r['rc']} {r['seconds']:6.1f} s")

    # The namespace had no network: only lo, and it was down; PyPI unreachable before and after.
    assert res["netns"] != os.readlink("/proc/self/ns/net"), "the driver did not run in its own namespace"
    links = [ln for ln in res["links"].splitlines() if ln.strip()]
    assert len(links) == 1 and links[0].split(":")[1].strip() == "lo", f"links other than lo: {res['links']}"
    assert "state DOWN" in links[0] and ",UP" not in links[0] and "<UP" not in links[0], links[0]
    assert [ln.split(":")[1].strip() for ln in res["links_lo_up"].splitlines() if ln.strip()] == ["lo"]
    assert res["pypi_rc"] != 0, "pip reached its package index inside the namespace: this test would prove nothing"
    assert res.get("pypi_ip_rc", 1) != 0, f"the gateway {gateway} was reachable inside the namespace"
    assert res["routes"].strip() == "", f"routes inside the namespace: {res['routes']}"
    assert res["make_rc"] == 0, f"make venv BUNDLE=... failed with no network:\n{res['make_tail']}"
    assert res["pypi_rc_venv"] != 0 and res["pypi_rc_end"] != 0, "the package index became reachable"
    assert str(tmp_path) in res["installed"], res["installed"]

    from appcoup_lib import scenario

    bad = []
    for r in res["runs"]:
        expected = r["runtime"] if r["runtime"] in scenario(SCENARIO[r["notebook"]]).runtimes else "local"
        if r["rc"] != 0 or r["traceback"] or r["not_quite"] or expected not in r["runtimes_seen"]:
            bad.append(f"{r['notebook']} on {r['runtime']}: rc={r['rc']} traceback={r['traceback']} "
                       f"not_quite={r['not_quite']} runtime shown: {r['runtimes_seen']}\n{r['stderr']}")
    assert len(res["runs"]) == len(RUNTIMES) * len(NOTEBOOKS)
    assert bad == [], "\n\n".join(bad)
    assert res["relayed"], "the docker notebooks' requests never crossed the loopback bridge"
    assert res["clean_rc"] == 0, res["clean_out"]
    assert res["docker_ps_rc"] == 0 and res["docker_ps"] == "", f"left running: {res['docker_ps']}"
    assert res["strays"] == "0", f"local processes left: {res['strays']}"


if __name__ == "__main__":  # the driver: python tests/test_offline.py inside CFG.json (in the namespace)
    if sys.argv[1:2] == ["inside"]:
        print(json.dumps(inside(json.loads(Path(sys.argv[2]).read_text()))))

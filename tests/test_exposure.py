"""Exposure: what appcoup publishes listens on 127.0.0.1 unless asked, and echo and the adapter
serve their data file and health paths only (no listing, no traversal, no symlink escape).

The programs are the real files of images/ (the same ones the images run), tried with raw HTTP
requests as an attacker on a workshop's Wi-Fi would send them.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import appcoup_lib as ac
from appcoup_lib.paths import images_dir

SECRET = "top-secret-of-the-learner"
# Paths that must never serve anything but a 404 (raw: http.client sends them as written).
EVIL = ["/", "/secret", "/sub/", "/sub/inner", "/../secret", "/data/../secret", "/%2e%2e/secret",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/../../../../etc/passwd", "//etc/passwd", "/data/", "/.%2e/secret",
        "/data%2f..%2fsecret", "/%64ata/../secret", "/./secret", "/data;/../secret"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.putrequest(method, path, skip_host=False, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def _serve(program: str, cwd: Path, **env: str) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    p = subprocess.Popen([sys.executable, str(images_dir() / program / f"{program}.py")], cwd=cwd,
                         env={**os.environ, "PORT": str(port), "ECHO_QUIET": "1", "BIND_ADDRESS": "127.0.0.1", **env},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _get(port, "/healthz")
            return p, port
        except OSError:
            time.sleep(0.05)
    p.kill()
    raise AssertionError(f"{program} did not start")


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A learner's data directory, with things that must not leak beside the data file."""
    d = tmp_path / "volume"
    (d / "sub").mkdir(parents=True)
    (d / "data").write_text("1\n2\n3\n")
    (d / "secret").write_text(SECRET)
    (d / "sub" / "inner").write_text(SECRET)
    (tmp_path / "secret").write_text(SECRET)
    return d


@pytest.mark.parametrize("program", ["echo", "adapter"])
def test_only_data_and_health_are_served(program: str, workdir: Path) -> None:
    p, port = _serve(program, workdir)
    try:
        assert _get(port, "/data") == (200, b"1\n2\n3\n")
        assert _get(port, "/data?since=1")[0] == 200
        assert _get(port, "/healthz")[0] == 200
        assert _get(port, "/data", "HEAD")[0] == 200
        tried = 0
        for path in EVIL:
            status, body = _get(port, path)
            tried += 1
            assert status == 404, f"{program} answered {status} to {path!r}"
            assert SECRET.encode() not in body and b"<a href" not in body, f"{program} leaked via {path!r}"
        assert tried == len(EVIL)
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("program", ["echo", "adapter"])
def test_a_symlink_out_of_the_directory_is_not_served(program: str, workdir: Path, tmp_path: Path) -> None:
    (workdir / "data").unlink()
    (workdir / "data").symlink_to(tmp_path / "secret")
    p, port = _serve(program, workdir)
    try:
        status, body = _get(port, "/data")
        assert status == 404 and SECRET.encode() not in body
    finally:
        p.kill()
        p.wait()


def test_echo_remote_mode_still_serves_through_the_adapter(workdir: Path) -> None:
    adapter, aport = _serve("adapter", workdir)
    echo, eport = _serve("echo", workdir.parent, SOURCE_URL=f"http://127.0.0.1:{aport}/data")
    try:
        assert _get(eport, "/data") == (200, b"1\n2\n3\n")
        assert _get(eport, "/secret")[0] == 404
    finally:
        for p in (adapter, echo):
            p.kill()
            p.wait()


def _listen_address(port: int) -> set[str]:
    import psutil

    return {c.laddr.ip for c in psutil.net_connections(kind="inet")
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN}


@pytest.mark.local
def test_local_listens_on_loopback_unless_asked(local) -> None:
    with local.up("service", interval=0.2, port=0) as app:
        app.wait_ready()
        port = int(app.url.rsplit(":", 1)[1])
        assert _listen_address(port) == {"127.0.0.1"}
        for addr in app.names.values():  # the adapter too
            assert _listen_address(int(addr.rsplit(":", 1)[1])) == {"127.0.0.1"}
    with local.up("pod", interval=0.2, port=0, address="0.0.0.0") as app:
        app.wait_ready()
        assert _listen_address(int(app.url.rsplit(":", 1)[1])) == {"0.0.0.0"}
    with pytest.raises(ac.InvalidInput):
        local.up("pod", port=0, address="everywhere")


@pytest.mark.docker
def test_docker_publishes_on_loopback_unless_asked() -> None:
    rt = ac.runtime("docker")
    with rt.up("pod", interval=0.3, port=0, progress=False) as app:
        app.wait_ready(timeout=60)
        pause = next(c for c in app.owned() if c.labels.get("appcoup.container") == "pause")
        ports = pause.attrs["HostConfig"]["PortBindings"]
        assert [b["HostIp"] for b in ports["8000/tcp"]] == ["127.0.0.1"]
        assert any("-p 127.0.0.1:" in c for c in app.commands())
        port = int(app.url.rsplit(":", 1)[1])
        for path in EVIL[:6]:  # the image runs the same echo.py
            assert _get(port, path)[0] == 404
    with rt.up("separate", interval=0.3, port=0, progress=False, address="0.0.0.0") as app:
        app.wait_ready(timeout=60)
        ports = app.container("echo").attrs["HostConfig"]["PortBindings"]
        assert [b["HostIp"] for b in ports["8000/tcp"]] == ["0.0.0.0"]

"""The `appcoup` command, run as a learner would run it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

import pytest

pytestmark = pytest.mark.local


def appcoup(*args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([sys.executable, "-m", "appcoup_lib", *args], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ))
    if check:
        assert p.returncode == 0, p.stderr
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def test_unknown_scenario_exits_2_and_lists_valid_ones():
    p = appcoup("up", "pods")
    assert p.returncode == 2
    assert "separate, single-image, pod, service, volume, federation" in p.stderr


def test_unknown_runtime_exits_2_and_lists_valid_ones():
    p = appcoup("up", "pod", "--runtime", "podman")
    assert p.returncode == 2
    assert "auto, local, docker, kubernetes" in p.stderr


def test_doctor_lists_every_runtime():
    out = appcoup("doctor", check=True).stdout
    for name in ("local", "docker", "kubernetes"):
        assert name in out
    assert "runtime('auto') picks" in out


def test_up_serves_numbers_at_the_printed_url_then_down():
    port = free_port()
    p = appcoup("up", "pod", "--runtime", "local", "--interval", "0.2", "--port", str(port), check=True)
    try:
        url = next(w for w in p.stdout.split() if w.startswith("http://"))
        assert url == f"http://127.0.0.1:{port}/data"
        body = urllib.request.urlopen(url, timeout=5).read().decode()
        assert body.split() and all(n.isdigit() for n in body.split())
        status = appcoup("status", check=True).stdout
        assert "pod" in status and "generator" in status and "running" in status
        assert appcoup("data", "pod", check=True).stdout.split()
        assert "killed echo" in appcoup("kill", "pod", "echo", check=True).stdout
        assert "killed" in appcoup("events", "pod", check=True).stdout
    finally:
        down = appcoup("down", "pod")
    assert down.returncode == 0 and "stopped and removed" in down.stdout
    assert "runs nothing" in appcoup("status", check=True).stdout


def test_up_on_a_taken_port_says_who_holds_it():
    with socket.socket() as s:
        s.bind(("", 0))
        s.listen()
        port = s.getsockname()[1]
        p = appcoup("up", "pod", "--runtime", "local", "--port", str(port))
    assert p.returncode == 1
    assert f"Port {port} is already in use by process {os.getpid()}" in p.stderr
    assert "Traceback" not in p.stderr


def test_down_of_nothing_says_how_to_start():
    p = appcoup("down", "volume", "--runtime", "local")
    assert p.returncode == 1 and "appcoup up volume" in p.stderr and "Traceback" not in p.stderr


def test_federation_on_local_is_refused_with_the_runtime_that_supports_it():
    p = appcoup("up", "federation", "--runtime", "local")
    assert p.returncode == 1 and "kubernetes" in p.stderr


def test_clean_removes_a_detached_app():
    appcoup("up", "volume", "--runtime", "local", "--port", "0", "--interval", "0.2", check=True)
    out = appcoup("clean", check=True).stdout
    assert "local: process" in out
    assert "nothing to clean" in appcoup("clean", check=True).stdout

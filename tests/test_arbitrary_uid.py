"""Every image runs as an arbitrary UID in group 0, the way OpenShift's restricted-v2 policy runs it.

The manifests pin no user (``runAsNonRoot`` only), so each image must declare a numeric non-root
``USER``, and every directory a program writes must be writable by group 0. Here each image runs on
Docker as ``--user 1000770000:0`` (a UID of an OpenShift project's range) with a fresh volume on its
working directory, as in the course's scenarios, and must do its job: the generator writes numbers,
echo and the adapter serve them, the combined image does both.
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from appcoup_lib import images

pytestmark = pytest.mark.docker
UID = "1000770000:0"
# image -> (working directory, a shell check that passes once the program does its job)
PY_GET = "python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}{path}').read().decode())\""
JOBS = {
    "generator": ("/tmp/out", "test -s data && cat data"),
    "echo": ("/tmp/in", PY_GET.format(port=8000, path="/healthz")),
    "adapter": ("/tmp/out", PY_GET.format(port=8080, path="/healthz")),
    "combined": ("/tmp/app", PY_GET.format(port=8000, path="/data")),
    "combined-init": ("/tmp/app", PY_GET.format(port=8000, path="/data")),
}


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120, check=check)


@pytest.mark.parametrize("name", sorted(JOBS))
def test_the_image_works_as_an_arbitrary_uid_in_group_0(name: str) -> None:
    tag = images.ensure([name], progress=False)[name]
    user = _docker("image", "inspect", "-f", "{{.Config.User}}", tag).stdout.strip()
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) > 0, f"{name}: USER must be a numeric non-root user, not {user!r}"
    workdir, job = JOBS[name]
    ctr = f"appcoup-uidtest-{uuid.uuid4().hex[:8]}"
    vol = f"{ctr}-data"
    label = ["--label", "app.kubernetes.io/part-of=appcoup", "--label", f"appcoup.app={ctr}"]
    _docker("volume", "create", *label, vol)
    try:
        _docker("run", "-d", "--name", ctr, *label, "--user", UID, "--read-only", "-e", "INTERVAL=0.2",
                "-e", "PYTHONDONTWRITEBYTECODE=1", "-v", f"{vol}:{workdir}", tag)
        deadline = time.monotonic() + 20
        while True:
            r = _docker("exec", ctr, "sh", "-c", job, check=False)
            if r.returncode == 0 and r.stdout.strip():
                break
            state = _docker("inspect", "-f", "{{.State.Status}}", ctr).stdout.strip()
            assert state == "running" and time.monotonic() < deadline, (
                f"{name} as {UID}: {state}; {r.stderr.strip()}\n{_docker('logs', ctr, check=False).stderr[-800:]}")
            time.sleep(0.3)
        assert _docker("exec", ctr, "id", "-u").stdout.strip() == UID.split(":")[0]
    finally:
        _docker("rm", "-f", ctr, check=False)
        _docker("volume", "rm", "-f", vol, check=False)

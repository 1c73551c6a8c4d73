"""The connection to a Docker engine, shared by the images module and the docker runtime.

Apart from both, so neither imports the other: ``images`` builds on an engine, the ``docker``
runtime runs containers on it, and both only need to reach it.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from .errors import RuntimeUnavailable

_DEFAULT_SOCKET = "/var/run/docker.sock"
_FIX_SDK = "pip install 'appcoup[docker]'  (the Docker SDK for Python)"
_FIX_START = ("start Docker: `sudo dockerd &` on Linux (in this repository: `sudo .ci/docker-up`), "
              "or start Docker Desktop / `colima start` on macOS")
_FIX_PERMISSION = "sudo usermod -aG docker $USER, then log out and in again (or run with sudo)"

# -- connecting ----------------------------------------------------------------------------------
def _diagnose(e: BaseException) -> tuple[str, str]:
    """(detail, fix) for a failure to reach the engine."""
    text = f"{e!r} {e}"
    host = os.environ.get("DOCKER_HOST", f"unix://{_DEFAULT_SOCKET}")
    if "Permission denied" in text or "PermissionError" in text:
        return f"permission denied on the Docker socket ({host})", _FIX_PERMISSION
    if "FileNotFoundError" in text or "No such file" in text:
        return f"no Docker engine: the socket {host} does not exist", _FIX_START
    if "Connection refused" in text or "ConnectionRefused" in text:
        return f"no Docker engine answers at {host} (connection refused)", _FIX_START
    if "timed out" in text.lower() or "Timeout" in text:
        return f"the Docker engine at {host} does not answer (timed out)", _FIX_START
    return f"the Docker engine at {host} cannot be reached: {e}", _FIX_START


def _other_sockets() -> list[str]:
    """Where Docker Desktop, Colima and rootless Docker put their socket instead of the default."""
    home = os.path.expanduser("~")
    cands = [f"{home}/.docker/run/docker.sock", f"{home}/.docker/desktop/docker.sock",
             f"{home}/.colima/default/docker.sock", f"{home}/.colima/docker.sock"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        cands.append(f"{os.environ['XDG_RUNTIME_DIR']}/docker.sock")
    cands.append(f"/run/user/{os.getuid()}/docker.sock")
    return [c for c in dict.fromkeys(cands) if os.path.exists(c)]


def _base_url() -> str | None:
    """The engine to talk to: None means ``DOCKER_HOST`` or the default socket (``docker.from_env``).

    Without ``DOCKER_HOST`` and without the default socket, a socket of Docker Desktop, Colima or
    rootless Docker is used when there is one, as the ``docker`` CLI's context would.
    """
    if os.environ.get("DOCKER_HOST") or os.path.exists(_DEFAULT_SOCKET):
        return None
    others = _other_sockets()
    return f"unix://{others[0]}" if others else None


def connect(timeout: float = 120) -> Any:
    """A ``docker.DockerClient`` for ``DOCKER_HOST`` (or the default socket), or a clear error."""
    try:
        import docker
    except ImportError:
        raise RuntimeUnavailable("The Docker SDK for Python is not installed.", fix=_FIX_SDK) from None
    try:
        url = _base_url()
        return docker.DockerClient(base_url=url, timeout=timeout) if url else docker.from_env(timeout=timeout)
    except docker.errors.DockerException as e:
        detail, fix = _diagnose(e)
        raise RuntimeUnavailable(f"Docker is not usable: {detail}.", fix=fix) from e


def _host_address() -> str:
    """Where published ports are reachable: the engine's host for a tcp/ssh DOCKER_HOST, else here."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith(("tcp://", "ssh://", "http://", "https://")):
        return urlparse(host).hostname or "127.0.0.1"
    return "127.0.0.1"



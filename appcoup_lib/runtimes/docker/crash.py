"""Crashing a container for real: SIGKILL to its main process, only once it is proven to be that container's.

``docker kill`` will not do: Docker counts it as a manual stop and does not apply the restart
policy. Inside the container, PID 1 ignores even SIGKILL. So the signal comes from the host's PID
namespace: directly when this process may signal it, else from a throwaway container sharing the
engine's PID namespace (a non-root user in the docker group, Docker Desktop, Colima).

A pid number alone may name a user's process (the container just restarted, the pid was reused):
every path checks that the process is the container's before signalling it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from ...errors import AppcoupError, NotFound
from ..clock import rfc3339
from .engine import DEFAULT_SOCKET, base_url, other_sockets

# Run by the helper container in the engine's PID namespace: signal $PID only when it lives in
# the container's cgroup (so a stale or foreign pid is never signalled).
KILL_IF_OURS = ('grep -q "$ID" "/proc/$PID/cgroup" 2>/dev/null || { echo "not-ours"; exit 0; }; '
                'kill -9 "$PID" && echo killed')


def engine_on_this_host() -> bool:
    """Whether the engine's processes are this machine's processes (same PID namespace).

    True for the default socket or a unix ``DOCKER_HOST`` of a dockerd here. Not for a tcp/ssh
    engine, nor for Docker Desktop, Colima or Podman machine (their sockets, found by
    :func:`~.engine.other_sockets`, lead into a VM: a PID there names another process here).
    """
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return base_url() is None and os.path.exists(DEFAULT_SOCKET)
    if not host.startswith("unix://"):
        return False
    path = os.path.realpath(host[len("unix://"):])
    return path not in {os.path.realpath(s) for s in other_sockets()}


def pid_is_container(pid: int, container_id: str, started_at: str) -> bool:
    """Whether host process ``pid`` is the main process of container ``container_id``.

    Two proofs: the process lives in the container's cgroup (its id is in the path), and it
    started when the container did.
    """
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            cgroup = f.read()
    except OSError:
        return False
    if container_id not in cgroup:
        return False
    started = rfc3339(started_at)
    try:
        import psutil

        created = psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - gone, or not ours to read: not proven, so not signalled from here
        return False
    return started is not None and abs(created - started) < 5


def _kill_here(pid: int, ctr: Any, started_at: str) -> bool:
    """SIGKILL ``pid`` from this process when it is proven ``ctr``'s; False when it cannot be done here."""
    if not (engine_on_this_host() and hasattr(os, "pidfd_open")):
        return False
    # A pidfd pins the process: once it is checked, the signal cannot reach a reused pid.
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if pid_is_container(pid, ctr.id, started_at):
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            return True
    except OSError:
        pass  # not permitted (a user in the docker group): the helper does it
    finally:
        os.close(fd)
    return False


def crash(client: Any, ctr: Any, *, helper_image: Callable[[], str], labels: dict[str, str]) -> str:
    """SIGKILL ``ctr``'s main process the way a crash looks to Docker; what was done, in words.

    ``helper_image()`` names the image of the helper container (only asked for when one is needed);
    ``labels`` mark the helper as the app's (``appcoup.container=killer``: not part of its timeline).
    """
    ctr.reload()
    state = ctr.attrs.get("State", {})
    pid = int(state.get("Pid") or 0)
    if not pid:
        raise NotFound(f"Container {ctr.name!r} is not running, so there is nothing to kill.",
                       fix="look at app.status()")
    if _kill_here(pid, ctr, state.get("StartedAt", "")):
        return f"SIGKILL to its main process (host pid {pid})"
    # The helper sees the engine's own PID namespace (in a VM for Docker Desktop or Colima)
    # and checks there that the pid is this container's before signalling it.
    out = client.containers.run(helper_image(), ["sh", "-c", KILL_IF_OURS], pid_mode="host", remove=True,
                                environment={"PID": str(pid), "ID": ctr.id}, labels=labels)
    if b"killed" not in (out or b""):
        raise AppcoupError(f"Could not crash container {ctr.name!r}: pid {pid} is not its process any more.",
                           why="the engine reported a main process that no longer runs in that container "
                               "(it just restarted or stopped); nothing was signalled",
                           fix="look at app.status(), then try again")
    return f"SIGKILL to its main process (pid {pid} on the engine's host)"


__all__ = ["KILL_IF_OURS", "crash", "engine_on_this_host", "pid_is_container"]

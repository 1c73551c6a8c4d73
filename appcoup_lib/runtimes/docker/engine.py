"""The connection to a Docker engine, and the one place where its errors become AppcoupErrors.

Shared by :mod:`appcoup_lib.images` (it builds on the engine) and the docker runtime (it runs
containers there); neither needs the other to reach it.

The boundary is :func:`errors` (a context manager that is also a decorator), as the kubernetes
runtime's ``client.call()`` is for a cluster: every SDK, ``requests`` and ``urllib3`` failure that
passes through it leaves as an :class:`~appcoup_lib.errors.AppcoupError` saying what failed,
Docker's own words and what to do. Code inside may still catch the SDK's ``NotFound`` where "not
there" is an answer (a container already removed), never to hide a failure.
The ``docker`` SDK is imported only inside functions: the local runtime never needs it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from ...errors import AppcoupError, NotFound, RuntimeUnavailable
from ...refs import short_ref  # noqa: F401 - re-exported

T = TypeVar("T")

DEFAULT_SOCKET = "/var/run/docker.sock"
FIX_SDK = "pip install 'appcoup[docker]'  (the Docker SDK for Python)"
FIX_START = ("start Docker: `sudo dockerd &` on Linux (in this repository: `sudo .ci/docker-up`), "
             "or start Docker Desktop / `colima start` on macOS")
FIX_PERMISSION = "sudo usermod -aG docker $USER, then log out and in again (or run with sudo)"
FIX_LOOK = "look at `docker ps -a --filter label=appcoup.app` and `appcoup clean --runtime docker`"


# -- connecting ----------------------------------------------------------------------------------
def diagnose(e: BaseException) -> tuple[str, str]:
    """(detail, fix) for a failure to reach the engine."""
    text = f"{e!r} {e}"
    host = os.environ.get("DOCKER_HOST", f"unix://{DEFAULT_SOCKET}")
    if "Permission denied" in text or "PermissionError" in text:
        return f"permission denied on the Docker socket ({host})", FIX_PERMISSION
    if "FileNotFoundError" in text or "No such file" in text:
        return f"no Docker engine: the socket {host} does not exist", FIX_START
    if "Connection refused" in text or "ConnectionRefused" in text:
        return f"no Docker engine answers at {host} (connection refused)", FIX_START
    if "timed out" in text.lower() or "Timeout" in text:
        return f"the Docker engine at {host} does not answer (timed out)", FIX_START
    return f"the Docker engine at {host} cannot be reached: {e}", FIX_START


def other_sockets() -> list[str]:
    """Where Docker Desktop, Colima and rootless Docker put their socket instead of the default."""
    home = os.path.expanduser("~")
    cands = [f"{home}/.docker/run/docker.sock", f"{home}/.docker/desktop/docker.sock",
             f"{home}/.colima/default/docker.sock", f"{home}/.colima/docker.sock"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        cands.append(f"{os.environ['XDG_RUNTIME_DIR']}/docker.sock")
    cands.append(f"/run/user/{os.getuid()}/docker.sock")
    return [c for c in dict.fromkeys(cands) if os.path.exists(c)]


def base_url() -> str | None:
    """The engine to talk to: None means ``DOCKER_HOST`` or the default socket (``docker.from_env``).

    Without ``DOCKER_HOST`` and without the default socket, a socket of Docker Desktop, Colima or
    rootless Docker is used when there is one, as the ``docker`` CLI's context would.
    """
    if os.environ.get("DOCKER_HOST") or os.path.exists(DEFAULT_SOCKET):
        return None
    others = other_sockets()
    return f"unix://{others[0]}" if others else None


def connect(timeout: float = 120) -> Any:
    """A ``docker.DockerClient`` for ``DOCKER_HOST`` (or the default socket), or a clear error."""
    try:
        import docker
    except ImportError:
        raise RuntimeUnavailable("The Docker SDK for Python is not installed.", fix=FIX_SDK) from None
    import requests.exceptions

    try:
        url = base_url()
        kw = {"base_url": url} if url else docker.utils.kwargs_from_env()
        # The API version and the engine from one `/_ping` (the SDK's own detection asks `/version`,
        # which Podman answers slowly: it runs conmon and runc to ask their versions).
        probe = docker.APIClient(version=docker.constants.MINIMUM_DOCKER_API_VERSION, timeout=timeout, **kw)
        try:
            res = probe.get(f"{probe.base_url}/_ping")
            res.raise_for_status()
        finally:
            probe.close()
        client = docker.DockerClient(version=res.headers.get("Api-Version") or None, timeout=timeout, **kw)
    except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
        detail, fix = diagnose(e)
        raise RuntimeUnavailable(f"Docker is not usable: {detail}.", fix=fix) from e
    engine = _engine_of(res.headers)
    if engine is not None:
        client._appcoup_engine = engine  # flavour(client) asks nothing more
    return client


@dataclass(frozen=True)
class Engine:
    """What answers at the socket: the facts in which Docker and Podman's compatible API differ.

    One code path for both engines; where they differ, the code asks one of these named facts
    instead of "is it Podman?".
    """

    kind: str  # "docker" | "podman"
    version: str  # the engine's own version ("20.10.24", "4.3.1")
    api_version: str = ""  # the Docker API version it speaks ("1.41")

    @property
    def name(self) -> str:
        """How ``doctor`` names it."""
        return (f"Podman {self.version} (Docker-compatible API)" if self.kind == "podman"
                else f"Docker Engine {self.version}")

    @property
    def health_checks_may_stall(self) -> bool:
        """Whether HEALTHCHECKs may not run by themselves: Podman schedules them with systemd timers,
        so without systemd (a container, WSL, CI) none runs and the health stays "starting"."""
        return self.kind == "podman"

    @property
    def announces_policy_restarts(self) -> bool:
        """Whether a restart by the restart policy comes as a "restart" event before its "start"
        (Podman); Docker sends only the "start"."""
        return self.kind == "podman"

    @property
    def past_events_without_until(self) -> bool:
        """Whether past events must be read with ``stream=false`` and no ``until`` (Podman: with
        ``until`` it stops reading its events file when that moment comes, with whatever it has
        read by then: on a busy machine a part of them, or none). Docker: ``since`` and ``until``."""
        return self.kind == "podman"

    @property
    def dns(self) -> str:
        """Who answers names on a user-defined network."""
        return "aardvark-dns (Podman's DNS)" if self.kind == "podman" else "Docker's embedded DNS"


def flavour(client: Any) -> Engine:
    """The :class:`Engine` behind ``client`` (asked once per client).

    From ``/_ping``'s headers (``Server: Docker/20.10.24`` or ``Server: Libpod/4.3.1``): one quick
    round trip, where Podman's ``/version`` runs conmon and runc to ask theirs (seconds on a busy
    machine). ``/version`` only when the header says neither.
    """
    engine = getattr(client, "_appcoup_engine", None)
    if engine is None:
        api = getattr(client, "api", client)
        res = api.get(f"{api.base_url}/_ping")
        res.raise_for_status()
        engine = _engine_of(res.headers)
        if engine is None:
            v = client.version()
            podman = next((c for c in v.get("Components") or [] if "podman" in str(c.get("Name", "")).lower()), None)
            engine = Engine("podman" if podman else "docker", str((podman or v).get("Version") or "?"),
                            str(v.get("ApiVersion") or ""))
        client._appcoup_engine = engine
    return engine


def import_rootfs(client: Any, tar: Any, tag: str, *, changes: list[str]) -> None:
    """``docker import`` the root file system ``tar`` as image ``tag`` (``changes``: Dockerfile lines).

    Imported untagged, then tagged by its id: Podman's compatible API drops the ``tag`` of an
    import (it names the image ``<repo>:latest``), Docker keeps it; tagging afterwards is the
    same on both.
    """
    import json

    answer = client.api.import_image_from_file(str(tar), changes=changes)
    ids = [json.loads(line).get("status", "") for line in str(answer).splitlines() if line.strip().startswith("{")]
    image_id = next((i for i in reversed(ids) if i.startswith("sha256:")), "")
    if not image_id:
        raise AppcoupError("The engine imported the root file system but named no image.", why=str(answer)[-300:])
    repo, _, version = tag.partition(":")
    client.api.tag(image_id, repo, version)


def _engine_of(ping_headers: Any) -> Engine | None:
    """The engine that answered ``/_ping`` (``Server: Docker/20.10.24 ...``, ``Server: Libpod/4.3.1 ...``)."""
    kind, _, version = str(ping_headers.get("Server", "")).partition(" ")[0].partition("/")
    if kind.lower() not in ("docker", "libpod"):
        return None
    return Engine("podman" if kind.lower() == "libpod" else "docker", version or "?",
                  ping_headers.get("Api-Version", ""))


def host_address() -> str:
    """Where published ports are reachable: the engine's host for a tcp/ssh DOCKER_HOST, else here."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith(("tcp://", "ssh://", "http://", "https://")):
        return urlparse(host).hostname or "127.0.0.1"
    return "127.0.0.1"


# -- the error boundary --------------------------------------------------------------------------
_GONE = ("refused", "no such file", "timed out", "timeout", "connection aborted", "remotedisconnected",
         "connection reset", "broken pipe", "max retries", "remote end closed")


def engine_gone(e: BaseException) -> bool:
    """Whether ``e`` says the engine cannot be reached (rather than that it refused a request)."""
    import requests.exceptions

    if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
        return True
    text = f"{type(e).__name__} {e}".lower()
    return any(g in text for g in _GONE) and getattr(e, "response", None) is None


def _is_engine_error(e: BaseException) -> bool:
    """Whether ``e`` came from talking to the engine (the SDK lets requests/urllib3 errors through as they are)."""
    import docker.errors
    import requests.exceptions

    return (isinstance(e, (docker.errors.DockerException, requests.exceptions.RequestException, OSError))
            or type(e).__module__.startswith("urllib3"))


def _convert(what: str, e: BaseException) -> AppcoupError:
    """What failed, Docker's words, what to do."""
    import docker.errors

    if engine_gone(e):
        detail, fix = diagnose(e)
        return RuntimeUnavailable(f"{what}: the Docker engine is gone: {detail}.",
                                  why="the engine stopped or restarted, or its socket went away",
                                  fix=f"{fix}; then run the same command again (`appcoup down ... --runtime docker` "
                                      "or `appcoup clean --runtime docker` finish the job once it answers)")
    explanation = getattr(e, "explanation", None) or str(e)
    if isinstance(e, docker.errors.NotFound):
        return NotFound(what, why=f"Docker said: {explanation}", fix=FIX_LOOK)
    return AppcoupError(what, why=f"Docker said: {explanation}", fix=FIX_LOOK)


@contextlib.contextmanager
def errors(what: str) -> Iterator[None]:
    """The boundary: an engine failure inside becomes an :class:`AppcoupError` naming ``what``.

    A context manager (``with errors("Cannot scale"):``) and, like every ``contextmanager``, a
    decorator (``@errors("Cannot read the status")``). AppcoupErrors raised inside pass unchanged
    (the innermost ``what`` is the most precise); anything that is not the engine's (a bug) too.
    """
    try:
        yield
    except AppcoupError:
        raise
    except Exception as e:
        if _is_engine_error(e):
            raise _convert(what, e) from e
        raise


def find(collection: Any, name: str) -> Any | None:
    """``collection.get(name)`` (``client.containers``, ``client.networks`` ...), None when it does not exist.

    The one answer of the engine that is not a failure; every other error goes on to :func:`errors`.
    """
    import docker.errors

    try:
        return collection.get(name)
    except docker.errors.NotFound:
        return None


def missing(e: BaseException) -> bool:
    """Whether the engine answered ``e`` because the object is not there (HTTP 404)."""
    import docker.errors

    return isinstance(e, docker.errors.NotFound)


# -- round trips in parallel ------------------------------------------------------------------------
def in_parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads (Docker API calls are round trips that overlap well); results in order.

    The first exception is re-raised here, in the caller's thread, after all calls have ended
    (so a caller's :func:`errors` converts it).
    """
    if len(calls) == 1:
        return [calls[0]()]
    results: list[Any] = [None] * len(calls)
    failures: list[BaseException] = []
    done = [threading.Event() for _ in calls]

    def one(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as e:  # noqa: BLE001 - re-raised below in the caller's thread
            failures.append(e)
        finally:
            done[i].set()

    for i in range(len(calls)):
        threading.Thread(target=one, args=(i,), daemon=True).start()
    try:
        for d in done:
            d.wait()
    except BaseException:
        # Ctrl-C reaches only this thread: let the calls in flight end, so that what they create
        # exists when the caller removes everything of the app (else it would appear just after).
        # (Not Thread.join: an interrupted join marks a running thread as ended, CPython < 3.13.)
        for d in done:
            while not d.wait(0.05):
                pass
        raise
    if failures:
        raise failures[0]
    return results


__all__ = ["DEFAULT_SOCKET", "FIX_PERMISSION", "FIX_SDK", "FIX_START", "Engine", "base_url", "connect",
           "diagnose", "engine_gone", "errors", "find", "flavour", "host_address", "import_rootfs", "in_parallel",
           "missing", "other_sockets", "short_ref"]

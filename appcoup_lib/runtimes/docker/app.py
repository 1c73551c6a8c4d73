"""The Docker runtime: each scenario as containers, networks and volumes on a Docker engine.

How a scenario becomes Docker objects (what a learner would type by hand, see :meth:`DockerApp.commands`):

- a unit with one container is one ``docker run``; its port is published on the host;
- a unit with several containers (a pod) gets a tiny *pause* container that owns the network
  namespace and publishes the port; the others join it with ``--network container:<pause>``
  (this is what Kubernetes does for every pod);
- a ``host-dir`` volume is a bind mount of a host directory; ``scratch`` and ``persistent``
  volumes are named volumes;
- a scenario with services gets a user-defined network, where Docker's DNS answers the service
  name (a network alias of the unit that serves it).

Every object carries the label ``app.kubernetes.io/part-of=appcoup`` and ``appcoup.app=<name>``,
so ``down``, ``clean`` and ``attach`` (from another process) find them all.
The ``docker`` SDK is imported only here, inside functions: the local runtime never needs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .._docker import (  # connect and friends stay importable from here too
    _DEFAULT_SOCKET,
    _FIX_PERMISSION,
    _FIX_SDK,
    _FIX_START,
    _base_url,
    _diagnose,
    _host_address,
    _other_sockets,
    connect,
)
from ..errors import AlreadyUp, AppcoupError, NotFound, PortInUse, RuntimeUnavailable
from ..paths import state_dir
from ..scenarios import Container, Scenario, Unit
from ..scenarios import scenario as get_scenario
from . import procs
from .base import (
    LABEL,
    LABEL_VALUE,
    LEARNER_LABEL,
    PREFIX,
    App,
    Availability,
    Event,
    Runtime,
    Table,
    check_address,
    check_name,
    default_name,
    learner,
    record_event,
    recorded_events,
    register,
)
from .docker_scale import DockerScaling

T = TypeVar("T")
APP_LABEL = "appcoup.app"
# Seconds `docker stop` waits before SIGKILL (Docker's default, stated so lessons can cite it).
STOP_GRACE = 10


def _labels(app: str, scenario: str, **extra: str) -> dict[str, str]:
    return {LABEL: LABEL_VALUE, "appcoup.scenario": scenario, APP_LABEL: app, LEARNER_LABEL: learner(), **extra}


def _engine_on_this_host() -> bool:
    """Whether the engine's processes are this machine's processes (same PID namespace).

    True for the default socket or a unix ``DOCKER_HOST`` of a dockerd here. Not for a tcp/ssh
    engine, nor for Docker Desktop, Colima or Podman machine (their sockets, found by
    :func:`_other_sockets`, lead into a VM: a PID there names another process here).
    """
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return _base_url() is None and os.path.exists(_DEFAULT_SOCKET)
    if not host.startswith("unix://"):
        return False
    path = os.path.realpath(host[len("unix://"):])
    return path not in {os.path.realpath(s) for s in _other_sockets()}


def _parse_time(stamp: str) -> float | None:
    """Docker's RFC 3339 time with nanoseconds ("2026-01-02T03:04:05.123456789Z") as epoch seconds."""
    from datetime import datetime, timezone

    try:
        head, _, frac = stamp.rstrip("Z").partition(".")
        t = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
        return t + (float(f"0.{frac[:6]}") if frac else 0.0)
    except (ValueError, AttributeError):
        return None


def _pid_is_container(pid: int, container_id: str, started_at: str) -> bool:
    """Whether host process ``pid`` is the main process of container ``container_id``.

    Two proofs: the process lives in the container's cgroup (its id is in the path), and it
    started when the container did. A pid number alone may name a user's process.
    """
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            cgroup = f.read()
    except OSError:
        return False
    if container_id not in cgroup:
        return False
    started = _parse_time(started_at)
    try:
        import psutil

        created = psutil.Process(pid).create_time()
    except Exception:  # noqa: BLE001 - gone, or not ours to read
        return False
    return started is not None and abs(created - started) < 5


# Run by the helper container in the engine's PID namespace: signal $PID only when it lives in
# the container's cgroup (so a stale or foreign pid is never signalled).
_KILL_IF_OURS = ('grep -q "$ID" "/proc/$PID/cgroup" 2>/dev/null || { echo "not-ours"; exit 0; }; '
                 'kill -9 "$PID" && echo killed')


_GONE = ("refused", "no such file", "timed out", "timeout", "connection aborted", "remotedisconnected",
         "connection reset", "broken pipe", "max retries", "remote end closed")


def _engine_gone(e: BaseException) -> bool:
    """Whether ``e`` says the engine cannot be reached (rather than that it refused a request)."""
    import requests.exceptions

    if isinstance(e, (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ConnectionError)):
        return True
    text = f"{type(e).__name__} {e}".lower()
    return any(g in text for g in _GONE) and getattr(e, "response", None) is None


def _sdk_error(what: str, e: BaseException) -> AppcoupError:
    """Convert an SDK error at the boundary: what failed, Docker's words, what to do."""
    explanation = getattr(e, "explanation", None) or str(e)
    if _engine_gone(e):
        detail, fix = _diagnose(e)
        return RuntimeUnavailable(f"{what}: the Docker engine is gone: {detail}.",
                                  why="the engine stopped or restarted, or its socket went away",
                                  fix=f"{fix}; then run the same command again (`appcoup down ... --runtime docker` "
                                      "or `appcoup clean --runtime docker` finish the job once it answers)")
    return AppcoupError(what, why=f"Docker said: {explanation}",
                        fix="look at `docker ps -a --filter label=appcoup.app` and `appcoup clean --runtime docker`")


def _engine_errors(what: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Decorator: any failure to talk to the engine becomes an :class:`AppcoupError` naming ``what``.

    The SDK lets connection errors of ``requests``/``urllib3`` through untouched; a learner must
    see "the Docker engine is gone", not a urllib3 traceback.
    """
    import functools

    def deco(fn: Callable[..., T]) -> Callable[..., T]:
        @functools.wraps(fn)
        def wrapped(*args: Any, **kwargs: Any) -> T:
            try:
                return fn(*args, **kwargs)
            except AppcoupError:
                raise
            except Exception as e:  # noqa: BLE001 - converted below, or re-raised as it was
                import docker.errors
                import requests.exceptions

                if isinstance(e, (docker.errors.DockerException, requests.exceptions.RequestException, OSError)) \
                        or type(e).__module__.startswith("urllib3"):
                    raise _sdk_error(what, e) from e
                raise

        return wrapped

    return deco


def _port_holder(client: Any, port: int) -> str | None:
    """Who holds host ``port``: a container by name (first), or a process; None when free."""
    # One list call (the low-level one: the models' list inspects every container in turn).
    for ctr in client.api.containers(filters={"status": "running"}):
        if any(p.get("PublicPort") == port for p in ctr.get("Ports") or []):
            labels = ctr.get("Labels") or {}
            name = (ctr.get("Names") or ["?"])[0].lstrip("/")
            owner = labels.get(APP_LABEL)
            how = (f", part of the appcoup app {owner!r} (stop it: appcoup down "
                   f"{labels.get('appcoup.scenario')} --runtime docker)") if owner else ""
            return f"the container {name!r}{how}"
    if _host_address() != "127.0.0.1":
        return None  # a remote engine: only its containers can be checked from here
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
            return None
        except OSError:
            pass
    try:
        import psutil

        for c in psutil.net_connections(kind="inet"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                try:
                    p = psutil.Process(c.pid)
                    return f"process {c.pid} ({' '.join(p.cmdline())[:80] or p.name()})"
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    return f"process {c.pid}"
    except (ImportError, OSError, Exception):  # noqa: BLE001 - psutil may be denied; the port is taken anyway
        pass
    return "another program (run `ss -ltnp` to see which)"


def _free_port(client: Any) -> int:
    """A host port that neither a container nor a process here holds."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("", 0))
            port = s.getsockname()[1]
        if _port_holder(client, port) is None:
            return port
    raise AppcoupError("Found no free port to publish /data on.", fix="pass a port yourself: up(..., port=8001)")


# `ps` and `pkill -9 -f` for images without them (shared with the kubernetes runtime).
_PS, _PKILL = procs.PS, procs.PKILL


# -- the app -------------------------------------------------------------------------------------
class DockerApp(DockerScaling, App):
    """A scenario running as containers on a Docker engine."""

    # scale, rollout, recreate: see docker_scale.py
    abilities = frozenset({"exec", "stop", "replace", "commands", "scale", "rollout", "recreate"})

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float, client: Any,
                 started: float, port: int = 0) -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.client = client
        self.started = started
        self._port = port
        self._commands: list[str] = []

    # -- names ---------------------------------------------------------------------------------
    def container_name(self, container: str) -> str:
        """The Docker name of a scenario container (``appcoup-pod-echo``)."""
        return f"{self.name}-{container}"

    def pause_name(self, unit: str) -> str:
        return f"{self.name}-{unit}-pause"

    def _ctr(self, container: str) -> Any:
        import docker.errors

        try:
            return self.client.containers.get(self.container_name(container))
        except docker.errors.NotFound:
            raise NotFound(f"The container {self.container_name(container)!r} does not exist (any more).",
                           fix="look at app.status(); start the app again with up()") from None
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot inspect container {container!r}", e) from e

    def _owned(self, kind: str = "containers") -> list[Any]:
        import docker.errors

        coll = getattr(self.client, kind)
        try:
            return coll.list(**({"all": True} if kind == "containers" else {}),
                             filters={"label": f"{APP_LABEL}={self.name}"})
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot list the {kind} of {self.name!r}", e) from e

    # -- App hooks -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        if not self._port:
            self._port = self._front_port()  # after scale(): the front holds the learner's port
        if not self._port:
            unit = self.scenario.unit_of(self.scenario.entry[1])
            holder = self.pause_name(unit.name) if len(unit.containers) > 1 else self.container_name(
                self.scenario.entry[1])
            c = self.scenario.container(self.scenario.entry[1])
            try:
                ctr = self.client.containers.get(holder)
                binds = ctr.attrs["NetworkSettings"]["Ports"].get(f"{c.port}/tcp") or []
                self._port = int(binds[0]["HostPort"]) if binds else 0
            except Exception:  # noqa: BLE001 - not running: no URL yet
                return f"http://{_host_address()}:0"
        return f"http://{_host_address()}:{self._port}"

    @_engine_errors("Cannot read the status of the app's containers")
    def status(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        by_name = {ctr.labels.get("appcoup.container"): ctr for ctr in self._owned()}
        for c in self.scenario.containers:
            ctr = by_name.get(c.name)
            if ctr is None:
                out[c.name] = {"running": False, "state": "missing", "restarts": 0, "unit": self.scenario.unit_of(
                    c.name).name}
                continue
            st = ctr.attrs.get("State", {})
            out[c.name] = {
                "running": bool(st.get("Running")),
                "state": st.get("Status", "unknown"),
                "restarts": int(ctr.attrs.get("RestartCount", 0)),
                "exit_code": st.get("ExitCode"),
                "health": (st.get("Health") or {}).get("Status"),
                "container": ctr.name,
                "image": (ctr.attrs.get("Config") or {}).get("Image"),
                "unit": self.scenario.unit_of(c.name).name,
            }
        return out

    @_engine_errors("Cannot list the processes of the app's containers")
    def processes(self) -> Table:
        """What runs in each container, with PIDs as the container sees them (its own PID 1).

        Read from ``/proc`` inside the container (the images have no ``ps``); a container that
        cannot run the probe falls back to ``docker top`` (PIDs as the host sees them).
        """
        import docker.errors

        rows = []
        for c in self.scenario.containers:
            try:
                ctr = self._ctr(c.name)
                res = ctr.exec_run(["sh", "-c", _PS])
                # A process may exit while it is listed: parse_ps keeps only whole "pid ppid cmd" lines.
                procs = procs.parse_ps(res.output.decode("utf-8", "replace"))
                if res.exit_code != 0 or not procs:
                    raise docker.errors.APIError("no /proc listing")
                for pid, ppid, cmd in procs:
                    rows.append({"container": c.name, "pid": pid, "ppid": ppid, "command": cmd})
            except NotFound:
                rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
            except docker.errors.APIError:
                try:
                    top = ctr.top()
                except docker.errors.APIError:
                    rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
                    continue
                ix = {t: i for i, t in enumerate(top.get("Titles") or [])}
                for p in top.get("Processes") or []:
                    rows.append({"container": c.name, "pid": p[ix.get("PID", 1)], "ppid": p[ix.get("PPID", 2)],
                                 "command": p[ix.get("CMD", ix.get("COMMAND", len(p) - 1))] + "  (host pid)"})
        return Table(rows, ["container", "pid", "ppid", "command"])

    @_engine_errors("Cannot run a command in a container")
    def exec(self, container: str, *argv: str) -> str:
        """``docker exec``: run ``argv`` in ``container`` and return what it printed."""
        import docker.errors

        try:
            res = self._ctr(container).exec_run(list(argv))
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot run {' '.join(argv)!r} in {container!r}", e) from e
        out = res.output.decode("utf-8", "replace")
        if res.exit_code:
            raise AppcoupError(f"{' '.join(argv)!r} failed in {container!r} (exit code {res.exit_code}).",
                               why=out.strip()[-500:])
        return out

    @_engine_errors("Cannot crash a container")
    def _kill(self, container: str, program: str) -> None:
        import docker.errors

        ctr = self._ctr(container)
        try:
            if program == container:
                detail = self._crash(ctr)
            else:
                script = {"echo": "echo.py", "generator": "generator.sh"}[program]
                # PID 1's shell cannot be told apart by name; match the script path, skip ourselves.
                res = ctr.exec_run(["sh", "-c", _PKILL], environment={"SCRIPT": script})
                pids = res.output.decode().split()
                if not pids:
                    raise NotFound(f"No {program} process runs inside container {container!r} now.",
                                   fix="look at app.processes()")
                detail = f"SIGKILL to {program} (pid {', '.join(pids)} in the container)"
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot kill {program!r} in container {container!r}", e) from e
        self._record(container if program == container else f"{container}/{program}", "killed", detail)

    def _record(self, container: str, kind: str, detail: str = "") -> None:
        """Keep what appcoup itself did (Docker's events cannot tell a crash we caused from another)."""
        record_event(_root() / self.name / "events.jsonl", container, kind, detail)

    def _recorded(self) -> list[Event]:
        events = recorded_events(_root(create=False) / self.name / "events.jsonl")
        return [e for e in events if e.time >= self.started - 0.5]  # not a previous app's of that name

    def _crash(self, ctr: Any) -> str:
        """SIGKILL a container's main process the way a crash looks to Docker.

        ``docker kill`` will not do: Docker counts it as a manual stop and does not apply the
        restart policy. Inside the container, PID 1 ignores even SIGKILL. So the signal comes from
        the host's PID namespace: directly when this process may signal it, else from a throwaway
        container sharing the host's PID namespace (a non-root user in the docker group, Docker Desktop).
        """
        import signal as _signal

        ctr.reload()
        state = ctr.attrs.get("State", {})
        pid = int(state.get("Pid") or 0)
        if not pid:
            raise NotFound(f"Container {ctr.name!r} is not running, so there is nothing to kill.",
                           fix="look at app.status()")
        if _engine_on_this_host() and hasattr(os, "pidfd_open"):
            # A pidfd pins the process: once it is checked, the signal cannot reach a reused pid.
            try:
                fd = os.pidfd_open(pid)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    if _pid_is_container(pid, ctr.id, state.get("StartedAt", "")):
                        _signal.pidfd_send_signal(fd, _signal.SIGKILL)
                        return f"SIGKILL to its main process (host pid {pid})"
                except OSError:
                    pass  # not permitted (a user in the docker group): the helper does it
                finally:
                    os.close(fd)
        from .. import images

        # The helper sees the engine's own PID namespace (in a VM for Docker Desktop or Colima)
        # and checks there that the pid is this container's before signalling it.
        out = self.client.containers.run(
            images.ensure(["pause"])["pause"], ["sh", "-c", _KILL_IF_OURS], pid_mode="host", remove=True,
            environment={"PID": str(pid), "ID": ctr.id},
            labels=_labels(self.name, self.scenario.name, **{"appcoup.container": "killer"}))
        if b"killed" not in (out or b""):
            raise AppcoupError(f"Could not crash container {ctr.name!r}: pid {pid} is not its process any more.",
                               why="the engine reported a main process that no longer runs in that container "
                                   "(it just restarted or stopped); nothing was signalled",
                               fix="look at app.status(), then try again")
        return f"SIGKILL to its main process (pid {pid} on the engine's host)"

    @_engine_errors("Cannot read Docker's events")
    def events(self) -> list[Event]:
        """What Docker did to this app's containers since it started (Docker's events API)."""
        import docker.errors

        try:
            raw = self.client.events(since=int(self.started) - 1, until=int(time.time()) + 1, decode=True,
                                     filters={"type": "container", "label": f"{APP_LABEL}={self.name}"})
            raw = list(raw)
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot read Docker's events for {self.name!r}", e) from e
        out: list[Event] = []
        starts: dict[str, int] = {}
        words: dict[str, str] = {}
        for ev in raw:
            action = ev.get("Action") or ev.get("status") or ""
            attrs = (ev.get("Actor") or {}).get("Attributes") or {}
            who = attrs.get("appcoup.container", attrs.get("name", "?"))
            t = ev.get("timeNano", 0) / 1e9 or float(ev.get("time", 0))
            if t < self.started - 0.5 or who == "killer":  # the helper that delivers a crash is not the app
                continue
            if action == "start":
                starts[who] = starts.get(who, 0) + 1
                out.append(Event(t, who, "started" if starts[who] == 1 else "restarted", attrs.get("image", "")))
            elif action == "die":
                code = attrs.get("exitCode", "?")
                why = self._last_words(who, words) if code not in ("0", "137", "143", "?") else ""
                out.append(Event(t, who, "exited", f"exit code {code}" + (f": {why}" if why else "")))
            elif action == "kill":
                out.append(Event(t, who, "killed", f"signal {attrs.get('signal', '?')}"))
            elif action.startswith("health_status"):
                out.append(Event(t, who, "health", action.split(":", 1)[-1].strip()))
            elif action in ("restart", "stop", "oom", "create", "destroy"):
                out.append(Event(t, who, {"stop": "stopped", "destroy": "removed", "create": "created",
                                          "restart": "restarted"}.get(action, action), ""))
        out.extend(self._recorded())
        return sorted(out, key=lambda e: e.time)

    def _last_words(self, container: str, cache: dict[str, str]) -> str:
        """The last line a container wrote on stderr: why it exited, when it said so."""
        if container not in cache:
            try:
                raw = self._ctr(container).logs(stdout=False, stderr=True, tail=3)
                lines = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
                cache[container] = lines[-1].strip()[:200] if lines else ""
            except Exception:  # noqa: BLE001 - gone already: the exit code must do
                cache[container] = ""
        return cache[container]

    @_engine_errors("Cannot read a container's logs")
    def logs(self, container: str) -> str:
        import docker.errors

        try:
            return self._ctr(container).logs().decode("utf-8", "replace")
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot read the logs of {container!r}", e) from e

    @_engine_errors("Cannot remove the app's containers, networks and volumes")
    def _teardown(self) -> None:
        _remove_app(self.client, self.name)
        if getattr(self, "_built_tags", None):  # images a rollout built (docker_scale.py)
            from ..lessons import _remove_images

            _remove_images(self._built_tags)

    # -- Docker-specific -----------------------------------------------------------------------
    def container(self, container: str) -> Any:
        """The ``docker.models.containers.Container`` behind a scenario container (advanced use)."""
        return self._ctr(container)

    @_engine_errors("Cannot stop a container")
    def stop(self, container: str, timeout: int = STOP_GRACE) -> float:
        """``docker stop`` one container; returns the seconds it took (SIGTERM, then SIGKILL)."""
        import docker.errors

        ctr = self._ctr(container)
        t0 = time.monotonic()
        try:
            ctr.stop(timeout=timeout)
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot stop {container!r}", e) from e
        return time.monotonic() - t0

    @_engine_errors("Cannot recreate a container")
    def replace(self, container: str, image: str) -> None:
        """Recreate one container from another image, with the same settings (a redeploy)."""
        import docker.errors

        ctr = self._ctr(container)
        spec = ctr.attrs
        try:
            ctr.remove(force=True)
            self.client.containers.run(image, **_recreate_kwargs(spec))
        except docker.errors.DockerException as e:
            raise _sdk_error(f"Cannot recreate {container!r} from {image}", e) from e

    def commands(self) -> list[str]:
        """The plain ``docker`` commands that would start this app by hand (what the course teaches)."""
        return list(self._commands)


def _in_parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Run ``calls`` in threads (Docker API calls are round trips that overlap well); results in order.

    The first exception is re-raised here, in the caller's thread, after all calls have ended.
    """
    if len(calls) == 1:
        return [calls[0]()]
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    done = [threading.Event() for _ in calls]

    def one(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as e:  # noqa: BLE001 - re-raised below in the caller's thread
            errors.append(e)
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
    if errors:
        raise errors[0]
    return results


def _recreate_kwargs(attrs: dict[str, Any]) -> dict[str, Any]:
    cfg, host = attrs["Config"], attrs["HostConfig"]
    kw: dict[str, Any] = {
        "name": attrs["Name"].lstrip("/"), "command": cfg.get("Cmd"), "detach": True,
        "labels": cfg.get("Labels") or {}, "environment": cfg.get("Env") or [],
        "working_dir": cfg.get("WorkingDir") or None,
        "restart_policy": host.get("RestartPolicy") or None,
    }
    mode = host.get("NetworkMode") or ""
    if mode.startswith("container:"):
        kw["network_mode"] = mode
    elif mode and mode not in ("default", "bridge"):
        kw["network"] = mode
    if host.get("Binds"):  # bind mounts and named volumes alike
        kw["volumes"] = list(host["Binds"])
    if host.get("PortBindings"):
        # Keep the host port actually bound (a port picked by Docker shows as "" in PortBindings).
        bound = (attrs.get("NetworkSettings") or {}).get("Ports") or {}
        kw["ports"] = {}
        for k, v in host["PortBindings"].items():
            hp = next((b["HostPort"] for b in (bound.get(k) or []) if b.get("HostPort")), None) or (
                v[0].get("HostPort") if v else None)
            ip = (v[0].get("HostIp") if v else "") or ""
            kw["ports"][k] = ((ip, int(hp)) if ip else int(hp)) if hp else None
    return kw


def _remove_app(client: Any, name: str | None, *, learner_only: str | None = None) -> list[str]:
    """Remove the containers, networks and volumes of app ``name``; with no name, every appcoup
    app of learner ``learner_only`` (of every learner when None)."""
    import docker.errors

    if name:
        flt: dict[str, Any] = {"label": f"{APP_LABEL}={name}"}
    elif learner_only:
        flt = {"label": [f"{LABEL}={LABEL_VALUE}", f"{LEARNER_LABEL}={learner_only}"]}
    else:
        flt = {"label": f"{LABEL}={LABEL_VALUE}"}
    apps: set[str] = {name} if name else set()
    removed: list[str] = []
    errors: list[str] = []
    def remove(ctr: Any) -> None:
        apps.add(ctr.labels.get(APP_LABEL, ""))
        try:
            ctr.remove(force=True, v=True)
            removed.append(f"container {ctr.name}")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as e:
            errors.append(f"container {ctr.name}: {e}")

    # Members first (together), then the pause containers whose namespace they used.
    ctrs = client.containers.list(all=True, filters=flt)
    for pauses in (False, True):
        batch = [c for c in ctrs if (c.labels.get("appcoup.container") == "pause") == pauses]
        if batch:
            _in_parallel([lambda c=c: remove(c) for c in batch])
    for net in client.networks.list(filters=flt):
        apps.add((net.attrs.get("Labels") or {}).get(APP_LABEL, ""))
        try:
            net.remove()
            removed.append(f"network {net.name}")
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as e:
            errors.append(f"network {net.name}: {e}")
    for vol in client.volumes.list(filters=flt):
        apps.add((vol.attrs.get("Labels") or {}).get(APP_LABEL, ""))
        for attempt in range(20):  # a just-removed container may hold the volume for a moment
            try:
                vol.remove(force=True)
                removed.append(f"volume {vol.name}")
                break
            except docker.errors.NotFound:
                break
            except docker.errors.APIError as e:
                if attempt == 19:
                    errors.append(f"volume {vol.name}: {e}")
                time.sleep(0.1)
    root = _root(create=False)
    dirs = sorted(root.iterdir()) if root.is_dir() else []
    # A directory goes with its app, or when no app of that name is left on the engine at all
    # (a host dir left by a killed kernel); a learner's clean only looks at their own names.
    mine = f"{PREFIX}{learner_only}-" if learner_only else ""
    for d in dirs:
        if d.name not in apps and not (d.name.startswith(mine) and not name and not client.containers.list(
                all=True, filters={"label": f"{APP_LABEL}={d.name}"})):
            continue
        if d.exists():
            shutil.rmtree(d, ignore_errors=True)
            removed.append(f"directory {d}")
    if errors:
        raise AppcoupError(f"Could not remove everything of {name or 'appcoup'} on Docker.",
                           why="; ".join(errors), fix="run `appcoup clean --runtime docker` again, or `docker rm -f`")
    return removed


def _remove_quietly(client: Any, name: str) -> None:
    """Clean up after a failed start without hiding why it failed."""
    try:
        _remove_app(client, name)
    except Exception:  # noqa: BLE001, S110 - the original error matters more; `appcoup clean` remains
        pass


def _root(create: bool = True) -> Path:
    p = state_dir() / "docker"
    if create:
        p.mkdir(parents=True, exist_ok=True)
    return p


# -- the runtime ---------------------------------------------------------------------------------
@register
class DockerRuntime(Runtime):
    """Containers on a Docker engine (``DOCKER_HOST`` or the local socket)."""

    name = "docker"
    description = "containers on a Docker engine"
    app_abilities = DockerApp.abilities

    def __init__(self) -> None:
        super().__init__()
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = connect()
        return self._client

    @classmethod
    def availability(cls) -> Availability:
        try:
            import docker  # noqa: F401 - only whether it is there
        except ImportError:
            return Availability("docker", False, "the Docker SDK for Python is not installed", _FIX_SDK)
        host = os.environ.get("DOCKER_HOST", "") or _base_url() or ""
        if not host or host.startswith("unix://"):
            sock = host[len("unix://"):] if host else _DEFAULT_SOCKET
            if not os.path.exists(sock):
                return Availability("docker", False, f"no Docker engine: the socket {sock} does not exist",
                                    _FIX_START)
            if not os.access(sock, os.R_OK | os.W_OK):
                return Availability("docker", False, f"permission denied on the Docker socket {sock}",
                                    _FIX_PERMISSION)
        try:
            client = connect(timeout=3)
            version = client.version()
            client.close()
        except Exception as e:  # noqa: BLE001 - availability never raises
            cause = e.__cause__ or e
            detail, fix = _diagnose(cause)
            return Availability("docker", False, detail, fix)
        where = host or f"unix://{_DEFAULT_SOCKET}"
        return Availability("docker", True, f"Docker Engine {version.get('Version', '?')} at {where}")

    # -- up --------------------------------------------------------------------------------------
    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int, progress: bool | None,
            address: str = "127.0.0.1") -> App:
        import docker.errors
        import requests.exceptions

        from .. import images

        client = self.client
        try:
            existing = client.containers.list(all=True, filters={"label": f"{APP_LABEL}={name}"})
        except docker.errors.DockerException as e:
            raise _sdk_error("Cannot list containers", e) from e
        if any(c.status in ("running", "restarting", "created") for c in existing):
            raise AlreadyUp(f"The app {name!r} already runs on the docker runtime.",
                            fix=f"use it, or stop it first: app.down() or `appcoup down {scenario.name} --runtime docker`")
        if existing:
            _remove_app(client, name)  # left over from a killed kernel
        needed = sorted({c.image for c in scenario.containers} | (
            {"pause"} if any(len(u.containers) > 1 for u in scenario.units) else set()))
        tags = images.ensure(needed, progress=progress)

        entry_unit, entry_name = scenario.entry
        entry = scenario.container(entry_name)
        if port:
            holder = _port_holder(client, port)
            if holder:
                raise PortInUse(port, holder)
        else:
            # Pick the port here rather than let Docker pick: Docker picks a new one at every
            # restart, and the learner's URL must survive a crash.
            port = _free_port(client)
        sup = "init" if any(c.image == "combined-init" for c in scenario.containers) else "naive"
        started = time.time()
        address = check_address(address)
        meta = {"appcoup.interval": f"{interval:g}", "appcoup.port": str(port), "appcoup.supervisor": sup,
                "appcoup.started": f"{started:.3f}"}
        app = DockerApp(self, scenario, name, interval=interval, client=client, started=started, port=port)
        cmds: list[str] = []
        try:
            network = None
            if scenario.services:
                network = f"{name}-net"
                client.networks.create(network, driver="bridge", labels=_labels(name, scenario.name))
                cmds.append(f"docker network create {network}")
            vols: dict[str, str] = {}
            for vol, kind in scenario.volumes.items():
                if kind == "host-dir":
                    d = _root() / name / vol
                    d.mkdir(parents=True, exist_ok=True)
                    vols[vol] = str(d)
                else:
                    vname = f"{name}-{vol}"
                    client.volumes.create(vname, labels=_labels(name, scenario.name))
                    vols[vol] = vname
                    cmds.append(f"docker volume create {vname}")

            def start_unit(unit: Unit) -> list[str]:
                done: list[str] = []
                # `-p 127.0.0.1:PORT:8000`: reachable from this machine only, unless asked otherwise.
                ports = {f"{entry.port}/tcp": (address, port)} if unit.name == entry_unit else None
                aliases = [s.name for s in scenario.services if s.unit == unit.name] + [unit.name]
                netkw: dict[str, Any] = {}
                if network:
                    from docker.types import EndpointConfig

                    netkw = {"network": network,
                             "networking_config": {network: EndpointConfig(client.api._version, aliases=aliases)}}
                if len(unit.containers) > 1:
                    pause = client.containers.run(
                        tags["pause"], name=app.pause_name(unit.name), detach=True, ports=ports,
                        labels=_labels(name, scenario.name, **meta, **{"appcoup.container": "pause",
                                                                       "appcoup.unit": unit.name}),
                        restart_policy={"Name": "always"} if unit.restart == "always" else None, **netkw)
                    done.append(_cli("run", app.pause_name(unit.name), tags["pause"], ports=ports, network=network,
                                     aliases=aliases if network else None, restart=unit.restart))
                    members = [(c, {"network_mode": f"container:{pause.id}"}, None) for c in unit.containers]
                else:
                    members = [(unit.containers[0], netkw, ports)]
                return done + self._run_members(app, unit, members, tags, vols, interval, meta)

            # Units are independent (echo finds the adapter by name when asked): start them together.
            for unit_cmds in _in_parallel([lambda u=u: start_unit(u) for u in scenario.units]):
                cmds.extend(unit_cmds)
        except docker.errors.APIError as e:
            _remove_quietly(client, name)
            text = str(e.explanation or e)
            if port and ("port is already allocated" in text or "address already in use" in text):
                raise PortInUse(port, _port_holder(client, port) or "another program") from e
            raise _sdk_error(f"Starting {scenario.name!r} on Docker failed", e) from e
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            _remove_quietly(client, name)
            raise _sdk_error(f"Starting {scenario.name!r} on Docker failed", e) from e
        except BaseException:
            _remove_quietly(client, name)
            raise
        app._commands = cmds
        return app

    def _run_members(self, app: DockerApp, unit: Unit, members: list[tuple[Container, dict, Any]],
                     tags: dict[str, str], vols: dict[str, str], interval: float,
                     meta: dict[str, str]) -> list[str]:
        """Start the containers of one unit together (each `docker run` is a round trip); their commands."""
        sc = app.scenario

        def run(c: Container, netkw: dict, ports: Any) -> str:
            env = {"INTERVAL": f"{interval:g}", "ECHO_QUIET": "1", "PYTHONUNBUFFERED": "1",
                   "APPCOUP_CONTAINER": c.name}  # echo names itself in X-Served-By
            if c.port is not None:
                env["PORT"] = str(c.port)
            if c.source:
                svc = next(s for s in sc.services if s.name == c.source)
                env["SOURCE_URL"] = f"http://{svc.name}:{svc.port}/data"
            volumes = {vols[c.volume]: {"bind": c.workdir, "mode": "rw"}} if c.volume else None
            # The images run as a non-root user (10001, group 0); a host directory belongs to whoever
            # runs appcoup, so containers writing into one run as that user (`docker run -u`).
            user = (f"{os.getuid()}:{os.getgid()}" if c.volume and sc.volumes.get(c.volume) == "host-dir"
                    else None)
            app.client.containers.run(
                tags[c.image], command=list(c.command), name=app.container_name(c.name), detach=True,
                environment=env, working_dir=c.workdir, volumes=volumes, ports=ports, user=user,
                labels=_labels(app.name, sc.name, **meta, **{"appcoup.container": c.name, "appcoup.unit": unit.name}),
                restart_policy={"Name": "always"} if unit.restart == "always" else None, **netkw)
            aliases = [s.name for s in sc.services if s.unit == unit.name] + [unit.name]
            return _cli("run", app.container_name(c.name), tags[c.image], ports=ports, env=env, volumes=volumes, user=user,
                        network=netkw.get("network") or (f"container:{app.pause_name(unit.name)}"
                                                         if netkw.get("network_mode") else None),
                        restart=unit.restart,
                        aliases=aliases if netkw.get("network") else None)

        return _in_parallel([lambda m=m: run(*m) for m in members])

    # -- other processes' apps -------------------------------------------------------------------
    @_engine_errors("Cannot find the app on Docker")
    def attach(self, scenario: str, name: str | None = None) -> App:
        import docker.errors

        sc = get_scenario(scenario)
        name = check_name(name) if name else default_name(sc.name)
        try:
            ctrs = self.client.containers.list(all=True, filters={"label": f"{APP_LABEL}={name}"})
        except docker.errors.DockerException as e:
            raise _sdk_error("Cannot list containers", e) from e
        if not ctrs:
            raise NotFound(f"No app {name!r} runs on the docker runtime.",
                           fix=f"start it: `appcoup up {sc.name} --runtime docker`")
        lab = ctrs[0].labels
        if sc.name == "single-image":
            sc = sc.with_supervisor(lab.get("appcoup.supervisor", "naive"))  # type: ignore[arg-type]
        return DockerApp(self, sc, name, interval=float(lab.get("appcoup.interval", "2")), client=self.client,
                         started=float(lab.get("appcoup.started", time.time())))

    @_engine_errors("Cannot list what runs on Docker")
    def running(self) -> list[dict[str, Any]]:
        """This learner's apps (a classroom shares one engine: each sees their own)."""
        import docker.errors

        try:
            ctrs = self.client.containers.list(filters={"label": [f"{LABEL}={LABEL_VALUE}",
                                                                  f"{LEARNER_LABEL}={learner()}"]})
        except docker.errors.DockerException as e:
            raise _sdk_error("Cannot list containers", e) from e
        apps: dict[str, dict[str, Any]] = {}
        for c in ctrs:
            name = c.labels.get(APP_LABEL)
            if not name or name in apps:
                continue
            sc = c.labels.get("appcoup.scenario", "?")
            try:
                url = self.attach(sc, name).url
            except AppcoupError:
                url = "?"
            apps[name] = {"runtime": "docker", "name": name, "scenario": sc, "url": url}
        return list(apps.values())

    @classmethod
    @_engine_errors("Cannot clean up on Docker")
    def clean(cls, *, all_learners: bool = False) -> list[str]:
        """Remove this learner's containers, networks and volumes (everyone's with ``all_learners``)."""
        return _remove_app(connect(), None, learner_only=None if all_learners else learner())


def _cli(verb: str, name: str, image: str, *, ports: Any = None, env: dict | None = None,
         volumes: dict | None = None, network: str | None = None, restart: str = "never",
         aliases: list[str] | None = None, user: str | None = None) -> str:
    """The `docker run` command line equivalent to one SDK call (shown to learners)."""
    parts = ["docker", verb, "-d", "--name", name]
    if restart == "always":
        parts += ["--restart", "always"]
    if user:
        parts += ["-u", user]
    if network:
        parts += ["--network", network]
    for a in aliases or []:
        parts += ["--network-alias", a]
    for k, v in (ports or {}).items():
        ip, hp = v if isinstance(v, tuple) else ("", v)
        parts += ["-p", ":".join(str(x) for x in (ip, hp or "", k.split("/")[0]) if x != "") if hp else k.split("/")[0]]
    for src, m in (volumes or {}).items():
        parts += ["-v", f"{src}:{m['bind']}"]
    for k, v in (env or {}).items():
        parts += ["-e", f"{k}={v}"]
    return " ".join([*parts, image])

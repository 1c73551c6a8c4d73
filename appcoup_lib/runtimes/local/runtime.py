"""The embedded runtime: every container is a plain process, supervised by supervisord.

One supervisord per app plays the part of the container runtime: it starts each container's
program in the container's working directory (its volume, a directory), restarts it on its own
when it dies if the scenario says so (``autorestart``, with supervisord's back-off), and logs
every spawn and exit, which is where :meth:`LocalApp.events` comes from. "localhost" is the
host, and a service name maps to ``127.0.0.1:<port>``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import xmlrpc.client
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import AlreadyUp, AppcoupError, NotFound, PortInUse
from ..paths import images_dir, state_dir
from ..scenarios import Container, Scenario
from ..scenarios import scenario as get_scenario
from .base import (
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
from .local_scale import LocalScaling

ENV_MARK = "APPCOUP_APP"  # set on supervisord and every program: how clean() finds strays
ENV_LEARNER = "APPCOUP_LEARNER_MARK"  # whose program it is: a learner's clean() stops only theirs
STOP_GRACE = 10  # seconds, like `docker stop` and a pod's terminationGracePeriodSeconds
_LOG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ "
    r"(?:(?P<spawn>spawned): '(?P<sp>[\w-]+)' with pid (?P<pid>\d+)"
    r"|(?P<kind>exited|stopped|gave up): (?P<name>[\w-]+) \((?P<detail>.*)\))"
)


def _root() -> Path:
    p = state_dir() / "local"
    p.mkdir(parents=True, exist_ok=True)
    return p


def _port_holder(port: int) -> str:
    """Who listens on ``port``: a process by pid and command line, and an appcoup app by name."""
    import psutil

    try:
        conns = psutil.net_connections(kind="inet")
    except (psutil.AccessDenied, OSError):
        conns = []
    for c in conns:
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
            try:
                proc = psutil.Process(c.pid)
                cmd = " ".join(proc.cmdline()) or proc.name()
                env = proc.environ()
                owner = env.get(ENV_MARK)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                return f"process {c.pid}"
            holder = f"process {c.pid} ({cmd[:80]})"
            if owner:
                try:
                    scenario = json.loads((Path(env["APPCOUP_HOME"]) / "app.json").read_text())["scenario"]
                    how = f"appcoup down {scenario}" + ("" if owner == default_name(scenario) else f" --name {owner}")
                except (KeyError, OSError, ValueError):
                    how = "appcoup clean"
                holder += f", part of the appcoup app {owner!r} (stop it: {how})"
            return holder
    return "another program (run `ss -ltnp` to see which)"


def _check_port(port: int, address: str = "127.0.0.1") -> int:
    """Return a free port: ``port`` itself if free (else :class:`PortInUse`), any if 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As http.server does: connections in TIME_WAIT must not count as "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError:
            raise PortInUse(port, _port_holder(port)) from None
        return s.getsockname()[1]


def _sock_path(home: Path) -> Path:
    """supervisord's control socket: in the app's state directory when the path is short enough.

    A unix socket path holds at most 107 bytes; a deep home directory exceeds that, and then
    supervisord cannot start. Such a socket goes to a short per-user directory instead.
    """
    sock = home / "supervisor.sock"
    if len(os.fsencode(str(sock))) < 100:
        return sock
    import hashlib
    import tempfile

    short = Path(tempfile.gettempdir()) / f"appcoup-{os.getuid()}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short / (hashlib.sha256(str(home).encode()).hexdigest()[:16] + ".sock")


def _rpc(sock: Path) -> Any:
    from supervisor.xmlrpc import SupervisorTransport

    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=SupervisorTransport(None, None, f"unix://{sock}"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _create_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ValueError):
        return None


def _ours(meta: dict[str, Any]) -> bool:
    """Whether the supervisord recorded in ``meta`` is still that very process.

    A pid alone is not proof: after a reboot, or once the pid is reused, the same number names
    someone else's process. The start time recorded at launch must match too.
    """
    pid = meta.get("supervisord")
    created = meta.get("supervisord_created")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(created, (int, float)) or not _pid_alive(pid):
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        # Start times are in clock ticks (1/100 s): the same process always gives the same one.
        return abs(proc.create_time() - created) < 0.02 and "appcoup_lib._supervisord" in " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def _under(home: str, root: Path) -> bool:
    """Whether the state directory ``home`` (a program's APPCOUP_HOME) lies inside ``root``."""
    root_s = str(root).rstrip("/")
    return home == root_s or home.startswith(root_s + "/")


def _read_meta(home: Path) -> dict[str, Any] | None:
    """The ``app.json`` of an app's state directory (None when missing or unreadable)."""
    try:
        meta = json.loads((home / "app.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _is_supervisord(p: Any, name: str | None, under: Path | None, learner_only: str | None = None) -> bool:
    """A supervisord forked for an app, found by where it works: the app's state directory.

    It has the launcher's command line (a fork) and carries our mark only in its memory; its
    working directory is what tells it from the launcher (which stays where it was started).
    """
    try:
        if "appcoup_lib._supervisord" not in " ".join(p.cmdline()):
            return False
        cwd = Path(p.cwd())
    except Exception:  # noqa: BLE001 - gone, or not ours to read
        return False
    if not (cwd / "supervisord.conf").exists() or cwd.parent.name != "local":
        return False
    if name is not None and cwd.name != name:
        return False
    if learner_only is not None:
        meta = _read_meta(cwd)
        if meta is None or meta.get("learner") != learner_only:
            return False
    return under is None or _under(str(cwd), under)


def _strays(name: str | None = None, *, under: Path | None = None, learner_only: str | None = None) -> list[Any]:
    """Processes carrying our mark: of app ``name`` (or any app), with state ``under`` a directory,
    started by learner ``learner_only`` (when given)."""
    import psutil

    found: dict[int, Any] = {}
    for p in psutil.process_iter(["pid"]):
        try:
            env = p.environ()
            mark = env.get(ENV_MARK)
            if not mark and _is_supervisord(p, name, under, learner_only):
                # Forked a moment ago, before it started any program (an up interrupted then).
                found[p.pid] = p
                continue
            if not mark or (name is not None and mark != name) or p.pid == os.getpid():
                continue
            if under is not None and not _under(env.get("APPCOUP_HOME", ""), under):
                continue
            if learner_only is not None and env.get(ENV_LEARNER, learner_only) != learner_only:
                continue
            # A forked supervisord carries the mark only in its memory, not in /proc: find it as
            # the parent of its programs, and list it first so it cannot restart them.
            parent = p.parent()
            if parent is not None and "appcoup_lib._supervisord" in " ".join(parent.cmdline()):
                found = {parent.pid: parent, **found}
            found[p.pid] = p
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return list(found.values())


def _kill_all(procs: list[Any]) -> None:
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _tree(pid: int) -> list[tuple[Any, list[str]]]:
    """A process and its descendants with their command lines, skipping any that just exited."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []
    out = []
    for p in procs:
        try:
            p.info_ppid = p.ppid()
            out.append((p, p.cmdline()))
        except psutil.NoSuchProcess:
            continue
    return out


_launcher: subprocess.Popen[str] | None = None


def _warm_up() -> None:
    """Start the launcher that forks supervisords (it imports supervisor once, ahead of time)."""
    global _launcher
    if _launcher is None or _launcher.poll() is not None:
        _launcher = subprocess.Popen(
            [sys.executable, "-m", "appcoup_lib._supervisord", "--launcher"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
        )


def _launch(name: str, conf: Path) -> tuple[int, float]:
    """Fork a supervisord for app ``name`` from the launcher; return its pid and start time."""
    global _launcher
    _warm_up()
    assert _launcher is not None and _launcher.stdin is not None and _launcher.stdout is not None
    try:
        _launcher.stdin.write(f"{name}\t{conf}\n")
        _launcher.stdin.flush()
        line = _launcher.stdout.readline()
    except (BrokenPipeError, OSError):
        line = ""
    except BaseException:
        # Interrupted (Ctrl-C) between asking and reading the answer: the next answer would be
        # out of step, so this launcher goes (the next up starts another).
        _launcher.kill()
        _launcher = None
        raise
    created = _create_time(int(line)) if line.strip().isdigit() else None
    if created is None:
        err = conf.parent / "supervisord.err"
        detail = err.read_text(errors="replace").strip()[-300:] if err.exists() else ""
        raise AppcoupError("Could not start supervisord for the local runtime.",
                           why=f"its launcher process exited, or supervisord died at once {detail}".strip(),
                           fix="run `appcoup clean`, then try again")
    return int(line), created


class LocalApp(LocalScaling, App):
    """A scenario running as local processes under one supervisord."""

    abilities = frozenset({"scale", "rollout", "recreate"})  # see local_scale.py

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float,
                 home: Path, meta: dict[str, Any]) -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.home = home
        self.meta = meta

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.meta['port']}"

    @property
    def names(self) -> dict[str, str]:
        """How service names map to addresses (what DNS does on the other runtimes)."""
        return dict(self.meta.get("names", {}))

    def _server(self) -> Any:
        return _rpc(_sock_path(self.home))

    def _infos(self) -> dict[str, dict[str, Any]]:
        error: Exception | None = None
        for _ in range(100):  # right after up(), supervisord may still be opening its socket
            try:
                return {i["name"]: i for i in self._server().supervisor.getAllProcessInfo()}
            except (OSError, xmlrpc.client.Error) as e:
                error = e
                if not _ours(self.meta):
                    break
                time.sleep(0.02)
        err = (self.home / "supervisord.err")
        detail = err.read_text(errors="replace").strip()[-500:] if err.exists() else ""
        raise AppcoupError(f"The local app {self.name!r} is not running any more.",
                           why=f"its supervisord does not answer ({error}) {detail}".strip(),
                           fix="run `appcoup clean` to remove what is left, then start it again")

    def status(self) -> dict[str, dict[str, Any]]:
        spawns = self._spawn_counts()
        infos = self._infos()
        out = {}
        for c in self.scenario.containers:
            info = infos.get(c.name, {})
            state = info.get("statename", "UNKNOWN")
            out[c.name] = {
                "running": state in ("RUNNING", "STARTING"),
                "state": state.lower(),
                "restarts": max(0, spawns.get(c.name, 0) - 1),
                "pid": info.get("pid") or None,
                "unit": self.scenario.unit_of(c.name).name,
            }
        return out

    def processes(self) -> Table:
        rows = []
        infos = self._infos()
        for c in self.scenario.containers:
            pid = infos.get(c.name, {}).get("pid")
            if not pid:
                rows.append({"container": c.name, "pid": "-", "ppid": "-", "command": "(not running)"})
                continue
            for p, argv in _tree(pid):
                cmd = " ".join(argv).replace(str(images_dir()) + "/", "")
                rows.append({"container": c.name, "pid": p.pid, "ppid": p.info_ppid,
                             "command": cmd.replace(sys.executable, "python3")})
        return Table(rows, ["container", "pid", "ppid", "command"])

    def _kill(self, container: str, program: str) -> None:
        pid = self._infos().get(container, {}).get("pid")
        if not pid:
            raise NotFound(f"Container {container!r} is not running, so there is nothing to kill.",
                           fix="look at app.status()")
        if program == container:
            victim = pid
        else:
            script = {"echo": "echo.py", "generator": "generator.sh"}[program]
            procs = [p for p, cmd in _tree(pid) if any(a.endswith(script) for a in cmd)]
            if not procs:
                raise NotFound(f"No {program} process runs inside container {container!r} now.",
                               fix="look at app.processes()")
            victim = procs[0].pid
        # Recorded before the signal, so the timeline never shows the exit ahead of its cause.
        self._record(container if program == container else f"{container}/{program}", "killed",
                     f"SIGKILL to pid {victim}")
        if program == container:
            os.killpg(pid, signal.SIGKILL)  # a container dies as a whole: everything it started
        else:
            os.kill(victim, signal.SIGKILL)

    def _record(self, container: str, kind: str, detail: str = "") -> None:
        record_event(self.home / "events.jsonl", container, kind, detail)

    def _log_events(self) -> list[Event]:
        events: list[Event] = []
        seen: dict[str, int] = {}
        try:
            lines = (self.home / "supervisord.log").read_text().splitlines()
        except FileNotFoundError:
            return events
        for line in lines:
            m = _LOG_LINE.match(line)
            if not m:
                continue
            t = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if m["spawn"]:
                n = seen[m["sp"]] = seen.get(m["sp"], 0) + 1
                events.append(Event(t, m["sp"], "started" if n == 1 else "restarted", f"pid {m['pid']}"))
            else:
                detail = m["detail"]
                if m["kind"] == "exited" and "not expected" in detail:
                    why = self._last_words(m["name"])
                    detail += f": {why}" if why else ""
                events.append(Event(t, m["name"], m["kind"].replace(" ", "-"), detail))
        return events

    def _failed(self) -> AppcoupError | None:
        """The entry program could not listen on its port (taken between choosing and binding)."""
        entry = self.scenario.entry[1]
        try:
            log = (self.home / "logs" / f"{entry}.log").read_text(errors="replace")
        except OSError:
            return None
        if "cannot listen on port" in log:
            port = int(self.meta["port"])
            return PortInUse(port, _port_holder(port))
        return None

    def _last_words(self, container: str) -> str:
        """The last line a program printed that names it (``generator: cannot write ...``): why it exited."""
        try:
            lines = (self.home / "logs" / f"{container}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        said = [ln.strip() for ln in lines if ln.startswith(f"{container}:")]
        return said[-1][:200] if said else ""

    def _spawn_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self._log_events():
            if e.kind in ("started", "restarted"):
                counts[e.container] = counts.get(e.container, 0) + 1
        return counts

    def events(self) -> list[Event]:
        return sorted(recorded_events(self.home / "events.jsonl") + self._log_events(), key=lambda e: e.time)

    def logs(self, container: str) -> str:
        path = self.home / "logs" / f"{container}.log"
        if not path.exists():
            raise NotFound(f"No logs for {container!r}.",
                           fix=f"use one of: {', '.join(c.name for c in self.scenario.containers)}")
        return path.read_text(errors="replace")

    def _teardown(self) -> None:
        # Only our own supervisord gets a signal: a pid whose start time differs is someone else's.
        if _ours(self.meta):
            pid = self.meta["supervisord"]
            # A signal wakes supervisord at once; an RPC shutdown waits for its next poll.
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_GRACE + 5
            while _ours(self.meta) and time.monotonic() < deadline:
                time.sleep(0.01)
        # Whatever escaped its process group (an orphan of a naive supervisor) goes too: only
        # processes of this app in this state directory.
        _kill_all(_strays(self.name, under=self.home))
        shutil.rmtree(self.home, ignore_errors=True)


@register
class LocalRuntime(Runtime):
    """Plain processes on this machine: works everywhere Python does (Binder included)."""

    name = "local"
    description = "plain processes on this machine, supervised by supervisord"
    app_abilities = LocalApp.abilities

    def __init__(self) -> None:
        super().__init__()
        _warm_up()

    @classmethod
    def availability(cls) -> Availability:
        try:
            import supervisor  # noqa: F401
        except ImportError:
            return Availability("local", False, "supervisor (supervisord) is not installed",
                                "pip install appcoup  (it depends on supervisor)")
        if shutil.which("sh") is None:
            return Availability("local", False, "no POSIX shell (sh) on PATH", "install a POSIX shell")
        return Availability("local", True, "processes on this machine, supervised by supervisord")

    # -- translation: scenario -> supervisord programs -------------------------------------------
    def _command(self, c: Container) -> list[str]:
        files = {
            "generator": images_dir() / "generator" / "generator.sh",
            "echo": images_dir() / "echo" / "echo.py",
            "adapter": images_dir() / "adapter" / "adapter.py",
            "combined": images_dir() / "combined" / "app.sh",
            "combined-init": images_dir() / "combined" / "app-init.sh",
        }
        argv = [sys.executable if a == "python3" else a for a in c.command]
        return [str(files[c.image]) if a.startswith("/app/") else a for a in argv]

    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int,
            progress: bool | None, address: str = "127.0.0.1") -> App:
        address = check_address(address)
        home = _root() / name
        old = _read_meta(home)
        if old is not None and _ours(old):
            how = f"appcoup down {scenario.name}" + ("" if name == default_name(scenario.name) else f" --name {name}")
            raise AlreadyUp(f"The app {name!r} already runs on the local runtime ({old.get('url')}).",
                            fix=f"use it, or stop it first: app.down() or `{how}`")
        if home.exists():  # left by a killed kernel (or from before a reboot): its processes, its files
            _kill_all(_strays(name, under=home))
            shutil.rmtree(home, ignore_errors=True)
        port = _check_port(port, address)
        names = {s.name: f"127.0.0.1:{_check_port(0)}" for s in scenario.services}
        meta: dict[str, Any] = {}
        try:
            return self._start(scenario, name, home, meta, interval=interval, port=port, names=names,
                               address=address)
        except BaseException:
            # Ctrl-C or a failure half-way through: nothing of this app may stay behind.
            LocalApp(self, scenario, name, interval=interval, home=home, meta=meta)._teardown()
            raise

    def _start(self, scenario: Scenario, name: str, home: Path, meta: dict[str, Any], *, interval: float,
               port: int, names: dict[str, str], address: str) -> App:
        """Write supervisord's configuration and launch it; ``meta`` is filled as soon as it runs."""
        (home / "logs").mkdir(parents=True, exist_ok=True)
        for vol in scenario.volumes:
            (home / "volumes" / vol).mkdir(parents=True, exist_ok=True)

        entry_container = scenario.entry[1]
        sections = [
            "[unix_http_server]", f"file={_sock_path(home)}", "",
            "[supervisord]", f"logfile={home / 'supervisord.log'}", f"pidfile={home / 'supervisord.pid'}",
            "loglevel=info", "nodaemon=true", "silent=true", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        ]
        for unit in scenario.units:
            for c in unit.containers:
                env = {"INTERVAL": f"{interval:g}", "ECHO_QUIET": "1", "APPCOUP_CONTAINER": c.name,
                       "APPCOUP_HOME": str(home), ENV_LEARNER: learner(),
                       "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable,
                       "GENERATOR": str(images_dir() / "generator" / "generator.sh"),
                       "ECHO": str(images_dir() / "echo" / "echo.py")}
                if c.port is not None:
                    # Only the entry port may listen beyond this machine, and only when asked.
                    env["BIND_ADDRESS"] = address if c.name == entry_container else "127.0.0.1"
                    env["PORT"] = str(port if c.name == entry_container else names[self._service_for(scenario, c)].split(":")[1])
                if c.source:
                    env["SOURCE_URL"] = f"http://{names[c.source]}/data"
                workdir = home / "volumes" / c.volume if c.volume else home / "volumes" / f"_{c.name}"
                workdir.mkdir(parents=True, exist_ok=True)
                sections += [
                    f"[program:{c.name}]",
                    "command=" + " ".join(_quote(a) for a in self._command(c)),
                    f"directory={workdir}",
                    "environment=" + ",".join(f'{k}="{v}"' for k, v in env.items()),
                    "autostart=true",
                    f"autorestart={'true' if unit.restart == 'always' else 'false'}",
                    # A crash loop backs off, then gives up; without a restart policy, nothing retries.
                    "startsecs=1" if unit.restart == "always" else "startsecs=0",
                    "startretries=5" if unit.restart == "always" else "startretries=0",
                    "stopasgroup=true", "killasgroup=true", f"stopwaitsecs={STOP_GRACE}",
                    f"stdout_logfile={home / 'logs' / (c.name + '.log')}", "redirect_stderr=true",
                    "stdout_logfile_maxbytes=0", "",
                ]
        (home / "supervisord.conf").write_text("\n".join(sections))
        pid, created = _launch(name, home / "supervisord.conf")
        host = "127.0.0.1" if address in ("0.0.0.0", "127.0.0.1") else address
        meta.update({"name": name, "scenario": scenario.name, "port": port, "url": f"http://{host}:{port}",
                     "address": address, "interval": interval, "names": names, "supervisord": pid,
                     "supervisord_created": created, "learner": learner(),
                     "images": sorted({c.image for c in scenario.containers}), "started": time.time()})
        (home / "app.json").write_text(json.dumps(meta, indent=1))
        app = LocalApp(self, scenario, name, interval=interval, home=home, meta=meta)
        app._record("app", "up", f"{scenario.name} at {meta['url']}")
        return app

    @staticmethod
    def _service_for(scenario: Scenario, c: Container) -> str:
        for s in scenario.services:
            if s.container == c.name:
                return s.name
        raise KeyError(c.name)

    def attach(self, scenario: str, name: str | None = None) -> App:
        sc = get_scenario(scenario)
        name = check_name(name) if name else default_name(sc.name)
        home = _root() / name
        meta = _read_meta(home)
        if meta is None or meta.get("scenario") != sc.name:
            raise NotFound(f"No app {name!r} runs {sc.name!r} on the local runtime.",
                           fix=f"start it: `appcoup up {sc.name}" + ("" if name == default_name(sc.name)
                                                                     else f" --name {name}") + "`")
        if not _ours(meta):
            # Its supervisord is gone (killed, or from before a reboot): a pid alone proves nothing.
            raise NotFound(f"The app {name!r} ({sc.name}) is not running any more on the local runtime.",
                           why="its supervisord has exited (a killed kernel, a crash or a reboot)",
                           fix="run `appcoup clean` to remove what is left, then start it again")
        if meta["scenario"] == "single-image":
            sc = sc.with_supervisor("init" if "combined-init" in meta.get("images", []) else "naive")
        return LocalApp(self, sc, name, interval=meta["interval"], home=home, meta=meta)

    def running(self) -> list[dict[str, Any]]:
        """This learner's apps whose supervisord is alive (and is still the one that was started)."""
        out = []
        me = learner()
        for home in sorted(_root().iterdir()):
            meta = _read_meta(home)
            if meta is None or meta.get("learner", me) != me or not _ours(meta):
                continue
            out.append({"runtime": "local", "name": meta["name"], "scenario": meta["scenario"],
                        "url": meta["url"]})
        return out

    @classmethod
    def clean(cls, *, all_learners: bool = False) -> list[str]:
        """Stop this learner's apps of this state directory (every learner's with ``all_learners``).

        Only processes whose state lies in this state directory are touched: another state
        directory (another user, another test session) is someone else's.
        """
        removed = []
        root = _root()
        me = None if all_learners else learner()
        strays = _strays(under=root, learner_only=me)
        for p in strays:
            try:
                removed.append(f"process {p.pid} ({' '.join(p.cmdline())[:60]})")
            except Exception:  # noqa: BLE001 - it may be gone already
                removed.append(f"process {p.pid}")
        _kill_all(strays)
        for home in sorted(root.iterdir()):
            meta = _read_meta(home)
            if me is not None and meta is not None and meta.get("learner", me) != me:
                continue  # another learner's app
            if me is not None and meta is None and _strays(under=home):
                continue  # no record of whose it is, and it runs: leave it to `clean --all`
            shutil.rmtree(home, ignore_errors=True)
            removed.append(f"state {home}")
        return removed


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(ch in arg for ch in " \t\"'") else arg

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
from .base import PREFIX, App, check_name, default_name, Availability, Event, Runtime, Table, register

ENV_MARK = "APPCOUP_APP"  # set on supervisord and every program: how clean() finds strays
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


def _check_port(port: int) -> int:
    """Return a free port: ``port`` itself if free (else :class:`PortInUse`), any if 0."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As http.server does: connections in TIME_WAIT must not count as "in use".
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            raise PortInUse(port, _port_holder(port)) from None
        return s.getsockname()[1]


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


def _strays(name: str | None = None, *, under: Path | None = None) -> list[Any]:
    """Processes carrying our mark: of app ``name`` (or any app), with state ``under`` a directory."""
    import psutil

    found: dict[int, Any] = {}
    for p in psutil.process_iter(["pid"]):
        try:
            env = p.environ()
            mark = env.get(ENV_MARK)
            if not mark or (name is not None and mark != name) or p.pid == os.getpid():
                continue
            if under is not None and not env.get("APPCOUP_HOME", "").startswith(str(under)):
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


def _launch(name: str, conf: Path) -> int:
    """Fork a supervisord for app ``name`` from the launcher; return its pid."""
    _warm_up()
    assert _launcher is not None and _launcher.stdin is not None and _launcher.stdout is not None
    _launcher.stdin.write(f"{name}\t{conf}\n")
    _launcher.stdin.flush()
    line = _launcher.stdout.readline()
    if not line.strip():
        raise AppcoupError("Could not start supervisord for the local runtime.",
                           why="its launcher process exited", fix="run `appcoup clean`, then try again")
    return int(line)


class LocalApp(App):
    """A scenario running as local processes under one supervisord."""

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
        return _rpc(self.home / "supervisor.sock")

    def _infos(self) -> dict[str, dict[str, Any]]:
        error: Exception | None = None
        for _ in range(100):  # right after up(), supervisord may still be opening its socket
            try:
                return {i["name"]: i for i in self._server().supervisor.getAllProcessInfo()}
            except (OSError, xmlrpc.client.Error) as e:
                error = e
                if not _pid_alive(self.meta.get("supervisord", 0)):
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
        with open(self.home / "events.jsonl", "a") as f:
            f.write(json.dumps({"time": time.time(), "container": container, "kind": kind, "detail": detail}) + "\n")

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
                events.append(Event(t, m["name"], m["kind"].replace(" ", "-"), m["detail"]))
        return events

    def _spawn_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for e in self._log_events():
            if e.kind in ("started", "restarted"):
                counts[e.container] = counts.get(e.container, 0) + 1
        return counts

    def events(self) -> list[Event]:
        own = []
        try:
            for line in (self.home / "events.jsonl").read_text().splitlines():
                own.append(Event(**json.loads(line)))
        except FileNotFoundError:
            pass
        return sorted(own + self._log_events(), key=lambda e: e.time)

    def logs(self, container: str) -> str:
        path = self.home / "logs" / f"{container}.log"
        if not path.exists():
            raise NotFound(f"No logs for {container!r}.",
                           fix=f"use one of: {', '.join(c.name for c in self.scenario.containers)}")
        return path.read_text(errors="replace")

    def _teardown(self) -> None:
        pid = self.meta.get("supervisord")
        # A signal wakes supervisord at once; an RPC shutdown waits for its next poll.
        if pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE + 5
        while pid and _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        # Whatever escaped its process group (an orphan of a naive supervisor) goes too.
        _kill_all(_strays(self.name))
        shutil.rmtree(self.home, ignore_errors=True)


@register
class LocalRuntime(Runtime):
    """Plain processes on this machine: works everywhere Python does (Binder included)."""

    name = "local"
    description = "plain processes on this machine, supervised by supervisord"

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
            progress: bool | None) -> App:
        home = _root() / name
        if (home / "app.json").exists():
            old = json.loads((home / "app.json").read_text())
            if _pid_alive(old.get("supervisord", 0)):
                raise AlreadyUp(f"The app {name!r} already runs on the local runtime ({old.get('url')}).",
                                fix=f"use it, or stop it first: app.down() or `appcoup down {scenario.name}`")
            shutil.rmtree(home, ignore_errors=True)  # left by a killed kernel
        port = _check_port(port)
        names = {s.name: f"127.0.0.1:{_check_port(0)}" for s in scenario.services}
        (home / "logs").mkdir(parents=True, exist_ok=True)
        for vol in scenario.volumes:
            (home / "volumes" / vol).mkdir(parents=True, exist_ok=True)

        entry_container = scenario.entry[1]
        sections = [
            "[unix_http_server]", f"file={home / 'supervisor.sock'}", "",
            "[supervisord]", f"logfile={home / 'supervisord.log'}", f"pidfile={home / 'supervisord.pid'}",
            "loglevel=info", "nodaemon=true", "silent=true", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        ]
        for unit in scenario.units:
            for c in unit.containers:
                env = {"INTERVAL": f"{interval:g}", "ECHO_QUIET": "1", "APPCOUP_CONTAINER": c.name,
                       "APPCOUP_HOME": str(home),
                       "PYTHONUNBUFFERED": "1", "PYTHON": sys.executable,
                       "GENERATOR": str(images_dir() / "generator" / "generator.sh"),
                       "ECHO": str(images_dir() / "echo" / "echo.py")}
                if c.port is not None:
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
        pid = _launch(name, home / "supervisord.conf")
        meta = {"name": name, "scenario": scenario.name, "port": port, "url": f"http://127.0.0.1:{port}",
                "interval": interval, "names": names, "supervisord": pid,
                "images": sorted({c.image for c in scenario.containers}), "started": time.time()}
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
        try:
            meta = json.loads((home / "app.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"No app {name!r} runs on the local runtime.",
                           fix=f"start it: `appcoup up {sc.name}`") from None
        if meta["scenario"] == "single-image":
            sc = sc.with_supervisor("init" if "combined-init" in meta.get("images", []) else "naive")
        return LocalApp(self, sc, name, interval=meta["interval"], home=home, meta=meta)

    def running(self) -> list[dict[str, Any]]:
        out = []
        for meta_path in sorted(_root().glob("*/app.json")):
            meta = json.loads(meta_path.read_text())
            if _pid_alive(meta.get("supervisord", 0)):
                out.append({"runtime": "local", "name": meta["name"], "scenario": meta["scenario"],
                            "url": meta["url"]})
        return out

    @classmethod
    def clean(cls) -> list[str]:
        removed = []
        strays = _strays()
        for p in strays:
            try:
                removed.append(f"process {p.pid} ({' '.join(p.cmdline())[:60]})")
            except Exception:  # noqa: BLE001 - it may be gone already
                removed.append(f"process {p.pid}")
        _kill_all(strays)
        for home in sorted(_root().iterdir()):
            shutil.rmtree(home, ignore_errors=True)
            removed.append(f"state {home}")
        return removed


def _quote(arg: str) -> str:
    return f'"{arg}"' if any(ch in arg for ch in " \t\"'") else arg

"""The embedded runtime: every container is a plain process, supervised by supervisord.

One supervisord per app plays the part of the container runtime: it starts each container's
program in the container's working directory (its volume, a directory), restarts it on its own
when it dies if the scenario says so (``autorestart``, with supervisord's back-off), and logs
every spawn and exit, which is where :meth:`LocalApp.events` comes from. "localhost" is the
host, and a service name maps to ``127.0.0.1:<port>``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ...errors import AlreadyUp, NotFound
from ...paths import images_dir, state_dir
from ...scenarios import Container, Scenario
from ..base import App, Availability, Runtime, check_address, default_name, learner, register
from . import supervisor
from .app import LocalApp
from .procs import ENV_LEARNER, check_port, how_to_stop, is_ours, kill_all, read_meta, strays


def state_root() -> Path:
    """Where the local runtime keeps one directory per app (``<state>/local/<name>``)."""
    p = state_dir() / "local"
    p.mkdir(parents=True, exist_ok=True)
    return p


@register
class LocalRuntime(Runtime):
    """Plain processes on this machine: works everywhere Python does (Binder included)."""

    name = "local"
    description = "plain processes on this machine, supervised by supervisord"
    app_abilities = LocalApp.abilities

    def __init__(self) -> None:
        super().__init__()
        supervisor.warm_up()

    @classmethod
    def availability(cls) -> Availability:
        try:
            import supervisor as supervisor_package  # noqa: F401
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
            "combined-restart": images_dir() / "combined" / "app-restart.sh",
        }
        argv = [sys.executable if a == "python3" else a for a in c.command]
        return [str(files[c.image]) if a.startswith("/app/") else a for a in argv]

    def _up(self, scenario: Scenario, name: str, *, interval: float, port: int,
            progress: bool | None, address: str = "127.0.0.1") -> App:
        address = check_address(address)
        home = state_root() / name
        old = read_meta(home)
        if old is not None and is_ours(old):
            how = how_to_stop(scenario.name, name)
            raise AlreadyUp(f"The app {name!r} already runs on the local runtime ({old.get('url')}).",
                            fix=f"use it, or stop it first: app.down() or `{how}`")
        if home.exists():  # left by a killed kernel (or from before a reboot): its processes, its files
            kill_all(strays(name, under=home))
            shutil.rmtree(home, ignore_errors=True)
        port = check_port(port, address)
        names = {s.name: f"127.0.0.1:{check_port(0)}" for s in scenario.services}
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
        sections = supervisor.header(home)
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
                    env["PORT"] = str(port if c.name == entry_container
                                      else names[self._service_for(scenario, c)].split(":")[1])
                if c.source:
                    env["SOURCE_URL"] = f"http://{names[c.source]}/data"
                workdir = home / "volumes" / c.volume if c.volume else home / "volumes" / f"_{c.name}"
                workdir.mkdir(parents=True, exist_ok=True)
                restarts = unit.restart != "never"
                # A crash loop backs off, then gives up; without a restart policy, nothing retries.
                # `on-failure` is supervisord's `unexpected`: an exit code other than 0 (a kill included).
                command = " ".join(supervisor.quote(a) for a in self._command(c))
                opts = supervisor.program(command, workdir, env, home / "logs" / f"{c.name}.log",
                                          autorestart="unexpected" if unit.restart == "on-failure" else restarts,
                                          startsecs=1 if restarts else 0, startretries=5 if restarts else 0)
                sections += [f"[program:{c.name}]", *(f"{k}={v}" for k, v in opts.items()), ""]
        (home / "supervisord.conf").write_text("\n".join(sections))
        pid, created = supervisor.launch(name, home / "supervisord.conf")
        host = "127.0.0.1" if address in ("0.0.0.0", "127.0.0.1") else address
        meta.update({"name": name, "scenario": scenario.name, "port": port, "url": f"http://{host}:{port}",
                     "address": address, "interval": interval, "names": names, "supervisord": pid,
                     "supervisord_created": created, "learner": learner(),
                     "images": sorted({c.image for c in scenario.containers}), "started": time.time(),
                     "supervisor": scenario.supervisor})
        (home / "app.json").write_text(json.dumps(meta, indent=1))
        app = LocalApp(self, scenario, name, interval=interval, home=home, meta=meta)
        app.timeline.record("app", "up", f"{scenario.name} at {meta['url']}")
        return app

    @staticmethod
    def _service_for(scenario: Scenario, c: Container) -> str:
        for s in scenario.services:
            if s.container == c.name:
                return s.name
        raise KeyError(c.name)

    def _recorded(self, scenario: Scenario, name: str) -> dict[str, Any]:
        home = state_root() / name
        meta = read_meta(home)
        if meta is None or meta.get("scenario") != scenario.name:
            raise NotFound(f"No app {name!r} runs {scenario.name!r} on the local runtime.",
                           fix=f"start it: `appcoup up {scenario.name}" + ("" if name == default_name(scenario.name)
                                                                           else f" --name {name}") + "`")
        if not is_ours(meta):
            # Its supervisord is gone (killed, or from before a reboot): a pid alone proves nothing.
            raise NotFound(f"The app {name!r} ({scenario.name}) is not running any more on the local runtime.",
                           why="its supervisord has exited (a killed kernel, a crash or a reboot)",
                           fix="run `appcoup clean` to remove what is left, then start it again")
        # An app.json written before "supervisor" was recorded tells it by the image it ran.
        meta.setdefault("supervisor", "init" if "combined-init" in meta.get("images", []) else
                        "restarting" if "combined-restart" in meta.get("images", []) else "naive")
        return meta

    def _attach(self, scenario: Scenario, name: str, record: dict[str, Any]) -> App:
        return LocalApp(self, scenario, name, interval=record["interval"], home=state_root() / name, meta=record)

    def running(self) -> list[dict[str, Any]]:
        """This learner's apps whose supervisord is alive (and is still the one that was started)."""
        out = []
        me = learner()
        for home in sorted(state_root().iterdir()):
            meta = read_meta(home)
            if meta is None or meta.get("learner", me) != me or not is_ours(meta):
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
        root = state_root()
        me = None if all_learners else learner()
        found = strays(under=root, learner_only=me)
        for p in found:
            try:
                removed.append(f"process {p.pid} ({' '.join(p.cmdline())[:60]})")
            except Exception:  # noqa: BLE001 - it may be gone already
                removed.append(f"process {p.pid}")
        kill_all(found)
        for home in sorted(root.iterdir()):
            meta = read_meta(home)
            if me is not None and meta is not None and meta.get("learner", me) != me:
                continue  # another learner's app
            if me is not None and meta is None and strays(under=home):
                continue  # no record of whose it is, and it runs: leave it to `clean --all`
            shutil.rmtree(home, ignore_errors=True)
            removed.append(f"state {home}")
        return removed


__all__ = ["LocalRuntime", "state_root"]

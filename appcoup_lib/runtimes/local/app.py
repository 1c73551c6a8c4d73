"""A scenario running as local processes under one supervisord (see :mod:`.runtime`)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path
from typing import Any

from ...errors import AppcoupError, NotFound, PortInUse
from ...paths import images_dir
from ...scenarios import Scenario
from ..base import Event, Runtime, Table
from ..procs import SCRIPTS
from ..spec import Commands, Spec
from . import spec, supervisor
from .events import Timeline
from .procs import is_ours, kill_all, port_holder, strays, tree
from .scaling import LocalScaling


class LocalApp(LocalScaling):
    """A scenario running as local processes under one supervisord."""

    # scale, rollout, recreate, append, resolve: see scaling.py; spec, commands: spec.py
    abilities = frozenset({"scale", "rollout", "recreate", "append", "resolve", "exec", "spec", "commands"})

    def __init__(self, runtime: Runtime, scenario: Scenario, name: str, *, interval: float,
                 home: Path, meta: dict[str, Any]) -> None:
        super().__init__(runtime, scenario, name, interval=interval)
        self.home = home
        self.meta = meta  # filled in by the runtime as soon as supervisord runs (empty before)
        self.timeline = Timeline(home)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.meta['port']}"

    @property
    def names(self) -> dict[str, str]:
        """How service names map to addresses (what DNS does on the other runtimes)."""
        return dict(self.meta.get("names", {}))

    def _infos(self) -> dict[str, dict[str, Any]]:
        error: Exception | None = None
        for _ in range(100):  # right after up(), supervisord may still be opening its socket
            try:
                return {i["name"]: i for i in supervisor.rpc(self.home).supervisor.getAllProcessInfo()}
            except (OSError, xmlrpc.client.Error) as e:
                error = e
                if not is_ours(self.meta):
                    break
                time.sleep(0.02)
        detail = supervisor.last_error(self.home, 500)
        raise AppcoupError(f"The local app {self.name!r} is not running any more.",
                           why=f"its supervisord does not answer ({error}) {detail}".strip(),
                           fix="run `appcoup clean` to remove what is left, then start it again")

    def status(self) -> dict[str, dict[str, Any]]:
        spawns = self.timeline.spawn_counts()
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
            for p, argv in tree(pid):
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
            script = SCRIPTS[program]
            procs = [p for p, cmd in tree(pid) if any(a.endswith(script) for a in cmd)]
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
        self.timeline.record(container, kind, detail)

    def _failed(self) -> AppcoupError | None:
        """The entry program could not listen on its port (taken between choosing and binding)."""
        entry = self.scenario.entry[1]
        try:
            log = (self.home / "logs" / f"{entry}.log").read_text(errors="replace")
        except OSError:
            return None
        if "cannot listen on port" in log:
            port = int(self.meta["port"])
            return PortInUse(port, port_holder(port))
        return None

    def events(self) -> list[Event]:
        return self.timeline.events()

    def logs(self, container: str) -> str:
        path = self.home / "logs" / f"{container}.log"
        if not path.exists():
            raise NotFound(f"No logs for {container!r}.",
                           fix=f"use one of: {', '.join(c.name for c in self.scenario.containers)}")
        return path.read_text(errors="replace")

    def exec(self, container: str, *argv: str, timeout: float = 20) -> str:
        """Run ``argv`` "in" ``container`` and return what it printed (``docker exec``'s stand-in).

        A local container is only a directory and an environment: ``argv`` runs as a plain process on
        this machine, in the container's working directory, with the variables its program gets (see
        ``app.spec()``). It shares everything else with the host (processes, network, files): no namespace.
        """
        prog = next((p for p in spec.programs(self) if p[0] == container), None)
        if prog is None:
            raise NotFound(f"There is no container {container!r} in {self.name!r}.",
                           fix=f"use one of: {', '.join(c.name for c in self.scenario.containers)}")
        try:
            res = subprocess.run(list(argv), cwd=prog[2], env={**os.environ, **prog[3]}, capture_output=True,
                                 text=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AppcoupError(f"Cannot run {' '.join(argv)!r} in {container!r}.", why=str(e)) from None
        if res.returncode:
            raise AppcoupError(f"{' '.join(argv)!r} failed in {container!r} (exit code {res.returncode}).",
                               why=(res.stderr or res.stdout).strip()[-500:])
        return res.stdout

    def spec(self) -> Spec:
        """The ``[program:...]`` sections of the supervisord.conf this app runs from, and its process tree now."""
        return spec.spec(self)

    def commands(self) -> Commands:
        """The shell lines that do the same by hand: ``supervisord -c``, ``supervisorctl status``, the programs."""
        return spec.commands(self)

    def _teardown(self) -> None:
        # Only our own supervisord gets a signal: a pid whose start time differs is someone else's.
        if is_ours(self.meta):
            pid = self.meta["supervisord"]
            # A signal wakes supervisord at once; an RPC shutdown waits for its next poll.
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + supervisor.STOP_GRACE + 5
            while is_ours(self.meta) and time.monotonic() < deadline:
                time.sleep(0.01)
        # Whatever escaped its process group (an orphan of a naive supervisor) goes too: only
        # processes of this app in this state directory.
        kill_all(strays(self.name, under=self.home))
        shutil.rmtree(self.home, ignore_errors=True)

    # -- data and volumes ------------------------------------------------------------------------
    def _workdir(self, container: str) -> Path:
        return Path(supervisor.read_conf(self.home)[f"program:{container}"]["directory"])

    def append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, as the generator would."""
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)
        with open(self._workdir(gen) / "data", "ab") as f:
            f.write(line * max(1, nbytes // len(line)))

    def volumes(self) -> Table:
        """Which container mounts which volume, and where that volume is on this machine."""
        rows = []
        for c in self.scenario.containers:
            if c.volume:
                rows.append({"container": c.name, "volume": c.volume, "kind": self.scenario.volumes[c.volume],
                             "mounted at (in the container)": c.workdir, "is": str(self._workdir(c.name))})
        return Table(rows)

    def resolve(self, name: str, *, container: str = "echo") -> dict[str, Any]:
        """How ``name`` is found: locally there is no DNS, the runtime hands out a name mapping.

        Copies of a unit have no name of their own either: the front knows them by port.
        """
        names = dict(self.meta.get("names", {}))
        for u in self.scenario.units:
            if self._has_front(u):
                backends = (self.home / f"front-{u.name}.backends").read_text().split()
                if name == u.name:
                    where = f"{self.home.name}/front-{u.name}.backends"
                    return {"name": name, "addresses": backends,
                            "resolver": f"the front's list of copies ({where})"}
        if name not in names:
            raise AppcoupError(f"The local runtime knows no name {name!r}.",
                               fix=f"use one of: {', '.join(names)}")
        return {"name": name, "addresses": [names[name]],
                "resolver": "the local runtime's name mapping (no DNS)"}


__all__ = ["LocalApp"]

"""Loose coupling on the local runtime: copies of a unit, a front before them, rollouts, recreation.

Everything stays under the app's one supervisord, changed the way ``supervisorctl update`` does
it: the program sections of ``supervisord.conf`` are edited, supervisord re-reads the file, and
only the programs whose section changed are stopped, removed and added again.

- A copy ``k`` of a unit runs its programs as ``<container>-<k>`` (copy 1 keeps the plain
  names), each with its own private port and its own scratch volume directory; persistent and
  host directories are shared.
- The *front* is ``images/front/front.py``, one more program: it holds the learner's new port
  and forwards each request, round-robin, to the copies listed in ``front-backends``. Taking a
  copy out of that file is what a failing readiness probe does to a Kubernetes endpoint.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import AppcoupError
from ..paths import images_dir
from ..scenarios import Container, Unit
from .base import Table, learner
from .scaling import DRAIN, Scaling, answers

_FILES = ("generator/generator.sh", "echo/echo.py", "adapter/adapter.py", "combined/app.sh",
          "combined/app-init.sh", "front/front.py")
_ENV = re.compile(r'(\w+)="([^"]*)"')


def _env(value: str) -> dict[str, str]:
    return dict(_ENV.findall(value))


def _env_str(env: dict[str, str]) -> str:
    return ",".join(f'{k}="{v}"' for k, v in env.items())


def _reroot(text: str, root: str) -> str:
    """Point every program file named in ``text`` at the copy of ``images/`` under ``root``."""
    for rel in _FILES:
        text = re.sub(r'[^\s",=]*/' + re.escape(rel), lambda _m, rel=rel: f"{root}/{rel}", text)
    return text


class LocalScaling(Scaling):
    """The local runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`."""

    home: Path
    meta: dict[str, Any]

    # -- supervisord.conf, edited in place -------------------------------------------------------
    def _conf(self) -> configparser.RawConfigParser:
        cp = configparser.RawConfigParser(interpolation=None, strict=False)
        cp.optionxform = str  # type: ignore[assignment, method-assign]
        cp.read(self.home / "supervisord.conf")
        return cp

    def _write_conf(self, cp: configparser.RawConfigParser) -> None:
        tmp = self.home / "supervisord.conf.new"
        with open(tmp, "w") as f:
            cp.write(f)
        os.replace(tmp, self.home / "supervisord.conf")

    def _apply(self, restart: list[str] = (), add: list[str] = (), remove: list[str] = ()) -> None:  # type: ignore[assignment]
        """``supervisorctl update`` for the named programs: re-read the file, then act on them."""
        rpc = self._server().supervisor  # type: ignore[attr-defined]
        rpc.reloadConfig()
        for name in [*restart, *remove]:
            try:
                rpc.stopProcessGroup(name)
            except Exception:  # noqa: BLE001, S110 - not running: nothing to stop
                pass
            try:
                rpc.removeProcessGroup(name)
            except Exception:  # noqa: BLE001, S110 - not there
                pass
        for name in [*restart, *add]:
            rpc.addProcessGroup(name)  # autostart: it is spawned at once

    def _save_meta(self) -> None:
        (self.home / "app.json").write_text(json.dumps(self.meta, indent=1))

    # -- copies ----------------------------------------------------------------------------------
    @staticmethod
    def _name(c: Container, k: int) -> str:
        return c.name if k == 1 else f"{c.name}-{k}"

    def _copies(self, unit: Unit) -> int:
        return int(self.meta.get("copies", {}).get(unit.name, 1))

    def _has_front(self, unit: Unit) -> bool:
        return unit.name in self.meta.get("front", {})

    def _entry_port(self, cp: configparser.RawConfigParser, unit: Unit, k: int) -> int:
        entry = next(c for c in unit.containers if c.port is not None)
        return int(_env(cp[f"program:{self._name(entry, k)}"]["environment"])["PORT"])

    def _wait_copy(self, unit: Unit, k: int, timeout: float = 30) -> None:
        """The readiness probe: the copy's own port answers (its probe path, else /data)."""
        entry = next(c for c in unit.containers if c.port is not None)
        url = f"http://127.0.0.1:{self._entry_port(self._conf(), unit, k)}{entry.probe or '/data'}"
        self.wait_until(lambda: answers(url, 0.5), timeout, f"copy {k} of {unit.name} to answer")  # type: ignore[attr-defined]

    def _write_backends(self, unit: Unit) -> None:
        cp = self._conf()
        out = set(self.meta.get("out", {}).get(unit.name, []))
        lines = [f"127.0.0.1:{self._entry_port(cp, unit, k)}" for k in range(1, self._copies(unit) + 1)
                 if k not in out]
        path = self.home / f"front-{unit.name}.backends"
        tmp = path.with_suffix(".new")
        tmp.write_text("".join(f"{ln}\n" for ln in lines))
        os.replace(tmp, path)  # atomic: the front sees the old list or the new one

    def _leave_front(self, unit: Unit, copy: int) -> None:
        self.meta.setdefault("out", {}).setdefault(unit.name, []).append(copy)
        self._save_meta()
        self._write_backends(unit)

    def _join_front(self, unit: Unit, copy: int) -> None:
        out = self.meta.setdefault("out", {}).setdefault(unit.name, [])
        if copy in out:
            out.remove(copy)
        self._save_meta()
        self._write_backends(unit)

    def _ensure_front(self, unit: Unit) -> None:
        from .local import ENV_LEARNER, STOP_GRACE, _check_port

        if self._has_front(unit):
            return
        port = _check_port(0, self.meta.get("address", "127.0.0.1"))
        self._write_backends(unit)
        cp = self._conf()
        env = {"PORT": str(port), "BIND_ADDRESS": self.meta.get("address", "127.0.0.1"), ENV_LEARNER: learner(), "BACKENDS_FILE": str(self.home / f"front-{unit.name}.backends"),
               "APPCOUP_HOME": str(self.home), "APPCOUP_CONTAINER": "front", "PYTHONUNBUFFERED": "1"}
        cp[f"program:front-{unit.name}"] = {
            "command": f"{sys.executable} {images_dir() / 'front' / 'front.py'}",
            "directory": str(self.home), "environment": _env_str(env),
            "autostart": "true", "autorestart": "true", "startsecs": "0",
            "stopasgroup": "true", "killasgroup": "true", "stopwaitsecs": str(STOP_GRACE),
            "stdout_logfile": str(self.home / "logs" / f"front-{unit.name}.log"), "redirect_stderr": "true",
            "stdout_logfile_maxbytes": "0",
        }
        self._write_conf(cp)
        self._apply(add=[f"front-{unit.name}"])
        self.meta.setdefault("front", {})[unit.name] = port
        self.meta["port"] = port
        self.meta["url"] = f"http://127.0.0.1:{port}"
        self._save_meta()

    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        from .local import _check_port

        current = self._copies(unit)
        cp = self._conf()
        added = []
        for k in range(current + 1, replicas + 1):
            for c in unit.containers:
                sec = dict(cp[f"program:{c.name}"])
                name = self._name(c, k)
                env = _env(sec["environment"])
                env["APPCOUP_CONTAINER"] = name
                if c.port is not None:  # a copy's own port stays private: the front is the way in
                    env["PORT"] = str(_check_port(0))
                    env["BIND_ADDRESS"] = "127.0.0.1"
                if c.volume and self.scenario.volumes.get(c.volume) == "scratch":  # type: ignore[attr-defined]
                    d = self.home / "volumes" / f"{c.volume}-{k}"
                    d.mkdir(parents=True, exist_ok=True)
                    sec["directory"] = str(d)
                sec["environment"] = _env_str(env)
                sec["stdout_logfile"] = str(self.home / "logs" / f"{name}.log")
                if versions and c.name in versions:
                    sec["command"] = _reroot(sec["command"], versions[c.name])
                    sec["environment"] = _reroot(sec["environment"], versions[c.name])
                cp[f"program:{name}"] = sec
                added.append(name)
        self.meta.setdefault("copies", {})[unit.name] = max(current, replicas)
        self._save_meta()
        if added:
            self._write_conf(cp)
            self._apply(add=added)
            for k in range(current + 1, replicas + 1):
                self._wait_copy(unit, k)
        self._ensure_front(unit)
        if replicas < current:
            for k in range(replicas + 1, current + 1):
                self._leave_front(unit, k)
            time.sleep(DRAIN)
            gone = [self._name(c, k) for k in range(replicas + 1, current + 1) for c in unit.containers]
            cp = self._conf()
            for name in gone:
                cp.remove_section(f"program:{name}")
            self._write_conf(cp)
            self._apply(remove=gone)
            for k in range(replicas + 1, current + 1):
                for c in unit.containers:
                    if c.volume and self.scenario.volumes.get(c.volume) == "scratch":  # type: ignore[attr-defined]
                        shutil.rmtree(self.home / "volumes" / f"{c.volume}-{k}", ignore_errors=True)
            self.meta["copies"][unit.name] = replicas
            self.meta.setdefault("out", {})[unit.name] = [
                k for k in self.meta.get("out", {}).get(unit.name, []) if k <= replicas]
            self._save_meta()
        self._write_backends(unit)

    # -- rollout ---------------------------------------------------------------------------------
    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Nothing to build for processes: keep the changed files where the programs can run them."""
        n = len(list((self.home / "versions").glob("*"))) + 1 if (self.home / "versions").exists() else 1
        root = self.home / "versions" / str(n)
        shutil.copytree(context, root)
        return {c.name: str(root) for c in containers}

    def _replace(self, unit: Unit, copy: int, versions: dict[str, str]) -> None:
        cp = self._conf()
        names = []
        for c in unit.containers:
            if c.name in versions:
                name = self._name(c, copy)
                sec = cp[f"program:{name}"]
                sec["command"] = _reroot(sec["command"], versions[c.name])
                sec["environment"] = _reroot(sec["environment"], versions[c.name])
                names.append(name)
        self._write_conf(cp)
        self._apply(restart=names)
        self._wait_copy(unit, copy)

    def _identities(self) -> dict[str, tuple[Any, int]]:
        st = self.status()  # type: ignore[attr-defined]
        return {name: (s.get("pid"), int(s.get("restarts", 0))) for name, s in st.items()}

    # -- recreate --------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        rpc = self._server().supervisor  # type: ignore[attr-defined]
        names = [c.name for u in units for c in u.containers]
        for name in names:  # delete everything first: for a moment, none of them exists
            try:
                rpc.stopProcessGroup(name)
            except Exception:  # noqa: BLE001, S110 - it had stopped already
                pass
        for vol in self._scratch_of(units):
            d = self.home / "volumes" / vol
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        for name in names:
            rpc.startProcessGroup(name, False)

    # -- data and volumes ------------------------------------------------------------------------
    def _workdir(self, container: str) -> Path:
        return Path(self._conf()[f"program:{container}"]["directory"])

    def _append_data(self, nbytes: int, line: bytes = b"12345\n") -> None:
        """Append ``nbytes`` of numbers to the generator's data file, as the generator would."""
        gen = next(c.name for c in self.scenario.containers if "generator" in c.runs)  # type: ignore[attr-defined]
        with open(self._workdir(gen) / "data", "ab") as f:
            f.write(line * max(1, nbytes // len(line)))

    def volumes(self) -> Table:
        """Which container mounts which volume, and where that volume is on this machine."""
        rows = []
        for c in self.scenario.containers:  # type: ignore[attr-defined]
            if c.volume:
                rows.append({"container": c.name, "volume": c.volume,
                             "kind": self.scenario.volumes[c.volume],  # type: ignore[attr-defined]
                             "mounted at (in the container)": c.workdir, "is": str(self._workdir(c.name))})
        return Table(rows)

    def resolve(self, name: str, *, container: str = "echo") -> dict[str, Any]:
        """How ``name`` is found: locally there is no DNS, the runtime hands out a name mapping.

        Copies of a unit have no name of their own either: the front knows them by port.
        """
        names = dict(self.meta.get("names", {}))
        for u in self.scenario.units:  # type: ignore[attr-defined]
            if self._has_front(u):
                backends = (self.home / f"front-{u.name}.backends").read_text().split()
                if name == u.name:
                    return {"name": name, "addresses": backends,
                            "resolver": f"the front's list of copies ({self.home.name}/front-{u.name}.backends)"}
        if name not in names:
            raise AppcoupError(f"The local runtime knows no name {name!r}.", fix=f"use one of: {', '.join(names)}")
        return {"name": name, "addresses": [names[name]], "resolver": "the local runtime's name mapping (no DNS)"}

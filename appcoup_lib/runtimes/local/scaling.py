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
import contextlib
import json
import os
import re
import shutil
import sys
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...errors import AppcoupError
from ...paths import images_dir
from ...scenarios import Container, Unit
from ..base import learner
from ..scaling import Scaling, answers
from . import supervisor
from .procs import ENV_LEARNER, check_port

_FILES = ("generator/generator.sh", "echo/echo.py", "adapter/adapter.py", "combined/app.sh",
          "combined/app-init.sh", "combined/app-restart.sh", "front/front.py")


def _reroot(text: str, root: str) -> str:
    """Point every program file named in ``text`` at the copy of ``images/`` under ``root``."""
    for rel in _FILES:
        text = re.sub(r'[^\s",=]*/' + re.escape(rel), _as_is(f"{root}/{rel}"), text)
    return text


def _as_is(path: str) -> Callable[[re.Match[str]], str]:
    # A function, not a replacement string: re.sub would read backslashes in a path as escapes.
    return lambda _m: path


class LocalScaling(Scaling):
    """The local runtime's hooks for :class:`~appcoup_lib.runtimes.scaling.Scaling`.

    Abstract (:class:`~.app.LocalApp` completes it); what it needs of the app beyond
    :class:`~appcoup_lib.runtimes.base.App` is declared here.
    """

    copy_timeout = 30  # seconds for a new copy to answer (a process starts in well under one)
    home: Path  # the app's state directory (supervisord.conf, logs, volumes)
    meta: dict[str, Any]  # its app.json, saved again after every change

    def _save_meta(self) -> None:
        (self.home / "app.json").write_text(json.dumps(self.meta, indent=1))

    @contextlib.contextmanager
    def _boundary(self, what: str) -> Iterator[None]:
        # The local runtime's engine is supervisord, reached over XML-RPC on a unix socket: its
        # faults, and a socket nobody answers on any more, become one AppcoupError here.
        try:
            yield
        except (OSError, xmlrpc.client.Error) as e:
            raise AppcoupError(f"{what} on the local runtime.", why=f"supervisord: {e}",
                               fix="look at app.status() and app.events(); if its supervisord has gone, "
                                   "run `appcoup clean` and start the app again") from e

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
        return int(supervisor.parse_env(cp[f"program:{self._name(entry, k)}"]["environment"])["PORT"])

    def _copy_answers(self, unit: Unit, k: int) -> bool:
        """The readiness probe: the copy's own port answers (its probe path, else /data)."""
        entry = next(c for c in unit.containers if c.port is not None)
        port = self._entry_port(supervisor.read_conf(self.home), unit, k)
        return answers(f"http://127.0.0.1:{port}{entry.probe or '/data'}", 0.5)

    def _write_backends(self, unit: Unit) -> None:
        cp = supervisor.read_conf(self.home)
        out = set(self.meta.get("out", {}).get(unit.name, []))
        lines = [f"127.0.0.1:{self._entry_port(cp, unit, k)}" for k in range(1, self._copies(unit) + 1)
                 if k not in out]
        path = self.home / f"front-{unit.name}.backends"
        tmp = path.with_suffix(".new")
        tmp.write_text("".join(f"{ln}\n" for ln in lines))
        os.replace(tmp, path)  # atomic: the front sees the old list or the new one

    def _leave_front(self, unit: Unit, copy: int) -> None:
        out = self.meta.setdefault("out", {}).setdefault(unit.name, [])
        if copy not in out:
            out.append(copy)
        self._save_meta()
        self._write_backends(unit)

    def _join_front(self, unit: Unit, copy: int) -> None:
        out = self.meta.setdefault("out", {}).setdefault(unit.name, [])
        if copy in out:
            out.remove(copy)
        self._save_meta()
        self._write_backends(unit)

    def _ensure_front(self, unit: Unit) -> None:
        if self._has_front(unit):
            return
        address = self.meta.get("address", "127.0.0.1")
        port = check_port(0, address)
        self._write_backends(unit)
        cp = supervisor.read_conf(self.home)
        env = {"PORT": str(port), "BIND_ADDRESS": address, ENV_LEARNER: learner(),
               "BACKENDS_FILE": str(self.home / f"front-{unit.name}.backends"),
               "APPCOUP_HOME": str(self.home), "APPCOUP_CONTAINER": "front", "PYTHONUNBUFFERED": "1"}
        cp[f"program:front-{unit.name}"] = supervisor.program(
            f"{sys.executable} {images_dir() / 'front' / 'front.py'}", self.home, env,
            self.home / "logs" / f"front-{unit.name}.log", autorestart=True, startsecs=0)
        supervisor.write_conf(self.home, cp)
        supervisor.apply(self.home, add=[f"front-{unit.name}"])
        self.meta.setdefault("front", {})[unit.name] = port
        self.meta["port"] = port
        self.meta["url"] = f"http://127.0.0.1:{port}"
        self._save_meta()

    def _add_copy(self, unit: Unit, k: int, versions: dict[str, str] | None) -> None:
        self._add_copies(unit, [k], versions)

    def _add_copies(self, unit: Unit, copies: list[int], versions: dict[str, str] | None) -> None:
        # All at once: one edit of supervisord.conf, one re-read, as `supervisorctl update` does.
        cp = supervisor.read_conf(self.home)
        added = []
        for k in copies:
            for c in unit.containers:
                sec = dict(cp[f"program:{c.name}"])
                name = self._name(c, k)
                env = supervisor.parse_env(sec["environment"])
                env["APPCOUP_CONTAINER"] = name
                if c.port is not None:  # a copy's own port stays private: the front is the way in
                    env["PORT"] = str(check_port(0))
                    env["BIND_ADDRESS"] = "127.0.0.1"
                if c.volume and self.scenario.volumes.get(c.volume) == "scratch":
                    d = self.home / "volumes" / f"{c.volume}-{k}"
                    d.mkdir(parents=True, exist_ok=True)
                    sec["directory"] = str(d)
                sec["environment"] = supervisor.env_str(env)
                sec["stdout_logfile"] = str(self.home / "logs" / f"{name}.log")
                if versions and c.name in versions:
                    sec["command"] = _reroot(sec["command"], versions[c.name])
                    sec["environment"] = _reroot(sec["environment"], versions[c.name])
                cp[f"program:{name}"] = sec
                added.append(name)
        # Counted from now on (down and clean find them), but out of the front until they answer.
        self.meta.setdefault("copies", {})[unit.name] = max(self._copies(unit), *copies)
        out = self.meta.setdefault("out", {}).setdefault(unit.name, [])
        out += [k for k in copies if k not in out]
        self._save_meta()
        if added:
            supervisor.write_conf(self.home, cp)
            supervisor.apply(self.home, add=added)

    def _remove_copy(self, unit: Unit, k: int) -> None:
        self._remove_copies(unit, [k])

    def _remove_copies(self, unit: Unit, copies: list[int]) -> None:
        gone = [self._name(c, k) for k in copies for c in unit.containers]
        cp = supervisor.read_conf(self.home)
        for name in gone:
            cp.remove_section(f"program:{name}")
        supervisor.write_conf(self.home, cp)
        supervisor.apply(self.home, remove=gone)
        for k in copies:
            for c in unit.containers:
                if c.volume and self.scenario.volumes.get(c.volume) == "scratch":
                    shutil.rmtree(self.home / "volumes" / f"{c.volume}-{k}", ignore_errors=True)
        # The copies go from the top (the skeleton removes the highest ones): what is left is 1..n.
        left = min(self._copies(unit), min(copies) - 1)
        self.meta["copies"][unit.name] = left
        self.meta.setdefault("out", {})[unit.name] = [
            k for k in self.meta.get("out", {}).get(unit.name, []) if k <= left]
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
        cp = supervisor.read_conf(self.home)
        names = []
        for c in unit.containers:
            if c.name in versions:
                name = self._name(c, copy)
                sec = cp[f"program:{name}"]
                sec["command"] = _reroot(sec["command"], versions[c.name])
                sec["environment"] = _reroot(sec["environment"], versions[c.name])
                names.append(name)
        supervisor.write_conf(self.home, cp)
        supervisor.apply(self.home, restart=names)
        self._wait_copies(unit, [copy])

    # -- recreate --------------------------------------------------------------------------------
    def _recreate(self, units: list[Unit]) -> None:
        rpc = supervisor.rpc(self.home).supervisor
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


__all__ = ["LocalScaling"]

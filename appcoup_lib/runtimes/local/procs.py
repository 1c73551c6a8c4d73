"""Which processes are this runtime's: start-time and ownership checks, strays, who holds a port.

A pid alone proves nothing (after a reboot, or once a pid is reused, the same number names
someone else's process), so every check here also compares a start time, a working directory or
the marks the runtime puts in each program's environment. Nothing is signalled that fails them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..base import default_name
from ..ports import check_free, process_holder

ENV_MARK = "APPCOUP_APP"  # set on supervisord and every program: how clean() finds strays
ENV_LEARNER = "APPCOUP_LEARNER_MARK"  # whose program it is: a learner's clean() stops only theirs
# What a supervisord forked by the launcher has in its command line (the launcher's, see
# supervisor.py). The second one is what versions before the package split ran: `appcoup clean`
# still recognises a supervisord left behind by one of them.
SUPERVISOR_MODULE = "appcoup_lib.runtimes.local.supervisor"
_MARKS = (SUPERVISOR_MODULE, "appcoup_lib._supervisord")


def is_supervisor_cmdline(argv: list[str]) -> bool:
    """Whether a command line is the launcher's, so of a supervisord it forked."""
    cmd = " ".join(argv)
    return any(mark in cmd for mark in _MARKS)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` names a live process (a zombie is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def create_time(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), None when there is no such process."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied, ValueError):
        return None


def is_ours(meta: dict[str, Any]) -> bool:
    """Whether the supervisord recorded in ``meta`` (an ``app.json``) is still that very process.

    The start time recorded at launch must match the pid's, and it must run the launcher's code.
    """
    pid = meta.get("supervisord")
    created = meta.get("supervisord_created")
    if not isinstance(pid, int) or pid <= 0 or not isinstance(created, (int, float)) or not pid_alive(pid):
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        # Start times are in clock ticks (1/100 s): the same process always gives the same one.
        return abs(proc.create_time() - created) < 0.02 and is_supervisor_cmdline(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return False


def read_meta(home: Path) -> dict[str, Any] | None:
    """The ``app.json`` of an app's state directory (None when missing or unreadable)."""
    try:
        meta = json.loads((home / "app.json").read_text())
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) else None


def _under(home: str, root: Path) -> bool:
    """Whether the state directory ``home`` (a program's APPCOUP_HOME) lies inside ``root``."""
    root_s = str(root).rstrip("/")
    return home == root_s or home.startswith(root_s + "/")


def _is_supervisord(p: Any, name: str | None, under: Path | None, learner_only: str | None = None) -> bool:
    """A supervisord forked for an app, found by where it works: the app's state directory.

    It has the launcher's command line (a fork) and carries our mark only in its memory; its
    working directory is what tells it from the launcher (which stays where it was started).
    """
    try:
        if not is_supervisor_cmdline(p.cmdline()):
            return False
        cwd = Path(p.cwd())
    except Exception:  # noqa: BLE001 - gone, or not ours to read
        return False
    if not (cwd / "supervisord.conf").exists() or cwd.parent.name != "local":
        return False
    if name is not None and cwd.name != name:
        return False
    if learner_only is not None:
        meta = read_meta(cwd)
        if meta is None or meta.get("learner") != learner_only:
            return False
    return under is None or _under(str(cwd), under)


def strays(name: str | None = None, *, under: Path | None = None,
           learner_only: str | None = None) -> list[Any]:
    """Processes carrying our mark (psutil processes, supervisords first).

    Of app ``name`` (or any app), with state ``under`` a directory, started by learner
    ``learner_only`` (when given).
    """
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
            if parent is not None and is_supervisor_cmdline(parent.cmdline()):
                found = {parent.pid: parent, **found}
            found[p.pid] = p
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, OSError):
            continue
    return list(found.values())


def kill_all(procs: list[Any]) -> None:
    """SIGKILL ``procs`` (what :func:`strays` found) and wait for them to go."""
    import psutil

    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def tree(pid: int) -> list[tuple[Any, list[str]]]:
    """A process and its descendants with their command lines, skipping any that just exited.

    Each process gets ``info_ppid`` (its parent's pid), read at the same moment.
    """
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


def how_to_stop(scenario: str, name: str) -> str:
    """The command that stops app ``name`` of ``scenario`` (``--name`` only when not the default)."""
    return f"appcoup down {scenario}" + ("" if name == default_name(scenario) else f" --name {name}")


def _describe(env: dict[str, str]) -> str:
    """What a port's holder is when its environment names an appcoup app: the app, and how to stop it."""
    owner = env.get(ENV_MARK)
    if not owner:
        return ""
    try:
        how = how_to_stop(json.loads((Path(env["APPCOUP_HOME"]) / "app.json").read_text())["scenario"], owner)
    except (KeyError, OSError, ValueError):
        how = "appcoup clean"
    return f", part of the appcoup app {owner!r} (stop it: {how})"


def port_holder(port: int) -> str:
    """Who listens on ``port``: a process by pid and command line, and an appcoup app by name."""
    return process_holder(port, _describe)


def check_port(port: int, address: str = "127.0.0.1") -> int:
    """Return a free port: ``port`` itself if free (else :class:`PortInUse`), any if 0."""
    return check_free(port, address, port_holder)


__all__ = ["ENV_LEARNER", "ENV_MARK", "SUPERVISOR_MODULE", "check_port", "create_time", "how_to_stop",
           "is_ours", "is_supervisor_cmdline", "kill_all", "pid_alive", "port_holder", "read_meta", "strays",
           "tree"]

"""``app.spec()`` and ``app.commands()`` on the local runtime: the supervisord config it wrote, the process tree.

A local "container" is a directory and an environment under one supervisord: the config's
``[program:...]`` sections are what stands in for a pod's YAML or a ``docker run``, and the
process tree (read now, from ``/proc``) for what a container runtime would show.
"""

from __future__ import annotations

import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from ..spec import Commands, Part, Spec
from . import supervisor
from .procs import tree


def _sections(text: str) -> list[tuple[str, str]]:
    """(section name, its text as written) of an ini file, in order."""
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"(?m)^(?=\[)", text):
        m = re.match(r"\[([^\]]+)\]", chunk)
        if m:
            out.append((m.group(1), chunk.rstrip() + "\n"))
    return out


def process_tree(app: Any) -> list[tuple[int, int, str, int]]:
    """(pid, ppid, command, depth) of the app's supervisord and everything under it, now."""
    pid = app.meta.get("supervisord")
    if not pid:
        return []
    listed = tree(int(pid))
    parent = {p.pid: p.info_ppid for p, _ in listed}

    def depth(q: int) -> int:
        d = 0
        while q in parent and parent[q] in parent and d < 20:
            q, d = parent[q], d + 1
        return d

    root = "   <- supervisord (forked from appcoup's launcher, hence its command line)"
    return [(p.pid, p.info_ppid, " ".join(argv) + (root if p.pid == int(pid) else ""), depth(p.pid))
            for p, argv in listed]


def spec(app: Any) -> Spec:
    """The ``[program:...]`` sections of the app's supervisord.conf, then its process tree as it is now."""
    conf = app.home / "supervisord.conf"
    sections = _sections(conf.read_text())
    others = [name for name, _ in sections if not name.startswith("program:")]
    programs = "".join(f"{text}\n" for name, text in sections if name.startswith("program:"))
    head = (f"; {conf}\n; (besides: {', '.join(f'[{n}]' for n in others)}: supervisord's control socket, "
            "log and pid file)\n\n")
    rows = process_tree(app)
    width = max((len(str(r[0])) for r in rows), default=3)
    lines = [f"{'PID':>{width}} {'PPID':>{width}}  COMMAND"] + [
        f"{pid:>{width}} {ppid:>{width}}  {'  ' * d}{cmd}" for pid, ppid, cmd, d in rows]
    return Spec(app.name, "local", [
        Part(f"supervisord.conf of {app.name}: one [program] a container", "ini", head + programs.rstrip() + "\n"),
        Part("the process tree now (supervisord stands in for the container runtime)", "text", "\n".join(lines)),
    ])


def _tool(name: str) -> str:
    """``name`` when the shell finds it, else its path beside this Python (a venv not on PATH)."""
    if shutil.which(name):
        return name
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def programs(app: Any) -> list[tuple[str, list[str], str, dict[str, str]]]:
    """(container, argv, directory, environment) of each ``[program:...]``, as supervisord starts it."""
    cp = supervisor.read_conf(app.home)
    out = []
    for section in cp.sections():
        if section.startswith("program:"):
            opts = cp[section]
            out.append((section.split(":", 1)[1], shlex.split(opts["command"]), opts["directory"],
                        supervisor.parse_env(opts.get("environment", ""))))
    return out


def commands(app: Any) -> Commands:
    """The shell lines that run and look at this app as the runtime does (supervisord), or without it."""
    conf = app.home / "supervisord.conf"
    has_ctl = "[supervisorctl]" in conf.read_text()
    ctl = shlex.join([_tool("supervisorctl"), *(["-c", str(conf)] if has_ctl else
                                                 ["-s", f"unix://{supervisor.sock_path(app.home)}"])])
    steps: list[tuple[str, str]] = [
        ("start it: one supervisord per app reads this file and starts every program (appcoup's polls every "
         f"{supervisor.TICK:g} s; a stock one within 1 s). app.down() removes the file: copy it to keep it",
         shlex.join([_tool("supervisord"), "-c", str(conf)]) + " &"),
        ("what runs (get)", f"{ctl} status"),
    ]
    pid = app.meta.get("supervisord")
    if pid:
        steps.append(("the process tree (supervisord's session: each program and its children)",
                      f"ps -o pid,ppid,args --forest -s {int(pid)}"))
    for c in app.scenario.containers:
        steps.append((f"what {c.name} printed (logs)", f"{ctl} tail {c.name}"))
    steps.append(("what supervisord did: spawns, exits, restarts (events)", f"tail -n 30 {app.home / 'supervisord.log'}"))
    steps.append(("restart one program, as a crash would", f"{ctl} restart {app.scenario.containers[-1].name}"))
    for name, argv, directory, env in programs(app):
        steps.append((f"a command 'in' {name}: its directory and its environment (that is all a local container is)",
                      f"(cd {shlex.quote(directory)} && env {' '.join(shlex.quote(f'{k}={v}') for k, v in env.items())}"
                      " ls -l)"))
    by_hand = programs(app)
    steps.append(("or, without supervisord (after app.down()): the directories, then each program by hand; "
                  "nothing restarts them", "mkdir -p " + " ".join(sorted({shlex.quote(d) for _, _, d, _ in by_hand}))))
    for name, argv, directory, env in by_hand:
        steps.append((f"{name}, in the background", f"(cd {shlex.quote(directory)} && exec env "
                      f"{' '.join(shlex.quote(f'{k}={v}') for k, v in env.items())} {shlex.join(argv)}) &"))
    steps.append(("stop it all, as app.down() does", f"{ctl} shutdown"))
    return Commands(steps)


__all__ = ["commands", "process_tree", "programs", "spec"]

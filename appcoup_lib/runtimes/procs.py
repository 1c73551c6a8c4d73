"""Process listings and kills inside containers whose images have no ``ps`` or ``pkill`` (busybox, slim).

Shared by the runtimes that exec into containers (docker, kubernetes): the scripts read ``/proc``
with nothing but a POSIX shell, and leave out the shell that runs them.
"""

from __future__ import annotations

from typing import Any

# `ps`: "pid ppid command" per process, from /proc, leaving out this probe and its children.
PS = (
    'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; '
    '[ -r "$d/stat" ] || continue; s=$(cat "$d/stat" 2>/dev/null) || continue; s=${s##*) }; '
    'set -- $s; [ "$2" = "$$" ] && continue; '
    'c=$(tr "\\0" " " 2>/dev/null < "$d/cmdline"); echo "$p $2 ${c:-[$p]}"; done'
)

# `pkill -9 -f /app/$SCRIPT`: prints each PID before killing it (killing a container's main program
# may take this shell with it). Prefix with SCRIPT=<file name> (and SIG=STOP, CONT ... for another
# signal than KILL); ...
PKILL = (
    'for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = "$$" ] && continue; '
    'case "$(tr "\\0" " " 2>/dev/null < "$d/cmdline")" in *"/app/$SCRIPT"*) '
    'echo "$p"; kill -"${SIG:-9}" "$p";; esac; done'
)

# The file each program runs from (what PKILL matches).
SCRIPTS = {"echo": "echo.py", "generator": "generator.sh", "adapter": "adapter.py"}


def parse_ps(output: str) -> list[tuple[int, int, str]]:
    """(pid, ppid, command) rows of :data:`PS` output, by pid."""
    rows = []
    for ln in output.splitlines():
        parts = ln.strip().split(" ", 2)
        if len(parts) >= 2 and parts[0].isdigit() and parts[1].isdigit():
            rows.append((int(parts[0]), int(parts[1]), (parts[2] if len(parts) > 2 else "").strip()))
    return sorted(rows)


def pkill(program: str, signal: str = "9") -> str:
    """The shell command that SIGKILLs ``program`` (by its script's path) and prints the PIDs.

    ``signal``: another signal by name or number (``"STOP"``, ``"CONT"``).
    """
    return f"SCRIPT={SCRIPTS[program]}; SIG={signal}; {PKILL}"


def owners(procs: list[tuple[int, int, str]], containers: tuple[Any, ...]) -> dict[int, str]:
    """pid -> container: each top process (parent outside the pod) by the program it runs; children follow."""
    if len(containers) == 1:
        return {pid: containers[0].name for pid, _, cmd in procs if cmd != "/pause"}
    by_pid = {pid: (ppid, cmd) for pid, ppid, cmd in procs}
    owner: dict[int, str] = {}

    def find(pid: int, depth: int = 0) -> str | None:
        if pid in owner or depth > 50:
            return owner.get(pid)
        ppid, cmd = by_pid.get(pid, (0, ""))
        if ppid not in by_pid:  # a top process of some container
            hit = next((c.name for c in containers if c.command and c.command[-1] in cmd), None)
        else:
            hit = find(ppid, depth + 1)
        if hit:
            owner[pid] = hit
        return hit

    for pid in by_pid:
        find(pid)
    return owner

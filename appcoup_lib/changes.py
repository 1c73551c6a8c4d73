"""The one-line change the rebuild and rollout lessons make to a program, in a copy of ``images/``.

A real edit a developer would make (a log line), unique to each call so that building it is a
real build: the cache has never seen the layer.
"""

from __future__ import annotations

import time
from pathlib import Path


# -- changing a program (the lessons' and rollouts' one-line change) -----------------------------
# One line per program: (file in images/, the line's start, its replacement).
CHANGES: dict[str, tuple[str, str, str]] = {
    "echo": ("echo/echo.py", 'print(f"echo: listening', 'print(f"echo (changed): listening'),
    "generator": ("generator/generator.sh", "# generator: append", "# generator (changed): append"),
    "adapter": ("adapter/adapter.py", 'print(f"adapter: serving', 'print(f"adapter (changed): serving'),
}


def change_one_line(context: Path, program: str, *, mark: str | None = None) -> Path:
    """Change one line of ``program``'s file in the copy of ``images/`` at ``context``; return the file.

    The changed line carries ``mark`` (default: unique to this call), so a rebuild of it is a real
    rebuild: the build cache has never seen this layer, as after a developer's own edit.
    """
    rel, old, new = CHANGES[program]
    mark = mark if mark is not None else f"{time.time_ns():x}"
    new = new.replace("(changed)", f"(changed {mark})")
    path = context / rel
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith(old):
            lines[i] = line.replace(old, new, 1)
            break
    else:  # the file changed since this lesson was written: a comment line is a change too
        lines.append(f"# changed for the rebuild lesson ({mark})\n" if rel.endswith((".sh", ".py")) else "\n")
    path.write_text("".join(lines))
    return path


__all__ = ["CHANGES", "change_one_line"]

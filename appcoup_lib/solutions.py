"""``%%solution``: a solution cell that runs only when the learner (or a test) asks.

A learner's "Run All" must neither reveal an answer nor overwrite one, so a solution cell starts
with the line ``%%solution``: its body runs only with ``%%solution --run``, after
``ac.exercises.reveal()`` (for every solution of this kernel), or with ``APPCOUP_RUN_SOLUTIONS=1``
(the papermill tests and ``appcoup course``, the teacher's dry run); otherwise the cell prints
:data:`FOLDED`. The magic is registered when :mod:`appcoup_lib` is imported in IPython
(``%load_ext appcoup_lib.solutions`` does it too). Outside IPython (the py:percent twin run as a
script) the line is a comment and the body simply runs.
"""

from __future__ import annotations

import ast
import linecache
import os
import sys
from typing import Any

from .errors import InvalidInput

RUN_SOLUTIONS_ENV = "APPCOUP_RUN_SOLUTIONS"
MAGIC_LINE = "%%solution"
FOLDED = ("solution folded: run `%%solution --run` in this cell (or `ac.exercises.reveal()` once, "
          "for every solution) to see it work")

_REVEALED = False


def reveal(on: bool = True) -> str:
    """From now on (in this kernel), ``%%solution`` cells run when you run them; ``reveal(False)`` folds them again."""
    global _REVEALED
    _REVEALED = bool(on)
    return ("solutions run from now on: run a solution cell to see it work" if on
            else "solutions are folded again: they print one line instead of running")


def solutions_run() -> bool:
    """Whether ``%%solution`` cells run: after :func:`reveal`, or with ``APPCOUP_RUN_SOLUTIONS=1`` (the tests)."""
    return _REVEALED or os.environ.get(RUN_SOLUTIONS_ENV, "") == "1"


def solution_magic(line: str, cell: str) -> Any:
    """``%%solution [--run]``: the cell's body runs only with ``--run``, after ``reveal()`` or with
    ``APPCOUP_RUN_SOLUTIONS=1``; otherwise it prints one line. Its last expression is the cell's result."""
    args = line.split()
    if any(a != "--run" for a in args):
        raise InvalidInput(f"%%solution takes only --run, not {line.strip()!r}.",
                           fix="write `%%solution --run` on the cell's first line, or `%%solution`")
    if "--run" not in args and not solutions_run():
        print(FOLDED)
        return None
    from IPython import get_ipython

    shell = get_ipython()
    code = shell.transform_cell(cell) if shell is not None else cell
    name = f"<solution {abs(hash(code)):x}>"
    linecache.cache[name] = (len(code), None, code.splitlines(True), name)  # tracebacks quote the line
    tree = ast.parse(code, name)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    ns = shell.user_ns if shell is not None else {}
    exec(compile(tree, name, "exec"), ns)  # noqa: S102 - the notebook's own cell, run as it would run
    if last is None:
        return None
    return eval(compile(ast.Expression(last.value), name, "eval"), ns)  # noqa: S307 - as above


def load_ipython_extension(shell: Any) -> None:
    """``%load_ext appcoup_lib.solutions``: register ``%%solution`` (importing appcoup_lib does it too)."""
    shell.register_magic_function(solution_magic, magic_kind="cell", magic_name="solution")


def register_magic() -> None:
    """Register ``%%solution`` in the running IPython, if any (importing IPython only when it runs)."""
    ipython = sys.modules.get("IPython")  # not imported: not in IPython, nothing to register
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is not None:
        load_ipython_extension(shell)


__all__ = ["FOLDED", "MAGIC_LINE", "RUN_SOLUTIONS_ENV", "load_ipython_extension", "register_magic", "reveal",
           "solution_magic", "solutions_run"]

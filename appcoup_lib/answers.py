"""The teacher's answer key, built from the notebooks' solution cells (never typed twice).

Each exercise in ``notebooks/NN-*.ipynb`` is a markdown prompt, a ``predict("NN.k", ...)`` cell, the
experiment, a check cell (``check_<something>(observed)``) and a solution cell tagged ``solution``.
The key lists, per solution cell: the notebook's title, the prompt, the check's name (with its
docstring and the explanation it gives for a right answer, read from :mod:`appcoup_lib.exercises`)
and the solution's code exactly as the notebook holds it, without its ``%%solution`` line.
``appcoup answers`` / ``make answers`` write it.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from .errors import AppcoupError, NotFound
from .paths import notebooks_dir

SOLUTION_TAG = "solution"
NOTEBOOK_GLOB = "[0-9][0-9]-*.ipynb"
_CHECK_CALL = re.compile(r"\b(check_\w+)\s*\(")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


@dataclass(frozen=True)
class Exercise:
    """One solution cell, with the prompt and check it answers."""

    number: str        # "03.1": the notebook's number, then the exercise's place in it
    heading: str       # the prompt's last heading ("Try it: kill the generator in a pod")
    prompt: str        # the prompt's text under that heading (markdown)
    check: str         # the check function's name ("" when the cells name none)
    solution: str      # the solution cell's source, as in the notebook (without its %%solution line)


@dataclass(frozen=True)
class Notebook:
    """One notebook of the course: its title, its ``**Time:**`` line and its exercises."""

    path: Path
    title: str
    time: str
    exercises: list[Exercise] = field(default_factory=list)


def _notebook_files(notebooks: str | Path | None) -> list[Path]:
    try:
        folder = notebooks_dir() if notebooks is None else Path(notebooks)
    except FileNotFoundError as e:
        raise NotFound("The course's notebooks/ directory is missing.", why=str(e),
                       fix="run from a checkout of the course, or pass the notebooks' directory") from None
    if not folder.is_dir():
        raise NotFound(f"{folder} is not a directory of notebooks.",
                       fix="pass the course's notebooks/ directory (it holds 00-setup.ipynb ...)")
    return sorted(folder.glob(NOTEBOOK_GLOB))


def _read(path: Path) -> list[dict]:
    import nbformat

    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as e:  # noqa: BLE001 - any unreadable notebook gets one clear message
        raise AppcoupError(f"Cannot read the notebook {path.name}.", why=f"{type(e).__name__}: {e}",
                           fix="open it in JupyterLab (or run `make notebooks`) and save it again") from None
    return [{"type": c.cell_type, "source": c.source, "tags": list(c.get("metadata", {}).get("tags", []))}
            for c in nb.cells]


def _headings(markdown: str) -> list[tuple[int, str]]:
    """(line index, text) of each heading outside code fences."""
    out, fenced = [], False
    for i, line in enumerate(markdown.splitlines()):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            out.append((i, m.group(2)))
    return out


def _prompt(markdown: str) -> tuple[str, str]:
    """(heading, text): the part of a markdown cell from its last heading on."""
    lines = markdown.splitlines()
    heads = _headings(markdown)
    if not heads:
        return "", markdown.strip()
    at, heading = heads[-1]
    return heading, "\n".join(lines[at + 1:]).strip()


def _title(cells: list[dict], fallback: str) -> tuple[str, str]:
    """(title, time) from the first markdown cell: its first heading and its ``**Time:**`` line."""
    first = next((c["source"] for c in cells if c["type"] == "markdown"), "")
    heads = _headings(first)
    time = next((ln.split("**Time:**", 1)[1].strip().rstrip(".") for ln in first.splitlines() if "**Time:**" in ln), "")
    return (heads[0][1] if heads else fallback), time


def solution_code(source: str) -> str:
    """A solution cell's code without its ``%%solution`` line (the magic that folds it)."""
    first, _, rest = source.partition("\n")
    return rest if first.split()[:1] == ["%%solution"] else source


def _exercises(cells: list[dict], prefix: str) -> list[Exercise]:
    out = []
    for i, cell in enumerate(cells):
        if SOLUTION_TAG not in cell["tags"]:
            continue
        before = cells[:i]
        check_cell = next((c["source"] for c in reversed(before)
                           if c["type"] == "code" and _CHECK_CALL.search(c["source"])), "")
        prompt_cell = next((c["source"] for c in reversed(before) if c["type"] == "markdown"), "")
        calls = _CHECK_CALL.findall(check_cell) or _CHECK_CALL.findall(cell["source"])
        heading, prompt = _prompt(prompt_cell)
        out.append(Exercise(f"{prefix}.{len(out) + 1}", heading, prompt, calls[-1] if calls else "",
                            solution_code(cell["source"])))
    return out


def read_notebooks(notebooks: str | Path | None = None) -> list[Notebook]:
    """Every notebook of the course (``notebooks/`` by default) with its exercises."""
    out = []
    for path in _notebook_files(notebooks):
        cells = _read(path)
        title, time = _title(cells, path.stem)
        out.append(Notebook(path, title, time, _exercises(cells, path.name[:2])))
    return out


def _text(node: ast.expr) -> str:
    """A string literal's text; an f-string's with its holes as "…"."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "…" for v in node.values)
    return ""


def explain(check: str) -> tuple[str, str, str]:
    """(question, why the right answer is right, hint for a wrong one) of ``exercises.<check>``.

    The question is the check's docstring; why and hint are the texts it passes to ``verdict``.
    Empty strings where the check is unknown or says nothing.
    """
    from . import exercises

    fn = getattr(exercises, check, None) if check.startswith("check_") else None
    if not callable(fn):
        return "", "", ""
    doc = re.sub(r"^\d\d:\s*", "", " ".join((inspect.getdoc(fn) or "").split()))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return doc, "", ""
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "verdict"
                and len(node.args) >= 4 and (why := _text(node.args[2]))):
            return doc, why, _text(node.args[3])
    return doc, "", ""


def _quote(markdown: str) -> str:
    return "\n".join(f"> {ln}".rstrip() for ln in markdown.splitlines())


def _code(source: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", source)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}python\n{source}\n{fence}"


def _entry(nb: Notebook, ex: Exercise) -> str:
    parts = [f"### Exercise {ex.number}: {ex.heading or 'exercise'}", ""]
    if ex.prompt:
        parts += [_quote(ex.prompt), ""]
    if ex.check:
        doc, why, hint = explain(ex.check)
        parts.append(f"**Check:** `{ex.check}`" + (f": {doc}" if doc else ""))
        if why:
            parts += ["", f"**Right, because** (what the check says): {why.rstrip('.')}."]
        if hint:
            parts += ["", f"**Not quite? The check's hint:** {hint.rstrip('.')}."]
    else:
        parts.append("**Check:** none named in the check cell")
    parts += ["", f"**Solution** (the folded cell under the check in `{nb.path.name}`):", "", _code(ex.solution)]
    return "\n".join(parts)


def answer_key(notebooks: str | Path | None = None) -> str:
    """The answer key as Markdown: one entry per solution cell, in the course's order."""
    nbs = read_notebooks(notebooks)
    total = sum(len(nb.exercises) for nb in nbs)
    about = ("Generated by `appcoup answers` (`make answers`) from the cells tagged `solution` in the "
             "notebooks: do not edit it, run it again after a notebook changes. Solutions run on the "
             "learner's runtime, so what they print (restarts, numbers, timings) depends on it.")
    count = (f"{total} exercise{'s' if total != 1 else ''} in "
             f"{len(nbs)} notebook{'s' if len(nbs) != 1 else ''}.")
    out = ["# Answer key", "", about, "", count, "",
           "| notebook | time (its `**Time:**` line) | exercises |", "|---|---|---|"]
    out += [f"| {nb.title} | {nb.time or '—'} | {len(nb.exercises)} |" for nb in nbs]
    for nb in nbs:
        if not nb.exercises:
            continue
        out += ["", f"## {nb.title}", "", f"`{nb.path.parent.name}/{nb.path.name}`"
                + (f" · **Time:** {nb.time}" if nb.time else "")]
        for ex in nb.exercises:
            out += ["", _entry(nb, ex)]
    return "\n".join(out) + "\n"


__all__ = ["Exercise", "Notebook", "answer_key", "explain", "read_notebooks", "solution_code"]

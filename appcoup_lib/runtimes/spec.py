"""What an app really is, as text a learner reads: :class:`Spec` (``app.spec()``) and :class:`Commands`
(``app.commands()``), shared by the three runtimes.

Each runtime builds them in its own ``spec.py`` from what it really did for one app (the objects it
applied, the containers as the engine reports them, the supervisord config it wrote); this module
holds only the two types, how they render (Markdown fenced code blocks with a language, which
JupyterLab and Notebook 7 highlight; plain text elsewhere), and what the docker and kubernetes
runtimes both show of an image: its Dockerfile as built and the ``docker build`` line.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple, overload

from .. import images
from ..paths import images_dir


class Part(NamedTuple):
    """One block of a spec: a title, the language it is written in, the text."""

    title: str
    language: str  # "yaml" | "dockerfile" | "ini" | "sh" | "text"
    text: str


def fence(language: str, text: str) -> str:
    """``text`` as a Markdown fenced code block in ``language`` (a longer fence when it holds backticks)."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    mark = "`" * max(3, longest + 1)
    return f"{mark}{language}\n{text.rstrip()}\n{mark}"


class Spec:
    """What a runtime applied for one app, as it applied it (``app.spec()``).

    ``text`` is all of it; ``parts`` the blocks it is made of (``(title, language, text)``): a YAML
    document stream per cluster on kubernetes, the Dockerfiles and the container settings on docker,
    the supervisord config and the process tree on local. In a notebook it renders as highlighted code.
    """

    def __init__(self, app: str, runtime: str, parts: Sequence[Part | tuple[str, str, str]]) -> None:
        self.app, self.runtime = app, runtime
        self.parts: list[Part] = [Part(*p) for p in parts]

    @property
    def language(self) -> str:
        """The language of the first part (the main one): ``yaml``, ``dockerfile`` or ``ini``."""
        return self.parts[0].language if self.parts else "text"

    @property
    def text(self) -> str:
        """Every part's text, one after the other (on kubernetes: one YAML stream per cluster, ``---`` between)."""
        sep = "\n---\n" if self.parts and all(p.language == "yaml" for p in self.parts) else "\n\n"
        return sep.join(p.text.rstrip() for p in self.parts) + "\n"

    def part(self, title: str) -> Part:
        """The part whose title starts with ``title``."""
        for p in self.parts:
            if p.title.startswith(title):
                return p
        raise KeyError(f"no part {title!r} (there are: {', '.join(p.title for p in self.parts)})")

    def save(self, path: str | Path, *, part: int | None = None) -> Path:
        """Write the text (or one part's, by index) to ``path``, e.g. to ``kubectl apply -f`` it."""
        p = Path(path)
        p.write_text(self.text if part is None else self.parts[part].text.rstrip() + "\n")
        return p

    def __str__(self) -> str:
        return "\n\n".join(f"## {p.title}\n{p.text.rstrip()}" for p in self.parts) + "\n"

    def _repr_markdown_(self) -> str:
        return "\n\n".join(f"**{p.title}**\n\n{fence(p.language, p.text)}" for p in self.parts)

    def __repr__(self) -> str:
        return f"<Spec of {self.app!r} on {self.runtime}: {', '.join(p.title for p in self.parts)}>"


class Commands(Sequence[str]):
    """The commands a learner would type to do by hand what the runtime did (``app.commands()``).

    A sequence of command lines (``cmds[0]``, ``for c in cmds``), each with its purpose in ``steps``;
    copy-pasteable into a POSIX shell, in order.
    """

    def __init__(self, steps: Sequence[tuple[str, str]]) -> None:
        self.steps: list[tuple[str, str]] = [(purpose, command) for purpose, command in steps]

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [c for _, c in self.steps[i]]
        return self.steps[i][1]

    def __len__(self) -> int:
        return len(self.steps)

    def __iter__(self) -> Iterator[str]:
        return iter([c for _, c in self.steps])

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (Commands, list)) else NotImplemented

    def matching(self, word: str) -> list[str]:
        """The commands whose purpose or command line contains ``word``."""
        return [c for p, c in self.steps if word in p or word in c]

    def __str__(self) -> str:
        out: list[str] = []
        for purpose, command in self.steps:
            out += [f"# {line}" for line in purpose.splitlines()] + [command]
        return "\n".join(out) + "\n"

    def _repr_markdown_(self) -> str:
        return fence("sh", str(self))

    def __repr__(self) -> str:
        return f"<Commands: {len(self.steps)} lines>"


# What lists a container's processes by hand: busybox has ``ps``; the python images have no ``ps``, so
# a shell reads /proc (pid and command line of each process).
PS_BY_HAND = ('for p in /proc/[0-9]*; do printf "%s %s\\n" "${p#/proc/}" "$(tr "\\0" " " < $p/cmdline 2>/dev/null)"; '
              'done')


def ps_argv(image: str) -> list[str]:
    """The argv that lists the processes inside a container of the course image ``image`` (a name or a tag)."""
    name = re.sub(r"^(?:.*/)?" + images.REPO + r"/([a-z-]+):.*$", r"\1", image)
    spec = images.SPECS.get(name)
    return ["ps"] if spec is not None and spec.base == "busybox" else ["sh", "-c", PS_BY_HAND]


# -- images: what docker and kubernetes both show ----------------------------------------------------
def built_from(tag: str) -> tuple[str, str, dict[str, str]] | None:
    """How the course image ``tag`` (``appcoup/<name>:<hash>``) was built: (name, base, build args).

    The hash covers the base, so the base is the one (public or offline) whose tag matches; None
    for an image the course does not build (or one built from inputs that have changed since).
    """
    m = re.match(rf"^(?:.*/)?{images.REPO}/([a-z-]+):([0-9a-f]+)$", tag)
    if not m or m.group(1) not in images.SPECS:
        return None
    name = m.group(1)
    spec = images.SPECS[name]
    args = dict(spec.buildargs)
    for base in (images.public_base(spec.base), images.local_base_tag(spec.base)):
        try:
            if images.tag_for(name, base=base) == f"{images.REPO}/{name}:{m.group(2)}":
                return name, base, {**args, "BASE": base}
        except Exception:  # noqa: BLE001, S112 - no engine to ask for the base's id: try the next
            continue
    return None


def dockerfile_part(tag: str) -> Part | None:
    """The Dockerfile of image ``tag`` as it was built: its ``ARG`` defaults replaced by the values used."""
    how = built_from(tag)
    if how is None:
        return None
    name, base, args = how
    spec = images.SPECS[name]
    text = (images_dir() / spec.dockerfile).read_text()

    def arg(m: re.Match[str]) -> str:
        key = m.group(1)
        if key in args and args[key] != m.group(2):
            return f"# built with --build-arg {key}={args[key]} (the file's default: {m.group(2)})\nARG {key}={args[key]}"
        return m.group(0)

    text = re.sub(r"^ARG\s+(\w+)=(\S+)$", arg, text, flags=re.MULTILINE)
    # FROM as the engine resolved it (a Dockerfile has no comment after an instruction: the base alone)
    text = re.sub(r"^FROM\s+\$\{?BASE\}?\s*$", f"FROM {base}", text, flags=re.MULTILINE)
    return Part(f"Dockerfile of {tag} (images/{spec.dockerfile})", "dockerfile", text)


def build_command(tag: str) -> tuple[str, str] | None:
    """(purpose, ``docker build ...``) that makes image ``tag`` again from ``images/``."""
    how = built_from(tag)
    if how is None:
        return None
    name, _, args = how
    ctx = images_dir()
    parts = ["docker", "build", "-t", tag]
    for k, v in sorted(args.items()):
        parts += ["--build-arg", f"{k}={v}"]
    parts += ["-f", str(ctx / images.SPECS[name].dockerfile), str(ctx)]
    return f"build the {name} image (appcoup built it as {tag})", shlex.join(parts)


__all__ = ["Commands", "Part", "Spec", "PS_BY_HAND", "build_command", "built_from", "dockerfile_part", "fence",
           "ps_argv"]

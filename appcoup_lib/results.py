"""What the library hands back: a :class:`Table` that prints well, timeline :class:`Event` s, a
:class:`Spread` of answers over replicas, and the parsing of a ``/data`` body.

Plain data at the bottom of the library: the runtimes, the lessons and the CLI all return these.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Event:
    """One line of an app's timeline: what the runtime did, and when (epoch seconds)."""

    time: float
    container: str
    kind: str  # started | exited | restarted | killed | probe-failed | stopped ...
    detail: str = ""

    def __str__(self) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(self.time)) + f".{int(self.time * 1000) % 1000:03d}"
        return f"{stamp}  {self.container:<10} {self.kind:<12} {self.detail}"


class Table(list):
    """A list of dict rows that prints as an aligned table (and as HTML in a notebook)."""

    def __init__(self, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        super().__init__(rows)
        self.columns = columns or (list(rows[0]) if rows else [])

    def __str__(self) -> str:
        if not self:
            return "(nothing)"
        cells = [[str(r.get(c, "")) for c in self.columns] for r in self]
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(self.columns)]
        line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
        return "\n".join([line(self.columns), *(line(r) for r in cells)])

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td style='text-align:left'><code>{html.escape(str(r.get(c, '')))}</code></td>"
                             for c in self.columns) + "</tr>"
            for r in self
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def parse_numbers(body: str) -> list[int]:
    """The numbers in a /data body, one a line (a half-written last line is skipped)."""
    out = []
    for line in body.splitlines():
        line = line.strip()
        if line.isdigit():
            out.append(int(line))
    return out


@dataclass
class Spread:
    """Which replica answered each request, and what each one served."""

    served: dict[str, list[list[int]]] = field(default_factory=dict)  # replica -> bodies, oldest first
    failed: int = 0

    @property
    def replicas(self) -> list[str]:
        return sorted(self.served)

    @property
    def same_numbers(self) -> bool:
        """Every body any replica served is the start of the longest one: one shared list of numbers."""
        bodies = [b for bs in self.served.values() for b in bs]
        if not bodies:
            return False
        longest = max(bodies, key=len)
        return all(longest[: len(b)] == b for b in bodies)

    def table(self) -> Table:
        return Table([{"replica": r, "requests": len(bs), "numbers served": len(bs[-1]),
                       "first three": " ".join(map(str, bs[-1][:3]))} for r, bs in sorted(self.served.items())])

    def plot(self, ax: Any = None, title: str = "") -> Any:
        """The first numbers each replica served: one line per replica (they overlap when shared)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(7, 3))
        for i, (r, bs) in enumerate(sorted(self.served.items())):
            nums = bs[-1][:12]
            ax.plot(range(1, len(nums) + 1), nums, marker="o", linewidth=3 - i * 0.7, alpha=0.8, label=r)
        ax.set_xlabel("position in /data")
        ax.set_ylabel("number")
        ax.set_title(title or ("every replica serves the same numbers" if self.same_numbers
                               else "each replica serves its own numbers"))
        ax.legend(fontsize=8)
        return ax


__all__ = ["Event", "Spread", "Table", "parse_numbers"]

"""What runs here, and how to clean up after everything."""

from __future__ import annotations

from .errors import RuntimeUnavailable
from .runtimes import Availability, availability, names, runtime_class


class Report(list):
    """The doctor's findings: one :class:`Availability` per runtime; prints as a short report."""

    @property
    def usable(self) -> list[str]:
        return [a.runtime for a in self if a.ok]

    def __str__(self) -> str:
        lines = ["appcoup runtimes on this machine:", *(f"  {a}" for a in self)]
        best = next((r for r in ("kubernetes", "docker", "local") if r in self.usable), "local")
        lines.append(f"runtime('auto') picks: {best}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        rows = "".join(
            f"<tr><td style='text-align:left'><code>{html.escape(a.runtime)}</code></td>"
            f"<td style='text-align:left;color:{'#2e7d32' if a.ok else '#b3261e'}'>"
            f"{'usable' if a.ok else 'not usable'}</td>"
            f"<td style='text-align:left'>{html.escape(a.detail)}</td>"
            f"<td style='text-align:left'>{html.escape(a.fix)}</td></tr>"
            for a in self)
        best = next((r for r in ("kubernetes", "docker", "local") if r in self.usable), "local")
        return (f"<table class='appcoup-doctor'><thead><tr><th style='text-align:left'>runtime</th>"
                f"<th style='text-align:left'>here</th>"
                f"<th style='text-align:left'>detail</th><th style='text-align:left'>to make it usable</th>"
                f"</tr></thead><tbody>{rows}</tbody></table>"
                f"<p><code>runtime('auto')</code> picks: <b>{html.escape(best)}</b></p>")


def doctor() -> Report:
    """Which runtimes are usable here; for each that is not, the one step that fixes it."""
    return Report(availability(n) for n in names())


def clean(*, all_learners: bool = False, runtime: str | None = None) -> list[str]:
    """Remove what this learner started, on every runtime that answers; return what went.

    A classroom shares one engine or cluster: by default only this learner's things go
    (``appcoup.learner`` label, this state directory). ``all_learners=True`` is the teacher's
    "everything of everyone". ``runtime`` limits it to one runtime.
    """
    removed: list[str] = []
    for n in names() if runtime in (None, "auto") else [runtime]:
        try:
            cls = runtime_class(n)
        except RuntimeUnavailable:
            continue
        if n != "local":
            av = cls.availability()
            if not av.ok:
                if runtime not in (None, "auto"):
                    raise RuntimeUnavailable(f"Cannot clean up on {n}: {av.detail}.",
                                             fix=f"{av.fix}; then run `appcoup clean --runtime {n}` again")
                if "does not exist" not in av.detail and "not installed" not in av.detail:
                    # It is there but does not answer: say that its leftovers stay for now.
                    removed.append(f"{n}: not reachable ({av.detail}); run `appcoup clean --runtime {n}` "
                                   "once it answers")
                continue
        done = cls.clean(all_learners=True) if all_learners else cls.clean()
        removed += [f"{n}: {r}" for r in done]
    return removed


def running() -> list[dict[str, str]]:
    """What appcoup runs now, on every runtime that answers."""
    from .runtimes import runtime as get_runtime

    rows: list[dict[str, str]] = []
    for r in doctor():
        if r.ok:
            try:
                rows += get_runtime(r.runtime).running()
            except Exception:  # noqa: BLE001 - a runtime that fails to list is reported by doctor
                continue
    return rows

__all__ = ["Availability", "Report", "clean", "doctor", "running"]

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

        return f"<pre>{html.escape(str(self))}</pre>"


def doctor() -> Report:
    """Which runtimes are usable here; for each that is not, the one step that fixes it."""
    return Report(availability(n) for n in names())


def clean() -> list[str]:
    """Remove everything appcoup started, on every runtime that answers; return what went."""
    removed: list[str] = []
    for n in names():
        try:
            cls = runtime_class(n)
        except RuntimeUnavailable:
            continue
        if n != "local" and not cls.availability().ok:
            continue
        removed += [f"{n}: {r}" for r in cls.clean()]
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

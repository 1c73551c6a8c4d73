"""The local runtime's timeline: supervisord's log of spawns and exits, beside appcoup's own journal.

supervisord logs every spawn and exit of a program; what appcoup did itself (a kill, an up, a
scale) goes to ``events.jsonl`` (see :func:`~appcoup_lib.runtimes.base.record_event`), since a log
line cannot tell a crash appcoup caused from any other.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from ..base import Event, record_event, recorded_events

_LOG_LINE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ "
    r"(?:(?P<spawn>spawned): '(?P<sp>[\w-]+)' with pid (?P<pid>\d+)"
    r"|(?P<kind>exited|stopped|gave up): (?P<name>[\w-]+) \((?P<detail>.*)\))"
)


class Timeline:
    """What happened to the app whose state directory is ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home

    def record(self, container: str, kind: str, detail: str = "") -> None:
        """Put what appcoup did on the timeline (before doing it: the effect never comes first)."""
        record_event(self.home / "events.jsonl", container, kind, detail)

    def events(self) -> list[Event]:
        """Everything, oldest first."""
        recorded = recorded_events(self.home / "events.jsonl")
        return sorted(recorded + self.supervisor_events(), key=lambda e: e.time)

    def supervisor_events(self) -> list[Event]:
        """What supervisord logged: started / restarted (by spawn count), exited, stopped, gave-up."""
        events: list[Event] = []
        seen: dict[str, int] = {}
        try:
            lines = (self.home / "supervisord.log").read_text().splitlines()
        except FileNotFoundError:
            return events
        for line in lines:
            m = _LOG_LINE.match(line)
            if not m:
                continue
            t = datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            if m["spawn"]:
                n = seen[m["sp"]] = seen.get(m["sp"], 0) + 1
                events.append(Event(t, m["sp"], "started" if n == 1 else "restarted", f"pid {m['pid']}"))
            else:
                detail = m["detail"]
                if m["kind"] == "exited" and "not expected" in detail:
                    why = self.last_words(m["name"])
                    detail += f": {why}" if why else ""
                events.append(Event(t, m["name"], m["kind"].replace(" ", "-"), detail))
        return events

    def spawn_counts(self) -> dict[str, int]:
        """How often supervisord has spawned each program (restarts + 1)."""
        counts: dict[str, int] = {}
        for e in self.supervisor_events():
            if e.kind in ("started", "restarted"):
                counts[e.container] = counts.get(e.container, 0) + 1
        return counts

    def last_words(self, container: str) -> str:
        """The last line a program printed that names it (``generator: cannot write ...``): why it exited."""
        try:
            lines = (self.home / "logs" / f"{container}.log").read_text(errors="replace").splitlines()
        except OSError:
            return ""
        said = [ln.strip() for ln in lines if ln.startswith(f"{container}:")]
        return said[-1][:200] if said else ""


__all__ = ["Timeline"]

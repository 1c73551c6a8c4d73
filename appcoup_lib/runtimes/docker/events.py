"""The docker runtime's timeline: what Docker did to an app's containers, and what appcoup itself did.

Docker's events API says when a container started, died or was killed, but cannot tell a crash
appcoup caused from any other: those are kept beside, in the app's journal (``events.jsonl``,
see :func:`~appcoup_lib.runtimes.base.record_event`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ...labels import APP_LABEL
from ..base import Event, record_event, recorded_events
from .engine import errors, flavour, short_ref
from .objects import state_root

# Exit codes that say nothing more than "it was stopped or killed": no last words to look for.
_QUIET_EXITS = ("0", "137", "143", "?")
_KINDS = {"stop": "stopped", "destroy": "removed", "create": "created", "restart": "restarted"}


def journal(app: str, *, create: bool = True) -> Path:
    """The file of what appcoup did to app ``app``."""
    return state_root(create=create) / app / "events.jsonl"


def record(app: str, container: str, kind: str, detail: str = "") -> None:
    """Keep what appcoup itself did (a kill, a scale) on app ``app``'s timeline."""
    record_event(journal(app), container, kind, detail)


def recorded(app: str, since: float) -> list[Event]:
    """What appcoup did to app ``app`` since ``since`` (not a previous app's of that name)."""
    return [e for e in recorded_events(journal(app, create=False)) if e.time >= since - 0.5]


def timeline(client: Any, app: str, started: float, stderr_tail: Callable[[str], str]) -> list[Event]:
    """What Docker did to app ``app``'s containers since ``started``, with appcoup's own records, oldest first.

    ``stderr_tail(container)`` gives the last lines a container wrote on stderr: why it exited,
    when it said so.
    """
    with errors(f"Cannot read Docker's events for {app!r}"):
        raw = past_events(client, since=int(started) - 1, until=int(time.time()) + 1,
                          filters={"type": "container", "label": f"{APP_LABEL}={app}"})
    engine = flavour(client)
    out: list[Event] = []
    starts: dict[str, int] = {}
    words: dict[str, str] = {}
    for ev in raw:
        action = ev.get("Action") or ev.get("status") or ""
        attrs = (ev.get("Actor") or {}).get("Attributes") or {}
        who = attrs.get("appcoup.container", attrs.get("name", "?"))
        t = ev.get("timeNano", 0) / 1e9 or float(ev.get("time", 0))
        if t < started - 0.5 or who == "killer":  # the helper that delivers a crash is not the app
            continue
        if action == "start":
            starts[who] = starts.get(who, 0) + 1
            out.append(Event(t, who, "started" if starts[who] == 1 else "restarted",
                             short_ref(attrs.get("image", ""))))
        elif action == "die":
            code = attrs.get("exitCode", "?")
            why = ""
            if code not in _QUIET_EXITS:
                if who not in words:
                    words[who] = _last_line(stderr_tail(who))
                why = words[who]
            out.append(Event(t, who, "exited", f"exit code {code}" + (f": {why}" if why else "")))
        elif action == "kill":
            out.append(Event(t, who, "killed", f"signal {attrs.get('signal', '?')}"))
        elif action.startswith("health_status"):
            # Docker: "health_status: healthy"; Podman: "health_status", the status in an attribute.
            out.append(Event(t, who, "health", attrs.get("health_status") or action.split(":", 1)[-1].strip()))
        elif action == "restart" and engine.announces_policy_restarts:
            continue  # the "start" that follows is the restart (counted there, as on Docker)
        elif action in ("restart", "stop", "oom", "create", "destroy"):
            out.append(Event(t, who, _KINDS.get(action, action), ""))
    out.extend(recorded(app, started))
    return sorted(out, key=lambda e: e.time)


def past_events(client: Any, *, since: int, until: int, filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The engine's events between ``since`` and ``until`` (``GET /events``, as ``client.events()``),
    read the way the engine returns them all (:attr:`~.engine.Engine.past_events_without_until`)."""
    import json

    from docker.utils import convert_filters

    api = client.api
    params: dict[str, Any] = {"since": since, "until": until, "filters": convert_filters(filters)}
    if flavour(client).past_events_without_until:
        del params["until"]
        params["stream"] = "false"  # every event up to now, then the answer ends
    res = api.get(f"{api.base_url}/v{api.api_version}/events", params=params, stream=True)
    try:
        res.raise_for_status()
        events = [json.loads(line) for line in res.iter_lines() if line.strip()]
    finally:
        res.close()
    return [e for e in events if (e.get("timeNano", 0) / 1e9 or float(e.get("time", 0))) <= until]


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip()[:200] if lines else ""


__all__ = ["journal", "past_events", "record", "recorded", "timeline"]

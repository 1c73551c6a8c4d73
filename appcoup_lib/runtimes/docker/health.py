"""HEALTHCHECKs that do not run by themselves: the overdue ones run when the status is read.

Docker runs a container's HEALTHCHECK every interval itself. Podman schedules it with a systemd
timer; where no systemd runs (a container, WSL, many CI machines) no check ever runs and the
health stays "starting" (the service logs "unable to get systemd connection to add
healthchecks"). On an engine whose checks may stall (:attr:`~.engine.Engine.health_checks_may_stall`)
the runtime runs a check that is overdue (none for longer than its interval) through libpod's
own endpoint, the same check ``podman healthcheck run`` does: the health then moves as on
Docker, at the pace the status is read (a notebook's dashboard, ``wait_until`` loops).
Where the timers do run, no check is ever overdue and nothing extra runs.
"""

from __future__ import annotations

import time
from typing import Any

from ..clock import rfc3339
from .engine import flavour

DEFAULT_INTERVAL = 30.0  # seconds, Docker's and Podman's default --health-interval
SLACK = 1.0  # a timer that fires a little late is not overdue


def overdue(attrs: dict[str, Any], now: float | None = None) -> bool:
    """Whether the container ``attrs`` (``docker inspect``) has a health check that is overdue."""
    st = attrs.get("State") or {}
    check = (attrs.get("Config") or {}).get("Healthcheck") or {}
    test = check.get("Test") or []
    if not st.get("Running") or not test or test[0] == "NONE":
        return False
    interval = (check.get("Interval") or 0) / 1e9 or DEFAULT_INTERVAL
    log = (st.get("Health") or {}).get("Log") or []
    ends = [rfc3339(e.get("End") or "") or 0.0 for e in log]
    last = max([*ends, rfc3339(st.get("StartedAt") or "") or 0.0])
    return (now or time.time()) - last > interval + SLACK


def run_overdue(client: Any, ctrs: list[Any]) -> None:
    """Run the overdue health checks of ``ctrs`` (where they may stall), then reload those containers.

    A check that cannot run (the container just stopped) is left: the status shows what is there.
    """
    if not ctrs or not flavour(client).health_checks_may_stall:
        return
    api = client.api
    for ctr in ctrs:
        if not overdue(ctr.attrs):
            continue
        res = api.get(f"{api.base_url}/v4.0.0/libpod/containers/{ctr.id}/healthcheck")
        if res.ok:
            ctr.reload()


__all__ = ["overdue", "run_overdue"]

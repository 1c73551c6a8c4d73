"""Loose coupling's verbs, shared by every runtime that has them: scale, rollout, recreate.

A runtime's app mixes :class:`Scaling` in and implements the hooks (``_scale``, ``_replace``,
``_recreate`` ...); this module owns the checks, the measurements and the rolling-update
algorithm, so "0 failed requests" means the same thing on every runtime.

The words are Kubernetes': a *copy* of a unit is what a Deployment calls a replica (a pod); the
*front* is what a Service is, one stable address spreading requests over the copies.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ..errors import InvalidInput, NotFound, NotSupported
from ..paths import images_dir
from ..scenarios import Container, Unit

MAX_REPLICAS = 5  # a laptop's worth: every copy is a real process or container
DRAIN = 0.3  # seconds between taking a copy out of the front and stopping it (in-flight requests end)


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):  # a cut response: not answering
        return False


class _Traffic:
    """The one poller (:class:`~appcoup_lib.measure.Poller`), counting what the learner's URL answered."""

    through = "the app's URL"

    def __init__(self, app: Any, period: float) -> None:
        from ..polling import Poller

        self.poll = Poller(app, every=period)

    def __enter__(self) -> _Traffic:
        self.poll.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.poll.__exit__(*exc)

    @property
    def sent(self) -> int:
        return len(self.poll.samples)

    @property
    def failed(self) -> int:
        return self.poll.failures


class Scaling:
    """Mixin for an :class:`~appcoup_lib.runtimes.base.App`: ``scale``, ``rollout``, ``recreate``."""

    # -- hooks a runtime implements -------------------------------------------------------------
    def _copies(self, unit: Unit) -> int:
        """How many copies of ``unit`` run now."""
        raise NotImplementedError

    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        """Run ``replicas`` copies of ``unit`` behind a front and wait for new ones to answer.

        New copies run ``versions`` (``{container: version}``) where given, else what copy 1 runs;
        copies beyond ``replicas`` leave the front, then stop.
        """
        raise NotImplementedError

    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Make the new version of ``containers`` from ``context``: ``{container: version}``."""
        raise NotImplementedError

    def _has_front(self, unit: Unit) -> bool:
        raise NotImplementedError

    def _replace(self, unit: Unit, copy: int, versions: dict[str, str]) -> None:
        """Replace the containers ``versions`` names in copy ``copy`` of ``unit``, and wait until it answers."""
        raise NotImplementedError

    def _leave_front(self, unit: Unit, copy: int) -> None:
        """Stop sending requests to copy ``copy`` (a readiness probe failing, a Service's endpoint removed)."""
        raise NotImplementedError

    def _join_front(self, unit: Unit, copy: int) -> None:
        raise NotImplementedError

    def _identities(self) -> dict[str, tuple[Any, int]]:
        """``{container: (identity, restarts)}``: identity changes when a container is replaced."""
        raise NotImplementedError

    def _recreate(self, units: list[Unit]) -> None:
        """Delete ``units`` (and their scratch volumes) entirely, then create them again."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------------
    def _unit(self, name: str) -> Unit:
        for u in self.scenario.units:  # type: ignore[attr-defined]
            if u.name == name:
                return u
        raise NotFound(f"Scenario {self.scenario.name!r} has no unit {name!r}.",  # type: ignore[attr-defined]
                       fix=f"use one of: {', '.join(u.name for u in self.scenario.units)}")  # type: ignore[attr-defined]

    def _entry_unit(self) -> Unit:
        return self._unit(self.scenario.unit_of(self.scenario.entry[1]).name)  # type: ignore[attr-defined]

    def replicas(self, unit: str | None = None) -> int:
        """How many copies of ``unit`` (default: the one serving ``/data``) run now."""
        return self._copies(self._unit(unit) if unit else self._entry_unit())

    def scale(self, unit: str, replicas: int, *, timeout: float = 60) -> dict[str, Any]:
        """Run ``replicas`` copies of ``unit``; requests to ``app.url`` spread over all of them.

        Only the unit that serves ``/data`` scales here: it is the one a front (a Service) can
        stand before. Each copy gets its own scratch volumes and shares the persistent ones, as
        replicas of a Kubernetes Deployment do; a copy of a unit holding the generator is
        another generator.

        Returns ``{"unit", "replicas", "seconds", "url"}``.
        """
        self.require("scale")  # type: ignore[attr-defined]
        u = self._unit(unit)
        if u.name != self._entry_unit().name:
            raise NotSupported(
                f"Scaling unit {u.name!r} of {self.scenario.name!r} is not part of this course.",  # type: ignore[attr-defined]
                why=f"only the unit that serves /data ({self._entry_unit().name!r}) has a front to spread "
                    "requests over its copies; more copies of another unit would have no one to answer to",
                fix=f"scale {self._entry_unit().name!r}")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
            raise InvalidInput(f"{replicas!r} is not a number of replicas here.",
                               why=f"every copy is a real process or container: 1 to {MAX_REPLICAS}",
                               fix="pass replicas=3")
        t0 = time.monotonic()
        self._scale(u, replicas)
        self.wait_until(lambda: answers(self.url + "/data"), timeout, "the front to answer")  # type: ignore[attr-defined]
        self._note(u.name, "scaled", f"{replicas} replica(s) behind {self.url}")  # type: ignore[attr-defined]
        return {"unit": u.name, "replicas": replicas, "seconds": round(time.monotonic() - t0, 3), "url": self.url}  # type: ignore[attr-defined]

    def rollout(self, program: str = "echo", *, context: str | Path | None = None, period: float = 0.02,
                settle: float = 0.3, progress: bool | None = None) -> dict[str, Any]:
        """Roll a changed ``program`` out to the containers that run it, measuring what a user sees.

        Without ``context``, one line of ``program`` is changed in a copy of ``images/`` (as
        :func:`appcoup_lib.lessons.change_one_line` does). With a front (after ``scale``), copies are
        updated one at a time behind it, with one extra copy of the new version first (a rolling
        update with surge 1, as a Deployment does); without one, the containers are stopped and
        started again with the new version (what ``docker rm`` + ``docker run`` does).

        Meanwhile ``/data`` is requested every ``period`` s through ``app.url``.

        Returns ``strategy``, ``requests``, ``failed_requests``, ``seconds`` (the whole rollout),
        ``build_seconds`` (making the new version: building images, or nothing to build),
        ``replaced`` and ``untouched`` (containers), ``restarts`` (per container, during the
        rollout) and ``generator_restarts``.
        """
        from ..lessons import change_one_line

        self.require("rollout")  # type: ignore[attr-defined]
        sc = self.scenario  # type: ignore[attr-defined]
        targets = [c for c in sc.containers if program in c.runs]
        if not targets:
            valid = sorted({p for c in sc.containers for p in c.runs})
            raise NotFound(f"No container of {sc.name!r} runs {program!r}.", fix=f"use one of: {', '.join(valid)}")
        unit = sc.unit_of(targets[0].name)
        tmp = None
        if context is None:
            tmp = Path(tempfile.mkdtemp(prefix="appcoup-rollout-"))
            context = tmp / "images"
            shutil.copytree(images_dir(), context)
            change_one_line(context, program)
        try:
            t_build = time.monotonic()
            versions = self._prepare(targets, Path(context))
            build = time.monotonic() - t_build
        finally:
            if tmp is not None:
                shutil.rmtree(tmp, ignore_errors=True)
        before = self._identities()
        copies = self._copies(unit)
        with self._traffic(unit, period) as traffic:
            t0 = time.monotonic()
            strategy = self._roll_out(unit, versions, copies)
            seconds = time.monotonic() - t0
            time.sleep(settle)  # requests right after the rollout count too
        after = self._identities()
        restarts = {}
        for name, (ident, n) in before.items():
            new_ident, m = after.get(name, (None, n))
            restarts[name] = max(m - n, 0 if new_ident == ident else 1)
        generator = next((c.name for c in sc.containers if "generator" in c.runs), None)
        sent, failed = traffic.sent, traffic.failed
        self._note(unit.name, "rolled-out",  # type: ignore[attr-defined]
                     f"{program}: {failed}/{sent} requests failed, {strategy}")
        return {
            "program": program, "unit": unit.name, "replicas": copies, "strategy": strategy,
            "requests": sent, "failed_requests": failed, "requests_through": traffic.through,
            "seconds": round(seconds, 3), "build_seconds": round(build, 3),
            "replaced": sorted(n for n in before if after.get(n, (None,))[0] != before[n][0]),
            "untouched": sorted(n for n in before if after.get(n) == before[n]),
            "restarts": restarts,
            "generator_restarts": restarts.get(generator, 0) if generator else 0,
        }

    def _note(self, who: str, kind: str, detail: str) -> None:
        """Put what was done on the app's timeline (``app.events()``)."""
        self._record(who, kind, detail)  # type: ignore[attr-defined]

    def _roll_out(self, unit: Unit, versions: dict[str, str], copies: int) -> str:
        """Replace the old version by ``versions`` in every copy of ``unit``; return the strategy's name."""
        if not self._has_front(unit):
            self._replace(unit, 1, versions)  # nothing in front: stop and start again
            return "recreate"
        # Surge: one extra copy of the new version joins first, so capacity never drops.
        self._scale(unit, copies + 1, versions=versions)
        for k in range(1, copies + 1):
            self._leave_front(unit, k)
            time.sleep(DRAIN)
            self._replace(unit, k, versions)
            self._join_front(unit, k)
        self._scale(unit, copies)
        return "rolling"

    def _traffic(self, unit: Unit, period: float) -> Any:
        """What counts the requests during a rollout: GET /data at ``app.url``, every ``period`` s."""
        return _Traffic(self, period)

    def recreate(self, *units: str) -> dict[str, Any]:
        """Delete ``units`` entirely (containers and scratch volumes), then create them again.

        What ``kubectl delete pod`` does under a Deployment, or ``docker rm -f`` + ``docker run``:
        persistent volumes stay, scratch volumes go with their unit. With no ``units``: all of them.

        Returns ``{"units", "seconds"}`` (until every container runs again; call ``wait_ready``).
        """
        self.require("recreate")  # type: ignore[attr-defined]
        us = [self._unit(u) for u in units] if units else list(self.scenario.units)  # type: ignore[attr-defined]
        t0 = time.monotonic()
        self._recreate(us)
        self._note(",".join(u.name for u in us), "recreated", "deleted and created again")  # type: ignore[attr-defined]
        return {"units": [u.name for u in us], "seconds": round(time.monotonic() - t0, 3)}

    def _scratch_of(self, units: list[Unit]) -> list[str]:
        """Scratch volumes used only by ``units`` (they die with them)."""
        sc = self.scenario  # type: ignore[attr-defined]
        names = {u.name for u in units}
        used_by = {}
        for u in sc.units:
            for c in u.containers:
                if c.volume:
                    used_by.setdefault(c.volume, set()).add(u.name)
        return [v for v, kind in sc.volumes.items() if kind == "scratch" and used_by.get(v, set()) <= names
                and used_by.get(v)]


__all__ = ["MAX_REPLICAS", "Scaling", "answers"]

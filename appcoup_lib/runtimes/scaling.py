"""Loose coupling's verbs, shared by every runtime that has them: scale, rollout, recreate.

A runtime's app subclasses :class:`Scaling` and implements its hooks; this module owns the
checks, the measurements, the scale skeleton (:meth:`Scaling._scale`: add copies, wait until they
answer, join the front, drain, drop) and the rolling-update algorithm, so "0 failed requests" means
the same thing on every runtime.

The words are Kubernetes': a *copy* of a unit is what a Deployment calls a replica (a pod); the
*front* is what a Service is, one stable address spreading requests over the copies.

Hooks, per copy ``k`` of a unit (copy 1 is the one ``up`` started):

- ``_copies(unit)``: how many run now;
- ``_add_copy(unit, k, versions)``: start copy ``k``, outside the front (no request meets it yet);
- ``_copy_answers(unit, k)``: its readiness probe, polled until true;
- ``_join_front(unit, k)`` / ``_leave_front(unit, k)``: into and out of the front's rotation;
- ``_ensure_front(unit)``: a front before the copies (nothing when there is one); ``_has_front(unit)``;
- ``_remove_copy(unit, k)``: stop and remove copy ``k`` (already out of the front, drained);
- ``_prepare``, ``_replace``, ``identities``, ``_recreate``: for ``rollout`` and ``recreate``;
- ``_set_strategy(unit, strategy, copies)``: what a rollout strategy needs first (by default, a
  front before a unit about to roll; a Deployment's ``spec.strategy`` on kubernetes);
- ``_boundary(what)``: where a runtime's engine errors become AppcoupErrors (on every verb here).

``_add_copies`` / ``_wait_copies`` / ``_remove_copies`` take all the copies of one step at once
(the defaults go one by one; a runtime may batch them). A runtime whose platform does the whole
skeleton itself (a Deployment) overrides ``_scale`` instead.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, ClassVar

from ..changes import change_one_line
from ..errors import InvalidInput, NotFound, NotSupported
from ..paths import images_dir
from ..polling import PATIENCE, Poller
from ..scenarios import Container, Unit
from .base import App

MAX_REPLICAS = 5  # a laptop's worth: every copy is a real process or container
DRAIN = 0.3  # seconds between taking a copy out of the front and stopping it (in-flight requests end)


def answers(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
            return r.status == 200
    except (urllib.error.URLError, OSError, http.client.HTTPException):  # a cut response: not answering
        return False


class Traffic:
    """The one poller (:class:`~appcoup_lib.polling.Poller`), counting what the learner's URL answered."""

    through = "the app's URL"

    def __init__(self, app: App, period: float) -> None:
        self.poll = Poller(app, every=period, timeout=PATIENCE)  # slower than a user waits: failed

    def __enter__(self) -> Traffic:  # noqa: PYI034 - typing.Self is 3.11+, and 3.10 is supported
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




class Scaling(App):
    """An :class:`~appcoup_lib.runtimes.base.App` that can ``scale``, ``rollout`` and ``recreate``.

    Abstract: a runtime's app subclasses it and implements the hooks. Being an App, what the verbs
    use of the app (its scenario, ``url``, ``wait_until`` ...) is typed, not assumed.
    """

    #: Seconds a new copy has to answer its readiness probe.
    copy_timeout: ClassVar[float] = 60
    # Put an entry on the app's timeline (``app.events()``); every runtime's app has one.
    _record: Callable[..., None]

    # -- hooks a runtime implements -------------------------------------------------------------
    def _copies(self, unit: Unit) -> int:
        """How many copies of ``unit`` run now."""
        raise NotImplementedError

    def _add_copy(self, unit: Unit, k: int, versions: dict[str, str] | None) -> None:
        """Start copy ``k`` of ``unit`` like copy 1, with ``versions`` (``{container: version}``) where given.

        Outside the front: it joins once it answers.
        """
        raise NotImplementedError

    def _copy_answers(self, unit: Unit, k: int) -> bool:
        """Copy ``k``'s readiness probe: whether it answers now."""
        raise NotImplementedError

    def _remove_copy(self, unit: Unit, k: int) -> None:
        """Stop and remove copy ``k`` of ``unit`` (it has left the front and drained)."""
        raise NotImplementedError

    def _ensure_front(self, unit: Unit) -> None:
        """Put a front before the copies of ``unit`` (it takes over ``app.url``); nothing when there is one."""
        raise NotImplementedError

    def _has_front(self, unit: Unit) -> bool:
        raise NotImplementedError

    def _join_front(self, unit: Unit, copy: int) -> None:
        """Send requests to copy ``copy`` too (a readiness probe passing, a Service's endpoint added)."""
        raise NotImplementedError

    def _leave_front(self, unit: Unit, copy: int) -> None:
        """Stop sending requests to copy ``copy`` (a readiness probe failing, a Service's endpoint removed)."""
        raise NotImplementedError

    def _prepare(self, containers: list[Container], context: Path) -> dict[str, str]:
        """Make the new version of ``containers`` from ``context``: ``{container: version}``."""
        raise NotImplementedError

    def _replace(self, unit: Unit, copy: int, versions: dict[str, str]) -> None:
        """Replace the containers ``versions`` names in copy ``copy`` of ``unit``, and wait until it answers."""
        raise NotImplementedError

    #: The field of :meth:`status` that changes when a container is replaced (a pid, a pod name).
    identity_field: ClassVar[str] = "pid"

    def identities(self) -> dict[str, tuple[Any, int]]:
        """``{container: (identity, restarts)}``: the identity changes when a container is replaced
        (a new process, a new pod, a new container), the restart count when it is restarted in place."""
        return {name: (st.get(self.identity_field), int(st.get("restarts", 0))) for name, st in self.status().items()}

    def _recreate(self, units: list[Unit]) -> None:
        """Delete ``units`` (and their scratch volumes) entirely, then create them again."""
        raise NotImplementedError

    def _boundary(self, what: str) -> AbstractContextManager[None]:
        """Where the runtime's own errors become AppcoupErrors naming ``what`` (none to convert by default)."""
        return contextlib.nullcontext()

    # -- batches of copies (one by one unless a runtime does better) ------------------------------
    def _add_copies(self, unit: Unit, copies: list[int], versions: dict[str, str] | None) -> None:
        for k in copies:
            self._add_copy(unit, k, versions)

    def _wait_copies(self, unit: Unit, copies: list[int]) -> None:
        """Until every copy in ``copies`` answers its readiness probe (all are polled together)."""
        waiting = list(copies)

        def all_answer() -> bool:
            waiting[:] = [k for k in waiting if not self._copy_answers(unit, k)]
            return not waiting

        names = ", ".join(str(k) for k in copies)
        self.wait_until(all_answer, self.copy_timeout, f"copy {names} of {unit.name} to answer")

    def _remove_copies(self, unit: Unit, copies: list[int]) -> None:
        for k in copies:
            self._remove_copy(unit, k)

    # -- the skeleton ---------------------------------------------------------------------------
    def _scale(self, unit: Unit, replicas: int, versions: dict[str, str] | None = None) -> None:
        """Run ``replicas`` copies of ``unit`` behind a front and wait for new ones to answer.

        New copies run ``versions`` (``{container: version}``) where given, else what copy 1 runs;
        copies beyond ``replicas`` leave the front, then stop.
        """
        current = self._copies(unit)
        self._join_front(unit, 1)  # copy 1 is in the rotation from the first scale on
        new = list(range(current + 1, replicas + 1))
        if new:
            self._add_copies(unit, new, versions)
            self._wait_copies(unit, new)
            for k in new:  # only once they answer: no request meets a half-started copy
                self._join_front(unit, k)
        self._ensure_front(unit)
        gone = list(range(replicas + 1, current + 1))
        if gone:
            for k in gone:
                self._leave_front(unit, k)
            time.sleep(DRAIN)  # requests already sent to them end first
            self._remove_copies(unit, gone)

    # -- shared ---------------------------------------------------------------------------------
    def _unit(self, name: str) -> Unit:
        for u in self.scenario.units:
            if u.name == name:
                return u
        raise NotFound(f"Scenario {self.scenario.name!r} has no unit {name!r}.",
                       fix=f"use one of: {', '.join(u.name for u in self.scenario.units)}")

    def _entry_unit(self) -> Unit:
        return self._unit(self.scenario.unit_of(self.scenario.entry[1]).name)

    def replicas(self, unit: str | None = None) -> int:
        """How many copies of ``unit`` (default: the one serving ``/data``) run now."""
        u = self._unit(unit) if unit else self._entry_unit()
        with self._boundary(f"Cannot count the copies of {u.name!r}"):
            return self._copies(u)

    def scale(self, unit: str, replicas: int, *, timeout: float = 60) -> dict[str, Any]:
        """Run ``replicas`` copies of ``unit``; requests to ``app.url`` spread over all of them.

        Only the unit that serves ``/data`` scales here: it is the one a front (a Service) can
        stand before. Each copy gets its own scratch volumes and shares the persistent ones, as
        replicas of a Kubernetes Deployment do; a copy of a unit holding the generator is
        another generator.

        Returns ``{"unit", "replicas", "seconds", "url"}``.
        """
        self.require("scale")
        u = self._unit(unit)
        if u.name != self._entry_unit().name:
            raise NotSupported(
                f"Scaling unit {u.name!r} of {self.scenario.name!r} is not part of this course.",
                why=f"only the unit that serves /data ({self._entry_unit().name!r}) has a front to spread "
                    "requests over its copies; more copies of another unit would have no one to answer to",
                fix=f"scale {self._entry_unit().name!r}")
        if isinstance(replicas, bool) or not isinstance(replicas, int) or not 1 <= replicas <= MAX_REPLICAS:
            raise InvalidInput(f"{replicas!r} is not a number of replicas here.",
                               why=f"every copy is a real process or container: 1 to {MAX_REPLICAS}",
                               fix="pass replicas=3")
        t0 = time.monotonic()
        with self._boundary(f"Cannot scale {u.name!r} to {replicas}"):
            self._scale(u, replicas)
            self.wait_until(lambda: answers(self.url + "/data"), timeout, "the front to answer")
        self._note(u.name, "scaled", f"{replicas} replica(s) behind {self.url}")
        return {"unit": u.name, "replicas": replicas, "seconds": round(time.monotonic() - t0, 3), "url": self.url}

    def rollout(self, program: str = "echo", *, strategy: str | None = None, context: str | Path | None = None,
                period: float = 0.02, settle: float = 0.3, progress: bool | None = None) -> dict[str, Any]:
        """Roll a changed ``program`` out to the containers that run it, measuring what a user sees.

        Without ``context``, one line of ``program`` is changed in a copy of ``images/`` (as
        :func:`appcoup_lib.images.change_one_line` does).

        ``strategy`` names a Deployment's two (``spec.strategy.type``):

        - ``"rolling"`` (RollingUpdate, maxSurge 1, maxUnavailable 0): one extra copy of the new
          version joins first, then each old copy leaves the front, is replaced and joins again. On
          local and docker a unit without a front gets one first (``app.url`` moves to it, as
          ``scale`` does); on kubernetes the Deployment's strategy is patched, then the image set.
        - ``"recreate"`` (Recreate): each copy is stopped and started again with the new version,
          nothing in between (``docker rm`` + ``docker run``; on kubernetes, all old pods go first).
        - None: what the unit has now: rolling behind a front (after ``scale``) or a Deployment's
          own strategy, else recreate.

        Meanwhile ``/data`` is requested every ``period`` s through ``app.url``.

        Returns ``strategy``, ``requests``, ``failed_requests``, ``seconds`` (the whole rollout),
        ``build_seconds`` (making the new version: building images, or nothing to build),
        ``replaced`` and ``untouched`` (containers), ``restarts`` (per container, during the
        rollout) and ``generator_restarts``.
        """
        self.require("rollout")
        if strategy not in (None, "rolling", "recreate"):
            raise InvalidInput(f"There is no rollout strategy {strategy!r}.",
                               fix="use strategy='rolling' (RollingUpdate) or strategy='recreate' (Recreate)")
        sc = self.scenario
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
        with self._boundary(f"Cannot roll {program!r} out"):
            try:
                t_build = time.monotonic()
                versions = self._prepare(targets, Path(context))
                build = time.monotonic() - t_build
            finally:
                if tmp is not None:
                    shutil.rmtree(tmp, ignore_errors=True)
            copies = self._copies(unit)
            self._set_strategy(unit, strategy, copies)
            before = self.identities()
            with self._traffic(unit, period) as traffic:
                t0 = time.monotonic()
                strategy = self._roll_out(unit, versions, copies, strategy)
                seconds = time.monotonic() - t0
                time.sleep(settle)  # requests right after the rollout count too
            after = self.identities()
        restarts = {}
        for name, (ident, n) in before.items():
            new_ident, m = after.get(name, (None, n))
            restarts[name] = max(m - n, 0 if new_ident == ident else 1)
        generator = next((c.name for c in sc.containers if "generator" in c.runs), None)
        sent, failed = traffic.sent, traffic.failed
        self._note(unit.name, "rolled-out",
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
        self._record(who, kind, detail)

    def _set_strategy(self, unit: Unit, strategy: str | None, copies: int) -> None:
        """Before the traffic starts: what ``strategy`` needs (a rolling update needs a front to roll behind)."""
        if strategy == "rolling" and not self._has_front(unit):
            self._scale(unit, copies)  # the same copies, now behind a front (app.url moves to it)
            self.wait_until(lambda: answers(self.url + "/data"), self.copy_timeout, "the front to answer")

    def _roll_out(self, unit: Unit, versions: dict[str, str], copies: int, strategy: str | None = None) -> str:
        """Replace the old version by ``versions`` in every copy of ``unit``; return the strategy's name."""
        if strategy == "recreate" or (strategy is None and not self._has_front(unit)):
            for k in range(1, copies + 1):  # stop and start again, nothing in between (maxSurge 0)
                self._replace(unit, k, versions)
            return "recreate"
        # Surge: one extra copy of the new version joins first, so capacity never drops.
        self._scale(unit, copies + 1, versions=versions)
        self._front_serves(copies + 1)
        for k in range(1, copies + 1):
            self._leave_front(unit, k)
            time.sleep(DRAIN)
            self._replace(unit, k, versions)
            self._join_front(unit, k)
        self._scale(unit, copies)
        return "rolling"

    def _front_serves(self, copies: int, timeout: float = 10.0) -> None:
        """Wait until answers through the front come from ``copies`` different copies (echo names
        itself in ``X-Served-By``): a front that learns its copies from DNS must know the new one
        before an old one leaves, or for a moment it knows none that answers."""
        seen: set[str] = set()
        deadline = time.monotonic() + timeout
        while len(seen) < copies and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/data", timeout=1.0) as r:
                    r.read()
                    seen.add(r.headers.get("X-Served-By") or "")
            except (urllib.error.URLError, OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)

    def _traffic(self, unit: Unit, period: float) -> Any:
        """What counts the requests during a rollout: GET /data at ``app.url``, every ``period`` s."""
        return Traffic(self, period)

    def recreate(self, *units: str) -> dict[str, Any]:
        """Delete ``units`` entirely (containers and scratch volumes), then create them again.

        What ``kubectl delete pod`` does under a Deployment, or ``docker rm -f`` + ``docker run``:
        persistent volumes stay, scratch volumes go with their unit. With no ``units``: all of them.

        Returns ``{"units", "seconds"}`` (until every container runs again; call ``wait_ready``).
        """
        self.require("recreate")
        us = [self._unit(u) for u in units] if units else list(self.scenario.units)
        t0 = time.monotonic()
        with self._boundary(f"Cannot recreate {', '.join(u.name for u in us)}"):
            self._recreate(us)
        self._note(",".join(u.name for u in us), "recreated", "deleted and created again")
        return {"units": [u.name for u in us], "seconds": round(time.monotonic() - t0, 3)}

    def _scratch_of(self, units: list[Unit]) -> list[str]:
        """Scratch volumes used only by ``units`` (they die with them)."""
        sc = self.scenario
        names = {u.name for u in units}
        used_by: dict[str, set[str]] = {}
        for u in sc.units:
            for c in u.containers:
                if c.volume:
                    used_by.setdefault(c.volume, set()).add(u.name)
        return [v for v, kind in sc.volumes.items() if kind == "scratch" and used_by.get(v, set()) <= names
                and used_by.get(v)]


__all__ = ["DRAIN", "MAX_REPLICAS", "Scaling", "Traffic", "answers"]

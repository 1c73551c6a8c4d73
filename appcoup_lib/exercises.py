"""Exercises: predict, try, then ask the library whether you were right, and why.

Every exercise in the notebooks follows one pattern::

    answer = ...                    # the learner replaces ... with a prediction or a result
    check_pod_generator_killed(answer)

A ``check_...`` function returns a :class:`Verdict` that prints (and renders in a notebook) as
"right" or "not quite", with the reason. An answer left at ``...`` is "not answered yet", never an
error, so "Run All" goes through. To add an exercise, write a ``check_...`` function that calls
:func:`verdict` (see the ones below).
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right (``None``: not answered yet), and why."""

    ok: bool | None
    message: str

    def __bool__(self) -> bool:
        return bool(self.ok)

    @property
    def mark(self) -> str:
        return {True: "✔ right", False: "✘ not quite", None: "… not answered yet"}[self.ok]

    def __str__(self) -> str:
        return f"{self.mark}: {self.message}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        color = {True: "#1b7f3b", False: "#b3261e", None: "#666"}[self.ok]
        return (f"<div style='border-left:4px solid {color};padding:4px 10px'>"
                f"<b style='color:{color}'>{html.escape(self.mark)}</b>: {html.escape(self.message)}</div>")


@dataclass(frozen=True)
class Solution:
    """What a solution cell shows: its verdict and what it observed, folded until clicked.

    JupyterLab unfolds a collapsed output when the cell runs (Run All), so the result itself
    sits behind a "show" toggle; as text (papermill, a terminal) it is plain.
    """

    verdict: Verdict
    observed: dict[str, Any]

    def __str__(self) -> str:
        seen = ", ".join(f"{k} = {v!r}" for k, v in self.observed.items())
        return f"solution: {seen}\n{self.verdict}"

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        seen = "".join(f"<li><code>{html.escape(k)} = {html.escape(repr(v))}</code></li>"
                       for k, v in self.observed.items())
        return (f"<details class='appcoup-solution'><summary>show the solution's result</summary>"
                f"<ul>{seen}</ul>{self.verdict._repr_html_()}</details>")


def solution(check: Callable[..., Verdict], **observed: Any) -> Solution:
    """Check what the solution observed (the ``observed`` names ``check`` takes); show it folded.

    ``solution(check_pod_generator_killed, restarts={"generator": 1, "echo": 0})``; other
    ``observed`` values are only shown.
    """
    params = inspect.signature(check).parameters
    return Solution(check(**{k: v for k, v in observed.items() if k in params}), observed)


def unanswered(answer: Any) -> bool:
    """True while the learner has not replaced the ``...`` placeholder."""
    return answer is ... or answer is None


def verdict(answer: Any, ok: bool, why: str, hint: str) -> Verdict:
    """The verdict on ``answer``: ``why`` explains the right answer, ``hint`` nudges a wrong one."""
    if unanswered(answer):
        return Verdict(None, "replace the ... with your answer, run the cell, then run this one again")
    return Verdict(True, why) if ok else Verdict(False, hint)


def _as_set(answer: Any) -> set[str] | None:
    if isinstance(answer, str):
        return {answer}
    if isinstance(answer, Iterable):
        return {str(a) for a in answer}
    return None


# -- 00-setup ---------------------------------------------------------------------------------------
def check_federation_runtimes(answer: Any) -> Verdict:
    """00: which runtimes can run the `federation` scenario? (a runtime name or a list of them)"""
    got = _as_set(answer)
    return verdict(
        answer, got == {"kubernetes"},
        "only kubernetes: federation couples two clusters through an exposed endpoint, and neither "
        "plain processes nor one Docker engine has a second cluster to reach",
        "look at ac.scenario('federation').runtimes, and read the error that "
        "ac.runtime('local').up('federation') raises")


# -- 01-separate-runs -------------------------------------------------------------------------------
def check_separate_generator_killed(data_answers: Any, new_numbers: Any = ...) -> Verdict:
    """01: after killing the generator of `separate`, does /data answer? Do new numbers arrive?"""
    if unanswered(data_answers) or unanswered(new_numbers):
        return verdict(..., False, "", "")
    return verdict(
        data_answers, bool(data_answers) is True and bool(new_numbers) is False,
        "echo still serves the file, so /data answers with the old numbers, but nobody appends to it "
        "any more and nothing restarts the generator: the numbers freeze without any error",
        "kill the generator, then call len(app.data()) twice a few seconds apart and look at "
        "app.status()['generator']")


# -- 02-dockerfile-coupling -------------------------------------------------------------------------
def check_single_image_generator_killed(restarts: Any, data_answers: Any = ...) -> Verdict:
    """02: `single-image` with the forwarding supervisor, generator killed: restarts? /data?"""
    if unanswered(restarts) or unanswered(data_answers):
        return verdict(..., False, "", "")
    ok = isinstance(restarts, int) and restarts >= 1 and bool(data_answers)
    return verdict(
        restarts, ok,
        "app-init.sh sees the generator die, stops echo and exits, so the runtime restarts the whole "
        "container: echo restarts too although nothing was wrong with it, and /data answers again "
        "once both are back",
        "start it with supervisor='init', kill('generator'), wait two seconds, then read "
        "app.status()['app']['restarts'] and app.answers()")


# -- 03-pod-coupling --------------------------------------------------------------------------------
def check_pod_generator_killed(restarts: Any) -> Verdict:
    """03: kill the generator in a pod: ``{"generator": n, "echo": m}`` restarts afterwards."""
    if unanswered(restarts):
        return verdict(..., False, "", "")
    ok = isinstance(restarts, dict) and restarts.get("generator") == 1 and restarts.get("echo") == 0
    return verdict(
        restarts, ok,
        "each container of a pod restarts on its own: the generator restarts once, echo never "
        "notices (it keeps serving the shared file, which simply grows again)",
        "answer with a dict like {'generator': 1, 'echo': 0}: the restarts of each container, "
        "from app.status(), after one kill of the generator")


# -- 04-service-coupling ----------------------------------------------------------------------------
def check_volume_replicas_share(answer: Any) -> Verdict:
    """04: scale echo of `volume` to 2: do both replicas serve the same numbers? (True/False)"""
    return verdict(
        answer, answer is True,
        "both copies of echo mount the one persistent volume the one generator writes to, so each "
        "serves the same file: scaling a reader of shared data multiplies capacity, not data",
        "start `volume`, app.scale('echo', 2), then look at ac.loose.spread(app).same_numbers")


# -- 05-volume-coupling -----------------------------------------------------------------------------
def check_service_generator_recreated(answer: Any) -> Verdict:
    """05: in `service`, recreate only the generator's unit: are the old numbers still served?"""
    return verdict(
        answer, answer is False,
        "in `service` the data file lives in a scratch volume of the generator's unit (beside the "
        "adapter): it goes with that unit, so echo serves a fresh list afterwards",
        "start `service`, note app.data()[:3], app.recreate('generator'), wait_ready(), compare")


# -- 06-federation ----------------------------------------------------------------------------------
def check_echo_killed_loose(restarts: Any) -> Verdict:
    """06: kill echo of `federation` (or `service`): ``{"generator": n, "adapter": m, "echo": k}`` restarts."""
    if unanswered(restarts):
        return verdict(..., False, "", "")
    ok = (isinstance(restarts, dict) and restarts.get("echo") == 1
          and restarts.get("generator") == 0 and restarts.get("adapter") == 0)
    return verdict(
        restarts, ok,
        "only echo restarts, in its own unit (its own cluster, in federation); the generator's side "
        "never hears of it: nothing there depends on echo",
        "answer with the restarts of all three containers from app.status() after one kill of echo, "
        "e.g. {'generator': 0, 'adapter': 0, 'echo': 1}")


# -- 07-choosing-a-coupling -------------------------------------------------------------------------
def check_loose_scenarios(answer: Any, card: Iterable[dict[str, Any]] = ()) -> Verdict:
    """07: from this run's scorecard, the scenarios where upgrading echo left the generator alone
    and 2 replicas served the same numbers."""
    want = {r["scenario"] for r in card if r.get("generator restarts on upgrade") == 0
            and r.get("2 replicas serve") == "the same numbers"}
    got = _as_set(answer)
    return verdict(
        answer, got == want,
        f"{', '.join(sorted(want)) or 'none'}: echo lives in a unit of its own, and its copies read one "
        "generator's data (through the adapter, a shared volume or a shared directory)",
        "read two columns of the table: 'generator restarts on upgrade' must be 0 and '2 replicas serve' "
        "must say 'the same numbers'")


__all__ = [
    "Solution",
    "Verdict",
    "check_echo_killed_loose",
    "check_federation_runtimes",
    "check_loose_scenarios",
    "check_pod_generator_killed",
    "check_separate_generator_killed",
    "check_service_generator_recreated",
    "check_single_image_generator_killed",
    "check_volume_replicas_share",
    "solution",
    "unanswered",
    "verdict",
]

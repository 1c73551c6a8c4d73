"""Exercises: predict, run the experiment, then compare your prediction with what this run observed.

Every exercise in the notebooks follows one flow:

1. a markdown cell asks for a prediction;
2. ``predict("03.1", {"generator": ..., "echo": ...})``: the learner replaces each ``...`` with a
   guess and runs the cell **before** the experiment; the guess is recorded (left at ``...``,
   nothing is recorded, so "Run All" goes through);
3. the experiment cell(s), which compute what this run observes;
4. the check cell, ``check_pod_generator_killed(restarts)``: it says whether the prediction was
   right, what this run observed, and why (a :class:`Verdict`: "right" / "not quite" / "not answered
   yet" when no prediction was recorded);
5. the solution cell, ``%%solution`` + ``solution(check_..., guess=<the right prediction>, ...)``:
   folded away, and it runs only when asked (:func:`solution_magic`).

To add an exercise, write a ``check_...`` function decorated with ``@exercise("NN.k")`` that calls
:func:`verdict` (see the ones below): its ``why`` and ``hint`` texts are quoted by the answer key.

**The predictions file** (read by a teacher's board): ``paths.state_dir() / "predictions.json"``,
one JSON object per learner's state directory::

    {"format": 1,
     "predictions": {                       # keyed by exercise: "NN.k" = notebook NN, exercise k
       "03.1": {"learner": "ada",            # inputs.learner()
                "notebook": "03-pod-coupling",
                "exercise": "03.1",
                "guess": {"generator": 1, "echo": 0},   # as JSON (sets and tuples become lists)
                "time": "2025-05-01T09:30:12Z",         # when the guess was recorded (UTC)
                "revisions": 0,                          # how often the guess was changed since
                "verdict": null}}}                       # until checked, then
                # {"ok": true | false, "observed": ..., "time": "..."}

Predicting again replaces the guess, counts a revision and clears the verdict. The file is
rewritten whole (atomically) at each change.
"""

from __future__ import annotations

import functools
import html
import inspect
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InvalidInput
from .inputs import learner
from .paths import notebooks_dir, state_dir
from .solutions import FOLDED, register_magic, reveal, solution_magic, solutions_run

PREDICTIONS_FILE = "predictions.json"
FORMAT = 1


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right (``None``: not answered yet), and why; ``observed``: what this run saw."""

    ok: bool | None
    message: str
    observed: Any = None

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

    JupyterLab unfolds a collapsed output when the cell runs, so the result itself sits behind a
    "show" toggle; as text (papermill, a terminal) it is plain.
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
    """Check the right prediction (``guess=``) against what this run observed; show it folded.

    ``solution(check_pod_generator_killed, guess={"generator": 1, "echo": 0}, restarts=restarts)``;
    ``observed`` values ``check`` does not take are only shown. An explicit ``guess`` is never
    recorded: a solution does not overwrite the learner's prediction.
    """
    params = inspect.signature(check).parameters
    return Solution(check(**{k: v for k, v in observed.items() if k in params}), observed)


def unanswered(answer: Any) -> bool:
    """True while the learner has not replaced the ``...`` placeholder (or one ``...`` of a dict)."""
    if answer is ... or answer is None:
        return True
    if isinstance(answer, dict):
        return any(v is ... for v in answer.values())
    if isinstance(answer, (list, tuple)):
        return any(v is ... for v in answer)
    return False


def _show(value: Any) -> str:
    if isinstance(value, (set, frozenset)):
        value = sorted(value)
    return repr(value)


_NOT_GIVEN: Any = object()


def verdict(answer: Any, ok: bool, why: str, hint: str, *, observed: Any = _NOT_GIVEN,
            shows: bool = True) -> Verdict:
    """The verdict on ``answer`` (the prediction): ``why`` explains the right answer, ``hint`` says
    where to look when it was wrong.

    ``observed`` is what this run observed (shown beside the prediction; ``...``: the experiment has
    not run yet), and ``shows`` whether it shows what ``why`` explains: a run that did not is never
    "right", so a solution checked on a runtime where the course's claim fails, fails.
    """
    if unanswered(answer):
        return Verdict(None, "replace the ... with your answer, run the cell, then run this one again")
    if observed is _NOT_GIVEN:
        return Verdict(True, why) if ok else Verdict(False, hint)
    if unanswered(observed):
        return Verdict(None, "nothing observed yet: run the experiment cell(s) above first, then this one")
    said = f"you predicted {_show(answer)}; this run observed {_show(observed)}."
    why, hint = why.rstrip("."), hint if hint.endswith(("?", ".")) else f"{hint}."
    if ok and shows:
        return Verdict(True, f"{said} Why: {why}.", observed)
    if ok:
        return Verdict(False, f"{said} Your prediction is what the course explains ({why}), but this run did "
                              "not show it: run the experiment again, and read this notebook's note on your "
                              "runtime.", observed)
    return Verdict(False, f"{said} Why: {why}. Look again: {hint}", observed)


def _as_set(answer: Any) -> set[str] | None:
    if isinstance(answer, str):
        return {answer}
    if isinstance(answer, Iterable):
        return {str(a) for a in answer}
    return None


# -- predictions: recorded before the experiment --------------------------------------------------------
class _Recorded:
    def __repr__(self) -> str:
        return "RECORDED"


RECORDED: Any = _Recorded()  # a check's default guess: the one predict() recorded
CHECKS: dict[str, Callable[..., Verdict]] = {}  # exercise id ("03.1") -> its check
_MEMORY: dict[str, Any] = {}  # exercise id -> the guess as the learner typed it (this kernel)
_EXERCISE_ID = re.compile(r"^\d\d\.\d+$")


def predictions_path() -> Path:
    """Where the predictions are kept: ``state_dir() / "predictions.json"``."""
    return state_dir() / PREDICTIONS_FILE


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted((_jsonable(v) for v in value), key=str)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


def predictions() -> dict[str, dict[str, Any]]:
    """Every recorded prediction of this learner (the file's ``predictions``; ``{}`` when none)."""
    try:
        data = json.loads(predictions_path().read_text())
    except (OSError, ValueError):
        return {}
    got = data.get("predictions") if isinstance(data, dict) else None
    return got if isinstance(got, dict) else {}


def _save(records: dict[str, dict[str, Any]]) -> None:
    path = predictions_path()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"format": FORMAT, "predictions": records}, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _notebook(exercise_id: str) -> str:
    try:
        found = sorted(notebooks_dir().glob(f"{exercise_id[:2]}-*.ipynb"))
    except FileNotFoundError:
        found = []
    return found[0].stem if found else exercise_id[:2]


def _known(exercise_id: Any) -> str:
    if not isinstance(exercise_id, str) or not _EXERCISE_ID.match(exercise_id) or exercise_id not in CHECKS:
        raise InvalidInput(f"There is no exercise {exercise_id!r}.",
                           fix=f"use the id the notebook gives, one of: {', '.join(sorted(CHECKS))}")
    return exercise_id


@dataclass(frozen=True)
class Prediction:
    """What :func:`predict` did: the guess recorded for an exercise (``recorded=False``: none yet)."""

    exercise: str
    guess: Any
    recorded: bool

    def __str__(self) -> str:
        if not self.recorded:
            return (f"no prediction yet for {self.exercise}: replace the ... with your guess and run this cell, "
                    "then the experiment")
        return (f"prediction recorded for {self.exercise}: {_show(self.guess)}. Now run the experiment, "
                "then the check.")

    def __repr__(self) -> str:
        return str(self)


def predict(exercise_id: str, guess: Any) -> Prediction:
    """Record ``guess`` for ``exercise_id`` ("03.1") before its experiment runs.

    Kept in memory (this kernel) and in :func:`predictions_path` (so a restarted kernel, and the
    teacher, see it). A guess left at ``...`` (or with a ``...`` inside) records nothing.
    """
    exercise_id = _known(exercise_id)
    if unanswered(guess):
        return Prediction(exercise_id, guess, False)
    records = predictions()
    before = records.get(exercise_id)
    revisions = before.get("revisions", 0) + 1 if isinstance(before, dict) else 0
    records[exercise_id] = {"learner": learner(), "notebook": _notebook(exercise_id), "exercise": exercise_id,
                            "guess": _jsonable(guess), "time": _now(), "revisions": revisions, "verdict": None}
    _MEMORY[exercise_id] = guess
    _save(records)
    return Prediction(exercise_id, guess, True)


def prediction(exercise_id: str) -> Any:
    """The guess recorded for ``exercise_id`` (as typed in this kernel, else as the file holds it); ``...``: none."""
    if exercise_id in _MEMORY:
        return _MEMORY[exercise_id]
    rec = predictions().get(exercise_id)
    return rec.get("guess", ...) if isinstance(rec, dict) else ...


def _record_verdict(exercise_id: str, v: Verdict) -> None:
    records = predictions()
    if exercise_id in records:
        records[exercise_id]["verdict"] = {"ok": v.ok, "observed": _jsonable(v.observed), "time": _now()}
        _save(records)
    try:  # the teacher's board (classroom.py): on a cluster, also the learner's namespace
        from .classroom import record

        record(_notebook(exercise_id), exercise_id, bool(v.ok), guess=records.get(exercise_id, {}).get("guess"))
    except Exception as e:  # noqa: BLE001 - recording must never break a learner's check cell
        import logging

        logging.getLogger(__name__).info("appcoup: the teacher's board did not get %s: %s", exercise_id, e)


def exercise(exercise_id: str) -> Callable[[Callable[..., Verdict]], Callable[..., Verdict]]:
    """Make a check the one of ``exercise_id``: its ``guess`` defaults to the recorded prediction,
    and the verdict on a recorded prediction is written beside it."""
    def wrap(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        @functools.wraps(fn)
        def check(*args: Any, guess: Any = RECORDED, **kwargs: Any) -> Verdict:
            from_record = guess is RECORDED
            got = prediction(exercise_id) if from_record else guess
            if from_record and unanswered(got):
                return Verdict(None, f'no prediction recorded for {exercise_id}: put your guess into '
                                     f'predict("{exercise_id}", ...) above the experiment and run it, then the '
                                     "experiment, then this cell")
            v = fn(*args, guess=got, **kwargs)
            if from_record and v.ok is not None:
                _record_verdict(exercise_id, v)
            return v

        check.exercise = exercise_id  # type: ignore[attr-defined]
        CHECKS[exercise_id] = check
        return check
    return wrap


# -- 00-setup ---------------------------------------------------------------------------------------------
@exercise("00.1")
def check_auto_runtime(picked: Any = ..., usable: Any = (), *, guess: Any = ...) -> Verdict:
    """00: which runtime does ``runtime("auto")`` pick on this machine? (a runtime name)"""
    from .runtimes import AUTO_ORDER

    here = [r for r in AUTO_ORDER if r in set(usable or ())]
    richest = here[0] if here else "local"
    return verdict(
        guess, guess == richest,
        f"auto tries {', '.join(AUTO_ORDER)} in that order and takes the first usable one; usable here: "
        f"{', '.join(here) or 'local'}, so {richest}",
        "read the doctor's table: which usable runtime comes first in kubernetes, docker, local?",
        observed=picked, shows=picked == richest)


# -- 01-separate-runs -------------------------------------------------------------------------------------
@exercise("01.1")
def check_separate_generator_killed(data_answers: Any = ..., new_numbers: Any = ..., *,
                                    guess: Any = ...) -> Verdict:
    """01: after killing the generator of `separate`, does /data answer? Do new numbers arrive?
    (``{"data_answers": True/False, "new_numbers": True/False}``)"""
    def right(d: Any) -> bool:
        return isinstance(d, dict) and d.get("data_answers") is True and d.get("new_numbers") is False

    seen = {"data_answers": data_answers, "new_numbers": new_numbers}
    return verdict(
        guess, right(guess),
        "echo still serves the file, so /data answers with the old numbers, but nobody appends to it "
        "any more and nothing restarts the generator: the numbers freeze without any error",
        "echo is a program of its own: what does it serve once nobody writes to its file?",
        observed=seen, shows=right({k: bool(v) for k, v in seen.items()}))


# -- 02-dockerfile-coupling -------------------------------------------------------------------------------
@exercise("02.1")
def check_single_image_generator_killed(restarts: Any = ..., data_answers: Any = ..., *,
                                        guess: Any = ...) -> Verdict:
    """02: `single-image` with the forwarding supervisor, generator killed: the container's
    restarts, and does /data answer again? (``{"restarts": n, "data_answers": True/False}``)"""
    def right(d: Any) -> bool:
        r = d.get("restarts") if isinstance(d, dict) else None
        return isinstance(r, int) and not isinstance(r, bool) and r >= 1 and d.get("data_answers") is True

    seen = {"restarts": restarts, "data_answers": data_answers}
    return verdict(
        guess, right(guess),
        "app-init.sh sees the generator die, stops echo and exits, so the runtime restarts the whole "
        "container: echo restarts too although nothing was wrong with it, and /data answers again "
        "once both are back",
        "the runtime sees one container, not two programs: what does it do when that container's "
        "PID 1 exits?",
        observed=seen, shows=right({"restarts": restarts, "data_answers": bool(data_answers)}))


# -- 03-pod-coupling --------------------------------------------------------------------------------------
@exercise("03.1")
def check_pod_generator_killed(restarts: Any = ..., *, guess: Any = ...) -> Verdict:
    """03: kill the generator in a pod: ``{"generator": n, "echo": m}`` restarts afterwards."""
    def right(r: Any) -> bool:
        return isinstance(r, dict) and r.get("generator") == 1 and r.get("echo") == 0

    return verdict(
        guess, right(guess),
        "each container of a pod restarts on its own: the generator restarts once, echo never "
        "notices (it keeps serving the shared file, which simply grows again)",
        "predict with a dict like {'generator': n, 'echo': m}: the restarts of each container after "
        "one kill of the generator; which count did the experiment move?",
        observed=restarts, shows=right(restarts))


# -- 04-service-coupling ----------------------------------------------------------------------------------
@exercise("04.1")
def check_service_generator_recreated(kept: Any = ..., *, guess: Any = ...) -> Verdict:
    """04: in `service`, recreate only the generator's unit: are the old numbers still served? (True/False)"""
    return verdict(
        guess, guess is False,
        "in `service` the data file lives in a scratch volume of the generator's unit (beside the "
        "adapter): it goes with that unit, so echo serves a fresh list afterwards",
        "where does the data file live in `service`: in echo's unit, in the generator's, or outside both?",
        observed=kept, shows=kept is False)


# -- 05-volume-coupling -----------------------------------------------------------------------------------
@exercise("05.1")
def check_volume_replicas_share(same_numbers: Any = ..., *, guess: Any = ...) -> Verdict:
    """05: scale echo of `volume` to 2: do both replicas serve the same numbers? (True/False)"""
    return verdict(
        guess, guess is True,
        "both copies of echo mount the one persistent volume the one generator writes to, so each "
        "serves the same file: scaling a reader of shared data multiplies capacity, not data",
        "count the generators: scaling echo copies echo only, and every copy mounts the same volume",
        observed=same_numbers, shows=same_numbers is True)


# -- 06-federation ----------------------------------------------------------------------------------------
@exercise("06.1")
def check_echo_killed_loose(restarts: Any = ..., *, guess: Any = ...) -> Verdict:
    """06: kill echo of `federation` (or `service`): ``{"generator": n, "adapter": m, "echo": k}`` restarts."""
    def right(r: Any) -> bool:
        return (isinstance(r, dict) and r.get("echo") == 1 and r.get("generator") == 0
                and r.get("adapter") == 0)

    return verdict(
        guess, right(guess),
        "only echo restarts, in its own unit (its own cluster, in federation); the generator's side "
        "never hears of it: nothing there depends on echo",
        "predict the restarts of all three containers after one kill of echo, as "
        "{'generator': n, 'adapter': m, 'echo': k}: which side depends on which?",
        observed=restarts, shows=right(restarts))


# -- 07-choosing-a-coupling -------------------------------------------------------------------------------
@exercise("07.1")
def check_loose_scenarios(card: Any = ..., *, guess: Any = ...) -> Verdict:
    """07: from this run's scorecard, the scenarios where upgrading echo left the generator alone
    and 2 replicas served the same numbers (a list of scenario names)."""
    rows = [] if unanswered(card) else list(card)
    want = {r["scenario"] for r in rows if r.get("generator restarts on upgrade") == 0
            and r.get("2 replicas serve") == "the same numbers"}
    return verdict(
        guess, _as_set(guess) == want,
        f"{', '.join(sorted(want)) or 'none'}: echo lives in a unit of its own, and its copies read one "
        "generator's data (through the adapter, a shared volume or a shared directory)",
        "read two columns of the table: 'generator restarts on upgrade' must be 0 and '2 replicas serve' "
        "must say 'the same numbers'",
        observed=... if unanswered(card) else sorted(want))


register_magic()  # `%%solution` works in any kernel that imported appcoup_lib

__all__ = [
    "CHECKS",
    "FOLDED",
    "RECORDED",
    "Prediction",
    "Solution",
    "Verdict",
    "check_auto_runtime",
    "check_echo_killed_loose",
    "check_loose_scenarios",
    "check_pod_generator_killed",
    "check_separate_generator_killed",
    "check_service_generator_recreated",
    "check_single_image_generator_killed",
    "check_volume_replicas_share",
    "exercise",
    "predict",
    "prediction",
    "predictions",
    "predictions_path",
    "reveal",
    "solution",
    "solution_magic",
    "solutions_run",
    "unanswered",
    "verdict",
]

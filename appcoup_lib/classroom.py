"""The teacher's board: every learner's progress and apps, read where they already are.

**Where a verdict goes** (:func:`record`, called by every ``check_...()`` that has a recorded
prediction; nothing is ever submitted):

- the learner's state file, ``state_dir() / "predictions.json"`` (the format :mod:`.exercises`
  documents: one record per exercise, its guess and its verdict); on a shared machine the teacher
  reads it under each home (``/home/*/.cache/appcoup/``);
- on a cluster, when the kubernetes runtime runs in one namespace (``$APPCOUP_NAMESPACE``, as the
  JupyterHub recipe sets, or an account that may not create namespaces), the same file as the
  ConfigMap ``appcoup-progress`` in that namespace (labelled ``app.kubernetes.io/part-of=appcoup``,
  ``appcoup.learner``, ``appcoup.progress``), which a teacher's kubeconfig lists across namespaces.

**The board** (:func:`board`; ``appcoup classroom``; ``notebooks/teacher-board.ipynb``) merges per
learner: those files, the Docker engine's containers by ``appcoup.learner`` label, and on a cluster
the progress ConfigMaps and the pods, claims and app namespaces labelled part-of=appcoup. A learner's
apps in trouble: on docker a container exited, restarting or unhealthy; on a cluster a container
waiting in CrashLoopBackOff / ImagePullBackOff / ErrImagePull, a pod Pending or not ready for more
than :data:`STUCK` seconds, a claim Pending that long. :func:`clean` removes one learner's apps
(or everyone's); progress stays.
"""

from __future__ import annotations

import html
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classroom_cluster import PROGRESS, PROGRESS_LABEL, STATE_FILE, STUCK
from .classroom_cluster import stamp as _epoch
from .inputs import learner as this_learner
from .labels import APP_LABEL, LABEL, LABEL_VALUE, LEARNER_LABEL
from .live import LiveView
from .paths import state_dir

log = logging.getLogger(__name__)

NAMESPACE_ENV = "APPCOUP_NAMESPACE"
MIRROR_WAIT = 4.0  # seconds a check cell waits for the ConfigMap (the rest goes on in the background)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _read(path: Path) -> dict[str, dict[str, Any]]:
    data = json.loads(path.read_text())
    got = data.get("predictions") if isinstance(data, dict) else None
    return got if isinstance(got, dict) else {}


# -- recording: the learner's side --------------------------------------------------------------------
def record(notebook: str, exercise: str, passed: bool, guess: Any = None) -> None:
    """Record a verdict where the teacher reads it: the learner's state file, and (in a shared
    namespace on a cluster that answers) the ConfigMap ``appcoup-progress`` there.

    A check has usually written the verdict already (:mod:`.exercises`); then the file is left
    as it is. Never raises for the cluster's part: that is logged and skipped.
    """
    path = state_dir() / STATE_FILE
    try:
        records = _read(path)
    except (OSError, ValueError):
        records = {}
    rec = records.get(exercise)
    verdict = rec.get("verdict") if isinstance(rec, dict) else None
    if not (isinstance(verdict, dict) and verdict.get("ok") is passed and
            (_epoch(verdict.get("time")) or 0) >= time.time() - 5):
        rec = rec if isinstance(rec, dict) else {"learner": this_learner(), "notebook": notebook, "exercise": exercise,
                                                 "guess": guess, "time": _now(), "revisions": 0}
        rec["verdict"] = {"ok": bool(passed), "observed": None, "time": _now()}
        records[exercise] = rec
        tmp = path.with_name(f".{path.name}.{os.getpid()}.board.tmp")
        tmp.write_text(json.dumps({"format": 1, "predictions": records}, indent=1, sort_keys=True))
        os.replace(tmp, path)
    # Not a daemon: a script that ends at once still gets its progress out (the interpreter waits).
    worker = threading.Thread(target=_mirror_quietly, args=(path,), name="appcoup-progress")
    worker.start()
    worker.join(MIRROR_WAIT)


_NO_CLUSTER_UNTIL = [0.0]  # after a cluster did not answer: not asked again for a minute
_MIRRORING = threading.Lock()  # one upsert at a time, each of the file as it is then


def _mirror_quietly(path: Path) -> None:
    if time.monotonic() < _NO_CLUSTER_UNTIL[0]:
        return
    try:
        with _MIRRORING:
            where = mirror(_read(path))
        if where:
            log.debug("appcoup: progress recorded in %s", where)
    except Exception as e:  # noqa: BLE001 - recording must never break a learner's check cell
        _NO_CLUSTER_UNTIL[0] = time.monotonic() + 60
        log.info("appcoup: the progress did not reach the cluster (the file has it): %s", e)


def learner_namespace() -> tuple[Any, str] | None:
    """(connection, namespace) where this learner's progress goes on a cluster; None: not on one.

    ``$APPCOUP_NAMESPACE``, else the kubernetes runtime's own choice when it is a shared namespace.
    """
    from .runtimes.kubernetes.client import connect, kubeconfig_path
    from .runtimes.kubernetes.placement import decide

    if not (os.environ.get(NAMESPACE_ENV) or kubeconfig_path() or os.environ.get("KUBERNETES_SERVICE_HOST")):
        return None  # no cluster here (and the kubernetes client, slow to import, is not imported)
    try:
        import kubernetes  # noqa: F401 - only whether it is there
    except ImportError:
        return None
    conn = connect()  # the kubernetes runtime's own cached connection, when it made one
    place = decide(conn)
    return (conn, place.shared) if place.shared else None


def mirror(records: dict[str, dict[str, Any]]) -> str | None:
    """Upsert the learner's progress ConfigMap; returns ``namespace/name`` (None: no shared namespace)."""
    target = learner_namespace()
    if target is None:
        return None
    from .runtimes.kubernetes.client import call

    conn, ns = target
    who = this_learner()
    core = conn.core()
    name = PROGRESS
    old = call(core.read_namespaced_config_map, name, ns, what=f"Cannot read {name} in {ns!r}", missing_ok=True)
    if old is not None and (old["metadata"].get("labels") or {}).get(LEARNER_LABEL) != who:
        name = f"{PROGRESS}-{who}"  # a namespace two learners share: one ConfigMap each
        old = call(core.read_namespaced_config_map, name, ns, what=f"Cannot read {name} in {ns!r}", missing_ok=True)
    last = max((_epoch(t) or 0 for r in records.values() if isinstance(r, dict)
                for t in (r.get("time"), (r.get("verdict") or {}).get("time"))), default=0)
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns,
                         "labels": {LABEL: LABEL_VALUE, LEARNER_LABEL: who, PROGRESS_LABEL: "true"},
                         "annotations": {"appcoup.last-activity": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                time.gmtime(last))}},
            "data": {STATE_FILE: json.dumps({"format": 1, "predictions": records}, sort_keys=True)}}
    if old is None:
        call(core.create_namespaced_config_map, ns, body, what=f"Cannot record the progress in {ns!r}")
    else:
        body["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        call(core.replace_namespaced_config_map, name, ns, body, what=f"Cannot record the progress in {ns!r}")
    return f"{ns}/{name}"


# -- the board: the teacher's side --------------------------------------------------------------------
@dataclass
class Learner:
    """One learner on the board: where they are, how their checks went, what they run."""

    name: str
    exercise: str = ""
    notebook: str = ""
    passed: int = 0
    tried: int = 0
    predicted: int = 0
    last: float | None = None  # epoch seconds of the last record
    apps: dict[str, str] = field(default_factory=dict)  # app -> "docker" / "kubernetes ns/..."
    trouble: list[str] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # where the board found them

    def take(self, records: dict[str, Any]) -> None:
        latest = (self.last or 0.0, self.exercise, self.notebook)
        for ex, rec in records.items():
            if not isinstance(rec, dict):
                continue
            self.predicted += 1
            v = rec.get("verdict")
            stamps = [_epoch(rec.get("time")) or 0.0]
            if isinstance(v, dict) and v.get("ok") is not None:
                self.tried += 1
                self.passed += v.get("ok") is True
                stamps.append(_epoch(v.get("time")) or 0.0)
            if max(stamps) >= latest[0]:
                latest = (max(stamps), str(ex), str(rec.get("notebook") or ex[:2]))
        if latest[0]:
            self.last, self.exercise, self.notebook = latest


@dataclass
class Board:
    """Every learner found, and what could not be read (``notes``)."""

    learners: list[Learner]
    notes: list[str]
    taken: float = field(default_factory=time.time)

    def get(self, name: str) -> Learner | None:
        return next((lr for lr in self.learners if lr.name == name), None)

    def rows(self) -> list[dict[str, str]]:
        out = []
        for lr in self.learners:
            ago = "-" if lr.last is None else _ago(self.taken - lr.last)
            out.append({"learner": lr.name, "at": f"{lr.exercise} {lr.notebook}".strip() or "-",
                        "checks": f"{lr.passed}/{lr.tried} right" + (f", {lr.predicted - lr.tried} to check"
                                                                     if lr.predicted > lr.tried else ""),
                        "last activity": ago, "apps": ", ".join(f"{a} ({w})" for a, w in sorted(lr.apps.items())) or "-",
                        "trouble": "; ".join(lr.trouble) or "-"})
        return out

    def __str__(self) -> str:
        rows = self.rows()
        head = ["learner", "at", "checks", "last activity", "apps", "trouble"]
        if not rows:
            text = "no learner found (no progress file, no appcoup container or pod)"
        else:
            width = {h: max(len(h), *(len(r[h]) for r in rows)) for h in head[:-1]}
            lines = ["  ".join(h.ljust(width.get(h, 0)) for h in head).rstrip()]
            lines += ["  ".join(r[h].ljust(width.get(h, 0)) for h in head).rstrip() for r in rows]
            text = "\n".join(lines)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.taken))
        trouble = sum(bool(lr.trouble) for lr in self.learners)
        tail = f"\n{len(rows)} learner(s), {trouble} in trouble, at {stamp}"
        return text + tail + "".join(f"\nnote: {n}" for n in self.notes)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        head = ["learner", "at", "checks", "last activity", "apps", "trouble"]
        cells = "".join(
            "<tr>" + "".join(f"<td style='text-align:left;{'color:#b3261e;font-weight:bold' if h == 'trouble' and r[h] != '-' else ''}'>"
                             f"{html.escape(r[h])}</td>" for h in head) + "</tr>" for r in self.rows())
        notes = "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        stamp = time.strftime("%H:%M:%S", time.localtime(self.taken))
        return (f"<table class='appcoup-board'><thead><tr>{''.join(f'<th style=text-align:left>{h}</th>' for h in head)}"
                f"</tr></thead><tbody>{cells}</tbody></table><p>{len(self.learners)} learner(s) at {stamp}</p>"
                + (f"<ul>{notes}</ul>" if notes else ""))


def _ago(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s} s ago" if s < 120 else f"{s // 60} min ago" if s < 7200 else f"{s // 3600} h ago"


def board(*, homes: list[str] | None = None, states: list[str] | None = None, docker: bool = True,
          cluster: bool | None = None, context: str | None = None, kubeconfig: str | None = None) -> Board:
    """The board now. ``homes``: roots whose ``*/.cache/appcoup/`` are learners' state directories
    (default ``/home``); ``states``: more state directories; ``cluster`` None: when a kubeconfig is there."""
    found: dict[str, Learner] = {}
    notes: list[str] = []

    def one(name: str) -> Learner:
        return found.setdefault(name, Learner(name))

    for d in _state_dirs(homes if homes is not None else ["/home"], states or [], notes):
        try:
            records = _read(d / STATE_FILE)
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as e:
            notes.append(f"cannot read {d / STATE_FILE}: {e} (run as root, or as a user who may read it)")
            continue
        who = next((str(r["learner"]) for r in records.values() if isinstance(r, dict) and r.get("learner")),
                   d.parent.parent.name)
        one(who).take(records)
        one(who).where.append(str(d))
    if docker:
        _from_docker(one, notes)
    if cluster or (cluster is None and _has_cluster(kubeconfig)):
        from .classroom_cluster import from_cluster
        from_cluster(one, notes, context=context, kubeconfig=kubeconfig)
    return Board(sorted(found.values(), key=lambda lr: lr.name), notes)


def _state_dirs(homes: list[str], states: list[str], notes: list[str]) -> list[Path]:
    dirs = [Path(s) for s in states]
    for root in homes:
        try:
            dirs += [h / ".cache" / "appcoup" for h in sorted(Path(root).iterdir()) if (h / ".cache" / "appcoup").is_dir()]
        except OSError as e:
            notes.append(f"cannot list {root}: {e}")
    return list(dict.fromkeys(dirs))


def _has_cluster(kubeconfig: str | None) -> bool:
    from .runtimes.kubernetes.client import kubeconfig_path

    if not (kubeconfig_path(kubeconfig) or os.environ.get("KUBERNETES_SERVICE_HOST")):
        return False
    try:
        import kubernetes  # noqa: F401 - only whether it is there
    except ImportError:
        return False
    return True


def _from_docker(one: Any, notes: list[str]) -> None:
    from .errors import AppcoupError
    from .runtimes import availability

    av = availability("docker")
    if not av.ok:
        if "does not exist" not in av.detail and "not installed" not in av.detail:
            notes.append(f"docker: {av.detail}")
        return
    from .runtimes.docker import connect

    try:
        ctrs = connect(timeout=30).containers.list(all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"})
    except AppcoupError as e:
        notes.append(f"docker: {e.what}")
        return
    except Exception as e:  # noqa: BLE001 - the engine went away while listing
        notes.append(f"docker: cannot list the containers: {e}")
        return
    for c in ctrs:
        labels = c.labels or {}
        who, app = labels.get(LEARNER_LABEL), labels.get(APP_LABEL)
        if not who or not app:
            continue
        lr = one(who)
        lr.apps.setdefault(app, "docker")
        state = c.attrs.get("State") or {}
        status = state.get("Status", c.status)
        health = (state.get("Health") or {}).get("Status")
        part = c.name[len(app) + 1:] if c.name.startswith(app + "-") else c.name
        if status in ("exited", "dead"):
            lr.trouble.append(f"{app}: {part} exited (code {state.get('ExitCode', '?')}), nothing restarts it")
        elif status == "restarting":
            lr.trouble.append(f"{app}: {part} restarting ({c.attrs.get('RestartCount', 0)} restarts)")
        elif health == "unhealthy":
            lr.trouble.append(f"{app}: {part} unhealthy")


def clean(learner: str | None = None, *, all_learners: bool = False, homes: list[str] | None = None,
          docker: bool = True, cluster: bool | None = None, context: str | None = None,
          kubeconfig: str | None = None) -> list[str]:
    """Remove the apps of ``learner`` (everyone's with ``all_learners``) on the Docker engine and the
    cluster; their progress stays on the board. Returns what went.

    ``all_learners`` with ``homes``: the class is the users with a home there (each home's name, and
    the learner its progress names), and only their things go; without ``homes``, everyone's.
    """
    from .errors import InvalidInput

    if (learner is None) == (not all_learners):
        raise InvalidInput("Name one learner, or ask for all of them.", fix="appcoup classroom clean LEARNER, or --all")
    if all_learners and homes is not None:
        names: set[str] = set()
        for root in homes:
            try:
                names |= {h.name for h in Path(root).iterdir() if h.is_dir()}
            except OSError:
                continue
        names |= {lr.name for lr in board(homes=homes, docker=False, cluster=False).learners}
        return [r for n in sorted(names) for r in clean(n, docker=docker, cluster=cluster, context=context,
                                                         kubeconfig=kubeconfig)]
    removed: list[str] = []
    if docker:
        from .runtimes import availability

        if availability("docker").ok:
            from .runtimes.docker import connect, remove_app

            removed += [f"docker: {r}" for r in remove_app(connect(), None, learner_only=learner)]
    if cluster or (cluster is None and _has_cluster(kubeconfig)):
        from .classroom_cluster import clean_cluster

        removed += clean_cluster(learner, context=context, kubeconfig=kubeconfig)
    return removed


# -- live: the notebook's table -----------------------------------------------------------------------
class _Room:
    """What a :class:`~appcoup_lib.live.LiveView` follows: the classroom, which is never down."""

    is_down = False
    name = "board"

    class runtime:  # LiveView reads app.runtime.name
        name = "classroom"


class BoardView(LiveView):
    """An ``ipywidgets.HTML`` redrawn with :func:`board` every ``period`` seconds."""

    kind = "board"
    tick_first = True

    def __init__(self, period: float = 5.0, **sources: Any) -> None:
        super().__init__(_Room(), period)
        import ipywidgets as w

        self.sources = sources
        self.widget = w.HTML("<p>reading the classroom …</p>")
        self.board: Board | None = None

    def tick(self) -> bool:
        self.board = board(**self.sources)
        self.widget.value = self.board._repr_html_()
        return True

    def ended(self, error: Exception | None) -> None:
        if error is not None:
            self.widget.value += f"<p style='color:#b3261e'>updates stopped: {html.escape(str(error))}</p>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def watch(period: float = 5.0, **sources: Any) -> BoardView:
    """The live board for a notebook: started, shown when it is a cell's last line; ``.stop()`` ends it."""
    view = BoardView(period, **sources)
    view.start()
    return view


__all__ = ["PROGRESS", "PROGRESS_LABEL", "STUCK", "Board", "BoardView", "Learner", "board", "clean", "learner_namespace",
           "mirror", "record", "watch"]

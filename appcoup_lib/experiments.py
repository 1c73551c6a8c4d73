"""The experiments behind the claims of notebooks 01-04, measured on whichever runtime runs them.

Each returns what it saw, so a notebook prints this run's figures and a test asserts the behaviour
the text claims:

- :func:`backoff`: kill a program again and again, as soon as it is back: the delays until it
  serves again (CrashLoopBackOff on kubernetes, Docker's doubling delay, supervisord's restarts);
- :func:`hang`: SIGSTOP a program (alive, not answering): does anything notice? A liveness probe
  restarts it; a restart policy (which waits for an exit) and a ``HEALTHCHECK`` (which only reports)
  do not;
- :func:`restart_policy`: `separate` with a restart policy: a crash is repaired, a hang is not;
- :func:`supervised`: `single-image` under a restarting supervisor: echo comes back, unseen by the
  runtime (one container, no restart counted, one log for both programs);
- :func:`pod_vs_deployment` (kubernetes): a bare Pod's image patched in place against the same
  change through a Deployment (a new pod: both containers start again, the emptyDir is lost).
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import AppcoupError, NotReady, NotSupported
from .changes import change_one_line
from .paths import images_dir
from .polling import Poller
from .results import Table
from .runtimes import procs
from .runtimes.base import App
from .scenarios import scenario as get_scenario


def _container_of(app: App, program: str) -> str:
    return next(c.name for c in app.scenario.containers if program == c.name or program in c.runs)


def _restarts(app: App) -> dict[str, int]:
    return {name: int(st.get("restarts", 0)) for name, st in app.status().items()}


# -- back-off --------------------------------------------------------------------------------------
@dataclass
class Backoff:
    """What :func:`backoff` measured: one row per kill."""

    runtime: str
    scenario: str
    program: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delays(self) -> list[float | None]:
        """Seconds from each kill until /data answered again (None: not within the timeout)."""
        return [r["seconds until back"] for r in self.rows]

    def table(self) -> Table:
        return Table(self.rows)

    def __repr__(self) -> str:
        return f"{self.program} killed {len(self.rows)} times on {self.runtime} ({self.scenario}):\n{self.table()}"

    def _repr_html_(self) -> str:
        return self.table()._repr_html_()

    def plot(self, ax: Any = None, title: str = "") -> Any:
        """The delay after each kill, as bars (matplotlib, imported only here)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 2.5))
        xs = [r["kill"] for r in self.rows]
        ys = [d if d is not None else float("nan") for d in self.delays]
        ax.bar(xs, ys, color="tab:red")
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.1f} s", (x, y), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(xs)
        ax.set_xlabel(f"kill of {self.program}, one right after the other")
        ax.set_ylabel("seconds until /data answers")
        ax.set_title(title or f"restart back-off on {self.runtime} ({self.scenario})")
        return ax


def backoff(app: App, program: str = "echo", kills: int = 4, *, settle: float = 1.5,
            timeout: float = 330) -> Backoff:
    """Kill ``program`` ``kills`` times, each time as soon as it is back; the delay after each kill.

    "Back" is /data answering again; before the next kill it must have answered for ``settle`` s
    (a program that dies within a second of starting is, for supervisord, one that failed to
    start: ``settle=0`` shows its own back-off instead). On kubernetes the kubelet waits 10 s, 20 s,
    40 s ... (capped at 5 minutes) before restarting a container that keeps crashing; Docker's
    restart policy doubles a delay from 100 ms; the local runtime's supervisord restarts at once.
    """
    app.wait_ready(timeout=120)
    container = _container_of(app, program)
    out = Backoff(app.runtime.name, app.scenario.name, program)
    for i in range(1, kills + 1):
        time.sleep(settle)
        delay, seen = _kill_and_time(app, program, container, timeout)
        out.rows.append({"kill": i, "seconds until back": None if delay is None else round(delay, 2),
                         "restarts": _restarts(app).get(container, 0), "seen while down": ", ".join(seen)})
        if delay is None:
            break
    return out


def _kill_and_time(app: App, program: str, container: str, timeout: float) -> tuple[float | None, list[str]]:
    """Kill ``program``; seconds until /data answers again, and the container states seen meanwhile.

    ``app.kill`` returns once SIGKILL was sent (the killed process can answer nothing after it), so
    the first answer after it comes from the restarted program; the status is read about once a second.
    """
    seen: list[str] = []
    t0 = time.monotonic()
    app.kill(program)
    last = 0.0
    while time.monotonic() - t0 < timeout:
        if app.answers():
            return time.monotonic() - t0, seen
        if time.monotonic() - last > 1.0:
            last = time.monotonic()
            state = str(app.status().get(container, {}).get("state") or "")
            if state and state not in seen and state.lower() != "running":
                seen.append(state)
        time.sleep(0.05)
    return None, seen


# -- sending a signal other than SIGKILL -------------------------------------------------------------
def send_signal(app: App, program: str, sig: str) -> list[int]:
    """Send ``SIG<sig>`` (``"STOP"``, ``"CONT"``) to ``program``, the way each runtime can; its pids.

    local: from this machine (the processes are ours). docker: a container's main program gets it
    from the engine (``docker kill --signal``: from outside its PID namespace, where PID 1 cannot
    ignore it); a program under a supervisor from inside its container. kubernetes: from inside the
    pod (``kubectl exec``), from a sibling container when the pod shares one process namespace.
    """
    container = _container_of(app, program)
    c = app.scenario.container(container)
    name = app.runtime.name
    if name == "local":
        pids = [int(r["pid"]) for r in app.processes() if r["container"] == container
                and procs.SCRIPTS[program] in str(r["command"]) and str(r["pid"]).isdigit()]
        for pid in pids:
            os.kill(pid, getattr(signal, f"SIG{sig}"))
        return pids
    if name == "docker" and not c.programs:
        ctr = app.container(container)  # type: ignore[attr-defined]
        ctr.kill(signal=f"SIG{sig}")
        return [int(ctr.attrs.get("State", {}).get("Pid") or 0)]
    via = container
    if name == "kubernetes":
        unit = app.scenario.unit_of(container)
        via = next((s.name for s in unit.containers if s.name != container), container)
    out = app.exec(via, "sh", "-c", procs.pkill(program, sig))  # type: ignore[attr-defined]
    return [int(p) for p in out.split() if p.isdigit()]


# -- a hang ---------------------------------------------------------------------------------------------
def hang(app: App, program: str = "echo", *, wait: float = 20, every: float = 0.25) -> dict[str, Any]:
    """SIGSTOP ``program``: alive but not answering. Watch ``wait`` s: does anything notice?

    Returns ``data_stopped`` (/data stopped answering), ``data_back`` (and answered again within
    ``wait``), ``back_after`` (seconds from the stop), ``restarted`` (containers whose restart count
    rose: what a liveness probe does), ``health`` (Docker's health statuses seen, when there is one)
    and ``states``. A program nothing restarted is sent SIGCONT at the end (so it stops cleanly).
    """
    app.wait_ready(timeout=120)
    container = _container_of(app, program)
    before = _restarts(app)
    pids = send_signal(app, program, "STOP")
    if not pids:
        raise NotReady(f"No {program} process to stop in {container!r}.", fix="look at app.processes()")
    t0 = time.monotonic()
    stopped = back = False
    back_after = None
    health: list[str] = []
    states: list[str] = []
    last_status = 0.0
    now = _restarts(app)
    while time.monotonic() - t0 < wait:
        answered = app.answers()
        stopped = stopped or not answered
        if stopped and answered:
            back, back_after = True, round(time.monotonic() - t0, 2)
            break
        if time.monotonic() - last_status > 1.0:  # the status costs more than a GET
            last_status = time.monotonic()
            st = app.status()
            now = {n: int(s.get("restarts", 0)) for n, s in st.items()}
            h, s = st[container].get("health"), st[container].get("state")
            if h and h not in health:
                health.append(h)
            if s and s not in states:
                states.append(str(s))
        time.sleep(every)
    if back:  # a restarted container answers a moment before its new restart count reaches the API
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _restarts(app) == before:
            time.sleep(0.25)
    st = app.status()
    now = {n: int(s.get("restarts", 0)) for n, s in st.items()}
    if st[container].get("health") and st[container]["health"] not in health:
        health.append(st[container]["health"])
    restarted = sorted(n for n in now if now[n] > before.get(n, 0))
    if container not in restarted:
        try:
            send_signal(app, program, "CONT")  # let it go on (and stop quickly at down)
        except AppcoupError:
            pass
    return {"runtime": app.runtime.name, "scenario": app.scenario.name, "program": program,
            "waited": wait, "data_stopped": stopped, "data_back": back, "back_after": back_after,
            "restarted": restarted, "restarts": {n: now[n] - before.get(n, 0) for n in now},
            "health": health, "states": states}


# -- separate runs with a restart policy ---------------------------------------------------------------
def restart_policy(runtime: Any, restart: str = "on-failure", *, interval: float = 0.5, wait: float = 8,
                   progress: bool | None = None) -> dict[str, Any]:
    """`separate` with ``restart`` on both runs: kill echo (an exit), then hang it (no exit).

    A restart policy reacts to an exit: the killed echo comes back (``crash_back_after`` s). A hang is
    no exit: nothing restarts it; Docker's ``HEALTHCHECK`` (on ``/healthz`` here) only turns the
    container ``unhealthy`` (``hang["health"]``).
    """
    sc = get_scenario("separate").with_restart(restart)  # type: ignore[arg-type]
    with runtime.up(sc, interval=interval, port=0, progress=progress) as app:
        app.wait_ready(timeout=60)
        time.sleep(1.2)  # running for a moment, as a real program would be before it crashes
        back, _ = _kill_and_time(app, "echo", "echo", 30)
        restarts = _restarts(app)["echo"]
        app.wait_ready(timeout=30)
        time.sleep(1.2)
        hung = hang(app, "echo", wait=wait)
    return {"runtime": runtime.name, "restart": restart, "crash_back_after": None if back is None else round(back, 2),
            "crash_restarts": restarts, "hang": hung}


# -- one image, a restarting supervisor ----------------------------------------------------------------
def supervised(runtime: Any, supervisor: str = "restarting", *, interval: float = 0.5,
               progress: bool | None = None) -> dict[str, Any]:
    """Kill echo inside `single-image` under ``supervisor``: does it come back, and what does the runtime see?

    With ``restarting`` (``app-restart.sh``) echo comes back (``back_after`` s), yet the runtime sees
    one container (``containers``) that never restarted (``container_restarts``): the restart is
    only in the supervisor's own output, mixed with both programs' (``supervisor_says``).
    """
    with runtime.up("single-image", supervisor=supervisor, interval=interval, port=0, progress=progress) as app:
        app.wait_ready(timeout=60)
        time.sleep(1.2)
        back, _ = _kill_and_time(app, "echo", "app", 30)
        time.sleep(0.5)
        st = app.status()
        try:
            log = app.logs("app")
        except AppcoupError:
            log = ""
        says = [ln.strip() for ln in log.splitlines() if ln.startswith("app-restart:")]
    return {"runtime": runtime.name, "supervisor": supervisor, "data_back": back is not None,
            "back_after": None if back is None else round(back, 2), "containers": sorted(st),
            "container_restarts": st["app"]["restarts"], "supervisor_says": says[-1:]}


# -- a bare Pod patched in place, against a Deployment's new pod (kubernetes) --------------------------
def pod_vs_deployment(runtime: Any, program: str = "echo", *, interval: float = 0.5, run_for: float = 2.0,
                      progress: bool | None = None) -> Table:
    """Change ``program``'s image in the `pod` scenario twice: as a bare Pod, and as a Deployment.

    A bare Pod's container image is changed in place (``app.replace``): the kubelet restarts that
    container alone, in the same pod, and the ``emptyDir`` (the numbers) stays. Under a Deployment
    the same change is a new pod template: a new pod, both containers start again, a new empty
    ``emptyDir``. One row per workload: pod kept, containers restarted, numbers before and after,
    numbers lost, seconds ``/data`` was dark.
    """
    from . import images

    if runtime.name != "kubernetes":
        raise NotSupported("Only a cluster has bare Pods and Deployments to compare.",
                           fix="run this on runtime('kubernetes'); local and docker replace one container alone")
    tmp = Path(tempfile.mkdtemp(prefix="appcoup-podvsdeploy-"))
    rows = []
    new_tags: list[str] = []
    try:
        context = tmp / "images"
        shutil.copytree(images_dir(), context)
        change_one_line(context, program)
        built = images.build_changed({get_scenario("pod").container(program).image}, context=context, progress=False)
        tag = next(iter(built.values())).tag
        new_tags = [b.tag for b in built.values() if b.built]
        for workload in ("pod", "deployment"):
            rt = type(runtime)(context=runtime.context, kubeconfig=runtime.kubeconfig, workload=workload)
            with rt.up("pod", interval=interval, port=0, progress=progress) as app:
                app.wait_ready(timeout=120)
                time.sleep(run_for)
                before_st = app.status()
                before = app.data()
                with Poller(app, every=0.1) as poll:
                    app.replace(program, tag)
                    app.wait_until(app.answers, 120, "/data to answer after the change")
                    time.sleep(0.3)
                after_st = app.status()
                after = app.data()
            kept = after[:len(before)] == before
            rows.append({
                "workload": "bare Pod" if workload == "pod" else "Deployment",
                "same pod": after_st[program]["pod"] == before_st[program]["pod"],
                "containers restarted": sorted(
                    n for n in after_st if after_st[n]["pod"] != before_st[n]["pod"]
                    or after_st[n]["restarts"] > before_st[n]["restarts"]),
                "numbers before": len(before), "numbers after": len(after),
                "numbers lost": 0 if kept else len(before),
                "seconds dark": round(poll.dark, 2),
            })
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        images.remove(new_tags)  # from this machine's engine: the next run builds it again
    return Table(rows)


__all__ = ["Backoff", "backoff", "hang", "pod_vs_deployment", "restart_policy", "send_signal", "supervised"]

"""The Dockerfile-coupling lessons, measured for real on a Docker engine.

Notebooks 02 and 03 (and the benchmark) call these to show, with numbers from this machine, what
putting two programs in one image costs compared to two containers in one pod:

- :func:`rebuild_after_change`: change one line of one program; what has to be rebuilt and
  restarted, and for how long ``/data`` goes dark;
- :func:`stop_time`: how long ``docker stop`` takes with a naive supervisor (PID 1 ignores SIGTERM)
  and with one that forwards signals;
- :func:`health_blind_spot`: echo dies inside the one container, and Docker still calls it healthy.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

from .errors import AppcoupError, InvalidInput, NotSupported
from .changes import CHANGES, change_one_line
from .paths import images_dir
from .polling import Poller
from .runtimes.clock import rfc3339
from .scenarios import scenario as get_scenario


def _measured_on(runtime: Any, needs: str) -> Any:
    """The runtime a lesson measures on (Docker by default): any whose apps can ``needs``."""
    from .runtimes import runtime as get_runtime

    if runtime is None:
        return get_runtime("docker")
    if isinstance(runtime, str):
        runtime = get_runtime(runtime)
    if runtime.can(needs):
        return runtime
    raise NotSupported(f"This lesson is measured on images and containers, not on the {runtime.name} runtime.",
                       why="it rebuilds images and replaces containers, which only a container engine "
                           "or a cluster does",
                       fix="pass runtime('docker') or runtime('kubernetes'), or read the numbers recorded in the "
                           "notebook")


def rebuild_after_change(runtime: Any = None, scenario: str = "single-image", program: str = "echo",
                         interval: float = 0.5, *, progress: bool | None = None) -> dict[str, Any]:
    """Change one line of ``program``, rebuild what that changes, redeploy; measure it all.

    For `single-image` the combined image rebuilds and the one container is replaced (both
    programs restart); for `pod` only the program's own image rebuilds and only its container is
    recreated, while the generator (and the pause container holding the pod's network) keep running.

    Returns:
        ``rebuild_seconds``, ``changed_bytes`` (bytes of new layers not shared with the old image),
        ``no_data_seconds`` (time /data did not answer, polled every 50 ms), ``images_rebuilt`` and
        ``containers_restarted`` (the scenario's container names), plus ``redeploy_seconds``.
    """
    from . import images

    rt = _measured_on(runtime, needs="replace")
    sc = get_scenario(scenario)
    if program not in CHANGES:
        raise InvalidInput(f"{program!r} is not a program this lesson can change.",
                           fix=f"use one of: {', '.join(CHANGES)}")
    tmp = Path(tempfile.mkdtemp(prefix="appcoup-rebuild-"))
    new_tags: list[str] = []
    try:
        context = tmp / "images"
        shutil.copytree(images_dir(), context)
        with rt.up(sc.name, interval=interval, port=0, progress=progress) as app:
            app.wait_ready(timeout=30, progress=progress)
            used = {c.image for c in app.scenario.containers}
            old = {n: images.tag_for(n) for n in used}
            change_one_line(context, program)
            changed = sorted(n for n in used if images.tag_for(n, context=context) != old[n])
            before = app.identities()
            with Poller(app, every=0.05) as poll:
                t0 = time.monotonic()
                built = images.build(changed, context=context, progress=progress)
                rebuild = time.monotonic() - t0
                new_tags = [b.tag for b in built.values() if b.built]
                if not changed or len(new_tags) != len(changed):
                    # A figure for a rebuild that did not happen (a cached image) would teach a lie.
                    raise AppcoupError(f"Changing {program} rebuilt {len(new_tags)} of the images {changed}.",
                                       why="an image with the changed content existed already: nothing was built",
                                       fix="run it again (each run changes the line differently)")
                t1 = time.monotonic()
                for c in app.scenario.containers:
                    if c.image in built:
                        app.replace(c.name, built[c.image].tag)
                app.wait_until(app.answers, 30, "/data to answer after the redeploy")
                redeploy = time.monotonic() - t1
                time.sleep(0.1)
            after = app.identities()
            restarted = sorted(n for n in before if after.get(n) != before[n])
            changed_bytes = sum(images.changed_bytes(old[n], built[n].tag) for n in changed)
        return {
            "scenario": sc.name, "program": program,
            "rebuild_seconds": round(rebuild, 3),
            "changed_bytes": int(changed_bytes),
            "no_data_seconds": round(poll.dark, 3),
            "images_rebuilt": changed,
            "containers_restarted": restarted,
            "redeploy_seconds": round(redeploy, 3),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        images.remove(new_tags)  # so the next run measures a real rebuild again


def stop_time(supervisor: Literal["naive", "init"] = "naive", runtime: Any = None, timeout: int = 10,
              *, progress: bool | None = None) -> float:
    """Seconds a stop takes on `single-image` with the ``naive`` or ``init`` supervisor.

    On Kubernetes the pod is deleted with ``timeout`` as its grace period (``terminationGracePeriodSeconds``):
    the same SIGTERM, then SIGKILL, from the kubelet.

    ``docker stop`` sends SIGTERM to PID 1 and, after ``timeout`` seconds, SIGKILL. The naive
    ``sh app.sh`` as PID 1 has no handler, so the kernel drops SIGTERM and Docker waits out the
    whole grace period; ``app-init.sh`` forwards it to both programs and exits in well under a second.
    """
    rt = _measured_on(runtime, needs="stop")
    with rt.up("single-image", supervisor=supervisor, interval=0.5, port=0, progress=progress) as app:
        app.wait_ready(timeout=60, progress=progress)
        return round(app.stop("app", timeout=timeout), 3)


def health_blind_spot(runtime: Any = None, interval: float = 0.5, *,
                      supervisor: Literal["naive", "init"] = "naive", progress: bool | None = None,
                      wait: float = 10, liveness_probe: bool = False) -> dict[str, Any]:
    """Kill echo inside the one container of `single-image`: what does a learner see?

    The image's HEALTHCHECK only checks that PID 1 is alive, so with the naive supervisor the
    container stays "running" and "healthy" while ``/data`` no longer answers. (With
    ``supervisor="init"`` the container exits instead, and Docker restarts it.)

    On Kubernetes the pod has no probe (``manifests/single-image``): it stays Running and Ready.
    With ``liveness_probe=True`` it gets one on echo's ``/healthz``; the kubelet then restarts the
    whole container, the generator included.
    """
    rt = _measured_on(runtime, needs="stop")
    if rt.name == "kubernetes":
        return _health_on_kubernetes(rt, interval, supervisor, progress, wait, liveness_probe)
    with rt.up("single-image", supervisor=supervisor, interval=interval, port=0, progress=progress) as app:
        app.wait_ready(timeout=30, progress=progress)
        ctr = app.container("app")
        killed_at = time.time()
        app.kill("echo")

        def health_checked_since_kill() -> bool:
            app.status()  # where health checks may stall (Podman without systemd) the status runs them
            ctr.reload()
            log = ((ctr.attrs.get("State") or {}).get("Health") or {}).get("Log") or []
            return any((rfc3339(entry.get("End")) or 0.0) > killed_at for entry in log) or ctr.attrs.get(
                "RestartCount", 0) > 0
        try:
            app.wait_until(health_checked_since_kill, wait, "a health check after the kill")
        except Exception:  # noqa: BLE001 - report what is there anyway
            pass
        answers = app.answers()
        st = app.status()["app"]
        echo_running = any("echo.py" in str(r["command"]) for r in app.processes())
        return {
            "supervisor": supervisor,
            "container_state": st["state"],
            "health": st["health"],
            "restarts": st["restarts"],
            "echo_running": echo_running,
            "data_answers": answers,
        }


def _health_on_kubernetes(rt: Any, interval: float, supervisor: Literal["naive", "init"], progress: bool | None,
                          wait: float, probe: bool) -> dict[str, Any]:
    rt = type(rt)(context=rt.context, kubeconfig=rt.kubeconfig, liveness_probe=probe)
    with rt.up("single-image", supervisor=supervisor, interval=interval, port=0, progress=progress) as app:
        app.wait_ready(timeout=60, progress=progress)
        app.kill("echo")
        try:  # a probe fails twice a second apart, then the kubelet restarts the container
            app.wait_until(lambda: app.status()["app"]["restarts"] > 0, wait, "a restart after the kill")
        except Exception:  # noqa: BLE001, S110 - no restart is the blind spot: report what is there
            pass
        st = app.status()["app"]
        answers = app.answers()
        echo_running = any("echo.py" in str(r["command"]) for r in app.processes())
        return {
            "supervisor": supervisor,
            "liveness_probe": probe,
            "container_state": st["state"],
            "ready": st["ready"],
            "restarts": st["restarts"],
            "echo_running": echo_running,
            "data_answers": answers,
        }


__all__ = ["change_one_line", "health_blind_spot", "rebuild_after_change", "stop_time"]

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

from .errors import InvalidInput, NotSupported
from .polling import Poller
from .paths import images_dir
from .scenarios import scenario as get_scenario

# One line per program to change: (file in images/, the line's start, its replacement).
_CHANGES: dict[str, tuple[str, str, str]] = {
    "echo": ("echo/echo.py", 'print(f"echo: listening', 'print(f"echo (changed): listening'),
    "generator": ("generator/generator.sh", "# generator: append", "# generator (changed): append"),
    "adapter": ("adapter/adapter.py", 'print(f"adapter: serving', 'print(f"adapter (changed): serving'),
}


def _docker(runtime: Any = None, *, needs: str = "") -> Any:
    """The runtime a lesson measures on: Docker, or any runtime whose apps can ``needs`` (kubernetes)."""
    from .runtimes import runtime as get_runtime
    from .runtimes.docker import DockerRuntime

    if runtime is None:
        return get_runtime("docker")
    if isinstance(runtime, str):
        runtime = get_runtime(runtime)
    if isinstance(runtime, DockerRuntime) or (needs and needs in getattr(runtime, "app_abilities", ())):
        return runtime
    raise NotSupported(f"This lesson is measured on images and containers, not on the {runtime.name} runtime.",
                       why="it rebuilds images and replaces containers, which only a container engine "
                           "or a cluster does",
                       fix="pass runtime('docker') or runtime('kubernetes'), or read the numbers recorded in the "
                           "notebook")


def change_one_line(context: Path, program: str) -> Path:
    """Change one line of ``program``'s file in the copy of ``images/`` at ``context``; return the file."""
    rel, old, new = _CHANGES[program]
    path = context / rel
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.lstrip().startswith(old):
            lines[i] = line.replace(old, new, 1)
            break
    else:  # the file changed since this lesson was written: a comment line is a change too
        lines.append("# changed for the rebuild lesson\n" if rel.endswith((".sh", ".py")) else "\n")
    path.write_text("".join(lines))
    return path


def _snapshot(app: Any) -> dict[str, tuple[Any, ...]]:
    """Per container, what changes when it is restarted or recreated."""
    if hasattr(app, "_owned"):  # Docker: a replaced container is a new container (a new id)
        out = {}
        for ctr in app._owned():
            ctr.reload()
            out[ctr.name] = (ctr.id, int(ctr.attrs.get("RestartCount", 0)))
        return out
    # Kubernetes: an image changed in place restarts the container in its pod (restartCount + 1).
    return {c: (st.get("pod"), st.get("restarts"), st.get("image")) for c, st in app.status().items()}


def rebuild_after_change(runtime: Any = None, scenario: str = "single-image", program: str = "echo",
                         interval: float = 0.5, *, progress: bool | None = None) -> dict[str, Any]:
    """Change one line of ``program``, rebuild what that changes, redeploy; measure it all.

    For `single-image` the combined image rebuilds and the one container is replaced (both
    programs restart); for `pod` only the program's own image rebuilds and only its container is
    recreated, while the generator (and the pause container holding the pod's network) keep running.

    Returns:
        ``rebuild_seconds``, ``changed_bytes`` (bytes of new layers not shared with the old image),
        ``no_data_seconds`` (time /data did not answer, polled every 50 ms), ``images_rebuilt`` and
        ``containers_restarted`` (Docker names), plus ``redeploy_seconds``.
    """
    from . import images

    rt = _docker(runtime, needs="replace")
    sc = get_scenario(scenario)
    if program not in _CHANGES:
        raise InvalidInput(f"{program!r} is not a program this lesson can change.",
                           fix=f"use one of: {', '.join(_CHANGES)}")
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
            before = _snapshot(app)
            with Poller(app, every=0.05) as poll:
                t0 = time.monotonic()
                built = images.build(changed, context=context, progress=progress)
                rebuild = time.monotonic() - t0
                new_tags = [b.tag for b in built.values() if b.built]
                t1 = time.monotonic()
                for c in app.scenario.containers:
                    if c.image in built:
                        app.replace(c.name, built[c.image].tag)
                app.wait_until(app.answers, 30, "/data to answer after the redeploy")
                redeploy = time.monotonic() - t1
                time.sleep(0.1)
            after = _snapshot(app)
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
        _remove_images(new_tags)


def _remove_images(tags: list[str]) -> None:
    """Remove the lesson's changed images, so the next run measures a real rebuild again."""
    if not tags:
        return
    from ._docker import connect

    client = connect()
    for t in tags:
        try:
            client.images.remove(t, force=True)
        except Exception:  # noqa: BLE001 - best effort: a leftover image is only disk space
            pass


def stop_time(supervisor: Literal["naive", "init"] = "naive", runtime: Any = None, timeout: int = 10,
              *, progress: bool | None = None) -> float:
    """Seconds a stop takes on `single-image` with the ``naive`` or ``init`` supervisor.

    On Kubernetes the pod is deleted with ``timeout`` as its grace period (``terminationGracePeriodSeconds``):
    the same SIGTERM, then SIGKILL, from the kubelet.

    ``docker stop`` sends SIGTERM to PID 1 and, after ``timeout`` seconds, SIGKILL. The naive
    ``sh app.sh`` as PID 1 has no handler, so the kernel drops SIGTERM and Docker waits out the
    whole grace period; ``app-init.sh`` forwards it to both programs and exits in well under a second.
    """
    rt = _docker(runtime, needs="stop")
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
    rt = _docker(runtime, needs="replace")
    if rt.name == "kubernetes":
        return _health_on_kubernetes(rt, interval, supervisor, progress, wait, liveness_probe)
    with rt.up("single-image", supervisor=supervisor, interval=interval, port=0, progress=progress) as app:
        app.wait_ready(timeout=30, progress=progress)
        ctr = app.container("app")
        killed_at = time.time()
        app.kill("echo")

        def health_checked_since_kill() -> bool:
            ctr.reload()
            log = ((ctr.attrs.get("State") or {}).get("Health") or {}).get("Log") or []
            return any(_ts(entry.get("End", "")) > killed_at for entry in log) or ctr.attrs.get(
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


def _ts(text: str) -> float:
    """Docker's RFC 3339 timestamps (nanoseconds, a zone) as epoch seconds."""
    from datetime import datetime

    if not text:
        return 0.0
    main, _, rest = text.partition(".")
    frac, zone = (rest[:-1], "+00:00") if rest.endswith("Z") else (rest[:-6], rest[-6:])
    try:
        t = datetime.fromisoformat(f"{main}{zone}" if main[-6:-5] not in "+-" else main)
    except ValueError:
        return 0.0
    return t.timestamp() + (float(f"0.{frac}") if frac.isdigit() else 0.0)


__all__ = ["change_one_line", "health_blind_spot", "rebuild_after_change", "stop_time"]
